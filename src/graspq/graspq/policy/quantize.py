"""An int8 copy of an exported float32 policy, kept only if it acts like the float32 one
(issue #25).

Static quantisation with ONNX Runtime's tool: weights int8, activations uint8 with ranges
calibrated (MinMax) on observations recorded from the scene (:mod:`graspq.policy.recording`).
The inputs and outputs stay float32 (uint8 for the wrist image), so the file has the same
contract and metadata as the float32 one and :class:`~graspq.policy.runtime.OnnxPolicy`, the
servo runtime and the ROS node load either. ``graspq.quantization`` (JSON) records how it was
made and how often it picks the float32 policy's action on a separate set of recorded
observations (other episode seeds than the calibration's); below ``min_agreement`` nothing is
written and :class:`AgreementError` carries the figure.

Which nodes stay float32 and why: :func:`_float_nodes`. The format and weight granularity were
measured with ``graspq bench policy`` (docs/performance.md, "int8 ONNX policy"): on the Xeon
with AVX512-VNNI and AMX-INT8 there, QDQ and QOperator ran at the same speed, as did per-channel
and per-tensor weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graspq.observation import MOTOR_KEY, OVERHEAD_KEY, WRIST_KEY
from graspq.policy import metadata as meta

if TYPE_CHECKING:  # onnx and ONNX Runtime load when quantising, so `graspq --help` stays fast
    import onnx
    from onnxruntime.quantization import CalibrationDataReader

    from graspq.policy.runtime import OnnxPolicy

INT8_SUFFIX = ".int8.onnx"
QUANT_FORMATS = ("QDQ", "QOperator")
QUANT_FORMAT = "QDQ"
"""ONNX Runtime's QuantFormat, by name: QDQ, the format it recommends (QOperator was no
faster here)."""
PER_CHANNEL = True
"""One weight scale per output channel rather than per tensor (no slower here, and the
safer for accuracy where channels' weights differ in scale)."""
INT8_OPS = ("Conv", "Gemm", "MaxPool", "Concat", "Reshape", "Relu", "Softmax")
"""Operator types that may run in int8: the convolutions and fully connected layers that
carry the compute, and the ops between them, so they pass uint8 on without a round trip to
float. Arithmetic such as the input normalisation or the fingertip forward kinematics
(Mul, Add, MatMul, Sin, Cos) stays float32, where int8 would cost time or precision."""
MIN_AGREEMENT = 0.99
"""Least share of agreement observations with the float32 policy's action (issue #25)."""
AGREEMENT_OBSERVATIONS = 2000
CALIBRATION_OBSERVATIONS = 500
_CALIBRATION_BATCH = 50
# Episode seeds of the two recorded sets, ``base + seed + i``: disjoint from each other and
# from the episodes that score policies (training's evaluations 1e6.., graspq eval's 2e6..).
CALIBRATION_SEED_BASE = 3_000_000
AGREEMENT_SEED_BASE = 4_000_000


class AgreementError(ValueError):
    """The int8 policy picks the float32 policy's action too rarely; nothing was written."""

    def __init__(self, agreement: float, required: float, observations: int) -> None:
        super().__init__(f"int8 policy refused: it picks the float32 policy's action on "
                         f"{agreement:.2%} of {observations} recorded observations, "
                         f"{required:.2%} required; no int8 file written")
        self.agreement = agreement
        self.required = required
        self.observations = observations


def int8_path(float32_path: str | Path) -> Path:
    """Where the int8 file of ``policy.onnx`` goes: ``policy.int8.onnx`` beside it."""
    path = Path(float32_path)
    stem = path.name[:-len(".onnx")] if path.name.endswith(".onnx") else path.name
    return path.with_name(stem + INT8_SUFFIX)


def _batches(obs: Mapping[str, np.ndarray], names: tuple[str, ...]) -> CalibrationDataReader:
    """The calibration observations in batches (the graph's batch axis is dynamic)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            count = len(obs[MOTOR_KEY])
            self._batches = iter(
                {name: np.ascontiguousarray(obs[name][start:start + _CALIBRATION_BATCH])
                 for name in names} for start in range(0, count, _CALIBRATION_BATCH))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    return Batches()


def _greedy(policy: OnnxPolicy, obs: Mapping[str, np.ndarray]) -> np.ndarray:
    count = len(obs[MOTOR_KEY])
    return np.concatenate([
        policy.run_batch({k: v[i:i + _CALIBRATION_BATCH] for k, v in obs.items()})[0]
        .argmax(axis=1) for i in range(0, count, _CALIBRATION_BATCH)])


def _save(model: onnx.ModelProto, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(model.SerializeToString())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _image_entry_nodes(graph: onnx.GraphProto) -> list[str]:
    """The nodes from the image inputs up to and including each stream's first convolution.

    Measured on the default GQN (64x64, one thread, ONNX Runtime 1.32, Xeon with AVX512-VNNI
    and AMX): quantised, the per-channel normalisation became QLinearMul/QLinearAdd with
    broadcasting, about 130 + 180 us against 12 + 5 us in float32, and the 7x7 convolutions
    over 3 or 4 input channels took 155 and 135 us in int8 against about 100 and 80 us in
    float32 (NCHWc). Keeping them float took int8 from 0.85x to 0.60x of float32's p50.
    """
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    entry: list[str] = []
    pending = [i.name for i in graph.input if i.name in (OVERHEAD_KEY, WRIST_KEY)]
    while pending:
        for node in consumers.get(pending.pop(), []):
            if node.name in entry:
                continue
            entry.append(node.name)
            if node.op_type != "Conv":  # a stream's first convolution ends its entry
                pending.extend(node.output)
    return entry


def _motor_and_output_nodes(graph: onnx.GraphProto) -> list[str]:
    """The nodes that see only the motor input (joint angles, fingertip kinematics, the motor
    stream's layers), the layer that writes the Q-values and their readers (the softmax).

    Their int8 rounding decides near ties: on a network pre-trained on the oracle's
    demonstrations (recipe widths, fingertip features) the int8 copy picked the float32
    action on 96.6 % of 1,000 recorded observations with them quantised, 99.5 % with them in
    float32, at the same latency (the Q-values as uint8 alone cost 2.6 points).
    """
    inputs: dict[str, set[str]] = {i.name: {i.name} for i in graph.input}
    motor_only: list[str] = []
    for node in graph.node:  # ONNX nodes are in topological order
        seen = set().union(*(inputs.get(name, set()) for name in node.input))
        for name in node.output:
            inputs[name] = seen
        if seen == {MOTOR_KEY}:
            motor_only.append(node.name)
    output = [node.name for node in graph.node
              if meta.Q_VALUES in node.output or meta.Q_VALUES in node.input]
    return motor_only + output


def _float_nodes(graph: onnx.GraphProto) -> list[str]:
    """Names of the nodes that stay float32 in the int8 graph (see the two functions)."""
    return _image_entry_nodes(graph) + _motor_and_output_nodes(graph)


def _quantized_model(float32_path: Path, work: Path, calibration: Mapping[str, np.ndarray],
                     names: tuple[str, ...], quant_format: str,
                     per_channel: bool) -> onnx.ModelProto:
    """The int8 graph, without metadata. Weights int8 and activations uint8: the pairing
    ONNX Runtime's quantize_static recommends for x86 with VNNI (its docstring, 1.32)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared, quantized = work / "prepared.onnx", work / "quantized.onnx"
    # Shape inference and ONNX Runtime's basic fusions first, as the tool's guide advises:
    # it can only calibrate tensors it knows the shapes of.
    quant_pre_process(str(float32_path), str(prepared))
    quantize_static(str(prepared), str(quantized), _batches(calibration, names),
                    quant_format=QuantFormat[quant_format], per_channel=per_channel,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=INT8_OPS,
                    nodes_to_exclude=_float_nodes(onnx.load(str(prepared)).graph))
    model = onnx.load(str(quantized))
    del model.metadata_props[:]
    return model


@dataclasses.dataclass(frozen=True)
class QuantizeReport:
    """What the int8 export did; also stored, as JSON, in the file's ``graspq.quantization``."""

    path: str
    agreement: float
    """Share of the agreement observations on which int8 and float32 pick the same action."""
    agreement_observations: int
    min_agreement: float
    calibration_observations: int
    seed: int
    """Calibration episodes are seeded ``3e6 + seed + i``, agreement episodes
    ``4e6 + seed + i``."""
    format: str
    per_channel: bool
    activation_type: str
    weight_type: str
    calibration_method: str
    float32_sha256: str
    """SHA-256 of the float32 file it was made from."""
    onnxruntime_version: str
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (the JSON report)."""
        return dataclasses.asdict(self)


def check_options(calibration_count: int, agreement_count: int, min_agreement: float,
                  quant_format: str = QUANT_FORMAT) -> None:
    """Raise ``ValueError`` naming the option if one is out of range."""
    if calibration_count < 1 or agreement_count < 1:
        raise ValueError("need at least one calibration and one agreement observation "
                         f"(--calibration-observations {calibration_count}, "
                         f"--agreement-observations {agreement_count})")
    if quant_format not in QUANT_FORMATS:
        raise ValueError(f"quant_format must be one of {QUANT_FORMATS}, got {quant_format!r}")
    if not 0.0 <= min_agreement <= 1.0:
        raise ValueError(f"--min-agreement must be in [0, 1], got {min_agreement}")


def quantize_policy(float32_path: str | Path, *, out: str | Path | None = None,
                    calibration_count: int = CALIBRATION_OBSERVATIONS,
                    agreement_count: int = AGREEMENT_OBSERVATIONS,
                    min_agreement: float = MIN_AGREEMENT, seed: int = 0,
                    quant_format: str = QUANT_FORMAT,
                    per_channel: bool = PER_CHANNEL) -> QuantizeReport:
    """Write the int8 policy of the float32 file ``float32_path`` to ``out`` (default
    :func:`int8_path`), calibrated and checked on observations recorded in the scene under the
    env config stored in the file (the one the policy was trained under). ``quant_format``
    and ``per_channel`` are there for ``graspq bench policy`` to compare; export keeps the
    defaults.

    Raises:
        AgreementError: agreement below ``min_agreement``; nothing is left at ``out``.
        PolicyMismatchError: the float32 file is not a loadable GraspQ policy.
    """
    import onnxruntime

    from graspq.policy.recording import record_observations
    from graspq.policy.runtime import OnnxPolicy

    check_options(calibration_count, agreement_count, min_agreement, quant_format)
    float32_path = Path(float32_path)
    out = int8_path(float32_path) if out is None else Path(out)
    if out.resolve() == float32_path.resolve():
        raise ValueError(f"the int8 file would overwrite the float32 file {out}")
    env_config = meta.stored_env_config(float32_path)
    reference = OnnxPolicy(float32_path, env_config)
    calibration = record_observations(env_config, reference, calibration_count,
                                      CALIBRATION_SEED_BASE + seed)
    agreement_set = record_observations(env_config, reference, agreement_count,
                                        AGREEMENT_SEED_BASE + seed)
    with tempfile.TemporaryDirectory(prefix="graspq-int8-") as tmp:
        quantized = Path(tmp) / "int8.onnx"
        model = _quantized_model(float32_path, Path(tmp), calibration, reference.input_names,
                                 quant_format, per_channel)
        for key, value in reference.metadata.items():  # the float32 file's, unchanged
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        _save(model, quantized)
        candidate = OnnxPolicy(quantized, env_config)
        same = _greedy(candidate, agreement_set) == _greedy(reference, agreement_set)
        agreement = float(same.mean())
        if agreement < min_agreement:
            raise AgreementError(agreement, min_agreement, agreement_count)
        report = QuantizeReport(
            path=str(out), agreement=agreement, agreement_observations=agreement_count,
            min_agreement=min_agreement, calibration_observations=calibration_count,
            seed=seed, format=quant_format, per_channel=per_channel,
            activation_type="uint8", weight_type="int8", calibration_method="MinMax",
            float32_sha256=hashlib.sha256(float32_path.read_bytes()).hexdigest(),
            onnxruntime_version=onnxruntime.__version__, bytes=0)
        entry = model.metadata_props.add()
        entry.key = meta.QUANTIZATION_KEY
        entry.value = json.dumps({k: v for k, v in report.as_dict().items()
                                  if k not in ("path", "bytes")}, sort_keys=True)
        model.doc_string = reference.session.get_modelmeta().description + \
            " (int8, static quantisation; see graspq.quantization)"
        out.parent.mkdir(parents=True, exist_ok=True)
        pending = out.with_name(out.name + ".unverified")
        try:
            _save(model, pending)
            OnnxPolicy(pending, env_config)  # loads as a robot will load it
            os.replace(pending, out)
        finally:
            pending.unlink(missing_ok=True)
    return dataclasses.replace(report, bytes=out.stat().st_size)
