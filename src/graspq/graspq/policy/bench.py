"""``graspq bench policy``: batch-1 decision latency on ONNX Runtime against torch eager.

Both sides run the same model (the exported :class:`graspq.policy.export.PolicyGraph`: raw
observation in, normalisation inside) on the same observation with the same number of CPU
threads, in one process. The two are timed in alternating blocks so that load from other
processes on the machine falls on both alike. ``decide_*`` adds what the servo loop pays on top
of inference: :meth:`OnnxPolicy.decide`'s input checks and the argmax.
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

from graspq.learning.model import GraspQNetwork
from graspq.learning.settings import TrainingConfig
from graspq.policy.export import policy_graph, random_observations, write_policy
from graspq.policy.runtime import OnnxPolicy, PolicyConfig
from graspq.sim.settings import EnvConfig

_BLOCK = 50  # timed calls per side before switching to the other
_WARMUP = 20


def _percentiles(samples_s: list[float]) -> tuple[float, float]:
    ms = np.asarray(samples_s) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _timed_block(call: Callable[[], Any], samples: list[float]) -> None:
    clock = time.perf_counter
    for _ in range(_BLOCK):
        start = clock()
        call()
        samples.append(clock() - start)


def bench_policy(checkpoint: Path | None, seconds: float,
                 config: PolicyConfig) -> dict[str, Any]:
    """Latency percentiles (ms) of ONNX Runtime and torch eager at batch 1.

    Without ``checkpoint``: a freshly initialised GQN of the default training and env
    configs (multi-view, 64x64), weights seeded.
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
            obs = random_observations(1, training.views, camera.image_size, *bounds,
                                      np.random.default_rng(0))
            feed = {name: obs[name] for name in policy.input_names}
            single = {key: value[0] for key, value in obs.items()}
            graph = policy_graph(network, *bounds)
            tensors = tuple(torch.from_numpy(feed[name]) for name in policy.input_names)
            session = policy.session
            sides: dict[str, tuple[Callable[[], Any], list[float]]] = {
                "onnx": (lambda: session.run(None, feed), []),
                "torch": (lambda: graph(*tensors), []),
                "decide": (lambda: policy.decide(single), []),
            }
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
    torch_p50, torch_p99 = _percentiles(sides["torch"][1])
    decide_p50, decide_p99 = _percentiles(sides["decide"][1])
    return {
        "onnx_p50_ms": onnx_p50,
        "onnx_p99_ms": onnx_p99,
        "torch_p50_ms": torch_p50,
        "torch_p99_ms": torch_p99,
        "speedup_p50": torch_p50 / onnx_p50,
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
    }
