"""Episode logs of the servo loop as MCAP files, and their use as offline training data.

One file per episode, ``episode_<index>.mcap`` (a crash loses one episode at most; a file only
gets its final name once it is complete, until then it is ``*.mcap.partial``). Readable by
any MCAP tool (``mcap info``, Foxglove) and by :func:`read_episode_log` here.

Layout (format :data:`LOG_FORMAT`):

- Metadata ``graspq.episode`` (at the start): format, GraspQ version, image size, depth
  quantisation bounds, view mode, the action table, the env config (JSON), and what the caller
  adds (seed, object, policy). Metadata ``graspq.episode_end`` (at the end): outcome, return,
  steps. MCAP metadata values are strings; structured ones are JSON.
- Channel ``/graspq/observation``, encoding ``graspq.observation.v1`` (no schema): each
  observation once, as raw bytes: ``overhead_rgbd`` in the uint8 storage form of
  :func:`graspq.observation.encode_overhead` (S*S*4), ``wrist_rgb`` uint8 (S*S*3), ``motor``
  little-endian float32 (8). Message ``sequence`` = observation index; log time = the
  newest capture stamp of its frames. Consecutive steps share their frames, as in replay.
- Channel ``/graspq/step``, JSON (schema ``graspq.ServoStep``, jsonschema): per step the
  indices of its observation and next observation, action, Q-values, grasp probabilities,
  reward and its terms, executed / terminated / truncated, outcome, policy latency and cycle
  time, capture stamps and decision time. Log time = decision time.

Times in the file are nanoseconds of the stamps' clock (the simulated clock in
``graspq servo --sim``, ROS time on a robot).

:func:`load_into_replay` replays the transitions of finished logs into a
:class:`~graspq.learning.replay.ReplayBuffer` (``graspq train`` offline data). It reads and
checks every file before adding anything, so a bad file changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
from mcap.exceptions import McapError
from mcap.reader import make_reader
from mcap.writer import CompressionType, Writer

import graspq
from graspq.actions import Action
from graspq.config import to_mapping
from graspq.learning.replay import ReplayBuffer
from graspq.observation import MOTOR_KEY, MOTOR_SIZE, OVERHEAD_KEY, WRIST_KEY, encode_overhead
from graspq.rewards import Outcome
from graspq.servo.runtime import StepRecord
from graspq.sim.settings import EnvConfig

LOG_FORMAT = 1
"""Version of the layout above; bump on any change of meaning."""
STEP_TOPIC = "/graspq/step"
OBS_TOPIC = "/graspq/observation"
OBS_ENCODING = "graspq.observation.v1"
EPISODE_METADATA = "graspq.episode"
END_METADATA = "graspq.episode_end"
SUFFIX = ".mcap"
PARTIAL_SUFFIX = ".mcap.partial"

_STEP_SCHEMA = {
    "type": "object",
    "title": "graspq.ServoStep",
    "properties": {
        "episode": {"type": "integer"}, "step": {"type": "integer"},
        "obs": {"type": "integer"}, "next_obs": {"type": "integer"},
        "action": {"type": "integer"}, "action_name": {"type": "string"},
        "q_values": {"type": "array", "items": {"type": "number"}},
        "grasp_probabilities": {"type": "array", "items": {"type": "number"}},
        "reward": {"type": "number"}, "reward_terms": {"type": "object"},
        "executed": {"type": "boolean"}, "terminated": {"type": "boolean"},
        "truncated": {"type": "boolean"}, "outcome": {"type": "string"},
        "policy_latency_ms": {"type": "number"}, "cycle_ms": {"type": "number"},
        "decided_at_s": {"type": "number"}, "stamps_s": {"type": "object"},
        "next_stamps_s": {"type": "object"}, "joint_step_clamped": {"type": "boolean"},
    },
}


def _compression() -> CompressionType:
    """zstd chunks when ``zstandard`` is installed, else none (the mcap package needs it for
    zstd but does not depend on it). zstd made 5 episodes of a trained policy at 64 px 21x
    smaller than their raw frames."""
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return CompressionType.NONE
    return CompressionType.ZSTD


def _ns(seconds: float) -> int:
    """Seconds to MCAP nanoseconds (MCAP times are unsigned)."""
    return max(0, round(seconds * 1e9))


class Transition(NamedTuple):
    """One logged step, in the form :meth:`ReplayBuffer.add` takes."""

    obs: dict[str, np.ndarray]
    """``overhead_rgbd`` uint8 storage form (S, S, 4), ``wrist_rgb`` uint8 (S, S, 3),
    ``motor`` float32 (8,)."""
    action: int
    reward: float
    next_obs: dict[str, np.ndarray]
    terminated: bool
    truncated: bool


class EpisodeLogWriter:
    """Writes one episode to ``<directory>/episode_<index>.mcap`` (see the module docstring).

    Use as a context manager, or call :meth:`close`. If the episode is not closed normally the
    file stays ``*.mcap.partial`` (readers ignore it).
    """

    def __init__(self, directory: str | os.PathLike[str], index: int, env_config: EnvConfig,
                 info: Mapping[str, Any] | None = None) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        camera = env_config.camera
        self.path = directory / f"episode_{index:06d}{SUFFIX}"
        self._partial = self.path.with_name(self.path.name.removesuffix(SUFFIX)
                                            + PARTIAL_SUFFIX)
        self._image_size = camera.image_size
        self._bounds = (camera.depth_near_m, camera.depth_far_m)
        self._file: IO[bytes] = open(self._partial, "wb")  # noqa: SIM115 - closed in close()
        self._writer = Writer(self._file, compression=_compression())
        self._writer.start(profile="", library=f"graspq {graspq.__version__}")
        header = {
            "format": LOG_FORMAT, "graspq_version": graspq.__version__, "episode": index,
            "image_size": camera.image_size, "depth_near_m": camera.depth_near_m,
            "depth_far_m": camera.depth_far_m, "views": "multi",
            "actions": [action.name for action in Action],
            "env_config": to_mapping(env_config), **dict(info or {}),
        }
        self._writer.add_metadata(EPISODE_METADATA, {k: json.dumps(v) for k, v in header.items()})
        schema = self._writer.register_schema("graspq.ServoStep", "jsonschema",
                                              json.dumps(_STEP_SCHEMA).encode())
        self._step_channel = self._writer.register_channel(STEP_TOPIC, "json", schema)
        layout = {"layout": "overhead_rgbd uint8 SxSx4 (encode_overhead), wrist_rgb uint8 "
                            "SxSx3, motor float32 little-endian x8, concatenated",
                  "image_size": str(camera.image_size),
                  "depth_near_m": repr(camera.depth_near_m),
                  "depth_far_m": repr(camera.depth_far_m)}
        self._obs_channel = self._writer.register_channel(OBS_TOPIC, OBS_ENCODING, 0, layout)
        self._obs_count = 0
        self._last_next: tuple[dict[str, np.ndarray], int] | None = None
        self._steps = 0
        self._closed = False

    def _write_obs(self, obs: Mapping[str, np.ndarray], stamps: Mapping[str, float]) -> int:
        s = self._image_size
        overhead = np.asarray(obs[OVERHEAD_KEY])
        if overhead.dtype != np.uint8:
            overhead = encode_overhead(overhead.astype(np.float32, copy=False), *self._bounds)
        wrist = np.asarray(obs[WRIST_KEY], dtype=np.uint8)
        motor = np.asarray(obs[MOTOR_KEY], dtype="<f4")
        if overhead.shape != (s, s, 4) or wrist.shape != (s, s, 3) or motor.shape != (8,):
            raise ValueError(f"observation shapes {overhead.shape}, {wrist.shape}, "
                             f"{motor.shape} do not fit image size {s}")
        data = overhead.tobytes() + wrist.tobytes() + motor.tobytes()
        time_ns = _ns(max(stamps.values()))
        index = self._obs_count
        self._writer.add_message(self._obs_channel, log_time=time_ns, data=data,
                                 publish_time=time_ns, sequence=index)
        self._obs_count += 1
        return index

    def write(self, record: StepRecord) -> None:
        """Append one finished step (consecutive steps share the frame between them)."""
        if self._closed:
            raise RuntimeError(f"{self.path}: episode log already closed")
        if self._last_next is not None and self._last_next[0] is record.obs:
            obs_index = self._last_next[1]
        else:
            obs_index = self._write_obs(record.obs, record.stamps_s)
        if record.next_obs is record.obs:
            next_index = obs_index
        else:
            next_index = self._write_obs(record.next_obs, record.next_stamps_s)
        self._last_next = (record.next_obs, next_index)
        command = record.command
        message = {
            "episode": record.episode, "step": record.step, "obs": obs_index,
            "next_obs": next_index, "action": int(record.action),
            "action_name": record.action.name,
            "q_values": [float(x) for x in record.q_values],
            "grasp_probabilities": [float(x) for x in record.grasp_probabilities],
            "reward": float(record.reward), "reward_terms": record.reward_terms.as_dict(),
            "executed": record.executed, "terminated": record.terminated,
            "truncated": record.truncated, "outcome": record.outcome.value,
            "policy_latency_ms": float(record.policy_latency_ms),
            "cycle_ms": float(record.cycle_ms), "decided_at_s": float(record.decided_at_s),
            "stamps_s": record.stamps_s, "next_stamps_s": record.next_stamps_s,
            "joint_step_clamped": bool(command is not None and command.joint_step_clamped),
        }
        time_ns = _ns(record.decided_at_s)
        self._writer.add_message(self._step_channel, log_time=time_ns,
                                 data=json.dumps(message).encode(), publish_time=time_ns,
                                 sequence=self._steps)
        self._steps += 1

    def close(self, outcome: str, episode_return: float,
              extra: Mapping[str, Any] | None = None) -> Path:
        """Finish the file with the episode's end (outcome, return, steps); returns its path."""
        if self._closed:
            return self.path
        end = {"outcome": outcome, "episode_return": float(episode_return),
               "steps": self._steps, "observations": self._obs_count, **dict(extra or {})}
        self._writer.add_metadata(END_METADATA, {k: json.dumps(v) for k, v in end.items()})
        self._writer.finish()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._partial, self.path)
        self._closed = True
        return self.path

    def abandon(self) -> None:
        """Close the file without finishing the episode (it stays ``*.mcap.partial``)."""
        if not self._closed:
            self._file.close()
            self._closed = True

    def __enter__(self) -> EpisodeLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abandon()


