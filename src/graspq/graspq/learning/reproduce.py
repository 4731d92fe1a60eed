"""Reproduce the paper's comparison: {qlearning, dqn, ddqn} x {single, multi} x seeds.

Each cell is one ``graspq train`` run in its own directory; finished runs are skipped and
interrupted ones resumed, so the matrix can be stopped and started again at will. Each cell
is a training subprocess (one core, one torch thread): ``--parallel`` of them at a time on
this machine, or Ray tasks spread over a cluster with ``--ray ADDRESS`` (the nodes then need
this checkout at the same path, and ``--root`` on a file system they share). When a run is
done it is evaluated greedily on a fixed object-balanced episode set (``final_eval.json``),
and the report (docs/results.md with its figures in docs/figures/results/, and the
hand-written analysis in docs/results_notes.md appended) is written from whatever has
finished, but never over a report that counts finished runs the run root lacks.

Usage: tools/reproduce_paper [--config F] [--env-config F] [--seeds 0 1] [--episodes 3000]
[--parallel 2] [--ray ADDRESS] [--cells ...]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import functools
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from graspq.config import yaml_value
from graspq.learning.settings import TrainingConfig
from graspq.learning.timing import read_sessions
from graspq.learning.trainer import read_log
from graspq.sim.settings import OBJECT_TYPES

LEARNERS = ("qlearning", "dqn", "ddqn")
VIEWS = ("single", "multi")
FINAL_EVAL_EPISODES = 300  # 100 per object type: one standard error of about 2.2 points at 95 %
FINAL_EVAL_SEED = 2_000_000
REPLAY_ONLY_KEYS = frozenset({"demo_episodes", "demo_epsilon", "demo_fraction",
                              "demo_unturned_branches", "expert_turn_ties",
                              "demo_margin", "expert_labels", "margin_balance",
                              "pretrain_updates", "n_step", "replay_capacity", "batch_size",
                              "learning_starts", "target_update_every", "pose_loss_weight",
                              "pose_yaw_weight", "turn_margin_weight",
                              "updates_per_step", "close_replay_rows",
                              "advantage_learning", "hindsight_close_labels",
                              "prioritized_replay.alpha"})


def run_dir(root: Path, learner: str, views: str, seed: int) -> Path:
    """Directory of one cell's run."""
    return root / f"{learner}-{views}-s{seed}"


def episodes_done(directory: Path) -> int:
    """Completed episodes according to the run's latest checkpoint (0 if none)."""
    latest = directory / "checkpoints" / "latest.json"
    if not latest.exists():
        return 0
    return int(json.loads(latest.read_text())["episode"])


# The checkout the cells run in (a Ray worker's cwd is its own); None where graspq is
# installed rather than checked out, and the subprocesses find it on their own.
_REPO: Path | None = Path(__file__).resolve().parents[4]
if not (_REPO / "config").is_dir():
    _REPO = None


def _graspq(*args: str) -> list[str]:
    return [sys.executable, "-m", "graspq.cli", *args]


def config_value(config: TrainingConfig, key: str) -> Any:
    """The value of a ``dotted.key`` in ``config``."""
    value: Any = config
    for part in key.split("."):
        value = getattr(value, part)
    return value


def applicable(assignments: list[str], learner: str) -> list[str]:
    """The overrides for ``learner``. The Q-learning baseline learns from its latest
    transition only, so its replay-only settings (demonstrations, n-step, the margin and pose
    losses) go back to their defaults, whatever the config file or ``--set`` give them: one
    replay recipe (config/training_demos.yaml) then runs every cell of the matrix."""
    if learner != "qlearning":
        return assignments
    defaults = TrainingConfig()
    resets = [f"{key}={yaml_value(config_value(defaults, key))}"
              for key in sorted(REPLAY_ONLY_KEYS)]
    return resets + [a for a in assignments if a.partition("=")[0] not in REPLAY_ONLY_KEYS]


