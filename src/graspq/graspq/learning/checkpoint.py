"""Checkpoints: written atomically, loaded with ``weights_only=True``, checked before use.

A run directory holds ``checkpoints/epNNNNNN.pt`` (weights, optimizer, counters, RNG states,
both configs), ``checkpoints/epNNNNNN.replay.npz`` (the replay buffer) and
``checkpoints/latest.json`` naming the newest complete pair, and ``checkpoints/best.pt``, the
weights at the best periodic greedy evaluation so far. Each file is written to a
temporary name and renamed, and ``latest.json`` is replaced last, so a crash at any moment
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from graspq.actions import stored_revisit_window
from graspq.legacy import LEGACY_ENV_VALUES, fill_legacy_values

CHECKPOINT_FORMAT = 1
KEEP_CHECKPOINTS = 2
BEST_CHECKPOINT = "best.pt"  # the weights of the best periodic evaluation so far
_REQUIRED_KEYS = ("format", "graspq_version", "training_config", "env_config", "episode",
                  "env_steps", "agent")

# Training keys added after the first checkpoints were written, with the value that reproduces
# how a checkpoint written before the key existed was trained (torch's BatchNorm momentum; the
# options, the curriculum, prioritised replay and random streaks were off; one generator drove
# every demonstration's noise, in one process; the first fingertip-feature runs used 0.1 m
# units; updates ran in float32). Loading fills them in, so older runs still evaluate, export and
# resume.
LEGACY_TRAINING_VALUES: dict[str, Any] = {"network.batchnorm_momentum": 0.1,
                                          "actors.epsilon_alpha": 0.0,
                                          "actors.replay_ratio": 1.0,
                                          "actors.sync_episodes": 1,
                                          "curriculum.first_spawn_half_xy_m": 0.0,
                                          "curriculum.first_start_height_above_table_m": 0.15,
                                          "curriculum.first_object_yaw_half_deg": 45.0,
                                          "curriculum.promote_success": 0.5,
                                          "curriculum.start_over_object": False,
                                          "curriculum.stages": 0,
                                          "curriculum.window": 100,
                                          "demo_epsilon": 0.0,
                                          "hindsight_close_labels": False,
                                          "hindsight_min_offset_m": 0.02,
                                          "learning_rate_decay.final_fraction": 1.0,
                                          "learning_rate_decay.start_episode": 0,
                                          "learning_rate_decay.episodes": 5000,
                                          "prioritized_replay.alpha": 0.0,
                                          "prioritized_replay.beta_episodes": 7000,
                                          "prioritized_replay.beta_start": 0.4,
                                          "prioritized_replay.epsilon": 0.01,
                                          "demo_noise_per_episode": False,
                                          "demo_unturned_branches": False,
                                          "demo_workers": 1,
                                          "expert_labels": False,
                                          "expert_turn_ties": False,
                                          "exploration.max_random_streak": 1,
                                          "exploration.turn_instead_of_close": 0.0,
                                          "exploration.turn_streak": 1,
                                          "updates_per_step": 1,
                                          "close_replay_rows": 0,
                                          "advantage_learning": 0.0,
                                          "margin_balance": 0.0,
                                          "network.fingertip_features": False,
                                          "network.fingertip_unit_m": 0.1,
                                          "network.spatial_keypoints": False,
                                          "network.fingertip_offset_channels": False,
                                          "network.fingertip_glimpse": False,
                                          "network.glimpse_zoom": 1.0,
                                          "pose_loss_weight": 0.0,
                                          "pose_yaw_weight": 1.0,
                                          "precision": "fp32",
                                          "revisit_window": 0,
                                          "turn_margin_weight": 1.0}


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not match what it is loaded for."""


def config_hash(training_config: dict, env_config: dict) -> str:
    """Short hash identifying a (training, env) configuration pair."""
    text = json.dumps({"training": training_config, "env": env_config}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _atomic_write_bytes(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def save_checkpoint(run_dir: Path, payload: dict, replay: Any | None) -> Path:
    """Write a checkpoint (and the replay buffer) for ``payload['episode']``; return its path."""
    directory = run_dir / "checkpoints"
    directory.mkdir(parents=True, exist_ok=True)
    name = f"ep{payload['episode']:06d}"
    replay_name = None
    if replay is not None:
        replay_name = f"{name}.replay.npz"
        replay.save(directory / replay_name)
    path = _write_payload(directory / f"{name}.pt", payload, replay_name)
    latest = json.dumps({"checkpoint": path.name, "replay": replay_name,
                         "episode": payload["episode"]})
    _atomic_write_bytes(directory / "latest.json", lambda handle: handle.write(latest.encode()))
    _prune(directory, keep={path.name, replay_name})
    return path


def save_best_checkpoint(run_dir: Path, payload: dict) -> Path:
    """Write ``checkpoints/best.pt`` (no replay buffer: it is for evaluation and export, not
    for resuming); replaces the previous one atomically."""
    directory = run_dir / "checkpoints"
    directory.mkdir(parents=True, exist_ok=True)
    return _write_payload(directory / BEST_CHECKPOINT, payload, None)


def _write_payload(path: Path, payload: dict, replay_file: str | None) -> Path:
    """One checkpoint file, stamped with the format load_checkpoint reads, written atomically."""
    payload = dict(payload, format=CHECKPOINT_FORMAT, replay_file=replay_file)
    _atomic_write_bytes(path, lambda handle: torch.save(payload, handle))
    return path


def _prune(directory: Path, keep: set) -> None:
    checkpoints = sorted(directory.glob("ep*.pt"))
    for old in checkpoints[:-KEEP_CHECKPOINTS]:
        if old.name in keep:
            continue
        old.unlink(missing_ok=True)
        old.with_name(old.name.replace(".pt", ".replay.npz")).unlink(missing_ok=True)


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint file, or the latest checkpoint of a run directory."""
    path = Path(path)
    if path.is_dir():
        latest = path / "checkpoints" / "latest.json"
        if not latest.exists():
            raise CheckpointError(f"{path}: no checkpoints/latest.json (not a training run?)")
        try:
            name = json.loads(latest.read_text())["checkpoint"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{latest}: corrupt ({exc})") from exc
        path = latest.parent / name
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    return path


def load_checkpoint(path: Path) -> dict:
    """Load and sanity-check a checkpoint file (tensors and plain types only)."""
    path = resolve_checkpoint(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError,
            ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable GraspQ checkpoint "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: not a GraspQ checkpoint (top level is "
                              f"{type(payload).__name__})")
    missing = [key for key in _REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"{path}: not a GraspQ checkpoint (missing {missing})")
    if payload["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {payload['format']}, this GraspQ "
                              f"reads format {CHECKPOINT_FORMAT}")
    if isinstance(payload["training_config"], dict):
        _migrate_training_mapping(payload["training_config"])
    if isinstance(payload["env_config"], dict):
        fill_legacy_values(payload["env_config"], LEGACY_ENV_VALUES)
    payload["path"] = str(path)
    return payload


def _migrate_training_mapping(config: dict) -> None:
    """Bring a stored training config up to this GraspQ's keys, in place: renamed keys get
    their new name and value, keys added since get :data:`LEGACY_TRAINING_VALUES`."""
    if "block_reversal" in config:  # a bool until the revisit window generalised it
        config.setdefault("revisit_window", stored_revisit_window(config))
        del config["block_reversal"]
    fill_legacy_values(config, LEGACY_TRAINING_VALUES)


def config_differences(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """Keys (dotted) whose values differ between two nested config mappings."""
    differences = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            differences += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            differences.append(f"{prefix}{key}: checkpoint {a!r}, now {b!r}")
    return differences