class EpisodeLogger:
    """Writes each episode of a run to its own file in ``directory``: pass :meth:`write` as
    the runtime's ``on_step`` and call :meth:`finish` when an episode ends. Episodes are
    numbered from ``first_index`` in the order they finish; one without steps gets no file."""

    def __init__(self, directory: str | os.PathLike[str], env_config: EnvConfig,
                 info: Mapping[str, Any] | None = None, first_index: int = 0) -> None:
        self.directory = Path(directory)
        self._env_config = env_config
        self._info = dict(info or {})
        self._index = first_index
        self._writer: EpisodeLogWriter | None = None
        self.paths: list[Path] = []

    def write(self, record: StepRecord) -> None:
        if self._writer is None:
            self._writer = EpisodeLogWriter(self.directory, self._index, self._env_config,
                                            self._info)
        self._writer.write(record)

    def finish(self, outcome: str, episode_return: float,
               extra: Mapping[str, Any] | None = None) -> Path | None:
        """Close the current episode's file (None if it had no steps)."""
        writer, self._writer = self._writer, None
        if writer is None:
            return None
        path = writer.close(outcome, episode_return, extra)
        self.paths.append(path)
        self._index += 1
        return path

    def close(self) -> None:
        """Abandon an unfinished episode (its file stays ``*.mcap.partial``)."""
        if self._writer is not None:
            self._writer.abandon()
            self._writer = None


