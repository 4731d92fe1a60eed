"""Experience replay, uniform or prioritised, that stores every frame once, as uint8.

Layout: a ring of ``capacity + 1`` observation *slots*, written strictly in order. Each slot
holds one observation (overhead RGB-D as the uint8 storage form of
:func:`graspq.observation.encode_overhead`, wrist RGB uint8 for multi-view, motor float32)
and, when ``valid``, the transition *from* that observation: action, reward, terminated,
truncated. The next observation of the transition in slot ``i`` is always slot ``i + 1``
(mod the ring), so consecutive steps of an episode share their frames. The final observation
of an episode (terminated, truncated, or abandoned) occupies a slot with no transition.

Why overwriting never leaves a transition pointing at a newer frame: slot ``i`` is marked
valid only once slot ``i + 1`` has been written, and in a ring written in order slot ``i`` is
always overwritten (which clears ``valid[i]``) before slot ``i + 1`` is. So a valid slot's next
frame is always the one written right after it, in the same episode.

Capacity: at most ``capacity`` transitions (one endless episode). Each episode's final frame
takes a slot of its own, so episodes of L steps fill it with ``capacity * L / (L + 1)``
transitions; :meth:`ReplayBuffer.describe` reports what is actually held.

Expert labels (optional): each transition may carry the action a scripted teacher would have
taken in its observation (``expert_action`` of :meth:`ReplayBuffer.add`; -1 = none). The
learner's large-margin loss uses them (DQfD on demonstrations, and DAgger-style labels on the
agent's own states when ``expert_labels`` is on), and a second action the teacher rates as
good (``expert_tie``: the other turn where a cube is as near either way; -1 = none).
Likewise each may carry a pose target (the object's pose relative to the gripper, NaN =
none) for the auxiliary pose loss (:mod:`graspq.learning.pose`).

Hindsight close labels (optional): a transition may carry a target for Q(s, CLOSE) in its
observation, set after its episode ended (:meth:`ReplayBuffer.set_close_labels`; NaN =
none; :mod:`graspq.learning.hindsight`).

Priorities (prioritised replay, Schaul et al. 2016): each transition carries a priority, the
largest any held transition has when it is added (1 in an empty buffer), then its last
``|TD error| + epsilon`` (:meth:`ReplayBuffer.update_priorities`). ``sample(...,
priority_alpha=a)`` with ``a > 0`` draws in proportion to ``priority ** a`` and returns the
importance weights that undo the bias; ``a = 0`` draws uniformly, as before priorities.
"Largest held" rather than "largest ever" keeps a resumed run's draws those of an unbroken one.

n-step returns are computed at sample time (``sample(..., n_step=n, gamma=g)``) by walking
forward through the ring: the window stops early at the end of the episode or at the newest
frame of an unfinished one, and ``ReplayBatch.steps`` says how many rewards were summed so
the learner can discount the bootstrap by ``gamma ** steps``.
"""

from __future__ import annotations

import math
import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from graspq.learning.pose import NO_POSE, POSE_TARGETS
from graspq.observation import MOTOR_KEY, MOTOR_SIZE, OVERHEAD_KEY, WRIST_KEY, encode_overhead
from graspq.sim.settings import CameraConfig

FORMAT_VERSION = 5
"""Version of the ``.npz`` layout written by :meth:`ReplayBuffer.save`; bump on any change.
Version 1 files (no expert labels) still load, with every label -1; versions 1 and 2 (no
pose targets) with every pose target unknown (NaN); versions 1 to 3 (no tied labels) with
every tie -1; versions 1 to 4 (no priorities, no hindsight close labels) with every
priority 1 and every close label unknown (NaN)."""
NO_EXPERT = -1
"""Expert label of a transition no teacher labelled."""

VIEWS: tuple[str, ...] = ("multi", "single")

# Metadata first: load validates these before reading the (large) frame arrays.
_META_KEYS = ("format_version", "capacity", "image_size", "views", "depth_bounds_m", "head",
              "written", "pending", "num_added")
_FRAME_KEYS = ("overhead", "motor", "action", "reward", "terminated", "truncated", "valid",
               "expert", "pose", "tie", "priority", "close_label")
