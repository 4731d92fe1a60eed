"""Approximate-time synchronisation of separately timestamped sensor streams.

The servo loop needs one overhead colour image, one aligned depth image, one wrist image and
one joint state that belong together, but each arrives on its own stream, at its own rate,
late by its own latency. :class:`ApproximateTimeSync` pairs them by their *capture* stamps.

Semantics (those of ROS 2 Jazzy's Python ``message_filters.ApproximateTimeSynchronizer``,
plus the max age and gate the servo loop needs; see docs interface_facts section 2):

- Each stream keeps a bounded queue (``queue_size`` frames; the oldest falls out first).
- A frame whose stamp is not newer than the last one seen on its stream is rejected
  (``rejected_backwards``): sets are built from in-order streams only, and a repeated stamp
  would be a frame used twice.
- Queued frames older than ``max_age_s`` before the newest stamp seen on any stream are
  dropped (``dropped_stale``): a frame that waited that long for partners is no use.
- Each new frame is the pivot: from every other stream the frames within ``slop_s`` of it
  are tried, closest first, and the first combination whose stamps span at most ``slop_s``
  is emitted. Its frames leave their queues, and so does every older frame
  (``dropped_unmatched``): sets are therefore in time order on every stream and no frame is
  ever used twice.
- :meth:`ApproximateTimeSync.gate` discards frames stamped before a given time, now and on
  arrival (``skipped_before_gate``): the runtime gates out frames taken while the arm was
  still executing its last command.

Stamps are seconds on one clock shared by all streams (ROS time with ``use_sim_time`` on a
robot, the simulated clock in ``graspq servo --sim``).
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Clock arithmetic (a gate computed as command time + move duration, stamps as physics steps
# times the time step) differs from exact by far less than this; stamps closer than this to
# a gate count as on it.
STAMP_TOLERANCE_S = 1e-6


@dataclasses.dataclass(frozen=True)
class Frame:
    """One sensor sample: its stream's name, capture stamp (s) and payload (any array)."""

    stream: str
    stamp: float
    data: Any


@dataclasses.dataclass(frozen=True)
class SyncSet:
    """One frame per stream whose stamps span at most the slop."""

    frames: Mapping[str, Frame]

    @property
    def stamps(self) -> dict[str, float]:
        """Capture stamp (s) of each stream's frame."""
        return {name: frame.stamp for name, frame in self.frames.items()}

    @property
    def oldest(self) -> float:
        return min(frame.stamp for frame in self.frames.values())

    @property
    def newest(self) -> float:
        return max(frame.stamp for frame in self.frames.values())

    @property
    def spread(self) -> float:
        """Newest minus oldest stamp, seconds."""
        return self.newest - self.oldest


class PushStatus(enum.Enum):
    """What happened to a pushed frame."""

    QUEUED = "queued"  # waiting for partners, or used in the set just emitted
    BACKWARDS = "backwards"  # stamp not newer than its stream's last: rejected
    INVALID_STAMP = "invalid_stamp"  # NaN or infinite stamp: rejected
    STALE = "stale"  # already older than max age relative to the newest stamp: dropped
    BEFORE_GATE = "before_gate"  # stamped before the gate: discarded


@dataclasses.dataclass(frozen=True)
class PushResult:
    """The fate of a pushed frame, and the set it completed (if any)."""

    status: PushStatus
    synced: SyncSet | None = None


