"""The servo runtime: the paper's Algorithm 1 (observe, decide, act) fed by separate streams.

:class:`ServoRuntime` receives timestamped frames from four streams (:class:`Stream`) and the
current time, and answers with arm and gripper commands. Per synchronised set
(:mod:`graspq.servo.sync`) that shows the result of the last command:

1. check the inputs: image sizes, channel counts and encodings, finite depth and joints,
   joints inside their limits (plus slack), the set's age, a usable policy. Anything bad:
   **hold** (no command; the arm keeps its last one), count the reason in
   ``status.held_bad_input`` and warn once per run of the same reason;
2. ``policy.decide(obs)`` on the observation contract of :mod:`graspq.observation` (for a
   policy with a ``revisit_window``, never a move back to a pose of the episode's last
   steps, :class:`graspq.actions.GreedyChooser`);
3. a move: fingertip target = commanded pose + one step, exactly as
   :class:`graspq.sim.env.BaxterGraspEnv` does. Outside the box or yaw range, or IK not
   converging: not executed (reward -1, no command). Otherwise the IK joints pass the safety
   clamps (:mod:`graspq.servo.safety`) and go out as a :class:`ServoCommand` ``MOVE`` to be
   reached over the trained move duration. Frames stamped before the move's end are gated
   out, so the next decision sees its result, as a training step does;
4. ``CLOSE``: a gripper command; the executor descends first with the descend close
   (:meth:`ServoRuntime.descent_trajectory`), closes, lifts, judges and reports the outcome
   (:meth:`ServoRuntime.report_outcome`), which ends the episode.

Rewards come from :func:`graspq.rewards.step_reward` with the env config's reward terms, so an
episode is scored as in training. Each finished step goes to ``on_step`` as a
:class:`StepRecord` (the episode log writes these). :meth:`ServoRuntime.estop` latches a stop
until :meth:`ServoRuntime.reset`.

Time: ``now`` (s) is passed into every call, on the same clock as the frame stamps. The only
clock read here is the injected ``clock``, used to measure the cycle time, never to decide.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from graspq.actions import MOVE_DIRECTIONS, NUM_ACTIONS, Action, GreedyChooser
from graspq.config import ConfigError
from graspq.observation import MOTOR_KEY, MOTOR_SIZE, OVERHEAD_KEY, WRIST_KEY
from graspq.rewards import Outcome, RewardConfig, RewardTerms, step_reward
from graspq.servo.policies import Decision, Policy
from graspq.servo.safety import SafetyLimits
from graspq.servo.settings import ServoConfig
from graspq.servo.sync import ApproximateTimeSync, Frame, PushStatus, SyncSet
from graspq.sim.grasp_motion import (
    LIFT_HOLD_S,
    descent_steps,
    descent_waypoints,
    home_joints,
    home_position,
    lift_schedule,
    schedule_duration_s,
    schedule_points,
)
from graspq.sim.ik import DownwardIK
from graspq.sim.scene import build_scene
from graspq.sim.settings import EnvConfig


class Stream(str, enum.Enum):
    """The input streams, and the frame payload each carries."""

    OVERHEAD_COLOUR = "overhead_colour"  # uint8 (S, S, 3) RGB
    OVERHEAD_DEPTH = "overhead_depth"  # float (S, S) or (S, S, 1) metres, or uint16 units
    WRIST_COLOUR = "wrist_colour"  # uint8 (S, S, 3) RGB
    JOINTS = "joints"  # float (8,): 7 arm joint angles s0..w2 (rad), gripper opening (m)


STREAMS: tuple[str, ...] = tuple(stream.value for stream in Stream)


class ServoState(enum.Enum):
    """Where the runtime is in an episode."""

    IDLE = "idle"  # no episode started: frames are ignored
    RUNNING = "running"  # deciding on every fresh synchronised set
    CLOSING = "closing"  # gripper closing and lifting: waiting for report_outcome()
    FINISHING = "finishing"  # episode over: waiting for the final observation
    DONE = "done"  # episode over and logged: frames are ignored until reset()
    ESTOPPED = "estopped"  # latched stop: nothing is commanded until reset()


class HoldReason(enum.Enum):
    """Why a decision was refused (the arm keeps its last command)."""

    IMAGE_SIZE = "image_size"
    CHANNELS = "channels"
    ENCODING = "encoding"  # an image dtype the runtime cannot interpret
    DEPTH_NOT_FINITE = "depth_not_finite"
    JOINTS_INVALID = "joints_invalid"  # not 7 joints + gripper
    JOINTS_NOT_FINITE = "joints_not_finite"
    JOINTS_OUT_OF_RANGE = "joints_out_of_range"
    TIMESTAMP_BACKWARDS = "timestamp_backwards"
    TIMESTAMP_INVALID = "timestamp_invalid"
    STREAM_STALE = "stream_stale"
    POLICY_MISMATCH = "policy_mismatch"  # refused at load, or answers that do not fit
    POLICY_REJECTED_INPUT = "policy_rejected_input"  # decide() raised on the observation
    CAMERA_INFO = "camera_info"  # a camera-sized frame before its camera's intrinsics came


class CommandKind(enum.Enum):
    """What a :class:`ServoCommand` asks of the arm or gripper."""

    MOVE = "move"  # reach ``joints`` over ``duration_s`` (a ramp, then hold)
    CLOSE = "close"  # close the gripper with ``gripper_force_n``, lift, judge
    STOP = "stop"  # e-stop: hold the current measured position, abandon any motion


@dataclasses.dataclass(frozen=True)
class ServoCommand:
    """A command for the arm/gripper driver (plain data: a ROS node converts it)."""

    kind: CommandKind
    issued_at_s: float
    """``now`` of the call that produced it, s."""
    joints: np.ndarray | None = None
    """MOVE: (7,) joint goal, rad, s0..w2; CLOSE: the joints to close (and lift) from."""
    duration_s: float = 0.0
    """MOVE: time to reach the goal (the trained move duration), s."""
    position_m: np.ndarray | None = None
    """MOVE/CLOSE: commanded fingertip position (3,), base frame, m."""
    yaw_offset_rad: float = 0.0
    """MOVE/CLOSE: commanded tool yaw offset from the start yaw, rad."""
    gripper_force_n: float | None = None
    """CLOSE: closing force per finger, N (clamped to the limit)."""
    action: Action | None = None
    joint_step_clamped: bool = False
    """MOVE: the IK goal needed a larger per-cycle step than allowed and was clamped."""
    reason: str = ""
    """STOP: why."""


@dataclasses.dataclass(frozen=True)
class StepRecord:
    """One finished step: ``(obs, action, reward, next_obs, terminated, truncated)`` and
    everything the servo loop knew about it."""

    episode: int
    step: int  # 1-based, as the env's ``info["steps"]``
    obs: dict[str, np.ndarray]
    action: Action
    q_values: np.ndarray
    grasp_probabilities: np.ndarray
    reward: float
    reward_terms: RewardTerms
    executed: bool
    outcome: Outcome
    terminated: bool
    truncated: bool
    next_obs: dict[str, np.ndarray]
    stamps_s: dict[str, float]  # capture stamps of obs's frames
    next_stamps_s: dict[str, float]  # of next_obs's frames (equal to stamps_s if none came)
    decided_at_s: float
    policy_latency_ms: float
    cycle_ms: float  # checks + policy + IK + clamps, wall time
    command: ServoCommand | None


@dataclasses.dataclass(frozen=True)
class ServoStatus:
    """A snapshot for a status topic or a report (:meth:`as_dict` is JSON-ready)."""

    state: ServoState
    episode: int
    step: int
    outcome: Outcome
    episode_return: float
    last_action: Action | None
    q_values: np.ndarray | None
    grasp_probabilities: np.ndarray | None
    policy_latency_ms: float | None
    cycle_ms: float | None
    decisions: int
    not_executed: int
    joint_steps_clamped: int
    held_bad_input: dict[str, int]
    holding: str | None  # the current hold's reason and detail, None when not holding
    sync: dict[str, int]  # the synchroniser's counters (dropped_stale, rejected_backwards...)
    estop_reason: str | None

    @property
    def held_total(self) -> int:
        return sum(self.held_bad_input.values())

    @property
    def dropped_stale(self) -> int:
        return self.sync["dropped_stale"]

    def as_dict(self) -> dict[str, Any]:
        def floats(array: np.ndarray | None) -> list[float] | None:
            return None if array is None else [float(x) for x in array]

        return {
            "state": self.state.value, "episode": self.episode, "step": self.step,
            "outcome": self.outcome.value, "episode_return": self.episode_return,
            "last_action": None if self.last_action is None else self.last_action.name,
            "q_values": floats(self.q_values),
            "grasp_probabilities": floats(self.grasp_probabilities),
            "policy_latency_ms": self.policy_latency_ms, "cycle_ms": self.cycle_ms,
            "decisions": self.decisions, "not_executed": self.not_executed,
            "joint_steps_clamped": self.joint_steps_clamped,
            "held_bad_input": dict(self.held_bad_input), "held_total": self.held_total,
            "holding": self.holding, "sync": dict(self.sync),
            "estop_reason": self.estop_reason,
        }


@dataclasses.dataclass
class _Pending:
    """The step decided last, waiting for its next observation (and, for CLOSE, its reward)."""

    step: int
    obs: dict[str, np.ndarray]
    stamps: dict[str, float]
    action: Action
    decision: Decision
    executed: bool
    terms: RewardTerms | None
    outcome: Outcome
    decided_at: float
    cycle_ms: float
    command: ServoCommand | None


class ServoRuntime:
    """Algorithm 1 as a component (see the module docstring).

    Args:
        env_config: the configuration the policy was trained under: action step sizes, move
            duration, camera image size, workspace, rewards, max steps, IK.
        config: sync timing, input checks and safety limits.
        policy: the policy; None until :meth:`set_policy` or :meth:`load_policy`.
        warn: receives one line per warning (a ROS node passes its logger's ``warning``).
        on_step: receives every finished :class:`StepRecord` (e.g. an episode log).
        clock: wall clock for measuring the cycle time only.
    """

    def __init__(self, env_config: EnvConfig, config: ServoConfig | None = None,
                 policy: Policy | None = None, *,
                 warn: Callable[[str], None] | None = None,
                 on_step: Callable[[StepRecord], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if env_config.actions.close_yaw_turns:
            raise ConfigError("actions.close_yaw_turns",
                              "turned closes are a simulation lever: the servo runtime maps "
                              f"the paper's {NUM_ACTIONS} actions to the robot; set it to 0")
        self.env_config = env_config
        self.config = config if config is not None else ServoConfig()
        self._warn = warn if warn is not None else (lambda _line: None)
        self.on_step = on_step
        self._clock = clock
        # The runtime's own copy of the robot model, for IK and joint limits: the same
        # solver, model and seeds as the env, so the same target gives the same joints.
        scene = build_scene(env_config)
        self._ik = DownwardIK(scene, env_config.ik)
        self.limits = SafetyLimits.build(env_config, self.config, scene.arm_range)
        self._image_size = env_config.camera.image_size
        self._start_yaw = math.radians(env_config.scene.start_yaw_deg)
        self._step_m = env_config.actions.translation_step_m
        self._yaw_step = math.radians(env_config.actions.yaw_step_deg)
        self.move_duration_s = env_config.physics.action_duration_s
        self._sync = ApproximateTimeSync(STREAMS, self.config.slop_s, self.config.max_age_s,
                                         self.config.queue_size)
        self._policy: Policy | None = policy
        self._policy_fault: str | None = None
        self._held: collections.Counter[str] = collections.Counter()
        self._holding: tuple[HoldReason, str] | None = None
        self._stale_streams: frozenset[str] = frozenset()
        self._decisions = 0
        self._not_executed = 0
        self._clamped = 0
        self._episode = -1
        self._state = ServoState.IDLE
        self._estop_reason: str | None = None
        self._last: tuple[Decision, float] | None = None  # last decision, its cycle ms
        self._max_steps = env_config.max_steps
        self._reset_episode_state(np.zeros(7), -math.inf)

    # ------------------------------------------------------------------ policy
    def set_policy(self, policy: Policy) -> None:
        """Use ``policy`` from the next decision on (clears a load failure)."""
        self._policy = policy
        self._policy_fault = None

    def load_policy(self, load: Callable[[], Policy]) -> bool:
        """Build the policy with ``load``; if it refuses (any ``ValueError``, e.g. a
        ``PolicyMismatchError`` from the ONNX loader), keep no policy and hold every decision
        with reason ``policy_mismatch`` until a policy loads. Returns whether it loaded."""
        try:
            policy = load()
        except ValueError as exc:
            self._policy = None
            self._policy_fault = str(exc)
            self._warn(f"servo: policy refused at load, the arm will hold: {exc}")
            return False
        self.set_policy(policy)
        return True

    # ------------------------------------------------------------------ episode control
    def _reset_episode_state(self, joints: np.ndarray, now: float) -> None:
        self._position = home_position(self.env_config)
        self._yaw_offset = 0.0
        self._joints = np.array(joints, dtype=float)
        self._step = 0
        self._chooser: GreedyChooser | None = None  # the episode's moves, for the window
        self._return = 0.0
        self._outcome = Outcome.RUNNING
        self._pending: _Pending | None = None
        self._watch_from = now
        self._holding = None
        self._stale_streams = frozenset()

    def reset(self, joints: np.ndarray, now: float, max_steps: int | None = None) -> None:
        """Start an episode with the arm at its home pose: ``joints`` (7,) rad are the joint
        angles there (the env's home joints, or the robot's after homing). Clears an e-stop
        and the synchroniser (stamps may restart). ``max_steps``: this episode's step limit
        (default: the env config's)."""
        joints = np.asarray(joints, dtype=float)
        if joints.shape != (7,) or not np.all(np.isfinite(joints)):
            raise ValueError(f"reset joints must be 7 finite angles, got {joints}")
        if max_steps is not None and (isinstance(max_steps, bool) or max_steps < 1):
            raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
        self._max_steps = self.env_config.max_steps if max_steps is None else int(max_steps)
        self._episode += 1
        self._estop_reason = None
        self._reset_episode_state(joints, now)
        self._sync.reset()
        self._sync.gate(now)
        self._state = ServoState.RUNNING

    def estop(self, reason: str, now: float) -> ServoCommand:
        """Latch a stop: returns a STOP command; nothing else is commanded until
        :meth:`reset`. The unfinished step is dropped from the log."""
        self._state = ServoState.ESTOPPED
        self._estop_reason = reason
        self._pending = None
        self._warn(f"servo: E-STOP ({reason}); no commands until reset")
        return ServoCommand(CommandKind.STOP, now, reason=reason)

    def report_outcome(self, outcome: Outcome, now: float) -> None:
        """The judged result of the CLOSE in progress (from the gripper executor): scores the
        closing step, then waits for the final observation (frames from ``now`` on)."""
        if self._state is not ServoState.CLOSING or self._pending is None:
            raise RuntimeError(f"report_outcome() needs a CLOSE in progress (state "
                               f"{self._state.value})")
        if outcome not in (Outcome.SUCCESS, Outcome.PARTIAL, Outcome.MISS):
            raise ValueError(f"a close ends in success, partial or miss, got {outcome}")
        terms = step_reward(self.env_config.rewards, True, outcome)
        self._pending.terms = terms
        self._pending.outcome = outcome
        self._return += terms.total
        self._outcome = outcome
        self._state = ServoState.FINISHING
        self._sync.gate(now)
        # Closing and lifting blocked the loop; stream silence counts from its end.
        self._watch_from = now

    def end_episode(self) -> None:
        """End the episode now (e.g. the final observation never came): a step still waiting
        for its next observation is logged with its own observation as the next one."""
        pending = self._pending
        if pending is not None and pending.terms is not None:
            self._emit(pending, pending.obs, pending.stamps)
        self._pending = None
        if self._state is not ServoState.ESTOPPED:
            self._state = ServoState.DONE

    def reconfigure(self, config: ServoConfig | None = None,
                    rewards: RewardConfig | None = None) -> None:
        """Change timing, checks, safety limits (``config``) or reward terms (``rewards``)
        from the next frame on, e.g. from a ROS parameter change. The queue size stays as
        built; the episode in progress goes on under the new values."""
        if rewards is not None:
            self.env_config = dataclasses.replace(self.env_config, rewards=rewards)
        if config is not None:
            if config.queue_size != self.config.queue_size:
                raise ValueError("queue_size cannot change while the runtime runs")
            self.config = config
            self.limits = dataclasses.replace(
                self.limits, max_joint_step_rad=config.max_joint_step_rad,
                gripper_force_limit_n=config.gripper_force_limit_n)
            self._sync.slop_s = config.slop_s
            self._sync.max_age_s = config.max_age_s

    def refuse_input(self, reason: HoldReason, detail: str) -> None:
        """Hold on an input that never reached :meth:`on_frame` (a driver could not turn a
        message into a frame: an unknown encoding, a malformed message): counted and warned
        like the runtime's own checks."""
        if self._state in (ServoState.RUNNING, ServoState.FINISHING):
            self._hold(reason, detail)

    # ------------------------------------------------------------------ inputs
    def on_frame(self, frame: Frame, now: float) -> ServoCommand | None:
        """Feed one frame (in arrival order) at receiver time ``now`` (s); returns the
        command it led to, if any."""
        if self._state in (ServoState.IDLE, ServoState.DONE, ServoState.ESTOPPED):
            return None
        result = self._sync.push(frame)
        if result.status is PushStatus.BACKWARDS:
            self._hold(HoldReason.TIMESTAMP_BACKWARDS,
                       f"{frame.stream} stamp {frame.stamp!r} s is not after its last one "
                       f"({self._sync.last_stamp(frame.stream)!r} s); frame rejected")
            return None
        if result.status is PushStatus.INVALID_STAMP:
            self._hold(HoldReason.TIMESTAMP_INVALID,
                       f"{frame.stream} stamp {frame.stamp!r} is not a finite time")
            return None
        if result.synced is None:
            return None
        return self._on_set(result.synced, now)

    def tick(self, now: float) -> None:
        """Watchdog, call it regularly (e.g. on every frame or a timer): a stream silent for
        more than ``max_age_s`` holds the arm (counted once per silence, warned)."""
        if self._state not in (ServoState.RUNNING, ServoState.FINISHING):
            return
        limit = self.config.max_age_s
        silent = frozenset(
            name for name in STREAMS
            if now - max(self._sync.last_stamp(name) or -math.inf, self._watch_from) > limit)
        if silent and silent != self._stale_streams:
            heard = {name: self._sync.last_stamp(name) for name in silent}
            ages = ", ".join(f"{name} {now - max(heard[name] or -math.inf, self._watch_from):.3f}"
                             " s" for name in sorted(silent))
            self._hold(HoldReason.STREAM_STALE, f"silent stream(s): {ages} "
                       f"(max_age_s {limit:g})")
        self._stale_streams = silent

    # ------------------------------------------------------------------ one cycle
    def _on_set(self, synced: SyncSet, now: float) -> ServoCommand | None:
        if self._state not in (ServoState.RUNNING, ServoState.FINISHING):
            return None  # CLOSING: the gate keeps sets out; kept for safety
        start = self._clock()
        problem = self._check(synced, now)
        if problem is not None:
            self._hold(*problem)
            return None
        obs = self._observation(synced)
        stamps = synced.stamps
        if self._state is ServoState.FINISHING:
            self._finish(obs, stamps)
            return None
        if self._policy is None:
            self._hold(HoldReason.POLICY_MISMATCH, self._policy_fault or "no policy loaded")
            return None
        try:
            decision = self._policy.decide(obs)
        except ValueError as exc:  # BadObservationError and its kin: the input, not a bug
            self._hold(HoldReason.POLICY_REJECTED_INPUT, str(exc))
            return None
        problem = _check_decision(decision)
        if problem is not None:
            self._hold(HoldReason.POLICY_MISMATCH, problem)
            return None
        if self._holding is not None:
            self._warn(f"servo: inputs good again, resuming (was holding: "
                       f"{self._holding[0].value})")
            self._holding = None
        if self._pending is not None:  # the previous step's next observation is this one
            self._emit(self._pending, obs, stamps)
            self._pending = None
        action = Action(int(decision.action))
        window = getattr(self._policy, "revisit_window", 0)
        if window:  # the rule it was scored with
            if self._chooser is None or self._chooser.revisit_window != window:
                self._chooser = GreedyChooser(window)  # (a policy swapped in starts afresh)
            action = self._chooser.choose(decision.q_values)
        self._step += 1
        self._decisions += 1
        if action is Action.CLOSE:
            command = ServoCommand(
                CommandKind.CLOSE, now, joints=self._joints.copy(),
                position_m=self._position.copy(), yaw_offset_rad=self._yaw_offset,
                gripper_force_n=self.limits.clamp_gripper_force(
                    self.env_config.gripper.force_n), action=action)
            executed, terms, outcome = True, None, Outcome.RUNNING
            self._state = ServoState.CLOSING
            self._sync.gate(math.inf)  # nothing counts until the outcome is in
        else:
            command = self._move(action, now)
            executed = command is not None
            outcome = (Outcome.TIMEOUT if self._step >= self._max_steps
                       else Outcome.RUNNING)
            terms = step_reward(self.env_config.rewards, executed, outcome)
            self._return += terms.total
            if outcome is Outcome.TIMEOUT:
                self._outcome = outcome
                self._state = ServoState.FINISHING
            if executed:
                # Frames taken before the move is over would show the arm on its way.
                self._sync.gate(now + self.move_duration_s + self.config.settle_s)
            else:
                self._not_executed += 1
        cycle_ms = (self._clock() - start) * 1e3
        self._last = (decision, cycle_ms)
        self._pending = _Pending(self._step, obs, stamps, action, decision, executed, terms,
                                 outcome, now, cycle_ms, command)
        return command

    def _move(self, action: Action, now: float) -> ServoCommand | None:
        """One discrete move, the env's ``_move`` operation for operation; None if it cannot
        be executed (outside the box or yaw range, IK not converging)."""
        dx, dy, dz, dyaw = MOVE_DIRECTIONS[action]
        position = self._position + self._step_m * np.array([dx, dy, dz])
        yaw_offset = self._yaw_offset + dyaw * self._yaw_step
        if not self.limits.contains(position, yaw_offset):
            return None
        position, yaw_offset = self.limits.clamp_pose(position, yaw_offset)
        solution = self._ik.solve(self._joints, position, self._start_yaw + yaw_offset)
        if not solution.converged:
            return None
        joints = self.limits.clamp_joint_step(self._joints, solution.joints)
        clamped = not np.array_equal(joints, solution.joints)
        if clamped:
            self._clamped += 1
            self._warn(f"servo: {action.name} needed a joint step of "
                       f"{np.max(np.abs(solution.joints - self._joints)):.3f} rad; clamped to "
                       f"max_joint_step_rad {self.limits.max_joint_step_rad:g}")
        self._position, self._yaw_offset, self._joints = position, yaw_offset, joints
        return ServoCommand(CommandKind.MOVE, now, joints=joints.copy(),
                            duration_s=self.move_duration_s, position_m=position.copy(),
                            yaw_offset_rad=yaw_offset, action=action,
                            joint_step_clamped=clamped)

    def _finish(self, obs: dict[str, np.ndarray], stamps: dict[str, float]) -> None:
        if self._pending is not None:
            self._emit(self._pending, obs, stamps)
            self._pending = None
        self._state = ServoState.DONE

    def _emit(self, pending: _Pending, next_obs: dict[str, np.ndarray],
              next_stamps: dict[str, float]) -> None:
        if self.on_step is None:
            return
        terms = pending.terms
        terminated = pending.outcome in (Outcome.SUCCESS, Outcome.PARTIAL, Outcome.MISS)
        self.on_step(StepRecord(
            episode=self._episode, step=pending.step, obs=pending.obs,
            action=pending.action,
            q_values=np.asarray(pending.decision.q_values, np.float32),
            grasp_probabilities=np.asarray(pending.decision.grasp_probabilities, np.float32),
            reward=terms.total, reward_terms=terms, executed=pending.executed,
            outcome=pending.outcome, terminated=terminated,
            truncated=pending.outcome is Outcome.TIMEOUT, next_obs=next_obs,
            stamps_s=pending.stamps, next_stamps_s=next_stamps, decided_at_s=pending.decided_at,
            policy_latency_ms=float(pending.decision.latency_ms), cycle_ms=pending.cycle_ms,
            command=pending.command))

    # ------------------------------------------------------------------ checks
    def _hold(self, reason: HoldReason, detail: str) -> None:
        self._held[reason.value] += 1
        if self._holding is None or self._holding[0] is not reason:
            self._warn(f"servo: holding position ({reason.value}): {detail}")
        self._holding = (reason, detail)

    def _check(self, synced: SyncSet, now: float) -> tuple[HoldReason, str] | None:
        """The first problem with a set, or None."""
        age = now - synced.oldest
        if age > self.config.max_age_s:
            oldest = min(synced.frames.values(), key=lambda f: f.stamp)
            return (HoldReason.STREAM_STALE, f"{oldest.stream} frame is {age:.3f} s old "
                    f"(max_age_s {self.config.max_age_s:g})")
        frames = synced.frames
        for stream in (Stream.OVERHEAD_COLOUR, Stream.WRIST_COLOUR):
            problem = self._check_colour(stream.value, frames[stream.value].data)
            if problem is not None:
                return problem
        problem = self._check_depth(frames[Stream.OVERHEAD_DEPTH.value].data)
        if problem is not None:
            return problem
        return self._check_joints(frames[Stream.JOINTS.value].data)

    def _check_image(self, name: str, image: Any,
                     expected: str) -> tuple[HoldReason, str] | None:
        """An image frame's problem with its rank or size (``expected`` names the shape)."""
        s = self._image_size
        if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
            shape = getattr(image, "shape", type(image).__name__)
            return HoldReason.CHANNELS, f"{name} is {shape}, expected {expected}"
        if image.shape[:2] != (s, s):
            return (HoldReason.IMAGE_SIZE, f"{name} is {image.shape[1]}x{image.shape[0]} px, "
                    f"the policy needs {s}x{s}")
        return None

    def _check_colour(self, name: str, image: Any) -> tuple[HoldReason, str] | None:
        s = self._image_size
        problem = self._check_image(name, image, f"({s}, {s}, 3) RGB")
        if problem is not None:
            return problem
        channels = 1 if image.ndim == 2 else image.shape[2]
        if channels != 3:
            return HoldReason.CHANNELS, f"{name} has {channels} channel(s), expected 3 (RGB)"
        if image.dtype != np.uint8:
            return HoldReason.ENCODING, f"{name} is {image.dtype}, expected uint8 RGB"
        return None

    def _check_depth(self, depth: Any) -> tuple[HoldReason, str] | None:
        s = self._image_size
        name = Stream.OVERHEAD_DEPTH.value
        problem = self._check_image(name, depth, f"({s}, {s})")
        if problem is not None:
            return problem
        if depth.ndim == 3 and depth.shape[2] != 1:
            return HoldReason.CHANNELS, f"{name} has {depth.shape[2]} channels, expected 1"
        if depth.dtype != np.uint16 and not np.issubdtype(depth.dtype, np.floating):
            return (HoldReason.ENCODING, f"{name} is {depth.dtype}, expected float metres or "
                    "uint16 units")
        if depth.dtype != np.uint16:
            bad = np.count_nonzero(~np.isfinite(depth))
            if bad:
                return HoldReason.DEPTH_NOT_FINITE, f"{name} has {bad} NaN/inf pixel(s)"
        return None

    def _check_joints(self, joints: Any) -> tuple[HoldReason, str] | None:
        name = Stream.JOINTS.value
        try:
            values = np.asarray(joints, dtype=float)
        except (TypeError, ValueError):
            return HoldReason.JOINTS_INVALID, f"{name} is not numeric"
        if values.shape != (MOTOR_SIZE,):
            return (HoldReason.JOINTS_INVALID, f"{name} has shape {values.shape}, expected "
                    f"({MOTOR_SIZE},): 7 joint angles and the gripper opening")
        if not np.all(np.isfinite(values)):
            bad = np.flatnonzero(~np.isfinite(values)).tolist()
            return HoldReason.JOINTS_NOT_FINITE, f"{name} has NaN/inf at index {bad}"
        slack = self.config.joint_limit_slack_rad
        arm = values[:7]
        outside = np.flatnonzero((arm < self.limits.joint_lower_rad - slack)
                                 | (arm > self.limits.joint_upper_rad + slack))
        if outside.size:
            return (HoldReason.JOINTS_OUT_OF_RANGE, f"{name} joint(s) {outside.tolist()} "
                    f"outside their limits by more than {slack:g} rad")
        return None

    def _observation(self, synced: SyncSet) -> dict[str, np.ndarray]:
        """The observation contract (:mod:`graspq.observation`) from a checked set."""
        frames = synced.frames
        s = self._image_size
        overhead = np.empty((s, s, 4), dtype=np.float32)
        # The same float32 scaling as the simulator's camera rig, so a frame from the sim
        # gives the policy exactly the env's observation.
        overhead[..., :3] = frames[Stream.OVERHEAD_COLOUR.value].data * np.float32(1.0 / 255.0)
        depth = frames[Stream.OVERHEAD_DEPTH.value].data.reshape(s, s)
        if depth.dtype == np.uint16:
            depth = depth * np.float32(self.config.depth_unit_m)
        overhead[..., 3] = depth
        motor = np.asarray(frames[Stream.JOINTS.value].data, dtype=float).astype(np.float32)
        return {OVERHEAD_KEY: overhead,
                WRIST_KEY: np.array(frames[Stream.WRIST_COLOUR.value].data, dtype=np.uint8),
                MOTOR_KEY: motor}

    def home_joints(self) -> np.ndarray:
        """Joint angles (7,) rad of the episode's start pose, solved as the env solves them
        (a robot is sent there before :meth:`reset`)."""
        return home_joints(self._ik, self.env_config)

    def descent_trajectory(self, command: ServoCommand
                           ) -> tuple[list[tuple[float, np.ndarray]], float]:
        """The descent that comes before a CLOSE closes the gripper (``actions.close_mode:
        descend``), as the env descends: trajectory points ``(time from start s, joints (7,)
        rad)`` straight down to the workspace's lowest height at ``descend_speed_m_s``, and
        its duration (s). Empty and 0 with the in-place close. The env also stops at the
        first finger contact; a robot's trajectory runs to the lowest height (the lowest
        height clears the table; the arm's own collision detection covers the rest)."""
        points, t, z = [], 0.0, float(command.position_m[2])
        for position, joints in self._descent(command):
            t += descent_steps(self.env_config, z, position[2]) * \
                self.env_config.physics.timestep_s
            z = float(position[2])
            points.append((t, joints))
        return points, t

    def _descent(self, command: ServoCommand) -> list[tuple[np.ndarray, np.ndarray]]:
        """The descend close's waypoints (position, joints) for a CLOSE; none in place."""
        if command.kind is not CommandKind.CLOSE:
            raise ValueError(f"only a CLOSE descends, got {command.kind.value}")
        if self.env_config.actions.close_mode != "descend":
            return []
        return descent_waypoints(self._ik, self.env_config, command.joints,
                                 command.position_m, command.yaw_offset_rad)

    def lift_trajectory(self, command: ServoCommand) -> tuple[list[tuple[float, np.ndarray]],
                                                               float]:
        """The lift that follows a CLOSE once the gripper has closed, as the env lifts:
        trajectory points ``(time from start s, joints (7,) rad)``, and the time (s from the
        lift's start) at which the grasp is judged (the lift plus its hold). After a
        descent (:meth:`descent_trajectory`) it lifts from the descent's end."""
        if command.kind is not CommandKind.CLOSE:
            raise ValueError(f"only a CLOSE is followed by a lift, got {command.kind.value}")
        joints, position = command.joints, command.position_m
        descent = self._descent(command)
        if descent:
            position, joints = descent[-1]
        schedule = lift_schedule(self._ik, self.env_config, joints, position,
                                 command.yaw_offset_rad)
        dt = self.env_config.physics.timestep_s
        return (schedule_points(schedule, dt), schedule_duration_s(schedule, dt) + LIFT_HOLD_S)

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> ServoState:
        return self._state

    @property
    def commanded_pose(self) -> tuple[np.ndarray, float]:
        """Commanded fingertip position (3,) m and yaw offset (rad) from the start yaw."""
        return self._position.copy(), self._yaw_offset

    @property
    def commanded_joints(self) -> np.ndarray:
        """The last joint command (7,) rad (the home joints before the first move)."""
        return self._joints.copy()

    @property
    def status(self) -> ServoStatus:
        decision, cycle_ms = self._last if self._last is not None else (None, None)
        return ServoStatus(
            state=self._state, episode=self._episode, step=self._step, outcome=self._outcome,
            episode_return=self._return,
            last_action=None if decision is None else Action(int(decision.action)),
            q_values=None if decision is None else np.asarray(decision.q_values),
            grasp_probabilities=None if decision is None
            else np.asarray(decision.grasp_probabilities),
            policy_latency_ms=None if decision is None else float(decision.latency_ms),
            cycle_ms=cycle_ms, decisions=self._decisions, not_executed=self._not_executed,
            joint_steps_clamped=self._clamped, held_bad_input=dict(self._held),
            holding=None if self._holding is None
            else f"{self._holding[0].value}: {self._holding[1]}",
            sync=self._sync.counters.as_dict(), estop_reason=self._estop_reason)


def _check_decision(decision: Decision) -> str | None:
    """Why a policy's answer cannot be used (a policy built for another action table)."""
    try:
        action = int(decision.action)
        q_values = np.asarray(decision.q_values)
    except (TypeError, ValueError, AttributeError) as exc:
        return f"policy answer unreadable ({exc})"
    if not 0 <= action < NUM_ACTIONS:
        return f"policy chose action {action}, the action table has {NUM_ACTIONS}"
    if q_values.shape != (NUM_ACTIONS,):
        return (f"policy gave {q_values.shape} Q-values, the action table has "
                f"{NUM_ACTIONS} actions")
    return None
