"""``graspq_training``: the core trainer as a ROS 2 node.

Runs :class:`graspq.learning.trainer.Trainer`, the trainer ``graspq train`` runs, on the
in-process MuJoCo scene (``backend: mujoco``) or through ROS topics against a robot node
(``backend: ros``, :mod:`graspq_training.ros_backend`), and publishes a
``graspq_interfaces/TrainingProgress`` on ``~/progress`` after every episode. Checkpoints,
train.csv, TensorBoard and the resume rules are the trainer's. At the end the run's latest
checkpoint is exported to ``<out>/policy.onnx`` (verified against torch, as ``graspq export``
does). SIGINT (Ctrl-C, or ``ros2 launch`` stopping) finishes the episode in progress, writes a
checkpoint and exits 0; ``resume: true`` continues from it.

Parameters: ``config`` (a config/training*.yaml file; '' = the defaults), ``env_config``
(a config/env.yaml file; '' = the defaults), ``learner``, ``views``, ``episodes``, ``seed``
(empty or -1: the config's), ``out`` (the run directory), ``resume``, ``backend``, and for
the ros backend ``reset_service``, ``judge_service`` and ``servo_config``.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from pathlib import Path
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from graspq.config import ConfigError, apply_overrides, load_config
from graspq.learning.settings import TRAINING_NODE_NAME, TrainingConfig
from graspq.sim.settings import ENV_NODE_NAME, EnvConfig
from graspq_interfaces.msg import TrainingProgress

BACKENDS = ("mujoco", "ros")
PROGRESS_HISTORY = 10  # progress messages kept for late subscribers


def _declare(node: Node, name: str, default: Any, text: str) -> Any:
    return node.declare_parameter(name, default, ParameterDescriptor(description=text)).value


class TrainingNode(Node):
    """Parameters and the progress publisher; :meth:`run` trains (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("graspq_training", **kwargs)
        self.config_path = _declare(self, "config", "", "config/training*.yaml ('' = defaults)")
        self.env_path = _declare(self, "env_config", "", "config/env.yaml ('' = defaults)")
        self.learner = _declare(self, "learner", "", "qlearning | dqn | ddqn ('' = config's)")
        self.views = _declare(self, "views", "", "multi | single ('' = config's)")
        self.episodes = _declare(self, "episodes", -1, "training episodes (-1 = config's)")
        self.seed = _declare(self, "seed", -1, "run seed (-1 = config's)")
        self.out = _declare(self, "out", "", "run directory ('' = runs/<learner>-<views>-s<seed>)")
        self.resume = _declare(self, "resume", False, "continue the run in `out`")
        self.backend = _declare(self, "backend", "mujoco", "mujoco: the in-process scene; "
                                "ros: a robot over ROS topics (docs/ros_interface.md)")
        self.reset_service = _declare(self, "reset_service", "/mujoco_robot/reset_episode",
                                      "backend ros: the robot's ResetEpisode service")
        self.judge_service = _declare(self, "judge_service", "/mujoco_robot/judge_grasp",
                                      "backend ros: the robot's JudgeGrasp service")
        self.servo_config = _declare(self, "servo_config", "", "backend ros: "
                                     "config/servo.yaml for the servo loop ('' = defaults)")
        self.deadline_periods = _declare(self, "deadline_periods", -1.0, "backend ros: the "
                                         "servo's qos.deadline_periods (0 against publishers "
                                         "that offer no deadline, as ros_gz_bridge; -1 = the "
                                         "servo's default)")
        self.executor: Any = None  # spins this node (and the ros backend's servo node)
        # Transient local: a monitor that joins late still gets the last episodes.
        self.publisher = self.create_publisher(TrainingProgress, "~/progress", QoSProfile(
            depth=PROGRESS_HISTORY, reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL))

    def training_config(self) -> TrainingConfig:
        config = (load_config(TrainingConfig, self.config_path, TRAINING_NODE_NAME)
                  if self.config_path else TrainingConfig())
        overrides = []
        for key, value, unset in (("learner", self.learner, ""), ("views", self.views, ""),
                                  ("episodes", self.episodes, -1), ("seed", self.seed, -1)):
            if value != unset:
                overrides.append(f"{key}={value}")
        return apply_overrides(config, overrides)

    def env_config(self) -> EnvConfig:
        return load_config(EnvConfig, self.env_path, ENV_NODE_NAME) if self.env_path \
            else EnvConfig()

    def run(self) -> int:
        from graspq.learning.trainer import Trainer
        from graspq.policy.export import export_checkpoint

        if self.backend not in BACKENDS:
            raise ConfigError("backend", f"must be one of {list(BACKENDS)}, got {self.backend!r}")
        training = self.training_config()
        out = Path(self.out or f"runs/{training.learner}-{training.views}-s{training.seed}")
        log = self.get_logger().info
        collector = self._collector(out) if self.backend == "ros" else None
        try:
            trainer = Trainer(training, self.env_config(), out, resume=self.resume, log=log,
                              collector=collector)
        except Exception:
            if collector is not None:
                collector.close()
            raise
        started = time.monotonic()

        def progress(row: dict[str, Any]) -> None:
            msg = TrainingProgress(
                run_dir=str(out), learner=training.learner, views=training.views,
                backend=self.backend, episode=int(row["episode"]),
                episodes_total=training.episodes, env_steps=int(row["env_steps"]),
                outcome=str(row["outcome"]), episode_return=float(row["return"]),
                episode_steps=int(row["steps"]), epsilon=float(row["epsilon"]),
                recent_success_rate=float(row["success_rate_100"]),
                eval_success_rate=_last_eval(out),
                elapsed_s=time.monotonic() - started,
                last_checkpoint=str(_latest_checkpoint(out)))
            msg.header.stamp = self.get_clock().now().to_msg()
            self.publisher.publish(msg)
            log(f"episode {msg.episode}/{msg.episodes_total}: {msg.outcome} in "
                f"{msg.episode_steps} steps, success(100) {msg.recent_success_rate:.2f}")

        try:
            trainer.run(progress)
        finally:
            trainer.close()
            if collector is not None:
                collector.close()
        if trainer.episode >= training.episodes:
            report = export_checkpoint(out, out / "policy.onnx")
            log(f"exported {out / 'policy.onnx'} ({report})")
        else:
            log(f"stopped at episode {trainer.episode}/{training.episodes}; resume with "
                f"resume:=true out:={out}")
        return 0


    def _collector(self, out: Path) -> Any:
        from graspq_training.ros_backend import RosCollector

        parameters = {"env_config": self.env_path, "judge_service": self.judge_service,
                      "log_dir": str(out / "ros_episodes"), "use_sim_time": True,
                      "policy": "the training agent"}
        if self.servo_config:
            from graspq.servo.settings import SERVO_NODE_NAME, ServoSimConfig
            from graspq_servo.ros_params import as_parameter_overrides

            parameters.update(as_parameter_overrides(
                load_config(ServoSimConfig, self.servo_config, SERVO_NODE_NAME), ""))
        if self.deadline_periods >= 0:
            parameters["qos.deadline_periods"] = float(self.deadline_periods)
        return RosCollector(self, self.executor, parameters, self.reset_service)


def _latest_checkpoint(run_dir: Path) -> str:
    import json

    latest = run_dir / "checkpoints" / "latest.json"
    try:
        return str(run_dir / "checkpoints" / json.loads(latest.read_text())["checkpoint"])
    except (OSError, ValueError, KeyError):
        return ""


def _last_eval(run_dir: Path) -> float:
    from graspq.learning.trainer import read_log

    rows = read_log(run_dir / "eval.csv") if (run_dir / "eval.csv").exists() else []
    return float(rows[-1]["success_rate"]) if rows else math.nan


def main(args: list[str] | None = None) -> None:
    # The trainer handles SIGINT itself (finish the episode, checkpoint, exit 0): rclpy must
    # not install its own handler, which would shut the context down mid-episode.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = TrainingNode()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    node.executor = executor
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    code = 0
    try:
        code = node.run()
    except (ConfigError, ValueError, OSError) as exc:
        node.get_logger().error(f"training refused: {exc}")
        code = 2
    except KeyboardInterrupt:
        node.get_logger().warning("interrupted twice: stopped without a final checkpoint")
        code = 130
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    sys.exit(code)