def train_and_evaluate(root: Path, config: Path, learner: str, views: str, seed: int,
                       episodes: int, extra: list[str],
                       eval_episodes: int = FINAL_EVAL_EPISODES,
                       env_config: Path | None = None) -> dict[str, Any]:
    """Train (or resume, or skip) one cell, then evaluate it once on ``eval_episodes``
    (again if the saved evaluation used another count); returns its final eval.
    ``env_config``: the scene's config file (default: the built-in scene)."""
    directory = run_dir(root, learner, views, seed)
    extra = applicable(extra, learner)
    scene = ["--env-config", str(env_config)] if env_config is not None else []
    command = _graspq("train", "--config", str(config), *scene, "--learner", learner, "--views",
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
            result = subprocess.run(command, stdout=log, stderr=log, env=env, check=False,
                                    cwd=_REPO)
        if result.returncode != 0:
            raise RuntimeError(f"{directory}: training failed (exit {result.returncode}); "
                               f"see {directory / 'train.log'}")
        if episodes_done(directory) < episodes:  # stopped by a signal, with a checkpoint
            raise RuntimeError(f"{directory}: training stopped at episode "
                               f"{episodes_done(directory)} of {episodes}; run the same "
                               "command again to resume it")
    final = directory / "final_eval.json"
    saved = json.loads(final.read_text()) if final.exists() else {}
    if (saved.get("episodes_trained"), saved.get("episodes")) != (episodes, eval_episodes):
        result = subprocess.run(
            _graspq("eval", "--checkpoint", str(directory), "--episodes",
                    str(eval_episodes), "--seed", str(FINAL_EVAL_SEED), "--json"),
            capture_output=True, text=True, check=False, cwd=_REPO,
            env=dict(os.environ, OMP_NUM_THREADS="1"))
        if result.returncode != 0:
            raise RuntimeError(f"{directory}: evaluation failed: {result.stderr.strip()}")
        report = json.loads(result.stdout)
        report["episodes_trained"] = episodes
        final.write_text(json.dumps(report, indent=1))
    return json.loads(final.read_text())


def end_to_end_seconds(directory: Path) -> float | None:
    """The run's summed ``graspq train`` time, demonstrations, pre-training, evaluations and
    checkpoints included (which train.csv's ``wall_s`` leaves out): every session its
    ``timing.json`` records, resumed ones and those started outside this tool included.
    Runs from before ``timing.json`` fall back on the ``wall_clock.json`` this tool wrote
    then. None before the first session."""
    sessions = read_sessions(directory)
    if sessions:
        return sum(float(session["total_s"]) for session in sessions)
    path = directory / "wall_clock.json"
    return json.loads(path.read_text())["train_seconds"] if path.exists() else None


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


def _cell_row(learner: str, views: str, directories: list[Path], reports: list[dict],
              seeds: list[int], episodes: int) -> str:
    """One table row: a cell's finished runs, mean ± std over their seeds."""
    per_object = [_mean_std([r["per_object"][k]["success_rate"] for r in reports
                             if k in r["per_object"]]) for k in OBJECT_TYPES]
    steps = [r["mean_steps_to_success"] for r in reports
             if r["mean_steps_to_success"] is not None]
    reach = {t: [first_episode_reaching(d, t) for d in directories] for t in (0.8, 0.9)}
    hours = [h for h in (_wall_hours(d) for d in directories) if h is not None]
    end_to_end = [s / 3600 for s in map(end_to_end_seconds, directories) if s is not None]
    # A run may have been trained for another budget than this invocation's (a longer
    # or shorter run evaluated into the same report): say what each row is.
    trained = sorted({r.get("episodes_trained", episodes) for r in reports})
    return (f"| {learner} | {views} | {len(reports)}/{len(seeds)} | "
            f"{', '.join(map(str, trained)) or 'n/a'} | "
            f"{_mean_std([r['success_rate'] for r in reports])} | " + " | ".join(per_object)
            + f" | {_fmt(np.mean(steps) if steps else None, '.1f')} | "
            + " | ".join(", ".join("never" if e is None else str(e) for e in reach[t])
                         or "n/a" for t in (0.8, 0.9))
            + f" | {_fmt(np.mean(hours) if hours else None, '.2f')} | "
            + f"{_fmt(np.mean(end_to_end) if end_to_end else None, '.2f')} |")


_TABLE_ROW = re.compile(rf"^\| ({'|'.join(LEARNERS)}) \| ({'|'.join(VIEWS)}) \| (\d+)/\d+ \|",
                        re.MULTILINE)


class ReportLosesRunsError(RuntimeError):
    """The report on disk holds finished runs that the run root does not."""


def runs_in_report(report: Path) -> dict[tuple[str, str], int]:
    """Finished runs per (learner, views) that a report already on disk counts."""
    if not report.exists():
        return {}
    return {(learner, views): int(done)
            for learner, views, done in _TABLE_ROW.findall(report.read_text())}


def write_report(root: Path, out: Path, seeds: list[int], episodes: int, command: str,
                 cells: list[tuple[str, str]], overwrite: bool = False) -> None:
    """docs/results.md (and its figures) from every finished cell.

    Refuses (ReportLosesRunsError, nothing written) where the report on disk counts more
    finished runs of a cell than ``root`` holds, as on a new machine without the runs
    behind a committed report, unless ``overwrite``."""
    from graspq.learning.plots import plot_runs

    finished_by_cell = {}
    for learner, views in cells:
        directories = [run_dir(root, learner, views, seed) for seed in seeds]
        finished_by_cell[learner, views] = [d for d in directories
                                            if (d / "final_eval.json").exists()]
    # A cell this invocation leaves out would lose its row: it counts as no runs.
    kept = {cell: len(directories) for cell, directories in finished_by_cell.items()}
    lost = [f"{learner}-{views}: {count} in the report, {kept.get((learner, views), 0)} here"
            for (learner, views), count in runs_in_report(out).items()
            if kept.get((learner, views), 0) < count]
    if lost and not overwrite:
        raise ReportLosesRunsError(
            f"{out} not rewritten: it counts finished runs that {root} with these seeds and "
            "cells lacks (" + "; ".join(lost) + "). Bring those runs back, write elsewhere "
            "with --report, or pass --overwrite-report")
    rows, finished, evaluated = [], [], set()
    for (learner, views), directories in finished_by_cell.items():
        reports = [json.loads((d / "final_eval.json").read_text()) for d in directories]
        rows.append(_cell_row(learner, views, directories, reports, seeds, episodes))
        finished += directories
        evaluated |= {r["episodes"] for r in reports}
    lines = [
        "# Results: Q-learning vs DQN vs Double DQN, single- vs multi-view",
        "",
        f"Generated by `{command}` on {datetime.date.today()} ({platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}).",
        "",
        f"Scale: {episodes} training episodes per run (unless the 'episodes' column says "
        f"otherwise), seeds {seeds}; final greedy evaluation on "
        f"{', '.join(map(str, sorted(evaluated))) or 'no'} episodes (cycling through the "
        f"objects, seeds {FINAL_EVAL_SEED}..., the same for every run). Mean ± std over "
        "seeds where there are several. 'Episodes to 80 %/90 %' is the first periodic "
        "greedy evaluation (`eval_every`) at or above that success rate. 'Hours per run' is "
        "the training episodes alone (train.csv); 'end to end' adds the demonstrations, "
        "pre-training, evaluations and checkpoints (every `graspq train` session of the "
        "run, resumed ones included, as its timing.json records them; beside another run "
        "when `--parallel` is 2).",
        "",
        "| learner | views | runs done | episodes | overall | " + " | ".join(OBJECT_TYPES)
        + " | steps to success | episodes to 80 % | episodes to 90 % | hours per run "
        "| end to end |",
        "|---|---|---|---|---|" + "---|" * len(OBJECT_TYPES) + "---|---|---|---|---|",
        *rows,
    ]
    if finished:
        figures_dir = out.parent / "figures" / out.stem  # one folder per report
        plot_runs(finished, figures_dir)
        lines += ["", f"![learning curves](figures/{out.stem}/learning_curves.png)", "",
                  f"![per-object success](figures/{out.stem}/per_object_success.png)"]
    notes = out.parent / f"{out.stem}_notes.md"
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


def run_cells(jobs: list[tuple[str, str, int]], args: argparse.Namespace,
              after_each: Any) -> list[str]:
    """Train and evaluate every cell, ``after_each()`` as each one ends: as Ray tasks on the
    ``--ray`` cluster, else ``--parallel`` at a time in threads of this process (each cell
    waits on its own training subprocess, so a local Ray instance would add nothing but a
    raylet that can die under a run that is still training). Returns the failures'
    messages."""
    root, config = args.root.resolve(), args.config.resolve()
    env_config = args.env_config.resolve() if args.env_config is not None else None
    cell_args = {job: (root, config, *job, args.episodes, args.set, args.eval_episodes,
                       env_config) for job in jobs}
    failures: list[str] = []

    def finished(job: tuple[str, str, int], report: Any) -> None:
        learner, views, seed = job
        try:
            report = report()
            print(f"{learner}-{views}-s{seed}: greedy success {report['success_rate']:.1%}",
                  flush=True)
        except RuntimeError as exc:  # a Ray task's RuntimeError arrives as one (RayTaskError)
            failures.append(str(exc).splitlines()[-1])
            print(exc, file=sys.stderr, flush=True)
        after_each()

    if args.ray:
        _run_on_ray(cell_args, args.ray, finished)
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.parallel) as pool:
            pending = {pool.submit(train_and_evaluate, *arguments): job
                       for job, arguments in cell_args.items()}
            for done in concurrent.futures.as_completed(pending):
                finished(pending[done], done.result)
    return failures


