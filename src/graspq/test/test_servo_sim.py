"""graspq.servo.sim_devices and ``graspq servo --sim``: the runtime on the MuJoCo scene with
separate, latent, jittery devices decides as the env loop does, holds on faults, and runs
end to end from an exported ONNX policy."""

import dataclasses
import json
import os
import subprocess
import sys

import mujoco
import numpy as np
import pytest

from graspq.config import dump_yaml
from graspq.learning.policy_io import load_agent
from graspq.learning.replay import ReplayBuffer
from graspq.learning.settings import TRAINING_NODE_NAME, NetworkConfig, TrainingConfig
from graspq.policy.export import export_checkpoint
from graspq.servo.episode_log import load_into_replay
from graspq.servo.policies import AgentPolicy, OracleDecisions, RandomPolicy
from graspq.servo.runtime import ServoRuntime
from graspq.servo.settings import ServoConfig, SimDevicesConfig
from graspq.servo.sim_devices import ServoSim, run_servo_episodes
from graspq.servo.sync import Frame
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.oracle import OraclePolicy
from graspq.sim.settings import ENV_NODE_NAME, OBJECT_TYPES, CameraConfig, EnvConfig

TINY_ENV = dataclasses.replace(EnvConfig(), camera=CameraConfig(image_size=32), max_steps=30)
TINY = TrainingConfig(
    learner="ddqn", episodes=1, seed=5, batch_size=4, replay_capacity=64, learning_starts=4,
    eval_episodes=1, checkpoint_every=1, torch_threads=1,
    network=NetworkConfig(stream_channels=4, joint_channels=4, fc_width=16, motor_width=8))
# No latency or jitter, and camera periods (50 ms) that divide the move (150 ms): every frame
# after a move is captured where the env observes.
LOCKSTEP = dataclasses.replace(SimDevicesConfig().zero_latency(), overhead_hz=20.0,
                               wrist_hz=20.0, wrist_phase_s=0.0)


@pytest.fixture(scope="module")
def env():
    environment = BaxterGraspEnv(TINY_ENV)
    yield environment
    environment.close()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, train_run):
    """A tiny trained checkpoint (one episode) under TINY_ENV."""
    return train_run(tmp_path_factory.mktemp("servo_sim") / "run", TINY, TINY_ENV)


def _env_rollout(env, policy, seed):
    """The env loop of `graspq eval`: actions, observations, outcome, executed flags."""
    obs, _ = env.reset(seed=seed)
    actions, observations, executed = [], [obs], []
    done = False
    while not done:
        action = int(policy.decide(obs).action)
        obs, _, terminated, truncated, info = env.step(action)
        actions.append(action)
        observations.append(obs)
        executed.append(info["executed"])
        done = terminated or truncated
    return actions, observations, info["outcome"], executed


def _servo_rollout(env, policy, seed, devices=LOCKSTEP):
    records = []
    runtime = ServoRuntime(TINY_ENV, ServoConfig(), policy, on_step=records.append)
    result = ServoSim(env, runtime, devices).run_episode(seed)
    observations = [records[0].obs] + [r.next_obs for r in records]
    return [int(r.action) for r in records], observations, result.outcome, result


def _policies(env, run_dir):
    agent, _, _ = load_agent(run_dir)
    return {
        "oracle": lambda: OracleDecisions(OraclePolicy(env)),
        "trained GQN": lambda: AgentPolicy(agent, TINY_ENV),
        "random": lambda: RandomPolicy(np.random.default_rng(11)),
    }


@pytest.mark.parametrize("name", ["oracle", "trained GQN", "random"])
def test_without_latency_the_servo_loop_decides_exactly_as_the_env_loop(env, run_dir, name):
    """Same seeds, zero jitter, same policy: the same actions on the same observations."""
    make = _policies(env, run_dir)[name]
    for seed in (0, 1):
        actions, observations, outcome, executed = _env_rollout(env, make(), seed)
        servo_actions, servo_observations, servo_outcome, _ = _servo_rollout(env, make(), seed)
        assert servo_actions == actions and servo_outcome == outcome
        for i, (ours, theirs) in enumerate(zip(servo_observations, observations, strict=True)):
            if i == 0 or executed[i - 1]:  # captured where the env observed: bit for bit
                for key in theirs:
                    assert np.array_equal(ours[key], theirs[key]), (seed, i, key)
            else:  # the env stops time on a refused move; here the arm settled 50 ms more
                assert np.allclose(ours["motor"], theirs["motor"], atol=1e-3)


def test_with_default_latency_and_jitter_the_oracle_still_grasps():
    config = EnvConfig()
    environment = BaxterGraspEnv(config)
    try:
        runtime = ServoRuntime(config, ServoConfig())
        runtime.set_policy(OracleDecisions(OraclePolicy(environment)))
        sim = ServoSim(environment, runtime, SimDevicesConfig(), seed=3)
        report = run_servo_episodes(sim, 3, 100, object_type=OBJECT_TYPES)
    finally:
        environment.close()
    assert report["success_rate"] == 1.0 and report["episodes"] == 3
    # A move (150 ms) plus up to a camera period and its latency, per decision.
    assert 3.0 < report["loop_hz"] < 6.7
    assert report["held_bad_input"] == 0 and report["dropped_stale"] == 0
    assert report["joint_steps_clamped"] == 0