# ---------------------------------------------------------------------------------- reading
@dataclasses.dataclass(frozen=True)
class EpisodeLog:
    """A finished episode log, fully read and checked."""

    path: Path
    info: dict[str, Any]
    """The ``graspq.episode`` metadata (JSON-decoded)."""
    end: dict[str, Any]
    """The ``graspq.episode_end`` metadata: outcome, episode_return, steps, ..."""
    steps: list[dict[str, Any]]
    """The ``/graspq/step`` messages in order."""
    observations: list[dict[str, np.ndarray]]
    """Observation ``i`` in the storage form of :class:`Transition`."""

    def transitions(self) -> Iterator[Transition]:
        """The steps as ``(obs, action, reward, next_obs, terminated, truncated)``."""
        for step in self.steps:
            yield Transition(self.observations[step["obs"]], int(step["action"]),
                             float(step["reward"]), self.observations[step["next_obs"]],
                             bool(step["terminated"]), bool(step["truncated"]))


class _LogError(Exception):
    """Internal: what is wrong with a log file (wrapped into ValueError with its path)."""


def _decode_obs(data: bytes, size: int) -> dict[str, np.ndarray]:
    n_over, n_wrist = size * size * 4, size * size * 3
    if len(data) != n_over + n_wrist + 4 * MOTOR_SIZE:
        raise _LogError(f"observation of {len(data)} bytes, expected "
                        f"{n_over + n_wrist + 4 * MOTOR_SIZE} for image size {size}")
    raw = np.frombuffer(data, np.uint8)
    return {OVERHEAD_KEY: raw[:n_over].reshape(size, size, 4).copy(),
            WRIST_KEY: raw[n_over:n_over + n_wrist].reshape(size, size, 3).copy(),
            MOTOR_KEY: np.frombuffer(data, "<f4", MOTOR_SIZE, n_over + n_wrist)
            .astype(np.float32)}


