"""The training node as a user runs it: ``ros2 launch launch/training.launch.py`` trains a
tiny run for 20 episodes, publishes TrainingProgress for each, checkpoints, exports
policy.onnx and exits 0; ``resume:=true`` goes on from the checkpoint; SIGINT (Ctrl-C)
finishes the episode, checkpoints and exits 0."""

import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from graspq_interfaces.msg import TrainingProgress
from graspq_servo.test_support import isolate_ros_graph, tiny_training, wait_for, write_configs

WORKSPACE = Path(__file__).resolve().parents[3]
LAUNCH = WORKSPACE / "launch" / "training.launch.py"


class Watcher(Node):
    def __init__(self):
        super().__init__("training_watcher")
        self.progress = []
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(TrainingProgress, "/graspq_training/progress",
                                 self.progress.append, qos)


@pytest.fixture(scope="module")
def ros():
    isolate_ros_graph()
    rclpy.init()
    watcher = Watcher()
    executor = SingleThreadedExecutor()
    executor.add_node(watcher)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield watcher
    executor.shutdown()
    watcher.destroy_node()
    rclpy.try_shutdown()


def _launch(directory, out, episodes, resume=False, backend="mujoco", extra=()):
    # One config file for the run (episodes as a launch argument, as a user resumes with
    # more); demonstrations and pre-training are kept short here, and a robot has none.
    training_file, env_file = directory / "training.yaml", directory / "env.yaml"
    if not training_file.exists():
        write_configs(directory, tiny_training(episodes, 50, demos=backend == "mujoco"))
    command = ["ros2", "launch", str(LAUNCH), f"config:={training_file}",
               f"env_config:={env_file}", f"out:={out}", f"episodes:={episodes}",
               f"resume:={'true' if resume else 'false'}", f"backend:={backend}", *extra]
    log = open(directory / f"launch-{episodes}-{resume}-{backend}.log", "w")  # noqa: SIM115
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True), log


def test_train_export_and_resume(ros, tmp_path):
    out = tmp_path / "run"
    ros.progress.clear()
    process, log = _launch(tmp_path, out, 20)
    assert process.wait(timeout=600) == 0, (tmp_path / "launch-20-False-mujoco.log").read_text()
    log.close()
    # Discovery may miss the first episodes of a fast run; the node keeps the last ten for
    # late subscribers, and train.csv has them all.
    assert wait_for(lambda: ros.progress and ros.progress[-1].episode == 20, 10.0)
    episodes = [m.episode for m in ros.progress]
    assert len(episodes) >= 10 and episodes == list(range(episodes[0], 21))
    assert len((out / "train.csv").read_text().splitlines()) == 1 + 20
    last = ros.progress[-1]
    assert last.episodes_total == 20 and last.learner == "ddqn" and last.backend == "mujoco"
    assert last.last_checkpoint and Path(last.last_checkpoint).exists()
    assert (out / "policy.onnx").stat().st_size > 0
    ros.progress.clear()
    process, log = _launch(tmp_path, out, 23, resume=True)
    assert process.wait(timeout=600) == 0, (tmp_path / "launch-23-True-mujoco.log").read_text()
    log.close()
    assert "resumed" in (tmp_path / "launch-23-True-mujoco.log").read_text()
    assert wait_for(lambda: ros.progress and ros.progress[-1].episode == 23, 10.0)
    assert [m.episode for m in ros.progress] == [21, 22, 23]


def test_sigint_finishes_the_episode_checkpoints_and_exits_zero(ros, tmp_path):
    out = tmp_path / "run"
    ros.progress.clear()
    process, log = _launch(tmp_path, out, 500)
    assert wait_for(lambda: len(ros.progress) >= 3, 300.0), (
        tmp_path / "launch-500-False-mujoco.log").read_text()
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
    assert process.wait(timeout=120) == 0, (tmp_path / "launch-500-False-mujoco.log").read_text()
    log.close()
    done = ros.progress[-1].episode
    assert 3 <= done < 500
    text = (tmp_path / "launch-500-False-mujoco.log").read_text()
    assert f"stopped at episode {done}" in text
    assert not (out / "policy.onnx").exists()


def test_backend_ros_trains_through_the_robot_nodes_topics(ros, tmp_path):
    """The same run through ROS: the MuJoCo robot node serves the scene, the episodes (and
    the evaluation) run as servo loops over its topics, and each step is learnt from."""
    from graspq.learning.trainer import read_log
    from graspq.servo.episode_log import log_paths, read_episode_log

    out = tmp_path / "run"
    ros.progress.clear()
    process, log = _launch(tmp_path, out, 3, backend="ros")
    text_path = tmp_path / "launch-3-False-ros.log"
    assert process.wait(timeout=600) == 0, text_path.read_text()
    log.close()
    assert wait_for(lambda: ros.progress and ros.progress[-1].episode == 3, 10.0), (
        text_path.read_text())
    assert {m.backend for m in ros.progress} == {"ros"}
    rows = read_log(out / "train.csv")
    assert [int(r["episode"]) for r in rows] == [1, 2, 3]
    assert (out / "policy.onnx").stat().st_size > 0
    logs = [read_episode_log(p) for p in log_paths([out / "ros_episodes"])]
    assert len(logs) == 3 + 1  # three training episodes and one evaluation episode
    assert [len(log.steps) for log in logs[:3]] == [int(r["steps"]) for r in rows]


def test_backend_gazebo_trains_through_the_gazebo_driver(ros, tmp_path):
    """Only the launch argument changes: ``backend:=gazebo`` trains through the Gazebo
    driver, here on fake_gazebo (Gazebo and ros_gz_bridge's side of the topics; no Gazebo on
    these machines): reset and judge through the driver's services, the trajectories and
    gripper through its command stream."""
    from graspq.learning.trainer import read_log

    out = tmp_path / "run"
    ros.progress.clear()
    process, log = _launch(tmp_path, out, 2, backend="gazebo", extra=["gazebo_fake:=true"])
    text_path = tmp_path / "launch-2-False-gazebo.log"
    assert process.wait(timeout=600) == 0, text_path.read_text()
    log.close()
    rows = read_log(out / "train.csv")
    assert [int(r["episode"]) for r in rows] == [1, 2]
    assert all(int(r["steps"]) >= 1 for r in rows)
    assert (out / "policy.onnx").stat().st_size > 0
    text = text_path.read_text()
    assert "fake_gazebo" in text and "gazebo_robot" in text


def test_backend_baxter_refuses_to_train_on_the_real_robot_and_says_what_to_do(tmp_path):
    result = subprocess.run(["ros2", "launch", str(LAUNCH), "backend:=baxter",
                             f"out:={tmp_path / 'run'}"], capture_output=True, text=True,
                            timeout=120, check=False)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "backend:=baxter trains on no real robot" in out, out
    assert "servo.launch.py backend:=baxter" in out
    assert not (tmp_path / "run").exists()