def test_a_camera_that_stops_freezes_the_arm_and_is_counted(env):
    stop_at = 0.8

    def wrist_dies(frame):
        return None if frame.stream == "wrist_colour" and frame.stamp >= stop_at else frame

    records = []
    config = ServoConfig()
    runtime = ServoRuntime(TINY_ENV, config, OracleDecisions(OraclePolicy(env)),
                           on_step=records.append)
    devices = dataclasses.replace(SimDevicesConfig(), episode_time_limit_s=2.5)
    result = ServoSim(env, runtime, devices, fault=wrist_dies).run_episode(0)
    assert result.outcome == "aborted"
    assert runtime.status.held_bad_input.get("stream_stale", 0) >= 1
    # The last decision used a wrist frame from before the stop; nothing after.
    assert max(r.stamps_s["wrist_colour"] for r in records) < stop_at
    last_joints = runtime.commanded_joints
    assert np.allclose(env.data.qpos[env.scene.arm_qpos_adr], last_joints, atol=2e-3)


def test_nan_depth_for_a_while_holds_then_the_episode_goes_on(env):
    def glitch(frame):
        if frame.stream == "overhead_depth" and 0.5 <= frame.stamp < 0.9:
            return Frame(frame.stream, frame.stamp, np.full_like(frame.data, np.nan))
        return frame

    records = []
    runtime = ServoRuntime(TINY_ENV, ServoConfig(), OracleDecisions(OraclePolicy(env)),
                           on_step=records.append)
    result = ServoSim(env, runtime, SimDevicesConfig(), fault=glitch).run_episode(1)
    held = runtime.status.held_bad_input.get("depth_not_finite", 0)
    assert held >= 1
    assert not any(0.5 <= r.stamps_s["overhead_depth"] < 0.9 for r in records)
    assert result.outcome in ("success", "partial", "miss", "timeout")


def test_an_estop_stops_the_arm_where_it_is(env):
    records = []
    runtime = ServoRuntime(TINY_ENV, ServoConfig(), OracleDecisions(OraclePolicy(env)),
                           on_step=records.append)
    sim = ServoSim(env, runtime, dataclasses.replace(SimDevicesConfig(),
                                                     episode_time_limit_s=2.0))
    result = sim.run_episode(2, estop_at_s=0.5)
    stop_time = TINY_ENV.physics.settle_duration_s + 0.5  # episodes start after settling
    assert result.outcome == "estopped" and runtime.status.estop_reason is not None
    assert records and all(r.decided_at_s <= stop_time + 1e-9 for r in records)
    arm = env.scene.arm_qpos_adr
    at_stop = env.data.qpos[arm].copy()
    mujoco.mj_step(env.model, env.data, nstep=250)  # half a second later
    assert np.allclose(env.data.qpos[arm], at_stop, atol=0.05)
    assert np.max(np.abs(env.data.qvel[env.scene.arm_dof_adr])) < 1e-2  # held at rest


def _graspq(*args):
    environment = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    return subprocess.run([sys.executable, "-m", "graspq.cli", *args], capture_output=True,
                          text=True, timeout=300, env=environment, check=False)


def test_graspq_servo_sim_runs_an_exported_policy_end_to_end(run_dir, tmp_path):
    policy = tmp_path / "policy.onnx"
    export_checkpoint(run_dir, policy, random_count=50)
    env_file = tmp_path / "env.yaml"
    env_file.write_text(dump_yaml(TINY_ENV, ENV_NODE_NAME))
    logs = tmp_path / "logs"
    result = _graspq("servo", "--sim", "--policy", str(policy), "--env-config", str(env_file),
                     "--episodes", "2", "--seed", "7", "--log-dir", str(logs), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in ("episodes", "success_rate", "per_object", "loop_hz", "decision_ms_p50",
                "decision_ms_p99", "dropped_stale", "held_bad_input"):
        assert key in report, key
    assert report["episodes"] == 2
    assert sum(row["episodes"] for row in report["per_object"].values()) == 2
    assert report["held_bad_input"] == 0
    assert 0 < report["decision_ms_p50"] <= report["decision_ms_p99"]
    replay = ReplayBuffer(100, 32, "multi", TINY_ENV.camera.depth_near_m,
                          TINY_ENV.camera.depth_far_m)
    loaded = load_into_replay([logs], replay)
    assert loaded.files == 2 and loaded.transitions == round(report["mean_steps"] * 2)
    # The logs are offline data for `graspq train`.
    training_file = tmp_path / "training.yaml"
    training_file.write_text(dump_yaml(dataclasses.replace(TINY, episodes=1),
                                       TRAINING_NODE_NAME))
    trained = _graspq("train", "--config", str(training_file), "--env-config", str(env_file),
                      "--out", str(tmp_path / "offline-run"), "--offline-data", str(logs),
                      "--json")
    assert trained.returncode == 0, trained.stderr
    assert f"transitions={loaded.transitions}" in trained.stderr.replace("\n", "")
    # The policy refuses a configuration it was not made for: one line, exit status 2.
    refused = _graspq("servo", "--sim", "--policy", str(policy), "--episodes", "1")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "does not fit" in refused.stderr