def _run_on_ray(cell_args: dict[tuple[str, str, int], tuple], address: str,
                finished: Any) -> None:
    """Each cell as a Ray task (one CPU) on the cluster at ``address``."""
    import ray

    ray.init(address=address, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}})
    try:
        cell = ray.remote(num_cpus=1, max_retries=0)(train_and_evaluate)
        pending = {cell.remote(*arguments): job for job, arguments in cell_args.items()}
        while pending:
            (done,), _ = ray.wait(list(pending), num_returns=1)
            finished(pending.pop(done), functools.partial(ray.get, done))
    finally:
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    """Run the matrix (resumably) and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config/training.yaml"))
    parser.add_argument("--env-config", type=Path,
                        help="the scene's config file for every run (default: built-in; "
                        "the reward-only recipe's is config/env_reward_only.yaml)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--episodes", type=int, default=3000)
    parser.add_argument("--parallel", type=int, default=2,
                        help="trainings side by side on this machine (one core each)")
    parser.add_argument("--ray", metavar="ADDRESS",
                        help="run the cells on this Ray cluster (auto, or a head's "
                        "HOST:PORT) instead of --parallel tasks on this machine")
    parser.add_argument("--eval-episodes", type=int, default=FINAL_EVAL_EPISODES,
                        help="final greedy evaluation episodes per run (a run evaluated "
                        "on another count is evaluated again)")
    parser.add_argument("--cells", nargs="+", metavar="LEARNER-VIEWS",
                        default=[f"{lr}-{v}" for lr in LEARNERS for v in VIEWS],
                        help="subset of the matrix, e.g. ddqn-multi dqn-single")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="training config override for every run (repeatable)")
    parser.add_argument("--root", type=Path, default=Path("runs/paper"))
    parser.add_argument("--report", type=Path, default=Path("docs/results.md"))
    parser.add_argument("--report-only", action="store_true",
                        help="write the report from finished runs, train nothing")
    parser.add_argument("--overwrite-report", action="store_true",
                        help="write the report even where it would count fewer finished "
                        "runs of a cell than the report on disk (refused otherwise)")
    args = parser.parse_args(argv)
    cells = []
    for cell in args.cells:
        learner, _, views = cell.partition("-")
        if learner not in LEARNERS or views not in VIEWS:
            parser.error(f"unknown cell {cell!r} (LEARNER-VIEWS, e.g. ddqn-multi)")
        cells.append((learner, views))
    command = "tools/reproduce_paper " + shlex.join(argv if argv is not None else sys.argv[1:])

    def report() -> bool:
        try:
            write_report(args.root, args.report, args.seeds, args.episodes, command, cells,
                         overwrite=args.overwrite_report)
        except ReportLosesRunsError as exc:
            print(exc, file=sys.stderr, flush=True)
            return False
        return True

    if not args.report_only:
        jobs = [(learner, views, seed) for seed in args.seeds for learner, views in cells]
        try:
            failures = run_cells(jobs, args, report)
        except KeyboardInterrupt:  # the trainings got the Ctrl-C too and checkpointed
            print("interrupted: the runs stopped with a checkpoint; run the same command "
                  "again to resume them", file=sys.stderr, flush=True)
            return 130
        if failures:
            return 1
    if not report():
        return 2
    print(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    # A job a shell starts in the background begins with Ctrl-C ignored, and Python then
    # raises no KeyboardInterrupt. The trainings set their own handler and stop with a
    # checkpoint, so the driver must hear it as well, or it reports their stop as a failure.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
