"""The training curriculum: its stages, promotion, state, and a real training run."""

import csv
import dataclasses

import pytest

from graspq.config import ConfigError
from graspq.learning.curriculum import Curriculum
from graspq.learning.settings import (
    CurriculumConfig,
    ExplorationConfig,
    NetworkConfig,
    TrainingConfig,
)
from graspq.learning.trainer import Trainer
from graspq.sim.settings import CameraConfig, EnvConfig, SceneConfig

SCENE = SceneConfig()
TINY_ENV = dataclasses.replace(EnvConfig(), camera=CameraConfig(image_size=32), max_steps=12)
TINY = TrainingConfig(
    learner="ddqn", episodes=4, seed=3, batch_size=8, replay_capacity=400, learning_starts=8,
    target_update_every=3, eval_every=2, eval_episodes=3, checkpoint_every=2, torch_threads=1,
    exploration=ExplorationConfig(epsilon_decay_episodes=4),
    network=NetworkConfig(stream_channels=4, joint_channels=4, fc_width=16, motor_width=8))


def test_stages_widen_evenly_to_the_full_task():
    curriculum = Curriculum(CurriculumConfig(stages=3, first_spawn_half_xy_m=0.0,
                                             first_start_height_above_table_m=0.06,
                                             window=2, promote_success=0.5), SCENE)
    seen = []
    while not curriculum.final:
        seen.append(curriculum.reset_options())
        assert curriculum.record(True) is False  # a stage lasts at least a window
        assert curriculum.record(True) is True
    assert [o["spawn_half_xy_m"] for o in seen] == pytest.approx([0.0, 0.03, 0.06])
    assert [o["start_height_above_table_m"] for o in seen] == pytest.approx([0.06, 0.09, 0.12])
    assert curriculum.reset_options() == {}  # the full task: the scene's own values
    assert curriculum.record(True) is False


def test_a_yaw_curriculum_widens_to_every_yaw_a_cube_shows_and_off_draws_as_before():
    curriculum = Curriculum(CurriculumConfig(stages=3, first_object_yaw_half_deg=0.0, window=1),
                            SCENE)
    seen = []
    while not curriculum.final:
        seen.append(curriculum.reset_options()["object_yaw_half_deg"])
        assert "turned at most" in curriculum.describe()
        curriculum.record(True)
    assert seen == pytest.approx([0.0, 15.0, 30.0])
    assert curriculum.reset_options() == {}  # the full task: any yaw
    off = Curriculum(CurriculumConfig(stages=3), SCENE)  # 45 deg: the key stays out
    assert "object_yaw_half_deg" not in off.reset_options()
    assert "turned" not in off.describe()


def test_start_over_object_widens_the_start_offset_and_leaves_the_spawn_whole():
    curriculum = Curriculum(CurriculumConfig(stages=3, start_over_object=True, window=1),
                            SCENE)
    seen = []
    while not curriculum.final:
        options = curriculum.reset_options()
        assert "spawn_half_xy_m" not in options  # objects anywhere in the scene's range
        assert "of the object" in curriculum.describe()
        seen.append(options["start_offset_half_xy_m"])
        curriculum.record(True)
    assert seen == pytest.approx([0.0, 0.03, 0.06])
    assert curriculum.reset_options() == {}  # the full task starts over the centre


def test_promotion_needs_the_success_rate_over_the_window():
    curriculum = Curriculum(CurriculumConfig(stages=2, window=4, promote_success=0.75), SCENE)
    for outcome in (True, False, True, False, True, False, True):  # 2 of the last 4
        assert not curriculum.record(outcome)
    assert curriculum.stage == 0
    assert curriculum.record(True)  # T, F, T, T: 3 of 4
    assert curriculum.stage == 1


def test_off_is_the_full_task():
    curriculum = Curriculum(CurriculumConfig(stages=0), SCENE)
    assert not curriculum.enabled and curriculum.final
    assert curriculum.reset_options() == {} and not curriculum.record(True)


def test_state_round_trips():
    config = CurriculumConfig(stages=4, window=3)
    first = Curriculum(config, SCENE)
    for outcome in (True, True, True, False, True):
        first.record(outcome)
    second = Curriculum(config, SCENE)
    second.load_state_dict(first.state_dict())
    assert second.state_dict() == first.state_dict() == {"stage": 1, "outcomes": [False, True]}
    assert second.record(True) == first.record(True)


@pytest.mark.parametrize(("config", "match"), [
    (CurriculumConfig(first_spawn_half_xy_m=0.2), "first_spawn_half_xy_m"),
    (CurriculumConfig(first_start_height_above_table_m=0.4), "first_start_height"),
])
def test_a_first_stage_outside_the_scene_is_refused_by_name(config, match):
    with pytest.raises(ValueError, match=match):
        Curriculum(config, SCENE)


