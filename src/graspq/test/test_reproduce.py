"""tools/reproduce_paper: runs the matrix resumably and writes the report."""

import dataclasses
import json
from pathlib import Path

import pytest

from graspq.config import ConfigError, apply_overrides, dump_yaml, load_config
from graspq.learning import reproduce
from graspq.learning.settings import TRAINING_NODE_NAME, NetworkConfig, TrainingConfig

# n_step 3 is a replay setting: the Q-learning cell must run with its reset.
TINY = TrainingConfig(batch_size=4, replay_capacity=200, learning_starts=4, eval_every=1,
                      eval_episodes=3, checkpoint_every=1, torch_threads=1, n_step=3,
                      network=NetworkConfig(stream_channels=4, joint_channels=4, fc_width=8,
                                            motor_width=4))
RECIPE = Path(__file__).resolve().parents[3] / "config" / "training_demos.yaml"


def test_matrix_resumes_skips_finished_cells_and_writes_the_report(tmp_path):
    config = tmp_path / "training.yaml"
    config.write_text(dump_yaml(TINY, TRAINING_NODE_NAME))
    root, report = tmp_path / "runs", tmp_path / "docs" / "results.md"
    args = ["--config", str(config), "--seeds", "0", "--episodes", "2", "--parallel", "2",
            "--cells", "ddqn-multi", "qlearning-single", "--root", str(root),
            "--report", str(report), "--eval-episodes", "3"]
    # Stop after one episode (as if interrupted), then run again: the runs resume.
    assert reproduce.main([*args[:4], "--episodes", "1", *args[6:]]) == 0
    assert reproduce.episodes_done(root / "ddqn-multi-s0") == 1
    assert reproduce.main(args) == 0
    assert "--resume" in (root / "ddqn-multi-s0" / "train.log").read_text()
    for cell in ("ddqn-multi-s0", "qlearning-single-s0"):
        final = json.loads((root / cell / "final_eval.json").read_text())
        assert final["episodes"] == 3 and final["episodes_trained"] == 2
        assert reproduce.episodes_done(root / cell) == 2
        # Both sessions (the interrupted one and its resume) count end to end.
        sessions = json.loads((root / cell / "timing.json").read_text())["sessions"]
        assert len(sessions) == 2
        assert reproduce.end_to_end_seconds(root / cell) == pytest.approx(
            sum(session["total_s"] for session in sessions))
    text = report.read_text()
    assert "| ddqn | multi | 1/1 | 2 |" in text and "| qlearning | single | 1/1 | 2 |" in text
    assert "final greedy evaluation on 3 episodes" in text
    assert (tmp_path / "docs" / "figures" / "results" / "learning_curves.png").stat().st_size > 0
    # A second invocation trains nothing: the finished runs are skipped.
    log = (root / "ddqn-multi-s0" / "train.log").read_text()
    timing = (root / "ddqn-multi-s0" / "timing.json").read_text()
    assert reproduce.main(args) == 0
    assert (root / "ddqn-multi-s0" / "train.log").read_text() == log
    # Another evaluation count evaluates the runs again, still without training.
    # (One cell alone, into a report of its own: the matrix's report keeps both rows.)
    subset = tmp_path / "docs" / "ddqn_multi.md"
    assert reproduce.main([*args[:-1], "6", "--cells", "ddqn-multi",
                           "--report", str(subset)]) == 0
    assert json.loads((root / "ddqn-multi-s0" / "final_eval.json").read_text())["episodes"] == 6
    assert (root / "ddqn-multi-s0" / "timing.json").read_text() == timing
    assert "final greedy evaluation on 6 episodes" in subset.read_text()
    assert "| qlearning | single | 1/1 |" in report.read_text()


def test_end_to_end_time_counts_sessions_started_outside_the_tool(tmp_path):
    """A run resumed with ``graspq train`` directly still counts whole in the report's end to
    end column: the run's own timing.json, not what reproduce_paper itself started."""
    from graspq.learning.timing import append_session

    run = tmp_path / "ddqn-multi-s0"
    run.mkdir()
    assert reproduce.end_to_end_seconds(run) is None
    # A run from before timing.json: the tool's own record.
    (run / "wall_clock.json").write_text(json.dumps({"train_seconds": 120.0}))
    assert reproduce.end_to_end_seconds(run) == 120.0
    for total in (100.0, 2000.5):
        append_session(run, {"phases_s": {}, "other_s": 0.0, "total_s": total})
    assert reproduce.end_to_end_seconds(run) == pytest.approx(2100.5)


