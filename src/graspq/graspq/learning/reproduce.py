"""Reproduce the paper's comparison: {qlearning, dqn, ddqn} x {single, multi} x seeds.

Each cell is one ``graspq train`` run in its own directory; finished runs are skipped and
interrupted ones resumed, so the matrix can be stopped and started again at will. Runs go
``--parallel`` at a time, each with one torch thread. When a run is done it is evaluated
greedily on a fixed object-balanced episode set (``final_eval.json``), and the report
(docs/results.md with its figures in docs/figures/results/, and the hand-written analysis in
docs/results_notes.md appended) is written from whatever has finished.

Usage: tools/reproduce_paper [--seeds 0 1] [--episodes 3000] [--parallel 2] [--cells ...]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from graspq.learning.trainer import read_log
from graspq.sim.settings import OBJECT_TYPES

LEARNERS = ("qlearning", "dqn", "ddqn")
VIEWS = ("single", "multi")
FINAL_EVAL_EPISODES = 90  # 30 per object type
FINAL_EVAL_SEED = 2_000_000
REPLAY_ONLY_KEYS = frozenset({"demo_episodes", "demo_epsilon", "demo_fraction",
                              "demo_unturned_branches", "expert_turn_ties",
                              "demo_margin", "expert_labels", "margin_balance",
                              "pretrain_updates", "n_step", "replay_capacity", "batch_size",
                              "learning_starts", "target_update_every", "pose_loss_weight",
                              "pose_yaw_weight", "turn_margin_weight"})


def run_dir(root: Path, learner: str, views: str, seed: int) -> Path:
    """Directory of one cell's run."""
    return root / f"{learner}-{views}-s{seed}"


def episodes_done(directory: Path) -> int:
    """Completed episodes according to the run's latest checkpoint (0 if none)."""
    latest = directory / "checkpoints" / "latest.json"
    if not latest.exists():
        return 0
    return int(json.loads(latest.read_text())["episode"])


def _graspq(*args: str) -> list[str]:
    return [sys.executable, "-m", "graspq.cli", *args]


def applicable(assignments: list[str], learner: str) -> list[str]:
    """The overrides that apply to ``learner``: the Q-learning baseline learns from its latest
    transition only, so replay-only settings (demonstrations, n-step) are left out for it."""
    if learner != "qlearning":
        return assignments
    return [a for a in assignments if a.partition("=")[0] not in REPLAY_ONLY_KEYS]


def train_and_evaluate(root: Path, config: Path, learner: str, views: str, seed: int,
                       episodes: int, extra: list[str]) -> dict[str, Any]:
    """Train (or resume, or skip) one cell, then evaluate it once; returns its final eval."""
    directory = run_dir(root, learner, views, seed)
    extra = applicable(extra, learner)
    command = _graspq("train", "--config", str(config), "--learner", learner, "--views",
                      views, "--seed", str(seed), "--episodes", str(episodes), "--out",
                      str(directory), "--set", "torch_threads=1", "--json",
                      *[item for assignment in extra for item in ("--set", assignment)])
    if episodes_done(directory) < episodes:
        if episodes_done(directory) > 0:
            command.append("--resume")
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "train.log", "a") as log:
            log.write(f"$ {shlex.join(command)}\n")
            log.flush()
            env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
            result = subprocess.run(command, stdout=log, stderr=log, env=env, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{directory}: training failed (exit {result.returncode}); "
                               f"see {directory / 'train.log'}")
    final = directory / "final_eval.json"
    if not final.exists() or json.loads(final.read_text()).get("episodes_trained") != episodes:
        result = subprocess.run(
            _graspq("eval", "--checkpoint", str(directory), "--episodes",
                    str(FINAL_EVAL_EPISODES), "--seed", str(FINAL_EVAL_SEED), "--json"),
            capture_output=True, text=True, check=False,
            env=dict(os.environ, OMP_NUM_THREADS="1"))
        if result.returncode != 0:
            raise RuntimeError(f"{directory}: evaluation failed: {result.stderr.strip()}")
        report = json.loads(result.stdout)
        report["episodes_trained"] = episodes
        final.write_text(json.dumps(report, indent=1))
    return json.loads(final.read_text())


def first_episode_reaching(directory: Path, threshold: float) -> int | None:
    """First evaluated episode whose greedy success reached ``threshold`` (None if never)."""
    for row in read_log(directory / "eval.csv"):
        if float(row["success_rate"]) >= threshold:
            return int(row["episode"])
    return None


def _wall_hours(directory: Path) -> float | None:
    rows = read_log(directory / "train.csv")
    return float(rows[-1]["wall_s"]) / 3600 if rows else None