def test_training_follows_the_curriculum_and_resumes_at_its_stage(tmp_path):
    # Objects right under the start pose and the descend close: random closes lift some.
    env = dataclasses.replace(TINY_ENV, actions=dataclasses.replace(
        TINY_ENV.actions, close_mode="descend"))
    config = dataclasses.replace(
        TINY, episodes=10, checkpoint_every=5, eval_every=10, eval_episodes=1,
        curriculum=CurriculumConfig(stages=3, window=1, promote_success=1.0,
                                    first_object_yaw_half_deg=15.0))

    def train(run, **kwargs):
        trainer = Trainer(config, env, run, log=lambda line: None, **kwargs)
        try:
            trainer.run()
        finally:
            trainer.close()
        return trainer

    whole = tmp_path / "whole"
    train(whole)
    outcomes = [row["outcome"] for row in _csv(whole / "train.csv")]
    # window 1, promote at 100 %: each success before the last stage starts the next one.
    expected, stage = [("0", "0")], 0
    for episode, outcome in enumerate(outcomes, start=1):
        if outcome == "success" and stage < 3:
            stage += 1
            expected.append((str(episode), str(stage)))
    assert len(expected) > 1, "no success in this run: the test needs another seed"
    rows = _csv(whole / "curriculum.csv")
    assert [(row["episode"], row["stage"]) for row in rows] == expected
    assert [float(row["spawn_half_xy_m"]) for row in rows] == pytest.approx(
        [0.03 * int(s) for _, s in expected])
    assert [float(row["object_yaw_half_deg"]) for row in rows] == pytest.approx(
        [15.0 + 10.0 * int(s) for _, s in expected])
    # Stopped and resumed, the run goes through the same stages at the same episodes.
    split = tmp_path / "split"
    trainer = Trainer(config, env, split, log=lambda line: None)
    trainer.training = dataclasses.replace(config, episodes=5)
    try:
        trainer.run()
    finally:
        trainer.close()
    train(split, resume=True)
    assert _csv(split / "curriculum.csv") == rows


def test_a_run_resumed_from_before_a_log_column_existed_gets_it(tmp_path):
    """A resume writes each log with today's columns (the yaw of curriculum.csv came after
    runs that are still resumed), empty in the older rows, filled in the new ones."""
    config = dataclasses.replace(TINY, episodes=2, eval_every=2, eval_episodes=1,
                                 curriculum=CurriculumConfig(stages=2))
    run = tmp_path / "run"
    train = _trainer_run(config, run)
    train()
    for name, column in (("curriculum.csv", "object_yaw_half_deg"),
                         ("train.csv", "success_rate_100")):
        rows = _csv(run / name)
        with open(run / name, "w", newline="") as handle:  # as a run before the column
            writer = csv.DictWriter(handle, [c for c in rows[0] if c != column],
                                    extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    train(resume=True, episodes=4)
    curriculum = _csv(run / "curriculum.csv")
    assert "object_yaw_half_deg" in curriculum[0] and curriculum[0]["object_yaw_half_deg"] == ""
    logged = _csv(run / "train.csv")
    assert [row["episode"] for row in logged] == ["1", "2", "3", "4"]
    assert [bool(row["success_rate_100"]) for row in logged] == [False, False, True, True]


def test_a_fresh_start_after_a_crash_before_any_checkpoint_logs_from_scratch(tmp_path):
    config = dataclasses.replace(TINY, episodes=2, eval_every=2, eval_episodes=1,
                                 curriculum=CurriculumConfig(stages=2))
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.csv").write_text("episode,env_steps\n1,5\n2,9\n")  # the crashed attempt
    _trainer_run(config, run)()
    assert [row["episode"] for row in _csv(run / "train.csv")] == ["1", "2"]
    assert "return" in _csv(run / "train.csv")[0]


def _trainer_run(config, run):
    def train(resume=False, episodes=None):
        trainer = Trainer(config, TINY_ENV, run, resume=resume, log=lambda line: None)
        try:
            if episodes is not None:
                trainer.training = dataclasses.replace(config, episodes=episodes)
            trainer.run()
        finally:
            trainer.close()
    return train


def _csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_robot_backend_refuses_the_curriculum(tmp_path):
    config = dataclasses.replace(TINY, curriculum=CurriculumConfig(stages=2))
    with pytest.raises(ConfigError, match="curriculum.stages"):
        Trainer(config, TINY_ENV, tmp_path / "run", collector=object())