_V4_FRAME_KEYS = tuple(key for key in _FRAME_KEYS if key not in ("priority", "close_label"))
_V3_FRAME_KEYS = tuple(key for key in _V4_FRAME_KEYS if key != "tie")
_V2_FRAME_KEYS = tuple(key for key in _V3_FRAME_KEYS if key != "pose")
_V1_FRAME_KEYS = tuple(key for key in _V2_FRAME_KEYS if key != "expert")


class ReplayBatch(NamedTuple):
    """A sampled batch of B transitions, numpy arrays (feed the obs dicts to ``preprocess``)."""

    obs: dict[str, np.ndarray]
    """``overhead_rgbd`` uint8 (B, S, S, 4) storage form, ``wrist_rgb`` uint8 (B, S, S, 3)
    (multi-view buffers only), ``motor`` float32 (B, 8)."""
    actions: np.ndarray
    """int64 (B,)."""
    rewards: np.ndarray
    """float32 (B,): the reward, or with n-step the sum of ``gamma**k * r_{t+k}``."""
    next_obs: dict[str, np.ndarray]
    """As ``obs``: the observation after the last summed reward."""
    terminated: np.ndarray
    """bool (B,): the episode ended in the MDP within the window (do not bootstrap)."""
    truncated: np.ndarray
    """bool (B,): the episode hit its time limit at the window's end (still bootstrap)."""
    steps: np.ndarray
    """int64 (B,): rewards summed, 1..n_step; bootstrap discount is ``gamma ** steps``."""
    indices: np.ndarray
    """int64 (B,): slot of each sampled transition (for priorities or debugging)."""
    expert_actions: np.ndarray
    """int64 (B,): the teacher's action in ``obs``, or ``NO_EXPERT`` (-1) where unlabelled."""
    pose_targets: np.ndarray
    """float32 (B, POSE_TARGETS): the object's pose relative to the gripper in ``obs``
    (:mod:`graspq.learning.pose`), NaN where unlabelled."""
    expert_ties: np.ndarray
    """int64 (B,): another action the teacher rates as good as ``expert_actions``, or
    ``NO_EXPERT``."""
    weights: np.ndarray
    """float32 (B,): importance weight of each row's loss (1 for uniform draws)."""
    close_labels: np.ndarray
    """float32 (B,): hindsight target for Q(obs, CLOSE), NaN where unlabelled."""


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


class _Frame(NamedTuple):
    overhead: np.ndarray
    wrist: np.ndarray | None
    motor: np.ndarray


