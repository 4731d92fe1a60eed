"""``graspq bench env``: how fast the embedded scene steps and renders."""

from __future__ import annotations

import time
from typing import Any

import mujoco
import numpy as np

from graspq.sim.cameras import CameraRig
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.settings import EnvConfig


def _rate(run_once: Any, seconds: float) -> tuple[int, float]:
    """Call ``run_once`` until ``seconds`` have passed; (calls, elapsed seconds)."""
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or calls == 0:
        run_once()
        calls += 1
    return calls, elapsed


def _stock_renderer_pair_ms(env: BaxterGraspEnv, seconds: float) -> float:
    """Baseline: the same two images with ``mujoco.Renderer`` (colour and depth are separate
    renders there, and each image is read back on its own)."""
    size = env.config.camera.image_size
    renderer = mujoco.Renderer(env.model, size, size)
    overhead, wrist = env.scene.overhead_camera, env.scene.wrist_camera

    def render_pair() -> None:
        renderer.update_scene(env.data, camera=overhead)
        renderer.render()
        renderer.enable_depth_rendering()
        renderer.render()
        renderer.disable_depth_rendering()
        renderer.update_scene(env.data, camera=wrist)
        renderer.render()

    try:
        calls, elapsed = _rate(render_pair, seconds)
    finally:
        renderer.close()
    return 1000.0 * elapsed / calls


def _unculled_pair_ms(env: BaxterGraspEnv, seconds: float) -> float:
    """Baseline: the same two images with every geom drawn for both cameras (no culling)."""
    rig = CameraRig(env.scene, env.config.camera.image_size, cull=False)
    try:
        calls, elapsed = _rate(lambda: rig.render(env.data), seconds)
    finally:
        rig.close()
    return 1000.0 * elapsed / calls


def bench_env(config: EnvConfig, seconds: float, seed: int = 0) -> dict[str, Any]:
    """Env steps/s under random actions (resets included), raw physics steps/s, render time,
    and, measured in the same run as baselines (this machine's timings are noisy), the render
    time of the same images without culling and with stock ``mujoco.Renderer``. The env step
    against an earlier commit: ``tools/bench_scene.py``."""
    env = BaxterGraspEnv(config)
    try:
        rng = np.random.default_rng(seed)
        env.reset(seed=seed)
        episodes = [0]

        def env_step() -> None:
            _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            if terminated or truncated:
                episodes[0] += 1
                env.reset(seed=seed + episodes[0])

        steps, env_elapsed = _rate(env_step, seconds)
        env.reset(seed=seed)
        physics_calls, physics_elapsed = _rate(
            lambda: mujoco.mj_step(env.model, env.data, nstep=100), seconds / 2)
        renders, render_elapsed = _rate(lambda: env.cameras.render(env.data), seconds / 2)
        unculled_pair_ms = _unculled_pair_ms(env, seconds / 2)
        baseline_pair_ms = _stock_renderer_pair_ms(env, seconds / 2)
    finally:
        env.close()
    pair_ms = 1000.0 * render_elapsed / renders
    return {
        "env_steps_per_s": steps / env_elapsed,
        "episodes": episodes[0],
        "physics_steps_per_s": 100 * physics_calls / physics_elapsed,
        "render_ms": pair_ms / 2,
        "render_pair_ms": pair_ms,
        "unculled_render_pair_ms": unculled_pair_ms,
        "culling_speedup": unculled_pair_ms / pair_ms,
        "baseline_render_pair_ms": baseline_pair_ms,
        "render_speedup": baseline_pair_ms / pair_ms,
        "image_size": config.camera.image_size,
        "physics_timestep_s": config.physics.timestep_s,
        "action_duration_s": config.physics.action_duration_s,
    }
