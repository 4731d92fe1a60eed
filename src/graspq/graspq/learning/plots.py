"""``graspq plot``: learning curves (paper Fig. 5) and per-object success bars (Fig. 6)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from graspq.learning.settings import TRAINING_NODE_NAME
from graspq.learning.trainer import read_log
from graspq.sim.settings import OBJECT_TYPES


def run_label(run_dir: Path) -> str:
    """``learner-views-sSEED`` from a run's saved training config (with the folder name where
    it differs), else the folder name."""
    config_path = run_dir / "training.yaml"
    if not config_path.exists():
        return run_dir.name
    params = yaml.safe_load(config_path.read_text())[TRAINING_NODE_NAME]["ros__parameters"]
    summary = f"{params['learner']}-{params['views']}-s{params['seed']}"
    return summary if run_dir.name == summary else f"{run_dir.name} ({summary})"


def _rolling(values: np.ndarray, window: int) -> np.ndarray:
    if values.size == 0:
        return values
    kernel = np.ones(min(window, values.size))
    sums = np.convolve(values, kernel, mode="full")[: values.size]
    counts = np.convolve(np.ones_like(values), kernel, mode="full")[: values.size]
    return sums / counts


def plot_runs(run_dirs: list[Path], out_dir: Path, window: int = 100) -> list[Path]:
    """Write ``learning_curves.png`` and ``per_object_success.png``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for run_dir in run_dirs:
        if not (run_dir / "train.csv").exists():
            raise FileNotFoundError(f"{run_dir}: no train.csv (not a training run directory)")
    out_dir.mkdir(parents=True, exist_ok=True)
    figure, (success_ax, steps_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    for run_dir in run_dirs:
        label = run_label(run_dir)
        rows = read_log(run_dir / "train.csv")
        episodes = np.array([int(r["episode"]) for r in rows])
        success = np.array([r["outcome"] == "success" for r in rows], dtype=float)
        steps = np.array([int(r["steps"]) for r in rows], dtype=float)
        line, = success_ax.plot(episodes, _rolling(success, window), label=f"{label} (train)")
        evals = read_log(run_dir / "eval.csv")
        if evals:
            success_ax.plot([int(r["episode"]) for r in evals],
                            [float(r["success_rate"]) for r in evals], "o--",
                            color=line.get_color(), label=f"{label} (greedy eval)")
        # The paper's Fig. 5 plots steps to success: the length of the successful episodes.
        succeeded = success.astype(bool)
        steps_ax.plot(episodes[succeeded], _rolling(steps[succeeded], window),
                      color=line.get_color(), label=label)
        eval_steps = [(int(r["episode"]), float(r["mean_steps_to_success"])) for r in evals
                      if r.get("mean_steps_to_success")]
        if eval_steps:
            steps_ax.plot(*zip(*eval_steps, strict=True), "o--", color=line.get_color())
    success_ax.set(xlabel="episode", ylabel=f"success rate (mean of last {window})",
                   ylim=(-0.02, 1.02), title="Grasp success")
    steps_ax.set(xlabel="episode",
                 ylabel=f"steps to success (mean of the last {window} successes)",
                 title="Steps to success (dashed: greedy eval)")
    for ax in (success_ax, steps_ax):
        ax.grid(alpha=0.3)
    success_ax.legend(fontsize=7)
    figure.tight_layout()
    curves = out_dir / "learning_curves.png"
    figure.savefig(curves, dpi=120)
    plt.close(figure)

    figure, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(1, len(run_dirs))
    positions = np.arange(len(OBJECT_TYPES))
    for index, run_dir in enumerate(run_dirs):
        final = run_dir / "final_eval.json"
        if final.exists():  # the larger evaluation tools/reproduce_paper makes at the end
            report = json.loads(final.read_text())
            values = [report["per_object"].get(kind, {}).get("success_rate", 0.0)
                      for kind in OBJECT_TYPES]
            note = f"final eval, {report['episodes']} episodes"
        else:
            evals = read_log(run_dir / "eval.csv")
            if not evals:
                continue
            values = [float(evals[-1][kind] or 0.0) for kind in OBJECT_TYPES]
            note = f"eval at episode {evals[-1]['episode']}"
        ax.bar(positions + index * width, values, width,
               label=f"{run_label(run_dir)} ({note})")
    ax.set_xticks(positions + width * (len(run_dirs) - 1) / 2, OBJECT_TYPES)
    ax.set(ylabel="greedy success rate", ylim=(0, 1.05), title="Success per object")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    bars = out_dir / "per_object_success.png"
    figure.savefig(bars, dpi=120)
    plt.close(figure)
    return [curves, bars]