class ReplayBuffer:
    """Ring buffer of transitions with shared, uint8-quantised frames (see module docstring).

    Usage: call :meth:`add` once per environment step with the step's ``obs`` and
    ``next_obs``; a call whose ``obs`` equals the previous call's ``next_obs`` (after uint8
    encoding), when that call neither terminated nor truncated, continues the same episode
    and stores only ``next_obs``. Anything else starts a new episode.
    """

    def __init__(self, capacity: int, image_size: int, views: str = "multi",
                 depth_near_m: float = CameraConfig().depth_near_m,
                 depth_far_m: float = CameraConfig().depth_far_m) -> None:
        """
        Args:
            capacity: most transitions held (see module docstring), >= 1.
            image_size: side S of the square overhead and wrist images, pixels.
            views: "multi" stores the wrist image too; "single" drops it.
            depth_near_m, depth_far_m: overhead depth quantisation bounds, metres. Use the
                same bounds as the network's ``preprocess``: it decodes uint8 depth as
                ``code / 255`` over exactly these bounds.
        """
        for name, value in (("capacity", capacity), ("image_size", image_size)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"replay {name} must be a positive int, got {value!r}")
        if views not in VIEWS:
            raise ValueError(f"replay views must be one of {VIEWS}, got {views!r}")
        if not (math.isfinite(depth_near_m) and math.isfinite(depth_far_m)
                and depth_far_m > depth_near_m):
            raise ValueError(f"replay depth bounds need near < far, got near={depth_near_m}, "
                             f"far={depth_far_m}")
        self.capacity = int(capacity)
        self.image_size = int(image_size)
        self.views = views
        self.depth_near_m = float(depth_near_m)
        self.depth_far_m = float(depth_far_m)
        slots = self._slots = self.capacity + 1
        s = self.image_size
        # np.zeros reserves memory lazily: pages are committed as slots are first written.
        self._overhead = np.zeros((slots, s, s, 4), np.uint8)
        self._wrist = np.zeros((slots, s, s, 3), np.uint8) if views == "multi" else None
        self._motor = np.zeros((slots, MOTOR_SIZE), np.float32)
        self._action = np.zeros(slots, np.int64)
        self._reward = np.zeros(slots, np.float32)
        self._terminated = np.zeros(slots, bool)
        self._truncated = np.zeros(slots, bool)
        self._valid = np.zeros(slots, bool)  # slot holds a transition to slot + 1
        self._expert = np.full(slots, NO_EXPERT, np.int64)
        self._pose = np.full((slots, POSE_TARGETS), np.nan, np.float32)
        self._tie = np.full(slots, NO_EXPERT, np.int64)
        self._priority = np.ones(slots, np.float32)
        self._close_label = np.full(slots, np.nan, np.float32)
        self._head = 0  # next slot to write
        self._written = 0  # slots written at least once (they are 0 .. written - 1)
        self._pending = False  # slot head - 1 is the next_obs of an episode still running
        self._count = 0  # valid transitions
        self.num_added = 0  # transitions ever added

    # ------------------------------------------------------------------ size and reporting
    def __len__(self) -> int:
        """Number of transitions that can be sampled now."""
        return self._count

    @property
    def nbytes(self) -> int:
        """Bytes reserved by the buffer's arrays (its full footprint once filled)."""
        return sum(a.nbytes for a in self._arrays().values())

    def describe(self) -> str:
        """One line: contents, image format and memory footprint."""
        per_slot = self.nbytes / self._slots
        images = "overhead RGB-D + wrist RGB" if self.views == "multi" else "overhead RGB-D"
        step_mm = 1000 * (self.depth_far_m - self.depth_near_m) / 255
        return (f"replay buffer: {len(self):,}/{self.capacity:,} transitions, "
                f"{self.views}-view {images} {self.image_size}x{self.image_size} uint8 "
                f"(depth {self.depth_near_m:g}-{self.depth_far_m:g} m, {step_mm:.2f} mm step), "
                f"{_human_bytes(self.nbytes)} reserved ({_human_bytes(int(per_slot))} per "
                f"frame, each frame stored once)")

    def label_counts(self, num_actions: int) -> np.ndarray:
        """How many stored transitions carry each expert label, (num_actions,) int64."""
        labels = self._expert[self._valid]
        return np.bincount(labels[labels != NO_EXPERT], minlength=num_actions)

    def tied_label_count(self) -> int:
        """How many stored transitions carry a second, tied expert label."""
        return int(np.count_nonzero(self._tie[self._valid] != NO_EXPERT))

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {"overhead": self._overhead, "motor": self._motor, "action": self._action,
                  "reward": self._reward, "terminated": self._terminated,
                  "truncated": self._truncated, "valid": self._valid, "expert": self._expert,
                  "pose": self._pose, "tie": self._tie, "priority": self._priority,
                  "close_label": self._close_label}
        if self._wrist is not None:
            arrays["wrist"] = self._wrist
        return arrays

    # ------------------------------------------------------------------ adding
    def _encode(self, obs: Mapping[str, np.ndarray], name: str) -> _Frame:
        s = self.image_size
        for key in (OVERHEAD_KEY, MOTOR_KEY) + ((WRIST_KEY,) if self._wrist is not None else ()):
            if key not in obs:
                raise ValueError(f"{name} has no {key!r} (keys: {sorted(obs)})")
        overhead = np.asarray(obs[OVERHEAD_KEY])
        if overhead.shape != (s, s, 4):
            raise ValueError(f"{name}[{OVERHEAD_KEY!r}] must be ({s}, {s}, 4), "
                             f"got {overhead.shape}")
        if overhead.dtype != np.uint8:  # uint8 is taken as already in storage form
            overhead = encode_overhead(overhead.astype(np.float32, copy=False),
                                       self.depth_near_m, self.depth_far_m)
        wrist = None
        if self._wrist is not None:
            wrist = np.asarray(obs[WRIST_KEY])
            if wrist.shape != (s, s, 3) or wrist.dtype != np.uint8:
                raise ValueError(f"{name}[{WRIST_KEY!r}] must be uint8 ({s}, {s}, 3), "
                                 f"got {wrist.dtype} {wrist.shape}")
        motor = np.asarray(obs[MOTOR_KEY], dtype=np.float32)
        if motor.shape != (MOTOR_SIZE,):
            raise ValueError(f"{name}[{MOTOR_KEY!r}] must be ({MOTOR_SIZE},), got {motor.shape}")
        return _Frame(overhead, wrist, motor)

    def _continues(self, frame: _Frame) -> bool:
        last = (self._head - 1) % self._slots
        return (self._pending
                and np.array_equal(self._motor[last], frame.motor)
                and np.array_equal(self._overhead[last], frame.overhead)
                and (frame.wrist is None or np.array_equal(self._wrist[last], frame.wrist)))

    def _write_frame(self, frame: _Frame) -> int:
        slot = self._head
        if self._valid[slot]:  # its observation is about to go, so does its transition
            self._valid[slot] = False
            self._count -= 1
        self._overhead[slot] = frame.overhead
        if self._wrist is not None:
            self._wrist[slot] = frame.wrist
        self._motor[slot] = frame.motor
        self._head = (slot + 1) % self._slots
        self._written = min(self._written + 1, self._slots)
        return slot

    def add(self, obs: Mapping[str, np.ndarray], action: int, reward: float,
            next_obs: Mapping[str, np.ndarray], terminated: bool, truncated: bool,
            expert_action: int = NO_EXPERT, pose_target: np.ndarray = NO_POSE,
            expert_tie: int = NO_EXPERT) -> int:
        """Store one environment step (observation contract of :mod:`graspq.observation`);
        returns the slot that holds the transition.

        Args:
            obs, next_obs: observation dicts; ``overhead_rgbd`` float32 (S, S, 4) (or its
                uint8 storage form), ``wrist_rgb`` uint8 (S, S, 3) (ignored by single-view
                buffers), ``motor`` (8,).
            action: index of the action taken, >= 0.
            reward: reward received.
            terminated: the MDP ended (no bootstrap from ``next_obs``).
            truncated: the episode was cut by its time limit (bootstrap from ``next_obs``).
            expert_action: the teacher's action in ``obs`` (``NO_EXPERT`` = unlabelled).
            pose_target: the object's pose relative to the gripper in ``obs``, float
                (POSE_TARGETS,) (:func:`graspq.learning.pose.pose_target`; NaN = unknown).
            expert_tie: another action the teacher rates as good as ``expert_action`` in
                ``obs`` (:meth:`graspq.sim.oracle.OraclePolicy.tied_turn`; ``NO_EXPERT`` =
                none). Needs ``expert_action``.

        Everything is validated before anything is written, so a bad call changes nothing.
        """
        frame = self._encode(obs, "obs")
        next_frame = self._encode(next_obs, "next_obs")
        if isinstance(action, bool) or not isinstance(action, int | np.integer) or action < 0:
            raise ValueError(f"action must be a non-negative int, got {action!r}")
        if not math.isfinite(reward):
            raise ValueError(f"reward must be finite, got {reward!r}")
        for name, label in (("expert_action", expert_action), ("expert_tie", expert_tie)):
            if (isinstance(label, bool) or not isinstance(label, int | np.integer)
                    or label < NO_EXPERT):
                raise ValueError(f"{name} must be an action index or {NO_EXPERT}, "
                                 f"got {label!r}")
        if expert_tie != NO_EXPERT and expert_tie == expert_action:
            raise ValueError(f"expert_tie must differ from expert_action, both {expert_tie}")
        if expert_tie != NO_EXPERT and expert_action == NO_EXPERT:
            raise ValueError("expert_tie needs an expert_action")
        pose = np.asarray(pose_target, np.float32)
        if pose.shape != (POSE_TARGETS,):
            raise ValueError(f"pose_target must be ({POSE_TARGETS},), got {pose.shape}")
        slot = (self._head - 1) % self._slots if self._continues(frame) else None
        if slot is None:
            slot = self._write_frame(frame)
        self._write_frame(next_frame)
        # Only now is slot + 1 written, so only now may the transition be valid (see module
        # docstring for why this keeps next frames consistent across wrap-around).
        self._action[slot] = action
        self._reward[slot] = reward
        self._terminated[slot] = bool(terminated)
        self._truncated[slot] = bool(truncated)
        self._expert[slot] = expert_action
        self._pose[slot] = pose
        self._tie[slot] = expert_tie
        self._priority[slot] = self.max_priority()
        self._close_label[slot] = np.nan
        self._valid[slot] = True
        self._count += 1
        self.num_added += 1
        self._pending = not (terminated or truncated)
        return slot

    def extend(self, other: ReplayBuffer) -> None:
        """Append everything ``other`` holds, in its order, as if each of its steps had been
        added here: how a recording made in another process joins the buffer it is for.

        Both buffers must be unwrapped (nothing overwritten yet), ``other``'s episodes all
        finished, this buffer's too, and the frame formats equal; raises ValueError
        otherwise, before anything is written.
        """
        if (other.image_size, other.views, other.depth_near_m, other.depth_far_m) != (
                self.image_size, self.views, self.depth_near_m, self.depth_far_m):
            raise ValueError(f"cannot extend a {self.views}-view {self.image_size}px buffer "
                             f"with a {other.views}-view {other.image_size}px one (or their "
                             "depth bounds differ)")
        if self._pending or other._pending:
            raise ValueError("cannot extend: an episode is still running in "
                             + ("this buffer" if self._pending else "the other buffer"))
        n = other._written
        if self._written + n > self._slots:
            raise ValueError(f"cannot extend: {n} slots do not fit in the "
                             f"{self._slots - self._written} left")
        if other._head != n % other._slots or self._head != self._written:
            raise ValueError("cannot extend: a buffer has wrapped around")
        start = self._head
        own = self._arrays()
        for key, array in other._arrays().items():
            own[key][start:start + n] = array[:n]
        self._head = (start + n) % self._slots
        self._written += n
        self._count += other._count
        self.num_added += other.num_added

    # ------------------------------------------------------------------ priorities
    def max_priority(self) -> float:
        """The largest priority a held transition has (1 when none is held)."""
        return float(self._priority[self._valid].max()) if self._count else 1.0

    def update_priorities(self, slots: np.ndarray, td_errors: np.ndarray,
                          epsilon: float) -> None:
        """Set the sampled transitions' priorities to ``|TD error| + epsilon``.

        ``slots`` are a batch's ``indices``; a slot drawn twice keeps its last error. Raises
        ValueError, changing nothing, on a slot that holds no transition or a non-finite error.
        """
        if not epsilon > 0:
            raise ValueError(f"priority epsilon must be > 0, got {epsilon}")
        slots, errors = self._held_slots("update_priorities", slots, td_errors, "td_errors")
        self._priority[slots] = (np.abs(errors) + epsilon).astype(np.float32)

    def set_close_labels(self, slots: np.ndarray, values: np.ndarray) -> None:
        """Give held transitions a hindsight target for Q(obs, CLOSE). Raises ValueError,
        changing nothing, on a slot that holds no transition or a non-finite value."""
        slots, values = self._held_slots("set_close_labels", slots, values, "close labels")
        self._close_label[slots] = values.astype(np.float32)

    def _held_slots(self, caller: str, slots: np.ndarray, values: np.ndarray,
                    name: str) -> tuple[np.ndarray, np.ndarray]:
        """``slots`` and their per-slot ``values`` as arrays, once checked: the same 1-D
        shape, finite values, and every slot holding a transition (ValueError otherwise)."""
        slots = np.asarray(slots, np.int64)
        values = np.asarray(values, np.float64)
        if slots.shape != values.shape or slots.ndim != 1:
            raise ValueError(f"slots {slots.shape} and {name} {values.shape} must be the same "
                             "1-D shape")
        if not np.isfinite(values).all():
            raise ValueError(f"{name} must be finite")
        if ((slots < 0) | (slots >= self._slots)).any() or not self._valid[slots].all():
            raise ValueError(f"{caller}: a slot holds no transition")
        return slots, values

    # ------------------------------------------------------------------ sampling
    def _gather(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        obs = {OVERHEAD_KEY: self._overhead[slots], MOTOR_KEY: self._motor[slots]}
        if self._wrist is not None:
            obs[WRIST_KEY] = self._wrist[slots]
        return obs

    def holds_action(self, action: int | Sequence[int]) -> bool:
        """Whether any stored transition took ``action`` (or one of several)."""
        return bool(np.any(self._valid & np.isin(self._action, action)))

    def sample(self, batch_size: int, rng: np.random.Generator, n_step: int = 1,
               gamma: float | None = None, priority_alpha: float = 0.0,
               priority_beta: float = 1.0,
               only_action: int | Sequence[int] | None = None) -> ReplayBatch:
        """Draw ``batch_size`` transitions with replacement: uniformly, or with
        ``priority_alpha`` > 0 in proportion to ``priority ** priority_alpha``, each with the
        importance weight ``(N * P) ** -priority_beta`` over the buffer's largest.
        ``only_action``: draw among the transitions that took that action (or one of
        several) alone (see :meth:`holds_action`).

        With ``n_step`` > 1 (needs ``gamma``) each sample's reward is the discounted sum over
        up to ``n_step`` steps of its episode, stopping at the episode's end.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        if n_step > 1 and gamma is None:
            raise ValueError("n_step > 1 needs gamma to discount the summed rewards")
        if self._count == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if not (0.0 <= priority_alpha <= 1.0 and 0.0 <= priority_beta <= 1.0):
            raise ValueError(f"priority_alpha and priority_beta must be in [0, 1], got "
                             f"{priority_alpha} and {priority_beta}")
        held = (self._valid if only_action is None
                else self._valid & np.isin(self._action, only_action))
        candidates = np.flatnonzero(held)
        if candidates.size == 0:
            raise ValueError(f"the replay buffer holds no transition with action {only_action}")
        weights = np.ones(batch_size, np.float32)
        if priority_alpha == 0.0:  # the uniform draw, unchanged (same generator calls)
            idx = candidates[rng.integers(0, candidates.size, size=batch_size)]
        else:
            scaled = self._priority[candidates].astype(np.float64) ** priority_alpha
            cumulative = np.cumsum(scaled)
            picks = np.searchsorted(cumulative, rng.random(batch_size) * cumulative[-1],
                                    side="right")
            picks = np.minimum(picks, candidates.size - 1)  # a draw of exactly the total
            idx = candidates[picks]
            probability = scaled / cumulative[-1]
            # Normalised by the largest weight in the buffer (the least likely transition's),
            # so weights only ever scale the loss down.
            weights = ((probability[picks] / probability.min()) ** -priority_beta
                       ).astype(np.float32)
        rewards = self._reward[idx].copy()
        steps = np.ones(batch_size, np.int64)
        last = idx.copy()  # slot of the last transition in each window
        if n_step > 1:
            active = ~(self._terminated[idx] | self._truncated[idx])
            discount = np.float32(1.0)
            for _ in range(1, n_step):
                nxt = (last + 1) % self._slots
                # A valid slot right after a non-final transition is the same episode's next
                # step; the newest frame of a running episode is never valid, which stops us.
                active &= self._valid[nxt]
                if not active.any():
                    break
                discount *= np.float32(gamma)
                last = np.where(active, nxt, last)
                rewards += np.where(active, discount * self._reward[last], np.float32(0.0))
                steps += active
                active &= ~(self._terminated[last] | self._truncated[last])
        next_slots = (last + 1) % self._slots
        return ReplayBatch(
            obs=self._gather(idx), actions=self._action[idx], rewards=rewards,
            next_obs=self._gather(next_slots), terminated=self._terminated[last],
            truncated=self._truncated[last], steps=steps, indices=idx.astype(np.int64),
            expert_actions=self._expert[idx], pose_targets=self._pose[idx],
            expert_ties=self._tie[idx], weights=weights, close_labels=self._close_label[idx])

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the buffer to one ``.npz`` file, atomically (temporary file + rename).

        Only slots written so far are saved, so a part-filled buffer makes a small file.
        """
        path = Path(path)
        n = self._written
        arrays = {
            "format_version": np.int64(FORMAT_VERSION),
            "capacity": np.int64(self.capacity),
            "image_size": np.int64(self.image_size),
            "views": np.str_(self.views),
            "depth_bounds_m": np.array([self.depth_near_m, self.depth_far_m], np.float64),
            "head": np.int64(self._head),
            "written": np.int64(n),
            "pending": np.bool_(self._pending),
            "num_added": np.int64(self.num_added),
        }
        arrays.update({key: array[:n] for key, array in self._arrays().items()})
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, path: str | os.PathLike[str]) -> None:
        """Replace the contents with a file written by :meth:`save`.

        Raises ValueError naming the problem if the file is unreadable, corrupt, of another
        format version, or made for a buffer of another capacity, image size, views or depth
        bounds. The buffer is only changed once the whole file has been read and checked.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                if "format_version" not in data.files:
                    raise _FormatError("missing arrays ['format_version']")
                version = int(data["format_version"])
                if version not in (1, 2, 3, 4, FORMAT_VERSION):
                    raise _FormatError(f"format version {version}, this code reads 1 to "
                                       f"{FORMAT_VERSION}")
                frame_keys = {1: _V1_FRAME_KEYS, 2: _V2_FRAME_KEYS, 3: _V3_FRAME_KEYS,
                              4: _V4_FRAME_KEYS}.get(version, _FRAME_KEYS)
                missing = [k for k in _META_KEYS + frame_keys if k not in data.files]
                if missing:
                    raise _FormatError(f"missing arrays {missing}")
                meta = {key: data[key] for key in _META_KEYS}
                self._check_meta(meta)  # before reading the big arrays
                frame_keys += ("wrist",) if self._wrist is not None else ()
                frames = {key: data[key] for key in frame_keys}
                written = int(meta["written"])
                if version == 1:
                    frames["expert"] = np.full(written, NO_EXPERT, np.int64)
                if version <= 2:
                    frames["pose"] = np.full((written, POSE_TARGETS), np.nan, np.float32)
                if version <= 3:
                    frames["tie"] = np.full(written, NO_EXPERT, np.int64)
                if version <= 4:
                    frames["priority"] = np.ones(written, np.float32)
                    frames["close_label"] = np.full(written, np.nan, np.float32)
        except FileNotFoundError:
            raise
        except _FormatError as exc:
            raise ValueError(f"replay file {path}: {exc}") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise ValueError(f"replay file {path} is corrupt or not a replay buffer "
                             f"({type(exc).__name__}: {exc})") from exc
        n = int(meta["written"])
        try:
            self._check_frames(frames, n, int(meta["head"]))
        except _FormatError as exc:
            raise ValueError(f"replay file {path}: {exc}") from None
        own = self._arrays()
        for key, array in frames.items():
            own[key][:n] = array
        self._valid[n:] = False
        self._head = int(meta["head"])
        self._written = n
        self._pending = bool(meta["pending"])
        self._count = int(np.count_nonzero(self._valid))
        self.num_added = int(meta["num_added"])

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ReplayBuffer:
        """A buffer shaped as recorded in ``path`` (capacity, image size, views, bounds)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                near, far = (float(x) for x in data["depth_bounds_m"])
                buffer = cls(int(data["capacity"]), int(data["image_size"]), str(data["views"]),
                             near, far)
        except FileNotFoundError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise ValueError(f"replay file {path} is corrupt or not a replay buffer "
                             f"({type(exc).__name__}: {exc})") from exc
        buffer.load(path)
        return buffer

    def _check_meta(self, meta: dict[str, np.ndarray]) -> None:
        for key, value in meta.items():
            if key != "depth_bounds_m" and value.shape != ():
                raise _FormatError(f"{key} should be a scalar, got shape {value.shape}")
        expected = {"capacity": self.capacity, "image_size": self.image_size,
                    "views": self.views}
        for key, want in expected.items():
            got = type(want)(meta[key])
            if got != want:
                raise _FormatError(f"{key} mismatch: file has {got!r}, buffer has {want!r}")
        raw = meta["depth_bounds_m"]
        bounds = tuple(float(x) for x in raw) if raw.shape == (2,) else raw.shape
        if bounds != (self.depth_near_m, self.depth_far_m):
            raise _FormatError(f"depth bounds mismatch: file has {bounds} m, buffer has "
                               f"{(self.depth_near_m, self.depth_far_m)} m")

    def _check_frames(self, frames: dict[str, np.ndarray], n: int, head: int) -> None:
        if not 0 <= n <= self._slots:
            raise _FormatError(f"written = {n} outside 0..{self._slots}")
        if not 0 <= head < self._slots or (n < self._slots and head != n % self._slots):
            raise _FormatError(f"head = {head} inconsistent with written = {n}")
        for key, own in self._arrays().items():
            want = (n, *own.shape[1:])
            got = frames[key]
            if got.shape != want or got.dtype != own.dtype:
                raise _FormatError(f"array {key!r} is {got.dtype} {got.shape}, expected "
                                   f"{own.dtype} {want}")
        priority = frames["priority"][frames["valid"]]
        if not (np.isfinite(priority).all() and (priority > 0).all()):
            raise _FormatError("a held transition's priority is not a positive number")
        if n > 0 and frames["valid"][(head - 1) % self._slots]:
            raise _FormatError("the newest slot is marked valid but has no next frame")


class _FormatError(Exception):
    """Internal: a replay file whose content does not match what this buffer expects."""