def _metadata(reader: Any, name: str) -> dict[str, Any] | None:
    for record in reader.iter_metadata():
        if record.name == name:
            try:
                return {key: json.loads(value) for key, value in record.metadata.items()}
            except json.JSONDecodeError as exc:
                raise _LogError(f"metadata {name!r} is not JSON ({exc})") from None
    return None


def _check_step(step: Any, observations: int, index: int) -> None:
    if not isinstance(step, dict):
        raise _LogError(f"step {index} is not a JSON object")
    for key, kind in (("obs", int), ("next_obs", int), ("action", int), ("reward", float),
                      ("terminated", bool), ("truncated", bool)):
        value = step.get(key)
        ok = (isinstance(value, bool) if kind is bool
              else isinstance(value, int | float) and not isinstance(value, bool))
        if not ok:
            raise _LogError(f"step {index} field {key!r} is {value!r}")
    if not (0 <= step["obs"] < observations and 0 <= step["next_obs"] < observations):
        raise _LogError(f"step {index} refers to observation {step['obs']}/"
                        f"{step['next_obs']}, the log has {observations}")
    if not 0 <= step["action"] < len(Action):
        raise _LogError(f"step {index} action {step['action']} outside the action table")
    if not math.isfinite(step["reward"]):
        raise _LogError(f"step {index} reward {step['reward']!r} is not finite")