def test_report_is_not_rewritten_with_fewer_runs_than_it_counts(tmp_path, capsys):
    """On a machine without the runs behind a committed report, --report-only refuses to
    replace its rows with empty ones, names the cell, and writes nothing."""
    report = tmp_path / "docs" / "results.md"
    report.parent.mkdir()
    committed = ("| learner | views | runs done |\n|---|---|---|\n"
                 "| ddqn | multi | 2/2 | 7000 | 86.0% |\n| dqn | single | 0/2 | n/a |\n")
    report.write_text(committed)
    args = ["--seeds", "0", "1", "--cells", "ddqn-multi", "dqn-single", "--root",
            str(tmp_path / "runs"), "--report", str(report), "--report-only"]
    assert reproduce.runs_in_report(report) == {("ddqn", "multi"): 2, ("dqn", "single"): 0}
    assert reproduce.main(args) == 2
    assert "ddqn-multi: 2 in the report, 0 here" in capsys.readouterr().err
    assert report.read_text() == committed
    assert not (tmp_path / "docs" / "figures").exists()
    # Leaving the cell out would drop its row: refused as well.
    assert reproduce.main([*args[:4], "dqn-single", *args[6:]]) == 2
    assert report.read_text() == committed
    # Asked for, it is written, with the counts the root has.
    assert reproduce.main([*args, "--overwrite-report"]) == 0
    assert "| ddqn | multi | 0/2 |" in report.read_text()
    # Now nothing is lost by writing it again.
    assert reproduce.main(args) == 0


@pytest.mark.parametrize("recipe_file", [RECIPE, RECIPE.with_name("training_reward_only.yaml")])
def test_qlearning_cell_resets_the_replay_recipe_to_the_baseline(recipe_file):
    """Both replay recipes run every cell of the matrix: the demonstrations' and the reward-only
    one (hindsight close labels, and the levers given with --set)."""
    recipe = load_config(TrainingConfig, recipe_file, TRAINING_NODE_NAME)
    assert recipe.n_step > 1  # a replay recipe
    with pytest.raises(ConfigError):
        apply_overrides(recipe, ["learner=qlearning"])
    baseline = apply_overrides(recipe, ["learner=qlearning", *reproduce.applicable(
        ["n_step=5", "demo_episodes=10", "learning_rate=0.001", "advantage_learning=0.9",
         "close_replay_rows=16", "prioritized_replay.alpha=0.6"], "qlearning")])
    defaults = TrainingConfig()
    for key in reproduce.REPLAY_ONLY_KEYS:
        assert (reproduce.config_value(baseline, key)
                == reproduce.config_value(defaults, key)), key
    # Settings every learner shares stay the recipe's, or the override's.
    assert baseline.learning_rate == 0.001 and baseline.network == recipe.network
    assert reproduce.applicable(["n_step=5"], "ddqn") == ["n_step=5"]


def test_a_cell_trains_and_evaluates_on_the_given_scene(tmp_path):
    from graspq.sim.settings import ENV_NODE_NAME, EnvConfig

    config = tmp_path / "training.yaml"
    config.write_text(dump_yaml(TINY, TRAINING_NODE_NAME))
    scene = apply_overrides(EnvConfig(), ["actions.close_mode=descend",
                                          "camera.image_size=32", "max_steps=8"])
    env_config = tmp_path / "env.yaml"
    env_config.write_text(dump_yaml(scene, ENV_NODE_NAME))
    final = reproduce.train_and_evaluate(tmp_path / "runs", config, "ddqn", "multi", 0, 1, [],
                                         eval_episodes=3, env_config=env_config)
    assert final["episodes"] == 3 and final["episodes_trained"] == 1
    run = tmp_path / "runs" / "ddqn-multi-s0"
    assert "--env-config" in (run / "train.log").read_text()
    assert load_config(EnvConfig, run / "env.yaml", ENV_NODE_NAME) == scene


def test_ctrl_c_stops_the_cells_with_a_checkpoint_and_no_evaluation(tmp_path):
    """Ctrl-C reaches the driver and its trainings (one process group): each checkpoints
    and exits, nothing is evaluated as if finished, and the same command resumes it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    config = tmp_path / "training.yaml"
    config.write_text(dump_yaml(dataclasses.replace(TINY, eval_every=1000,
                                                    checkpoint_every=1000),
                                TRAINING_NODE_NAME))
    root = tmp_path / "runs"
    args = ["--config", str(config), "--seeds", "0", "--episodes", "400", "--parallel", "1",
            "--cells", "ddqn-single", "--root", str(root), "--report",
            str(tmp_path / "results.md"), "--eval-episodes", "3"]
    process = subprocess.Popen([sys.executable, "-m", "graspq.learning.reproduce", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    train_csv = root / "ddqn-single-s0" / "train.csv"
    deadline = time.monotonic() + 240
    while not train_csv.exists() or len(train_csv.read_text().splitlines()) < 4:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "training did not get going"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=240)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "run the same command again" in stderr
    stopped_at = reproduce.episodes_done(root / "ddqn-single-s0")
    assert 3 <= stopped_at < 400
    assert not (root / "ddqn-single-s0" / "final_eval.json").exists()
    args[args.index("400")] = str(stopped_at + 1)
    assert reproduce.main(args) == 0
    final = json.loads((root / "ddqn-single-s0" / "final_eval.json").read_text())
    assert final["episodes_trained"] == stopped_at + 1
