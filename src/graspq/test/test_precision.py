"""The learner's precision key: auto's choice, bf16 mixed precision's float32 state, and the
precision recorded in every place a run keeps."""

import dataclasses

import pytest
import torch

from graspq.config import ConfigError, apply_overrides
from graspq.learning.checkpoint import load_checkpoint
from graspq.learning.precision import (
    NATIVE_BF16_FLAGS,
    PRECISIONS,
    native_bf16_features,
    resolve_precision,
)
from graspq.learning.settings import TrainingConfig
from graspq.learning.trainer import Trainer

from .test_trainer import TINY, TINY_ENV


def test_auto_is_bf16_only_where_the_cpu_has_it_natively():
    assert resolve_precision("auto", lambda: []) == "fp32"
    assert resolve_precision("auto", lambda: ["amx_bf16"]) == "bf16"
    assert resolve_precision("auto", lambda: ["avx512_bf16"]) == "bf16"
    # What is asked for explicitly is what runs, whatever the CPU.
    assert resolve_precision("fp32", lambda: ["amx_bf16"]) == "fp32"
    assert resolve_precision("bf16", lambda: []) == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16")


def test_this_cpus_features_are_named_and_decide_auto():
    features = native_bf16_features()
    assert set(features) <= set(NATIVE_BF16_FLAGS)
    assert resolve_precision("auto") == ("bf16" if features else "fp32")


def test_a_bad_precision_in_a_config_names_the_key():
    assert set(PRECISIONS) == {"auto", "fp32", "bf16"}
    with pytest.raises(ConfigError, match="precision"):
        apply_overrides(TrainingConfig(), ["precision=half"])


def _run(run_dir, precision):
    config = dataclasses.replace(TINY, precision=precision, eval_every=10**6)
    trainer = Trainer(config, TINY_ENV, run_dir, log=lambda line: None)
    try:
        trainer.run()
    finally:
        trainer.close()
    return trainer


def test_bf16_changes_the_layers_arithmetic_only(tmp_path):
    fp32 = _run(tmp_path / "fp32", "fp32")
    bf16 = _run(tmp_path / "bf16", "bf16")
    assert fp32.agent.precision == "fp32" and bf16.agent.precision == "bf16"
    assert bf16.agent.updates == fp32.agent.updates > 0
    # Weights, gradients and Adam's moments stay float32 under bf16.
    for parameter in bf16.agent.online.parameters():
        assert parameter.dtype == torch.float32
        assert parameter.grad is None or parameter.grad.dtype == torch.float32
    for state in bf16.agent.optimizer.state.values():
        assert state["exp_avg"].dtype == state["exp_avg_sq"].dtype == torch.float32
    # The same seeds, so the same episodes and batches: the weights differ, by bf16's
    # rounding, but not by more than a few updates' worth.
    differences = [(a - b).abs().max().item() for a, b in zip(
        fp32.agent.online.parameters(), bf16.agent.online.parameters(), strict=True)]
    assert max(differences) > 0
    assert max(differences) < 0.05


def test_the_run_records_the_precision_it_used(tmp_path):
    trainer = _run(tmp_path / "run", "bf16")
    assert load_checkpoint(tmp_path / "run")["precision"] == "bf16"
    header = (tmp_path / "run" / "training.yaml").read_text().splitlines()[0]
    assert "precision bf16" in header
    events = b"".join(path.read_bytes()
                      for path in (tmp_path / "run" / "tensorboard").glob("events.*"))
    assert b"run/precision" in events and b"precision bf16" in events
    # A resume in another precision goes on, and says that it is not bit-identical.
    lines = []
    resumed = Trainer(dataclasses.replace(trainer.training, precision="fp32",
                                          episodes=TINY.episodes + 1),
                      TINY_ENV, tmp_path / "run", resume=True, log=lines.append)
    try:
        resumed.run()
    finally:
        resumed.close()
    assert resumed.agent.precision == "fp32"
    assert any("trained in bf16" in line and "not be bit-identical" in line for line in lines)
    assert load_checkpoint(tmp_path / "run")["precision"] == "fp32"
