"""timing.json: where a run's time went, one session per invocation, kept across resumes."""

import json

from graspq.learning.timing import PHASES, append_session, read_sessions

from .test_trainer import _train


def test_each_session_records_its_phases_and_a_resume_adds_one(tmp_path):
    run = tmp_path / "run"
    _train(run, stop_after=2)
    _train(run, resume=True)
    first, second = read_sessions(run)
    for session in (first, second):
        assert set(session["phases_s"]) == set(PHASES)
        assert all(value >= 0 for value in session["phases_s"].values())
        # Each figure is rounded to 10 ms on its own, so the sum may exceed the total by that much.
        rounding = 0.005 * (len(PHASES) + 1)
        assert session["total_s"] >= sum(session["phases_s"].values()) - rounding
        assert session["precision"] in ("fp32", "bf16") and session["cpu"]
    # The first session recorded and pre-trained on the demonstrations; a resume records them
    # again (they are not checkpointed) but does not pre-train twice.
    assert first["phases_s"]["demonstrations"] > 0 and second["phases_s"]["demonstrations"] > 0
    assert first["phases_s"]["pretraining"] > 0 and second["phases_s"]["pretraining"] == 0
    assert (first["episodes"], second["episodes"]) == (2, 4)
    assert first["phases_s"]["episodes"] > 0 and first["phases_s"]["checkpoints"] > 0


def test_a_damaged_timing_file_is_kept_aside_not_lost(tmp_path):
    (tmp_path / "timing.json").write_text("{not json")
    append_session(tmp_path, {"total_s": 1.0})
    assert (tmp_path / "timing.json.damaged").read_text() == "{not json"
    assert json.loads((tmp_path / "timing.json").read_text()) == {"sessions": [{"total_s": 1.0}]}