def _mean_std(values: list[float]) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.1%}"
    return f"{np.mean(values):.1%} ± {np.std(values):.1%}"


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def write_report(root: Path, out: Path, seeds: list[int], episodes: int, command: str,
                 cells: list[tuple[str, str]]) -> None:
    """docs/results.md (and its figures) from every finished cell."""
    from graspq.learning.plots import plot_runs

    figures_dir = out.parent / "figures" / out.stem  # one folder per report
    lines = [
        "# Results: Q-learning vs DQN vs Double DQN, single- vs multi-view",
        "",
        f"Generated by `{command}` on {datetime.date.today()} ({platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}).",
        "",
        f"Scale: {episodes} training episodes per run (unless the 'episodes' column says "
        f"otherwise), seeds {seeds}; final greedy "
        f"evaluation on {FINAL_EVAL_EPISODES} episodes ({FINAL_EVAL_EPISODES // 3} per "
        f"object, seeds {FINAL_EVAL_SEED}..., the same for every run). Mean ± std over seeds "
        "where there are several. 'Episodes to 80 %/90 %' is the first periodic greedy "
        "evaluation (`eval_every`) at or above that success rate.",
        "",
        "| learner | views | runs done | episodes | overall | " + " | ".join(OBJECT_TYPES)
        + " | steps to success | episodes to 80 % | episodes to 90 % | hours per run |",
        "|---|---|---|---|---|" + "---|" * len(OBJECT_TYPES) + "---|---|---|---|",
    ]
    finished = []
    for learner, views in cells:
        reports, directories = [], []
        for seed in seeds:
            directory = run_dir(root, learner, views, seed)
            final = directory / "final_eval.json"
            if final.exists():
                reports.append(json.loads(final.read_text()))
                directories.append(directory)
        finished += directories
        per_object = [_mean_std([r["per_object"][k]["success_rate"] for r in reports
                                 if k in r["per_object"]]) for k in OBJECT_TYPES]
        steps = [r["mean_steps_to_success"] for r in reports
                 if r["mean_steps_to_success"] is not None]
        reach = {t: [first_episode_reaching(d, t) for d in directories] for t in (0.8, 0.9)}
        hours = [h for h in (_wall_hours(d) for d in directories) if h is not None]
        # A run may have been trained for another budget than this invocation's (a longer
        # or shorter run evaluated into the same report): say what each row is.
        trained = sorted({r.get("episodes_trained", episodes) for r in reports})
        lines.append(
            f"| {learner} | {views} | {len(reports)}/{len(seeds)} | "
            f"{', '.join(map(str, trained)) or 'n/a'} | "
            f"{_mean_std([r['success_rate'] for r in reports])} | " + " | ".join(per_object)
            + f" | {_fmt(np.mean(steps) if steps else None, '.1f')} | "
            + " | ".join(", ".join("never" if e is None else str(e) for e in reach[t])
                         or "n/a" for t in (0.8, 0.9))
            + f" | {_fmt(np.mean(hours) if hours else None, '.2f')} |")
    if finished:
        plot_runs(finished, figures_dir)
        lines += ["", f"![learning curves](figures/{out.stem}/learning_curves.png)", "",
                  f"![per-object success](figures/{out.stem}/per_object_success.png)"]
    notes = out.parent / f"{out.stem}_notes.md"
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Run the matrix (resumably) and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config/training.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--episodes", type=int, default=3000)
    parser.add_argument("--parallel", type=int, default=2, help="trainings side by side")
    parser.add_argument("--cells", nargs="+", metavar="LEARNER-VIEWS",
                        default=[f"{lr}-{v}" for lr in LEARNERS for v in VIEWS],
                        help="subset of the matrix, e.g. ddqn-multi dqn-single")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="training config override for every run (repeatable)")
    parser.add_argument("--root", type=Path, default=Path("runs/paper"))
    parser.add_argument("--report", type=Path, default=Path("docs/results.md"))
    parser.add_argument("--report-only", action="store_true",
                        help="write the report from finished runs, train nothing")
    args = parser.parse_args(argv)
    cells = []
    for cell in args.cells:
        learner, _, views = cell.partition("-")
        if learner not in LEARNERS or views not in VIEWS:
            parser.error(f"unknown cell {cell!r} (LEARNER-VIEWS, e.g. ddqn-multi)")
        cells.append((learner, views))
    command = "tools/reproduce_paper " + shlex.join(argv if argv is not None else sys.argv[1:])
    if not args.report_only:
        jobs = [(learner, views, seed) for seed in args.seeds for learner, views in cells]
        failures = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.parallel) as pool:
            futures = {pool.submit(train_and_evaluate, args.root, args.config, learner, views,
                                   seed, args.episodes, args.set): (learner, views, seed)
                       for learner, views, seed in jobs}
            for future in concurrent.futures.as_completed(futures):
                learner, views, seed = futures[future]
                try:
                    report = future.result()
                    print(f"{learner}-{views}-s{seed}: greedy success "
                          f"{report['success_rate']:.1%}", flush=True)
                except RuntimeError as exc:
                    failures.append(str(exc))
                    print(exc, file=sys.stderr, flush=True)
                write_report(args.root, args.report, args.seeds, args.episodes, command, cells)
        if failures:
            return 1
    write_report(args.root, args.report, args.seeds, args.episodes, command, cells)
    print(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
