"""Where a training run's time goes: wall seconds per phase, kept in ``timing.json``.

Each ``graspq train`` invocation (a first run or a resume) appends one session to the file,
so an interrupted run's time is all there: demonstrations, pre-training, episodes,
evaluations and checkpoints, with the precision, threads and CPU it ran with.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from graspq.cpu import cpu_info

PHASES = ("demonstrations", "pretraining", "episodes", "evaluations", "checkpoints")
TIMING_FILE = "timing.json"


class PhaseTimer:
    """Wall seconds per phase of one training session."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self._started = time.perf_counter()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Count the time inside the block to ``name`` (one of :data:`PHASES`)."""
        if name not in self.seconds:
            raise ValueError(f"unknown phase {name!r}; phases: {', '.join(PHASES)}")
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def session(self, **details: Any) -> dict[str, Any]:
        """This session's record: each phase, the total and what it ran on."""
        total = time.perf_counter() - self._started
        return {"phases_s": {name: round(value, 2) for name, value in self.seconds.items()},
                "other_s": round(total - sum(self.seconds.values()), 2),
                "total_s": round(total, 2), "torch_threads": torch.get_num_threads(),
                "cpu": cpu_model(), **details}


def cpu_model() -> str:
    """The CPU's model name (Linux), or "unknown"."""
    return cpu_info().model


def append_session(run_dir: Path, session: dict[str, Any]) -> None:
    """Add a session to the run's ``timing.json`` (a damaged file is kept aside, not lost)."""
    path = Path(run_dir) / TIMING_FILE
    sessions: list[dict[str, Any]] = []
    if path.exists():
        try:
            sessions = json.loads(path.read_text())["sessions"]
        except (ValueError, KeyError, TypeError):
            path.replace(path.with_suffix(".json.damaged"))
    sessions.append(session)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"sessions": sessions}, indent=1) + "\n")
    tmp.replace(path)


def read_sessions(run_dir: Path) -> list[dict[str, Any]]:
    """The sessions of a run's ``timing.json`` (empty if there is none)."""
    path = Path(run_dir) / TIMING_FILE
    if not path.exists():
        return []
    return list(json.loads(path.read_text())["sessions"])
