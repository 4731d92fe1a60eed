"""tools/reproduce_paper: runs the matrix resumably and writes the report."""

import json

from graspq.config import dump_yaml
from graspq.learning import reproduce
from graspq.learning.settings import TRAINING_NODE_NAME, NetworkConfig, TrainingConfig

TINY = TrainingConfig(batch_size=4, replay_capacity=200, learning_starts=4, eval_every=1,
                      eval_episodes=3, checkpoint_every=1, torch_threads=1,
                      network=NetworkConfig(stream_channels=4, joint_channels=4, fc_width=8,
                                            motor_width=4))


def test_matrix_resumes_skips_finished_cells_and_writes_the_report(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "FINAL_EVAL_EPISODES", 3)
    config = tmp_path / "training.yaml"
    config.write_text(dump_yaml(TINY, TRAINING_NODE_NAME))
    root, report = tmp_path / "runs", tmp_path / "docs" / "results.md"
    args = ["--config", str(config), "--seeds", "0", "--episodes", "2", "--parallel", "2",
            "--cells", "ddqn-multi", "qlearning-single", "--root", str(root),
            "--report", str(report), "--set", "n_step=1"]
    # Stop after one episode (as if interrupted), then run again: the runs resume.
    assert reproduce.main([*args[:4], "--episodes", "1", *args[6:]]) == 0
    assert reproduce.episodes_done(root / "ddqn-multi-s0") == 1
    assert reproduce.main(args) == 0
    assert "--resume" in (root / "ddqn-multi-s0" / "train.log").read_text()
    for cell in ("ddqn-multi-s0", "qlearning-single-s0"):
        final = json.loads((root / cell / "final_eval.json").read_text())
        assert final["episodes"] == 3 and final["episodes_trained"] == 2
        assert reproduce.episodes_done(root / cell) == 2
    text = report.read_text()
    assert "| ddqn | multi | 1/1 | 2 |" in text and "| qlearning | single | 1/1 | 2 |" in text
    assert (tmp_path / "docs" / "figures" / "results" / "learning_curves.png").stat().st_size > 0
    # A second invocation trains nothing: the finished runs are skipped.
    log = (root / "ddqn-multi-s0" / "train.log").read_text()
    assert reproduce.main(args) == 0
    assert (root / "ddqn-multi-s0" / "train.log").read_text() == log
