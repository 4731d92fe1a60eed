"""``graspq bench policy``: batch-1 decision latency of the float32 ONNX policy, its int8 copy
and torch eager.

All run the same model (the exported :class:`graspq.policy.export.PolicyGraph`: raw
observation in, normalisation inside; the int8 file quantised from it as ``graspq export
--quantize int8`` does, calibrated on a small recorded set) on the same observation with the
same number of CPU threads, in one process. They are timed in alternating blocks so that load
from other processes on the machine falls on all alike. A ``baseline`` file (the same policy
exported by an earlier GraspQ, say) joins the blocks, so that a change to the exported graph
is measured against what it replaces in the same run. ``decide_*`` adds what the servo loop
pays on top of inference: :meth:`OnnxPolicy.decide`'s input checks and the argmax.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch

from graspq.cpu import cpu_info
from graspq.learning.model import GraspQNetwork
from graspq.learning.settings import TrainingConfig
from graspq.policy.export import policy_graph, random_observations, write_policy
from graspq.policy.quantize import PER_CHANNEL, QUANT_FORMAT, quantize_policy
from graspq.policy.runtime import OnnxPolicy, PolicyConfig
from graspq.sim.settings import EnvConfig

_BLOCK = 50  # timed calls per side before switching to the other
_WARMUP = 20
_INT8_CALIBRATION = 200  # recorded observations; latency does not depend on the ranges
_INT8_AGREEMENT = 200
# Flags (Linux /proc/cpuinfo names) that decide which int8 kernels ONNX Runtime can use.
_INT8_FLAGS = ("avx2", "avx512bw", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8")


def _percentiles(samples_s: list[float]) -> tuple[float, float]:
    ms = np.asarray(samples_s) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _timed_block(call: Callable[[], Any], samples: list[float]) -> None:
    clock = time.perf_counter
    for _ in range(_BLOCK):
        start = clock()
        call()
        samples.append(clock() - start)


def cpu_description() -> dict[str, Any]:
    """The CPU's model name and which of the int8-relevant flags it has (Linux)."""
    model, flags = cpu_info()
    return {"cpu_model": model, "cpu_int8_flags": [f for f in _INT8_FLAGS if f in flags]}


def bench_policy(checkpoint: Path | None, seconds: float, config: PolicyConfig,
                 int8_format: str = QUANT_FORMAT,
                 int8_per_channel: bool = PER_CHANNEL,
                 baseline: Path | None = None) -> dict[str, Any]:
    """Latency percentiles (ms) of the float32 and int8 ONNX policies on ONNX Runtime and of
    torch eager, at batch 1.

    Without ``checkpoint``: a freshly initialised GQN of the default training and env
    configs (multi-view, 64x64), weights seeded (its int8 agreement says little: the
    Q-values of an untrained network are close together).
    """
    if checkpoint is not None:
        from graspq.learning.policy_io import load_agent

        agent, env_config, training = load_agent(checkpoint)
        network, source = agent.online, str(checkpoint)
    else:
        env_config, training = EnvConfig(), TrainingConfig()
        torch.manual_seed(0)
        network = GraspQNetwork(training.network.gqn(env_config.camera.image_size,
                                                     training.views))
        source = "fresh default GQN"
    camera = env_config.camera
    bounds = (camera.depth_near_m, camera.depth_far_m)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.intra_op_threads)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = write_policy(network, env_config, training, Path(tmp) / "policy.onnx")
            policy = OnnxPolicy(path, env_config, training.views, config)
            quantized = quantize_policy(path, calibration_count=_INT8_CALIBRATION,
                                        agreement_count=_INT8_AGREEMENT, min_agreement=0.0,
                                        quant_format=int8_format,
                                        per_channel=int8_per_channel)
            int8 = OnnxPolicy(quantized.path, env_config, training.views, config)
            earlier = (None if baseline is None
                       else OnnxPolicy(baseline, env_config, training.views, config))
            obs = random_observations(1, training.views, camera.image_size, *bounds,
                                      np.random.default_rng(0))
            feed = {name: obs[name] for name in policy.input_names}
            single = {key: value[0] for key, value in obs.items()}
            graph = policy_graph(network, *bounds)
            tensors = tuple(torch.from_numpy(feed[name]) for name in policy.input_names)
            session, int8_session = policy.session, int8.session
            sides: dict[str, tuple[Callable[[], Any], list[float]]] = {
                "onnx": (lambda: session.run(None, feed), []),
                "int8": (lambda: int8_session.run(None, feed), []),
                "torch": (lambda: graph(*tensors), []),
                "decide": (lambda: policy.decide(single), []),
            }
            if earlier is not None:
                earlier_feed = {name: obs[name] for name in earlier.input_names}
                earlier_session = earlier.session
                sides["baseline"] = (lambda: earlier_session.run(None, earlier_feed), [])
            with torch.inference_mode():
                for call, _ in sides.values():
                    for _ in range(_WARMUP):
                        call()
                start = time.perf_counter()
                while time.perf_counter() - start < seconds or not sides["torch"][1]:
                    for call, samples in sides.values():
                        _timed_block(call, samples)
    finally:
        torch.set_num_threads(previous_threads)
    onnx_p50, onnx_p99 = _percentiles(sides["onnx"][1])
    int8_p50, int8_p99 = _percentiles(sides["int8"][1])
    torch_p50, torch_p99 = _percentiles(sides["torch"][1])
    decide_p50, decide_p99 = _percentiles(sides["decide"][1])
    compared: dict[str, Any] = {}
    if baseline is not None:
        baseline_p50, baseline_p99 = _percentiles(sides["baseline"][1])
        compared = {"baseline_file": str(baseline), "baseline_p50_ms": baseline_p50,
                    "baseline_p99_ms": baseline_p99,
                    "onnx_vs_baseline_p50": onnx_p50 / baseline_p50,
                    "int8_vs_baseline_p50": int8_p50 / baseline_p50}
    return {
        "onnx_p50_ms": onnx_p50,
        "onnx_p99_ms": onnx_p99,
        "torch_p50_ms": torch_p50,
        "torch_p99_ms": torch_p99,
        "speedup_p50": torch_p50 / onnx_p50,
        "int8_p50_ms": int8_p50,
        "int8_p99_ms": int8_p99,
        "int8_vs_onnx_p50": int8_p50 / onnx_p50,
        "int8_vs_onnx_p99": int8_p99 / onnx_p99,
        "int8_format": quantized.format,
        "int8_per_channel": quantized.per_channel,
        "int8_agreement": quantized.agreement,
        "int8_agreement_observations": quantized.agreement_observations,
        "decide_p50_ms": decide_p50,
        "decide_p99_ms": decide_p99,
        "threads": config.intra_op_threads,
        "image_size": camera.image_size,
        "views": training.views,
        "batch": 1,
        "graph_optimization": config.graph_optimization,
        "allow_spinning": config.allow_spinning,
        "samples_per_side": len(sides["onnx"][1]),
        "model": source,
        "onnxruntime_version": onnxruntime.__version__,
        "torch_version": torch.__version__,
        **compared,
        **cpu_description(),
    }
