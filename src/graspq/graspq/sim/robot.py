"""The MuJoCo scene as a robot: joint trajectories and a gripper in, camera frames and joint
states out, each device at its own rate, latency and jitter, on a simulated clock.

:class:`SimRobot` is what a robot driver sees of the scene, with no ROS in it: the MuJoCo
robot node (``graspq_mujoco``) wraps it and adds the messages. Its pieces are the env's own,
so a command from the servo runtime has the dynamics of a training step:

- a one-point joint trajectory (goal, duration) plays :meth:`BaxterGraspEnv.joint_ramp`
  from the last goal, the env's move; a longer one holds each point's targets from its
  time on (the lift of :func:`graspq.sim.grasp_motion.lift_schedule` comes this way);
- the gripper closes or opens on command, and reports done after ``close_duration_s``;
- :meth:`judge` is the env's privileged judge (simulation and training only), with the
  finger contact watched from the moment the gripper started closing.

Devices capture at the rates and phases of :class:`~graspq.servo.settings.SimDevicesConfig`
and deliver each frame ``latency + U(-jitter, jitter)`` after its capture, the jitter drawn
from ``numpy.random.default_rng([seed, episode seed])`` as ``graspq servo --sim`` draws it.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from typing import Any

import mujoco
import numpy as np

from graspq.rewards import Outcome
from graspq.servo.runtime import Stream
from graspq.servo.settings import SimDevicesConfig
from graspq.servo.sim_devices import DeviceTiming, camera_frames, device_timings
from graspq.servo.sync import Frame
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.grasp_motion import CONTACT_CHECK_EVERY
from graspq.sim.scene import ARM_JOINTS, CLOSED_GAP_M, FINGER_JOINTS, FINGER_STROKE_M
from graspq.sim.settings import EnvConfig

JOINT_STATE_NAMES: tuple[str, ...] = (*ARM_JOINTS, *FINGER_JOINTS)
"""Joint names of the joint-state stream: Baxter's right arm s0..w2, then the two fingers."""

_EPS = 1e-6  # in physics steps: a time this close to a step counts as on it


def finger_positions(opening_m: float) -> tuple[float, float]:
    """Each finger joint's position (m) for a pad separation of ``opening_m``."""
    per_finger = min(max((opening_m - CLOSED_GAP_M) / 2.0, 0.0), FINGER_STROKE_M)
    return per_finger, per_finger


@dataclasses.dataclass(frozen=True)
class Delivery:
    """A frame and the simulated time at which the device delivers it."""

    at_s: float
    frame: Frame


@dataclasses.dataclass(frozen=True)
class GripperResult:
    """The gripper's answer once a command is done."""

    opening_m: float
    closing: bool
    stalled: bool  # closing but stopped open: something is between the fingers
    done_at_s: float