@dataclasses.dataclass
class SyncCounters:
    """Running totals since construction (not cleared by :meth:`ApproximateTimeSync.reset`)."""

    sets: int = 0
    rejected_backwards: int = 0
    rejected_invalid_stamp: int = 0
    dropped_stale: int = 0
    dropped_overflow: int = 0
    dropped_unmatched: int = 0
    skipped_before_gate: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class ApproximateTimeSync:
    """Pairs frames of named streams by capture stamp (see the module docstring)."""

    def __init__(self, streams: Sequence[str], slop_s: float, max_age_s: float,
                 queue_size: int) -> None:
        """
        Args:
            streams: stream names, at least two, distinct; sets hold one frame of each.
            slop_s: largest stamp spread of a set, seconds (> 0).
            max_age_s: queued frames older than this before the newest stamp are dropped,
                seconds (> slop_s).
            queue_size: frames kept per stream (>= 1).
        """
        names = tuple(streams)
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError(f"sync needs at least two distinct stream names, got {names}")
        if not (math.isfinite(slop_s) and slop_s > 0):
            raise ValueError(f"sync slop_s must be positive, got {slop_s!r}")
        if not (math.isfinite(max_age_s) and max_age_s > slop_s):
            raise ValueError(f"sync max_age_s must exceed slop_s ({slop_s}), got {max_age_s!r}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"sync queue_size must be a positive int, got {queue_size!r}")
        self.streams = names
        self.slop_s = float(slop_s)
        self.max_age_s = float(max_age_s)
        self.queue_size = queue_size
        self.counters = SyncCounters()
        self.reset()

    def reset(self) -> None:
        """Forget all frames, stamps and the gate (e.g. the clock restarted); keep counters."""
        self._queues: dict[str, collections.deque[Frame]] = {
            name: collections.deque() for name in self.streams}
        self._last: dict[str, float | None] = dict.fromkeys(self.streams)
        self._newest = -math.inf
        self._gate = -math.inf

    # ------------------------------------------------------------------------- queries
    def last_stamp(self, stream: str) -> float | None:
        """Stamp of the newest frame seen on ``stream`` (queued or not), or None."""
        return self._last[stream]

    @property
    def newest_stamp(self) -> float:
        """Newest stamp seen on any stream (-inf before the first frame)."""
        return self._newest

    def queued(self, stream: str) -> int:
        """Frames waiting on ``stream``."""
        return len(self._queues[stream])

    # ------------------------------------------------------------------------- input
    def gate(self, stamp: float) -> None:
        """Discard frames stamped before ``stamp`` (s), queued now or arriving later."""
        self._gate = stamp
        for queue in self._queues.values():
            while queue and queue[0].stamp < stamp - STAMP_TOLERANCE_S:
                queue.popleft()
                self.counters.skipped_before_gate += 1

    def push(self, frame: Frame) -> PushResult:
        """Add a frame (in arrival order); returns its fate and the set it completed."""
        if frame.stream not in self._queues:
            raise ValueError(f"unknown stream {frame.stream!r} (known: {list(self.streams)})")
        try:
            stamp = float(frame.stamp)
        except (TypeError, ValueError):
            stamp = math.nan
        if not math.isfinite(stamp):
            self.counters.rejected_invalid_stamp += 1
            return PushResult(PushStatus.INVALID_STAMP)
        last = self._last[frame.stream]
        if last is not None and stamp <= last:
            self.counters.rejected_backwards += 1
            return PushResult(PushStatus.BACKWARDS)
        self._last[frame.stream] = stamp
        self._newest = max(self._newest, stamp)
        self._drop_stale()
        if stamp < self._gate - STAMP_TOLERANCE_S:
            self.counters.skipped_before_gate += 1
            return PushResult(PushStatus.BEFORE_GATE)
        if stamp < self._newest - self.max_age_s:
            self.counters.dropped_stale += 1
            return PushResult(PushStatus.STALE)
        queue = self._queues[frame.stream]
        if len(queue) >= self.queue_size:
            queue.popleft()
            self.counters.dropped_overflow += 1
        queue.append(frame)
        return PushResult(PushStatus.QUEUED, self._match(frame))

    def _drop_stale(self) -> None:
        horizon = self._newest - self.max_age_s
        for queue in self._queues.values():
            while queue and queue[0].stamp < horizon:
                queue.popleft()
                self.counters.dropped_stale += 1

    def _match(self, pivot: Frame) -> SyncSet | None:
        others = [name for name in self.streams if name != pivot.stream]
        candidates: list[list[Frame]] = []
        for name in others:
            near = [f for f in self._queues[name] if abs(f.stamp - pivot.stamp) <= self.slop_s]
            if not near:
                return None
            # Closest first; on a tie the newer frame (it shows the more recent state).
            near.sort(key=lambda f: (abs(f.stamp - pivot.stamp), -f.stamp))
            candidates.append(near)
        for combo in itertools.product(*candidates):
            stamps = [pivot.stamp, *(f.stamp for f in combo)]
            if max(stamps) - min(stamps) <= self.slop_s:
                chosen = {pivot.stream: pivot, **{f.stream: f for f in combo}}
                self._consume(chosen.values())
                self.counters.sets += 1
                return SyncSet({name: chosen[name] for name in self.streams})
        return None

    def _consume(self, frames: Iterable[Frame]) -> None:
        for frame in frames:
            queue = self._queues[frame.stream]
            while queue:
                head = queue.popleft()
                if head is frame:
                    break
                self.counters.dropped_unmatched += 1  # older than a used frame: never usable