def read_episode_log(path: str | os.PathLike[str]) -> EpisodeLog:
    """Read and check one finished episode log; ValueError naming the file and the problem
    otherwise (not MCAP, truncated, unfinished, another format, inconsistent)."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            reader = make_reader(stream)
            info = _metadata(reader, EPISODE_METADATA)
            end = _metadata(reader, END_METADATA)
            if info is None:
                raise _LogError(f"no {EPISODE_METADATA!r} metadata: not a GraspQ episode log")
            if info.get("format") != LOG_FORMAT:
                raise _LogError(f"log format {info.get('format')!r}, this code reads "
                                f"{LOG_FORMAT}")
            if end is None:
                raise _LogError("the episode was not finished (no end record)")
            size = info.get("image_size")
            if not isinstance(size, int) or size < 1:
                raise _LogError(f"image_size {size!r}")
            observations: dict[int, dict[str, np.ndarray]] = {}
            steps = []
            for _, channel, message in reader.iter_messages(log_time_order=False):
                if channel.topic == OBS_TOPIC:
                    observations[message.sequence] = _decode_obs(message.data, size)
                elif channel.topic == STEP_TOPIC:
                    steps.append(json.loads(message.data))
    except FileNotFoundError:
        raise
    except _LogError as exc:
        raise ValueError(f"episode log {path}: {exc}") from None
    except (McapError, OSError, EOFError, ValueError, KeyError, IndexError, struct.error,
            RuntimeError) as exc:  # what the mcap library raises on damaged input
        raise ValueError(f"episode log {path} is corrupt or not MCAP "
                         f"({type(exc).__name__}: {exc})") from exc
    try:
        if sorted(observations) != list(range(len(observations))):
            raise _LogError("observation sequence numbers are not 0..n-1")
        steps.sort(key=lambda step: step.get("step", 0) if isinstance(step, dict) else 0)
        for index, step in enumerate(steps):
            _check_step(step, len(observations), index)
        if end.get("steps") != len(steps):
            raise _LogError(f"end record says {end.get('steps')} steps, found {len(steps)}")
    except _LogError as exc:
        raise ValueError(f"episode log {path}: {exc}") from None
    return EpisodeLog(path, info, end, steps, [observations[i] for i in range(len(observations))])


def log_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Episode log files named by ``paths``: files as given, directories expanded to their
    finished ``*.mcap`` files in name order."""
    found: list[Path] = []
    for entry in paths:
        entry = Path(entry)
        if entry.is_dir():
            found.extend(sorted(entry.glob(f"*{SUFFIX}")))
        elif entry.exists():
            found.append(entry)
        else:
            raise FileNotFoundError(f"episode log {entry} not found")
    return found


def iter_transitions(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Transition]:
    """The transitions of every episode log at ``paths`` (files or directories), in order;
    each file is read and checked whole before its first transition is yielded."""
    for path in log_paths(paths):
        yield from read_episode_log(path).transitions()


@dataclasses.dataclass(frozen=True)
class OfflineLoadReport:
    """What :func:`load_into_replay` added."""

    files: int
    episodes: int
    transitions: int
    outcomes: dict[str, int]


def load_into_replay(paths: Iterable[str | os.PathLike[str]],
                     replay: ReplayBuffer) -> OfflineLoadReport:
    """Add every transition of the episode logs at ``paths`` (files or directories) to
    ``replay``, in order, so consecutive steps share their frames.

    All files are read and checked first (format, image size and depth bounds against the
    buffer's); a ValueError naming the file leaves ``replay`` unchanged.
    """
    logs = []
    for path in log_paths(paths):
        log = read_episode_log(path)
        info = log.info
        if info["image_size"] != replay.image_size:
            raise ValueError(f"episode log {path}: image size {info['image_size']}, the replay "
                             f"buffer's is {replay.image_size}")
        bounds = (info.get("depth_near_m"), info.get("depth_far_m"))
        if bounds != (replay.depth_near_m, replay.depth_far_m):
            raise ValueError(f"episode log {path}: depth quantised over {bounds} m, the replay "
                             f"buffer uses {(replay.depth_near_m, replay.depth_far_m)} m")
        logs.append(log)
    transitions = 0
    outcomes: dict[str, int] = {}
    for log in logs:
        for transition in log.transitions():
            replay.add(*transition)
            transitions += 1
        outcome = str(log.end.get("outcome", Outcome.RUNNING.value))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return OfflineLoadReport(len(logs), len(logs), transitions, outcomes)