class SimRobot:
    """The scene as a robot on a simulated clock (see the module docstring).

    Args:
        env_config: the scene.
        devices: device rates, latency and jitter.
        seed: seeds the jitter, with each episode's seed.
    """

    def __init__(self, env_config: EnvConfig, devices: SimDevicesConfig | None = None,
                 seed: int = 0) -> None:
        self.env = BaxterGraspEnv(env_config)
        self.devices = devices if devices is not None else SimDevicesConfig()
        self._timings = device_timings(self.devices)
        self._seed = seed
        self._dt = float(self.env.model.opt.timestep)
        self._k = 0  # physics steps simulated since construction: the robot's clock
        self._epoch_s = 0.0  # the robot's clock when this episode's physics time was 0
        self._schedule: list[tuple[int, np.ndarray]] = []
        self._arm_goal = self.env.home_joints
        self._captures: list[tuple[float, int, DeviceTiming, int]] = []
        self._rng = np.random.default_rng(seed)
        self._watching = False
        self._touched = False
        self._gripper_done: GripperResult | None = None
        self._gripper_pending: tuple[int, bool] | None = None  # (done step, closing)
        self._render_step = -1
        self._rendered: dict[str, np.ndarray] = {}
        self._episode_ready = False

    # ------------------------------------------------------------------ clock
    @property
    def time_s(self) -> float:
        """The simulated clock, s."""
        return self._k * self._dt

    @property
    def timestep_s(self) -> float:
        return self._dt

    def _capture_time(self, device: DeviceTiming, n: int) -> float:
        """Robot-clock time of a device's capture ``n`` of this episode, s."""
        return self._epoch_s + device.capture_time(n)

    def _step_at(self, t: float) -> int:
        return max(self._k, math.ceil(t / self._dt - _EPS))

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int, object_type: str | None = None,
              object_pose: tuple[float, float, float] | None = None) -> dict[str, Any]:
        """Start an episode: the env's reset (object drawn from ``seed`` unless given; arm at
        home, gripper open; the simulated clock moves on by the settling time), devices
        restarted from now. Returns the object's description."""
        options: dict[str, Any] = {}
        if object_type is not None:
            options["object"] = object_type
        if object_pose is not None:
            options["object_pose"] = tuple(float(v) for v in object_pose)
        # The physics restarts at time 0; the robot's clock goes on from where the last
        # episode left it, as a robot's clock does. Device captures keep their phase to the
        # physics time, so an episode's frames are taken where graspq servo --sim takes them.
        epoch = self._k
        _, info = self.env.reset(seed=seed, options=options)
        self._k = epoch + round(self.env.data.time / self._dt)
        self._schedule = []
        self._arm_goal = self.env.home_joints
        self._rng = np.random.default_rng([self._seed, seed])
        self._watching = self._touched = False
        self._gripper_done = None
        self._gripper_pending = None
        self._render_step = -1
        self._epoch_s = epoch * self._dt
        self._captures = []
        for order, device in enumerate(self._timings):
            n = device.first_capture_at_or_after(self.env.data.time)
            heapq.heappush(self._captures, (self._capture_time(device, n), order, device, n))
        self._episode_ready = True
        spec = info["object_spec"]
        return {"object": info["object"], "seed": seed,
                "position_m": [float(v) for v in self.env.object_position()],
                "yaw_rad": float(spec.yaw), "half_size_m": [float(v) for v in spec.half_size]}

    @property
    def home_joints(self) -> np.ndarray:
        return self.env.home_joints

    # ------------------------------------------------------------------ commands
    def follow(self, points: list[tuple[float, np.ndarray]], start_s: float) -> None:
        """Follow a joint trajectory from simulated time ``start_s`` (or now, if later).

        ``points``: ``(time from start s, joint positions (7,) rad)``, times increasing. One
        point: the env's ramp from the last goal, over the point's time. More: each point's
        positions are the targets from its time on. Replaces what is left of the last one.
        """
        if not points:
            raise ValueError("a trajectory needs at least one point")
        goals = [np.asarray(p, dtype=float) for _, p in points]
        if any(g.shape != (7,) or not np.all(np.isfinite(g)) for g in goals):
            raise ValueError("trajectory points must hold 7 finite joint positions")
        times = [float(t) for t, _ in points]
        if any(not math.isfinite(t) or t < 0 for t in times) or times != sorted(times):
            raise ValueError(f"trajectory times must be finite, >= 0 and increasing: {times}")
        at = self._step_at(start_s)
        schedule = []
        if len(points) == 1:
            steps = max(1, round(times[0] / self._dt))
            for targets, n in self.env.joint_ramp(self._arm_goal, goals[0], steps):
                schedule.append((at, targets))
                at += n
        else:
            schedule = [(at + round(t / self._dt), g) for t, g in zip(times, goals, strict=True)]
        self._schedule = schedule
        self._arm_goal = goals[-1].copy()

    def hold(self) -> None:
        """Stop where the arm is measured to be (e-stop, or commands stopped)."""
        env = self.env
        self._schedule = []
        here = env.data.qpos[env.scene.arm_qpos_adr].copy()
        env.data.ctrl[env.scene.arm_actuators] = here
        self._arm_goal = here

    def command_gripper(self, close: bool, force_n: float | None = None) -> None:
        """Close (watching finger contact from now, for :meth:`judge`) or open the gripper;
        :meth:`gripper_result` answers once ``close_duration_s`` has passed."""
        env = self.env
        scene = env.scene
        if force_n is not None:
            if not (math.isfinite(force_n) and force_n > 0):
                raise ValueError(f"gripper force must be positive, got {force_n!r}")
            env.model.actuator_forcerange[scene.finger_actuators] = [-force_n, force_n]
        env.data.ctrl[scene.finger_actuators] = 0.0 if close else FINGER_STROKE_M
        if close:
            self._watching, self._touched = True, False
        self._gripper_done = None
        steps = round(env.config.gripper.close_duration_s / self._dt)
        self._gripper_pending = (self._k + steps, close)

    def gripper_result(self) -> GripperResult | None:
        """The last gripper command's result once it is done (None before)."""
        return self._gripper_done

    def judge(self) -> Outcome:
        """The env's judge of the grasp now (privileged: reads the object's height)."""
        outcome = self.env.judge_grasp(self._touched)
        self._watching = False
        return outcome

    # ------------------------------------------------------------------ state
    def joint_positions(self) -> np.ndarray:
        """(9,) measured positions: arm s0..w2 (rad), then the fingers (m)."""
        env = self.env
        return np.concatenate([env.data.qpos[env.scene.arm_qpos_adr],
                               env.data.qpos[env.scene.finger_qpos_adr]])

    def joint_velocities(self) -> np.ndarray:
        env = self.env
        finger_dofs = [env.model.jnt_dofadr[env.model.joint(n).id] for n in FINGER_JOINTS]
        return np.concatenate([env.data.qvel[env.scene.arm_dof_adr], env.data.qvel[finger_dofs]])

    # ------------------------------------------------------------------ simulation
    def advance(self, until_s: float) -> list[Delivery]:
        """Simulate up to ``until_s``; returns the frames captured on the way, with their
        delivery times (possibly later than ``until_s``: the caller delivers them then)."""
        if not self._episode_ready:
            raise RuntimeError("call reset() before advance()")
        deliveries: list[Delivery] = []
        target = self._step_at(until_s)
        while True:
            capture_t, order, device, n = self._captures[0]
            capture_step = self._step_at(capture_t)
            if capture_step > target:
                break
            self._advance_to(capture_step)
            heapq.heapreplace(self._captures,
                              (self._capture_time(device, n + 1), order, device, n + 1))
            stamp = self._k * self._dt
            delay = device.latency_s
            if device.jitter_s > 0:
                delay += self._rng.uniform(-device.jitter_s, device.jitter_s)
            deliveries.extend(Delivery(stamp + max(0.0, delay), frame)
                              for frame in self._capture(device, stamp))
        self._advance_to(target)
        return deliveries

    def _advance_to(self, target: int) -> None:
        env, arm = self.env, self.env.scene.arm_actuators
        while self._k < target:
            while self._schedule and self._schedule[0][0] <= self._k:
                env.data.ctrl[arm] = self._schedule.pop(0)[1]
            if self._gripper_pending is not None and self._gripper_pending[0] <= self._k:
                self._finish_gripper()
            bounds = [target]
            if self._schedule:
                bounds.append(self._schedule[0][0])
            if self._gripper_pending is not None:
                bounds.append(self._gripper_pending[0])
            n = min(bounds) - self._k
            # Once a touch is seen the judge has its answer: no more checks, longer strides
            # (the same physics steps either way).
            watching = self._watching and not self._touched
            if watching:
                n = min(n, CONTACT_CHECK_EVERY)
            mujoco.mj_step(env.model, env.data, nstep=n)
            self._k += n
            if watching:
                self._touched = env.finger_touches_object()
        if self._gripper_pending is not None and self._gripper_pending[0] <= self._k:
            self._finish_gripper()

    def _finish_gripper(self) -> None:
        _, closing = self._gripper_pending
        opening = self.env.scene.gripper_opening(self.env.data)
        stalled = closing and opening > self.env.config.gripper.closed_opening_m
        self._gripper_done = GripperResult(opening, closing, stalled, self.time_s)
        self._gripper_pending = None

    def _images(self) -> dict[str, np.ndarray]:
        if self._render_step != self._k:
            self._rendered = self.env.cameras.render(self.env.data)
            self._render_step = self._k
        return self._rendered

    def _capture(self, device: DeviceTiming, stamp: float) -> list[Frame]:
        if device.name == "joints":
            return [Frame(Stream.JOINTS.value, stamp, self.joint_positions())]
        return camera_frames(device, self._images(), stamp)

    def close(self) -> None:
        self.env.close()

