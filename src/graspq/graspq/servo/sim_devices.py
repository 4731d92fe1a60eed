"""The servo runtime against the MuJoCo scene, with every sensor a separate simulated device.

:class:`ServoSim` plays the part of a robot's drivers on a simulated clock (MuJoCo's, in
physics steps): the overhead RGB-D camera, the wrist camera and the joint state publisher each
capture at their own rate and phase and deliver each frame after their own latency and seeded
jitter (:class:`~graspq.servo.settings.SimDevicesConfig`); the runtime gets the frames in
arrival order, exactly as a ROS node would, and its commands drive the simulated arm:

- MOVE: the env's own joint-target schedule for a move (:meth:`BaxterGraspEnv.joint_ramp`),
  played from the step the command arrives at (after ``command_latency_s``), so the arm
  moves as in a training step;
- CLOSE: the env's close, lift and judge (:meth:`BaxterGraspEnv.close_and_judge`); the
  outcome goes back to the runtime. This runs as one block of physics: camera captures that
  fall inside it are not simulated (counted as ``frames_not_simulated``; the runtime ignores
  frames while closing anyway);
- STOP: hold the arm where it is measured to be.

Between commands the physics keeps running with the targets held: the world does not wait
for the policy.

Equivalence with the env loop: with zero latency and jitter, and camera rates whose period
divides the move duration (e.g. 20 Hz cameras, 100 Hz joints for 0.15 s moves), every frame
after an executed move is captured at the physics step where the env would observe, so the
runtime sees the env's observation bit for bit and decides the same (the tests check this).
After a move that is not executed the env observes the same state again without simulating
time; here the next frames are one period later, so the observation can differ by the arm's
residual settling.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import mujoco
import numpy as np

from graspq.observation import OVERHEAD_KEY, WRIST_KEY
from graspq.servo.runtime import (
    CommandKind,
    ServoCommand,
    ServoRuntime,
    ServoState,
    StepRecord,
    Stream,
)
from graspq.servo.settings import SimDevicesConfig
from graspq.servo.sync import Frame
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.rollout import EpisodeRecord, RolloutSummary

# Event order at equal times: a capture is taken before frames due at that instant are
# delivered, and a command issued at an instant acts after every delivery at it.
_CAPTURE, _DELIVER, _COMMAND = 0, 1, 2
# Nominal capture times are fractions of a second; they fall on physics steps up to this.
_STEP_EPS = 1e-9


@dataclasses.dataclass(frozen=True)
class DeviceTiming:
    """One simulated device: the streams it publishes and its timing."""

    name: str
    streams: tuple[str, ...]
    rate_hz: float
    latency_s: float
    jitter_s: float
    phase_s: float

    def capture_time(self, n: int) -> float:
        """Nominal time of capture ``n``, s."""
        return self.phase_s + n / self.rate_hz

    def first_capture_at_or_after(self, t: float) -> int:
        """Index of the first nominal capture at or after time ``t``."""
        return max(0, math.ceil((t - self.phase_s) * self.rate_hz - _STEP_EPS))


def device_timings(config: SimDevicesConfig) -> tuple[DeviceTiming, ...]:
    """The three devices. The joint publisher comes first: at equal stamps its frame is
    delivered first, so a camera frame finds the joint state taken at its own instant."""
    return (
        DeviceTiming("joints", (Stream.JOINTS.value,), config.joints_hz,
                     config.joints_latency_s, config.joints_jitter_s, config.joints_phase_s),
        DeviceTiming("overhead", (Stream.OVERHEAD_COLOUR.value, Stream.OVERHEAD_DEPTH.value),
                     config.overhead_hz, config.overhead_latency_s, config.overhead_jitter_s,
                     config.overhead_phase_s),
        DeviceTiming("wrist", (Stream.WRIST_COLOUR.value,), config.wrist_hz,
                     config.wrist_latency_s, config.wrist_jitter_s, config.wrist_phase_s),
    )


def camera_frames(device: DeviceTiming, images: dict[str, np.ndarray],
                  stamp: float) -> list[Frame]:
    """The frames a camera device delivers from one render of the scene (``CameraRig``):
    overhead colour (uint8) and depth (m) sharing a stamp, or the wrist colour."""
    if device.name == "overhead":
        overhead = images[OVERHEAD_KEY]
        # Back to the camera's 8-bit colour (exact: the renderer's float is code / 255).
        colour = np.rint(overhead[..., :3] * np.float32(255.0)).astype(np.uint8)
        return [Frame(Stream.OVERHEAD_COLOUR.value, stamp, colour),
                Frame(Stream.OVERHEAD_DEPTH.value, stamp, overhead[..., 3].copy())]
    return [Frame(Stream.WRIST_COLOUR.value, stamp, images[WRIST_KEY].copy())]


@dataclasses.dataclass(frozen=True)
class SimEpisode:
    """What one servo episode did."""

    seed: int
    object: str
    outcome: str  # an Outcome value, "aborted" (time limit) or "estopped"
    steps: int
    episode_return: float
    sim_s: float  # simulated time from reset to the end
    decision_times_s: tuple[float, ...]  # decided_at of every logged step
    policy_latency_ms: tuple[float, ...]
    cycle_ms: tuple[float, ...]
    frames_not_simulated: int


class ServoSim:
    """Drives a :class:`ServoRuntime` with an env's scene as separate devices (module doc).

    Args:
        env: the MuJoCo env (its physics, cameras, move schedule, close and judge are used;
            its ``step`` is not).
        runtime: the runtime under test; its ``on_step`` is wrapped, not replaced.
        devices: rates, latency, jitter.
        seed: seeds the jitter (each episode draws from ``(seed, episode seed)``).
        fault: sensor fault injection: gets every captured frame and returns what the
            device delivers instead (a changed frame, or None for a lost one).
    """

    def __init__(self, env: BaxterGraspEnv, runtime: ServoRuntime,
                 devices: SimDevicesConfig | None = None, seed: int = 0,
                 fault: Callable[[Frame], Frame | None] | None = None) -> None:
        self.env = env
        self.fault = fault
        self.runtime = runtime
        self.devices = devices if devices is not None else SimDevicesConfig()
        self._timings = device_timings(self.devices)
        self._seed = seed
        self._dt = float(env.model.opt.timestep)
        # Per-episode state, set up by run_episode().
        self._k = 0  # physics steps simulated: the simulated clock is k * dt
        self._floor = 0.0  # events due before this time (inside a close block) happen now
        self._schedule: list[tuple[int, np.ndarray]] = []  # (step, joint targets) to apply
        self._arm_goal = env.home_joints  # the joint goal last commanded
        self._render_step = -1
        self._rendered: dict[str, np.ndarray] = {}
        self._records: list[StepRecord] = []
        downstream = runtime.on_step

        def record(step: StepRecord) -> None:
            self._records.append(step)
            if downstream is not None:
                downstream(step)

        runtime.on_step = record

    # ------------------------------------------------------------------ physics
    def _advance_to(self, target: int) -> None:
        """Step the physics to step ``target``, applying scheduled joint targets on time."""
        env, arm = self.env, self.env.scene.arm_actuators
        while self._k < target:
            while self._schedule and self._schedule[0][0] <= self._k:
                env.data.ctrl[arm] = self._schedule.pop(0)[1]
            upcoming = self._schedule[0][0] if self._schedule else target
            n = min(target, upcoming) - self._k
            mujoco.mj_step(env.model, env.data, nstep=n)
            self._k += n

    def _step_at(self, t: float) -> int:
        return max(self._k, math.ceil(t / self._dt - _STEP_EPS))

    # ------------------------------------------------------------------ devices
    def _images(self) -> dict[str, np.ndarray]:
        if self._render_step != self._k:  # both cameras come from one render per instant
            self._rendered = self.env.cameras.render(self.env.data)
            self._render_step = self._k
        return self._rendered

    def _capture(self, device: DeviceTiming, stamp: float) -> list[Frame]:
        env = self.env
        if device.name == "joints":
            motor = np.empty(8)
            motor[:7] = env.data.qpos[env.scene.arm_qpos_adr]
            motor[7] = env.scene.gripper_opening(env.data)
            return [Frame(Stream.JOINTS.value, stamp, motor)]
        return camera_frames(device, self._images(), stamp)

    # ------------------------------------------------------------------ commands
    def _execute(self, command: ServoCommand) -> None:
        env = self.env
        scene = env.scene
        if command.kind is CommandKind.MOVE:
            env.set_fingertip_command(command.position_m, command.yaw_offset_rad,
                                      command.joints)
            schedule, at = [], self._k
            for targets, n in env.joint_ramp(self._arm_goal, command.joints):
                schedule.append((at, targets))
                at += n
            self._schedule = schedule  # a new command replaces what is left of the last
            self._arm_goal = command.joints.copy()
        elif command.kind is CommandKind.CLOSE:
            self._schedule = []
            env.set_fingertip_command(command.position_m, command.yaw_offset_rad,
                                      command.joints)
            force = command.gripper_force_n
            ranges = env.model.actuator_forcerange[scene.finger_actuators]
            if not np.allclose(ranges, [[-force, force]] * len(scene.finger_actuators)):
                env.model.actuator_forcerange[scene.finger_actuators] = [-force, force]
            before = env.data.time
            outcome = env.close_and_judge()
            self._k += round((env.data.time - before) / self._dt)
            self._floor = self._k * self._dt
            self.runtime.report_outcome(outcome, self._floor)
        else:  # STOP: hold where the arm is
            self._schedule = []
            env.data.ctrl[scene.arm_actuators] = env.data.qpos[scene.arm_qpos_adr]
            self._arm_goal = env.data.qpos[scene.arm_qpos_adr].copy()

    # ------------------------------------------------------------------ episode
    def run_episode(self, seed: int, options: dict[str, Any] | None = None,
                    estop_at_s: float | None = None) -> SimEpisode:
        """One episode: ``env.reset(seed=seed, options=options)``, then the servo loop until
        the runtime is done, e-stopped (``estop_at_s``: simulated seconds after the start)
        or out of time."""
        env, runtime, dt = self.env, self.runtime, self._dt
        _, info = env.reset(seed=seed, options=options)
        self._k = round(env.data.time / dt)
        self._floor = start = self._k * dt
        self._schedule = []
        self._arm_goal = env.home_joints
        self._render_step = -1
        self._records = []
        rng = np.random.default_rng([self._seed, seed])
        runtime.reset(env.home_joints, start)
        queue: list[tuple[float, int, int, Any]] = []
        counter = iter(range(1 << 62))  # tie-breaker: insertion order

        def push(t: float, kind: int, payload: Any) -> None:
            heapq.heappush(queue, (t, kind, next(counter), payload))

        for device in self._timings:
            n = device.first_capture_at_or_after(start)
            push(device.capture_time(n), _CAPTURE, (device, n))
        if estop_at_s is not None:
            push(start + estop_at_s, _COMMAND, None)
        deadline = start + self.devices.episode_time_limit_s
        skipped = 0
        outcome = None
        while runtime.state not in (ServoState.DONE, ServoState.ESTOPPED):
            t, kind, _, payload = heapq.heappop(queue)
            if t > deadline:
                outcome = "aborted"
                runtime.end_episode()
                break
            self._advance_to(self._step_at(t))
            now = max(t, self._floor)
            if kind == _CAPTURE:
                device, n = payload
                if t < self._floor - _STEP_EPS:  # inside a close-and-lift block
                    skipped += 1
                    n = device.first_capture_at_or_after(self._floor)
                    push(device.capture_time(n), _CAPTURE, (device, n))
                    continue
                stamp = self._k * dt
                delay = device.latency_s
                if device.jitter_s > 0:
                    delay += rng.uniform(-device.jitter_s, device.jitter_s)
                for frame in self._capture(device, stamp):
                    if self.fault is not None:
                        frame = self.fault(frame)
                    if frame is not None:
                        push(stamp + max(0.0, delay), _DELIVER, frame)
                push(device.capture_time(n + 1), _CAPTURE, (device, n + 1))
            elif kind == _DELIVER:
                command = runtime.on_frame(payload, now)
                runtime.tick(now)
                if command is not None:
                    push(now + self.devices.command_latency_s, _COMMAND, command)
            elif payload is None:  # the scheduled e-stop
                self._execute(runtime.estop("e-stop requested by the simulation", now))
            else:
                self._execute(payload)
        status = runtime.status
        if outcome is None:
            outcome = ("estopped" if runtime.state is ServoState.ESTOPPED
                       else status.outcome.value)
        return SimEpisode(
            seed=seed, object=info["object"], outcome=outcome, steps=status.step,
            episode_return=status.episode_return, sim_s=self._k * dt - start,
            decision_times_s=tuple(r.decided_at_s for r in self._records),
            policy_latency_ms=tuple(r.policy_latency_ms for r in self._records),
            cycle_ms=tuple(r.cycle_ms for r in self._records), frames_not_simulated=skipped)


def run_servo_episodes(sim: ServoSim, episodes: int, seed: int,
                       object_type: str | Sequence[str] | None = None,
                       on_episode: Callable[[SimEpisode], None] | None = None
                       ) -> dict[str, Any]:
    """Run ``episodes`` servo episodes (episode ``i`` seeded ``seed + i``, objects as in
    :func:`graspq.sim.rollout.run_episodes`, so ``graspq eval``'s episode set is reproduced)
    and report the ``graspq servo --sim`` figures."""
    kinds = [object_type] if isinstance(object_type, str) else object_type
    results = []
    wall_start = time.perf_counter()
    for index in range(episodes):
        options = {"object": kinds[index % len(kinds)]} if kinds else None
        result = sim.run_episode(seed + index, options)
        results.append(result)
        if on_episode is not None:
            on_episode(result)
    wall_s = time.perf_counter() - wall_start
    report = RolloutSummary([EpisodeRecord(r.seed, r.object, r.outcome, r.steps,
                                           r.episode_return) for r in results]).as_dict()
    intervals = [b - a for r in results
                 for a, b in zip(r.decision_times_s, r.decision_times_s[1:], strict=False)]
    latency = [x for r in results for x in r.policy_latency_ms]
    cycle = [x for r in results for x in r.cycle_ms]
    status = sim.runtime.status
    sim_s = sum(r.sim_s for r in results)

    def percentile(values: list[float], q: float) -> float | None:
        return float(np.percentile(values, q)) if values else None

    report.update(
        loop_hz=1.0 / float(np.mean(intervals)) if intervals else None,
        decision_interval_ms_p50=None if not intervals else 1e3 * percentile(intervals, 50),
        decision_ms_p50=percentile(latency, 50), decision_ms_p99=percentile(latency, 99),
        cycle_ms_p50=percentile(cycle, 50), cycle_ms_p99=percentile(cycle, 99),
        decisions=status.decisions, not_executed=status.not_executed,
        joint_steps_clamped=status.joint_steps_clamped,
        dropped_stale=status.dropped_stale, held_bad_input=status.held_total,
        held_bad_input_by_reason=status.held_bad_input, sync=status.sync,
        frames_not_simulated=sum(r.frames_not_simulated for r in results),
        sim_s=sim_s, wall_s=wall_s, realtime_factor=sim_s / wall_s if wall_s > 0 else None)
    return report
