"""Tests for graspq.learning.replay: frame sharing, wrap-around, n-step, persistence."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from graspq.learning.pose import NO_POSE, POSE_TARGETS
from graspq.learning.replay import FORMAT_VERSION, NO_EXPERT, ReplayBatch, ReplayBuffer
from graspq.observation import MOTOR_SIZE, decode_overhead, encode_overhead

NEAR, FAR = 0.5, 1.1


def make_obs(rng: np.random.Generator, size: int, episode: int, step: int) -> dict:
    """A random observation whose motor vector carries (episode, step) for bookkeeping."""
    rgbd = rng.random((size, size, 4), dtype=np.float32)
    rgbd[..., 3] = rng.uniform(NEAR, FAR, (size, size)).astype(np.float32)
    motor = rng.standard_normal(MOTOR_SIZE).astype(np.float32)
    motor[:2] = episode, step
    return {"overhead_rgbd": rgbd,
            "wrist_rgb": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
            "motor": motor}


def ids(obs: dict) -> list[tuple[int, int]]:
    return [(int(e), int(t)) for e, t in obs["motor"][:, :2]]


def copy_obs(obs: dict) -> dict:
    # A fresh copy: continuation must be detected by value, not by object identity.
    return {key: value.copy() for key, value in obs.items()}


class Recorder:
    """Drives a ReplayBuffer with random episodes and remembers what was added."""

    def __init__(self, buffer: ReplayBuffer, rng: np.random.Generator) -> None:
        self.buffer, self.rng = buffer, rng
        self.frames: dict[tuple[int, int], dict] = {}
        # (episode, step) -> (action, reward, terminated, truncated, ends episode)
        self.transitions: dict[tuple[int, int], tuple[int, float, bool, bool]] = {}
        self.frame_log: list[tuple[int, int]] = []  # frames in the order they were stored
        self.first_frame: dict[tuple[int, int], int] = {}  # transition -> its obs frame index
        self.episode = 0

    def run_episode(self, length: int, end: str) -> None:
        """Add ``length`` steps; ``end`` in terminated / truncated / abandoned."""
        size = self.buffer.image_size
        obs = make_obs(self.rng, size, self.episode, 0)
        self.frames[(self.episode, 0)] = obs
        self.frame_log.append((self.episode, 0))
        for t in range(length):
            nxt = make_obs(self.rng, size, self.episode, t + 1)
            last = t == length - 1
            terminated = last and end == "terminated"
            truncated = last and end == "truncated"
            action = int(self.rng.integers(9))
            reward = float(self.rng.normal())
            self.buffer.add(copy_obs(obs), action, reward, copy_obs(nxt), terminated,
                            truncated)
            self.frames[(self.episode, t + 1)] = nxt
            self.transitions[(self.episode, t)] = (action, reward, terminated, truncated)
            self.first_frame[(self.episode, t)] = len(self.frame_log) - 1
            self.frame_log.append((self.episode, t + 1))
            obs = nxt
        self.episode += 1

    def alive(self) -> set[tuple[int, int]]:
        """Transitions whose obs frame (and so its next frame) is among the newest slots."""
        oldest = len(self.frame_log) - (self.buffer.capacity + 1)
        return {key for key, frame in self.first_frame.items() if frame >= oldest}


def check_batch(rec: Recorder, batch: ReplayBatch, n_step: int, gamma: float) -> None:
    """Compare each distinct sampled transition with the reference record."""
    buffer = rec.buffer
    alive = rec.alive()
    _, first = np.unique(batch.indices, return_index=True)
    obs_ids, next_ids = ids(batch.obs), ids(batch.next_obs)
    for i in first:
        key, next_key = obs_ids[i], next_ids[i]
        assert key in alive, f"sampled {key}, which should have been overwritten"
        episode, t = key
        # Expected n-step window from the reference.
        reward, k, step = 0.0, 0, t
        while k < n_step and (episode, step) in rec.transitions:
            _, r, term, trunc = rec.transitions[(episode, step)]
            reward += gamma**k * r
            k += 1
            step += 1
            if term or trunc:
                break
        _, _, term, trunc = rec.transitions[(episode, step - 1)]
        assert next_key == (episode, step), "next obs from another step or episode"
        assert batch.steps[i] == k
        assert batch.rewards[i] == pytest.approx(reward, rel=1e-5, abs=1e-5)
        assert batch.actions[i] == rec.transitions[key][0]
        assert batch.terminated[i] == term and batch.truncated[i] == trunc
        for obs, which in ((batch.obs, key), (batch.next_obs, next_key)):
            ref = rec.frames[which]
            expected = encode_overhead(ref["overhead_rgbd"], buffer.depth_near_m,
                                       buffer.depth_far_m)
            np.testing.assert_array_equal(obs["overhead_rgbd"][i], expected)
            np.testing.assert_array_equal(obs["motor"][i], ref["motor"])
            if buffer.views == "multi":
                np.testing.assert_array_equal(obs["wrist_rgb"][i], ref["wrist_rgb"])


def test_add_and_sample_shapes_and_dtypes() -> None:
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(capacity=50, image_size=16)
    rec = Recorder(buffer, rng)
    rec.run_episode(6, "terminated")
    rec.run_episode(4, "truncated")
    assert len(buffer) == 10 and buffer.num_added == 10
    batch = buffer.sample(7, rng)
    for obs in (batch.obs, batch.next_obs):
        assert obs["overhead_rgbd"].shape == (7, 16, 16, 4)
        assert obs["overhead_rgbd"].dtype == np.uint8
        assert obs["wrist_rgb"].shape == (7, 16, 16, 3) and obs["wrist_rgb"].dtype == np.uint8
        assert obs["motor"].shape == (7, 8) and obs["motor"].dtype == np.float32
    assert batch.actions.dtype == np.int64 and batch.actions.shape == (7,)
    assert batch.rewards.dtype == np.float32
    assert batch.terminated.dtype == bool and batch.truncated.dtype == bool
    assert batch.steps.tolist() == [1] * 7


def test_single_view_stores_no_wrist() -> None:
    rng = np.random.default_rng(1)
    multi = ReplayBuffer(capacity=10, image_size=16, views="multi")
    single = ReplayBuffer(capacity=10, image_size=16, views="single")
    Recorder(single, rng).run_episode(3, "terminated")
    assert "wrist_rgb" not in single.sample(2, rng).obs
    assert single.nbytes < multi.nbytes


@pytest.mark.parametrize("views", ["multi", "single"])
def test_frames_stay_consistent_across_wraparound(views: str) -> None:
    """Property: over many random episodes, every sampled transition is exactly what was added.

    Small rings with episodes of random length (1..12) and random ends force constant
    overwriting, including rings shorter than one episode.
    """
    for seed in range(12):
        rng = np.random.default_rng(seed)
        capacity = int(rng.integers(1, 30))
        buffer = ReplayBuffer(capacity=capacity, image_size=4, views=views)
        rec = Recorder(buffer, rng)
        for _ in range(25):
            rec.run_episode(int(rng.integers(1, 13)),
                            str(rng.choice(["terminated", "truncated", "abandoned"])))
            alive = rec.alive()
            assert len(buffer) == len(alive) <= capacity
            n_step = int(rng.integers(1, 5))
            batch = buffer.sample(60 * len(buffer), rng, n_step=n_step, gamma=0.9)
            check_batch(rec, batch, n_step, 0.9)
            # Heavy oversampling reaches every stored transition: together with the count
            # check this makes the stored set equal the reference set.
            assert len(set(batch.indices.tolist())) == len(alive)


def test_one_frame_per_step_within_an_episode() -> None:
    rng = np.random.default_rng(2)
    buffer = ReplayBuffer(capacity=100, image_size=4)
    rec = Recorder(buffer, rng)
    rec.run_episode(10, "terminated")  # 11 frames
    rec.run_episode(5, "truncated")  # 6 frames
    assert buffer.describe().startswith("replay buffer: 15/100 transitions")
    # 17 frames written, so a ring of 17 slots (capacity 16) still holds every transition...
    small = ReplayBuffer(capacity=16, image_size=4)
    rec_small = Recorder(small, np.random.default_rng(2))
    rec_small.run_episode(10, "terminated")
    rec_small.run_episode(5, "truncated")
    assert len(small) == 15
    # ...and a one-step episode (two new frames) evicts exactly the two oldest transitions.
    rec_small.run_episode(1, "terminated")
    assert len(small) == 14
    assert rec_small.alive() == set(rec_small.transitions) - {(0, 0), (0, 1)}


def test_terminal_transitions_never_mix_episodes() -> None:
    rng = np.random.default_rng(3)
    buffer = ReplayBuffer(capacity=20, image_size=4)
    rec = Recorder(buffer, rng)
    for _ in range(30):
        rec.run_episode(int(rng.integers(1, 4)), "terminated")
    batch = buffer.sample(500, rng, n_step=3, gamma=0.5)
    ended = batch.terminated | batch.truncated
    assert ended.any()
    for (e, t), (ne, nt) in zip(ids(batch.obs), ids(batch.next_obs), strict=True):
        assert ne == e and nt > t


def test_n_step_hand_computed() -> None:
    rng = np.random.default_rng(4)
    buffer = ReplayBuffer(capacity=30, image_size=4)
    frames = [make_obs(rng, 4, 0, t) for t in range(5)]
    for t, reward in enumerate([1.0, 2.0, 3.0, 4.0]):
        buffer.add(frames[t], t, reward, frames[t + 1], terminated=t == 3, truncated=False)
    batch = buffer.sample(400, rng, n_step=3, gamma=0.5)
    by_step = {t: i for i, (_, t) in enumerate(ids(batch.obs))}
    assert sorted(by_step) == [0, 1, 2, 3]
    expected = {0: (1 + 0.5 * 2 + 0.25 * 3, 3, 3, False), 1: (2 + 0.5 * 3 + 0.25 * 4, 3, 4, True),
                2: (3 + 0.5 * 4, 2, 4, True), 3: (4.0, 1, 4, True)}
    for t, (reward, steps, next_t, terminated) in expected.items():
        i = by_step[t]
        assert batch.rewards[i] == pytest.approx(reward)
        assert batch.steps[i] == steps
        assert ids(batch.next_obs)[i] == (0, next_t)
        assert bool(batch.terminated[i]) is terminated
    # The window of a running episode stops at its newest frame and bootstraps from it.
    running = ReplayBuffer(capacity=30, image_size=4)
    running.add(frames[0], 0, 1.0, frames[1], terminated=False, truncated=False)
    running.add(frames[1], 1, 2.0, frames[2], terminated=False, truncated=False)
    batch = running.sample(50, rng, n_step=5, gamma=0.5)
    i = ids(batch.obs).index((0, 0))
    assert batch.steps[i] == 2 and batch.rewards[i] == pytest.approx(2.0)
    assert ids(batch.next_obs)[i] == (0, 2) and not batch.terminated[i]


def test_depth_quantisation_error_within_half_a_step() -> None:
    rng = np.random.default_rng(5)
    buffer = ReplayBuffer(capacity=4, image_size=16, depth_near_m=NEAR, depth_far_m=FAR)
    obs, nxt = make_obs(rng, 16, 0, 0), make_obs(rng, 16, 0, 1)
    buffer.add(obs, 0, 0.0, nxt, terminated=True, truncated=False)
    batch = buffer.sample(1, rng)
    decoded = decode_overhead(batch.obs["overhead_rgbd"][0], NEAR, FAR)
    step = (FAR - NEAR) / 255
    assert np.abs(decoded[..., 3] - obs["overhead_rgbd"][..., 3]).max() <= step / 2 + 1e-6
    assert np.abs(decoded[..., :3] - obs["overhead_rgbd"][..., :3]).max() <= 0.5 / 255 + 1e-6


def test_bad_input_is_rejected_and_changes_nothing() -> None:
    rng = np.random.default_rng(6)
    buffer = ReplayBuffer(capacity=8, image_size=4)
    obs, nxt = make_obs(rng, 4, 0, 0), make_obs(rng, 4, 0, 1)
    buffer.add(obs, 1, 0.5, nxt, terminated=False, truncated=False)
    before = buffer.sample(1, np.random.default_rng(0))
    bad_shape = dict(nxt, overhead_rgbd=np.zeros((5, 4, 4), np.float32))
    with pytest.raises(ValueError, match="overhead_rgbd"):
        buffer.add(nxt, 0, 0.0, bad_shape, terminated=False, truncated=False)
    no_wrist = {k: v for k, v in nxt.items() if k != "wrist_rgb"}
    with pytest.raises(ValueError, match="wrist_rgb"):
        buffer.add(no_wrist, 0, 0.0, nxt, terminated=False, truncated=False)
    with pytest.raises(ValueError, match="action"):
        buffer.add(nxt, -1, 0.0, make_obs(rng, 4, 0, 2), terminated=False, truncated=False)
    with pytest.raises(ValueError, match="reward"):
        buffer.add(nxt, 0, float("nan"), make_obs(rng, 4, 0, 2), False, False)
    assert len(buffer) == 1 and buffer.num_added == 1
    after = buffer.sample(1, np.random.default_rng(0))
    np.testing.assert_array_equal(after.next_obs["motor"], before.next_obs["motor"])
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(capacity=8, image_size=4).sample(1, rng)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(capacity=0, image_size=4)
    with pytest.raises(ValueError, match="views"):
        ReplayBuffer(capacity=1, image_size=4, views="stereo")


def test_nbytes_and_describe() -> None:
    buffer = ReplayBuffer(capacity=999, image_size=64)
    # frames, motor, action, reward, three flags, expert, pose, tie, priority, close label
    per_slot = (64 * 64 * 4 + 64 * 64 * 3 + 8 * 4 + 8 + 4 + 1 + 1 + 1 + 8 + POSE_TARGETS * 4
                + 8 + 4 + 4)
    assert buffer.nbytes == 1000 * per_slot
    text = buffer.describe()
    assert "0/999 transitions" in text and "MiB" in text and "64x64" in text


def assert_batches_equal(a: ReplayBatch, b: ReplayBatch) -> None:
    for field in ReplayBatch._fields:
        x, y = getattr(a, field), getattr(b, field)
        if isinstance(x, dict):
            assert x.keys() == y.keys()
            for key in x:
                np.testing.assert_array_equal(x[key], y[key])
        else:
            np.testing.assert_array_equal(x, y)


def test_save_load_round_trip_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    buffer = ReplayBuffer(capacity=25, image_size=8)
    rec = Recorder(buffer, rng)
    for _ in range(8):
        rec.run_episode(int(rng.integers(1, 8)), "terminated")
    # Leave an episode running: the loaded buffer must continue it without a new frame.
    size = buffer.image_size
    o0, o1, o2 = (make_obs(rng, size, 99, t) for t in range(3))
    buffer.add(o0, 1, 0.0, o1, terminated=False, truncated=False)
    path = tmp_path / "replay.npz"
    buffer.save(path)
    saved_description = buffer.describe()
    assert [p.name for p in tmp_path.iterdir()] == ["replay.npz"]  # no temporary left
    loaded = ReplayBuffer(capacity=25, image_size=8)
    loaded.load(path)
    assert len(loaded) == len(buffer) and loaded.num_added == buffer.num_added
    assert loaded.describe() == buffer.describe()
    assert_batches_equal(buffer.sample(64, np.random.default_rng(1), n_step=3, gamma=0.9),
                         loaded.sample(64, np.random.default_rng(1), n_step=3, gamma=0.9))
    for b in (buffer, loaded):
        b.add(copy_obs(o1), 2, 1.0, copy_obs(o2), terminated=True, truncated=False)
    assert_batches_equal(buffer.sample(64, np.random.default_rng(2), n_step=2, gamma=0.9),
                         loaded.sample(64, np.random.default_rng(2), n_step=2, gamma=0.9))
    assert ReplayBuffer.from_file(path).describe() == saved_description


def filled_file(tmp_path: Path, **kwargs) -> Path:
    rng = np.random.default_rng(8)
    buffer = ReplayBuffer(capacity=12, image_size=8, **kwargs)
    Recorder(buffer, rng).run_episode(6, "terminated")
    path = tmp_path / "replay.npz"
    buffer.save(path)
    return path


def test_load_rejects_mismatched_buffers(tmp_path: Path) -> None:
    path = filled_file(tmp_path)
    cases = [(ReplayBuffer(capacity=13, image_size=8), "capacity mismatch: file has 12"),
             (ReplayBuffer(capacity=12, image_size=16), "image_size mismatch"),
             (ReplayBuffer(capacity=12, image_size=8, views="single"), "views mismatch"),
             (ReplayBuffer(capacity=12, image_size=8, depth_far_m=1.2), "depth bounds")]
    for buffer, message in cases:
        with pytest.raises(ValueError, match=message):
            buffer.load(path)
        assert len(buffer) == 0


def test_load_rejects_corrupt_files(tmp_path: Path) -> None:
    path = filled_file(tmp_path)
    data = path.read_bytes()
    target = ReplayBuffer(capacity=12, image_size=8)
    rng = np.random.default_rng(9)
    Recorder(target, rng).run_episode(3, "terminated")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flipped.npz"
    middle = len(data) // 2
    flipped.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a replay buffer at all")
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    for bad, message in ((truncated, "corrupt"), (flipped, "corrupt"), (garbage, "corrupt"),
                         (other, "missing arrays")):
        with pytest.raises(ValueError, match=message) as info:
            target.load(bad)
        assert str(bad) in str(info.value)
        assert len(target) == 3  # a failed load changes nothing
    with pytest.raises(FileNotFoundError):
        target.load(tmp_path / "absent.npz")


def test_save_replaces_atomically(tmp_path: Path) -> None:
    path = filled_file(tmp_path)
    rng = np.random.default_rng(10)
    buffer = ReplayBuffer(capacity=12, image_size=8)
    Recorder(buffer, rng).run_episode(2, "truncated")
    buffer.save(path)  # overwrite an existing file
    assert sorted(os.listdir(tmp_path)) == ["replay.npz"]
    loaded = ReplayBuffer.from_file(path)
    assert len(loaded) == 2


def test_expert_labels_are_sampled_saved_and_loaded(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    buffer = ReplayBuffer(capacity=20, image_size=4)
    frames = [make_obs(rng, 4, 0, t) for t in range(6)]
    labels = [3, NO_EXPERT, 8, 6, 5]
    ties = [NO_EXPERT, NO_EXPERT, NO_EXPERT, 7, NO_EXPERT]
    for t, (label, tie) in enumerate(zip(labels, ties, strict=True)):
        buffer.add(frames[t], t % 9, 0.0, frames[t + 1], terminated=t == len(labels) - 1,
                   truncated=False, expert_action=label, expert_tie=tie)
    batch = buffer.sample(64, np.random.default_rng(0))
    by_step = {int(step): (int(label), int(tie)) for step, label, tie in
               zip(batch.obs["motor"][:, 1], batch.expert_actions, batch.expert_ties,
                   strict=True)}
    assert by_step == dict(enumerate(zip(labels, ties, strict=True)))  # each step its own
    path = tmp_path / "replay.npz"
    buffer.save(path)
    loaded = ReplayBuffer.from_file(path)
    again = loaded.sample(64, np.random.default_rng(0))
    np.testing.assert_array_equal(again.expert_actions, batch.expert_actions)
    np.testing.assert_array_equal(again.expert_ties, batch.expert_ties)
    with pytest.raises(ValueError, match="expert_action"):
        buffer.add(frames[0], 0, 0.0, frames[1], False, False, expert_action=-2)
    with pytest.raises(ValueError, match="expert_tie must differ"):
        buffer.add(frames[0], 0, 0.0, frames[1], False, False, expert_action=6, expert_tie=6)
    with pytest.raises(ValueError, match="expert_tie needs"):
        buffer.add(frames[0], 0, 0.0, frames[1], False, False, expert_tie=6)
    assert len(buffer) == len(labels)
    # Labels 3, 5, 6, 8 once each; the unlabelled step and the tie are not counted.
    np.testing.assert_array_equal(buffer.label_counts(9), [0, 0, 0, 1, 0, 1, 1, 0, 1])


def test_pose_targets_are_sampled_saved_and_loaded(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    buffer = ReplayBuffer(capacity=16, image_size=4, views="single")
    frames = [make_obs(rng, 4, 0, t) for t in range(5)]
    targets = [rng.normal(size=POSE_TARGETS).astype(np.float32) for _ in range(3)] + [NO_POSE]
    for t, target in enumerate(targets):
        buffer.add(frames[t], 0, 0.0, frames[t + 1], terminated=t == len(targets) - 1,
                   truncated=False, pose_target=target)
    batch = buffer.sample(64, np.random.default_rng(0))
    for step, pose in zip(batch.obs["motor"][:, 1], batch.pose_targets, strict=True):
        np.testing.assert_array_equal(pose, targets[int(step)])  # NaN rows compare equal
    path = tmp_path / "replay.npz"
    buffer.save(path)
    again = ReplayBuffer.from_file(path).sample(64, np.random.default_rng(0))
    np.testing.assert_array_equal(again.pose_targets, batch.pose_targets)
    with pytest.raises(ValueError, match="pose_target"):
        buffer.add(frames[0], 0, 0.0, frames[1], False, False, pose_target=np.zeros(3))
    assert len(buffer) == len(targets)


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_older_files_load_without_labels(tmp_path: Path, version: int) -> None:
    """A buffer saved before expert labels (version 1), pose targets (2), tied labels (3) or
    priorities (4) existed still resumes: what it lacks is unlabelled (-1, NaN), priority 1."""
    path = filled_file(tmp_path)
    dropped = {1: {"expert", "pose", "tie"}, 2: {"pose", "tie"}, 3: {"tie"},
               4: set()}[version] | {"priority"}
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files if key not in dropped}
    arrays["format_version"] = np.int64(version)
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    loaded = ReplayBuffer.from_file(old)
    assert len(loaded) == 6
    batch = loaded.sample(32, np.random.default_rng(0))
    assert (batch.expert_actions == NO_EXPERT).all() and (batch.expert_ties == NO_EXPERT).all()
    assert batch.pose_targets.shape == (32, POSE_TARGETS) and np.isnan(batch.pose_targets).all()
    assert loaded.max_priority() == 1.0
    arrays["format_version"] = np.int64(FORMAT_VERSION + 1)
    np.savez(old, **arrays)
    with pytest.raises(ValueError, match="format version"):
        ReplayBuffer.from_file(old)


def replay_episodes(rec: Recorder, buffer: ReplayBuffer, episodes: range) -> None:
    """Add the recorded ``episodes`` again, step by step, to another buffer."""
    for episode in episodes:
        step = 0
        while (episode, step) in rec.transitions:
            action, reward, terminated, truncated = rec.transitions[(episode, step)]
            buffer.add(copy_obs(rec.frames[(episode, step)]), action, reward,
                       copy_obs(rec.frames[(episode, step + 1)]), terminated, truncated)
            step += 1


def test_extend_appends_as_if_every_step_had_been_added_here(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    whole = ReplayBuffer(capacity=60, image_size=8)
    rec = Recorder(whole, rng)
    for end in ("terminated", "truncated", "terminated", "terminated", "truncated"):
        rec.run_episode(int(rng.integers(1, 8)), end)
    first, second = ReplayBuffer(capacity=60, image_size=8), ReplayBuffer(capacity=30,
                                                                          image_size=8)
    replay_episodes(rec, first, range(2))
    replay_episodes(rec, second, range(2, 5))
    first.extend(second)
    assert len(first) == len(whole) and first.num_added == whole.num_added
    first.save(tmp_path / "extended.npz")
    whole.save(tmp_path / "whole.npz")
    with np.load(tmp_path / "extended.npz") as a, np.load(tmp_path / "whole.npz") as b:
        assert a.files == b.files
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert_batches_equal(first.sample(64, np.random.default_rng(3), n_step=3, gamma=0.9),
                         whole.sample(64, np.random.default_rng(3), n_step=3, gamma=0.9))


def test_extend_refuses_what_would_not_join_and_changes_nothing() -> None:
    rng = np.random.default_rng(12)
    target = ReplayBuffer(capacity=20, image_size=8)
    Recorder(target, rng).run_episode(3, "terminated")
    before = target.sample(8, np.random.default_rng(0))

    def filled(capacity: int = 20, length: int = 3, end: str = "terminated",
               **kwargs) -> ReplayBuffer:
        buffer = ReplayBuffer(capacity=capacity, image_size=8, **kwargs)
        Recorder(buffer, rng).run_episode(length, end)
        return buffer

    with pytest.raises(ValueError, match="single-view"):
        target.extend(filled(views="single"))
    with pytest.raises(ValueError, match="still running in the other"):
        target.extend(filled(end="abandoned"))
    with pytest.raises(ValueError, match="do not fit"):
        target.extend(filled(length=17))
    wrapped = filled(capacity=5, length=3)
    Recorder(wrapped, rng).run_episode(3, "terminated")  # 8 frames through 6 slots
    with pytest.raises(ValueError, match="wrapped"):
        target.extend(wrapped)
    assert len(target) == 3 and target.num_added == 3
    assert_batches_equal(target.sample(8, np.random.default_rng(0)), before)
    running = filled(end="abandoned")
    with pytest.raises(ValueError, match="still running in this"):
        running.extend(filled())


def prioritised_buffer(transitions: int = 40) -> tuple[ReplayBuffer, np.ndarray]:
    """A buffer of single-step episodes and the slots that hold their transitions."""
    buffer = ReplayBuffer(capacity=200, image_size=8)
    rec = Recorder(buffer, np.random.default_rng(11))
    for _ in range(transitions):
        rec.run_episode(1, "terminated")
    return buffer, np.flatnonzero(buffer._valid)


def test_new_transitions_get_the_largest_held_priority() -> None:
    buffer, slots = prioritised_buffer(3)
    assert buffer.max_priority() == 1.0
    buffer.update_priorities(slots, np.array([4.0, -0.5, 0.0]), epsilon=0.01)
    np.testing.assert_allclose(buffer._priority[slots], [4.01, 0.51, 0.01], rtol=1e-6)
    Recorder(buffer, np.random.default_rng(12)).run_episode(1, "truncated")
    newest = np.flatnonzero(buffer._valid)[-1]
    assert buffer._priority[newest] == pytest.approx(4.01)


def test_prioritised_draws_follow_the_priorities_with_matching_weights() -> None:
    buffer, slots = prioritised_buffer()
    errors = np.full(slots.size, 0.99)
    errors[0] = 99.99  # slot 0: priority 100, the 39 others: 1
    buffer.update_priorities(slots, errors, epsilon=0.01)
    batch = buffer.sample(20_000, np.random.default_rng(3), priority_alpha=1.0,
                          priority_beta=1.0)
    share = np.mean(batch.indices == slots[0])
    assert share == pytest.approx(100 / 139, abs=0.01)
    # (N P) ** -beta over the largest: the likely transition weighs 1/100 of the others.
    likely = batch.indices == slots[0]
    np.testing.assert_allclose(batch.weights[likely], 0.01, rtol=1e-5)
    np.testing.assert_allclose(batch.weights[~likely], 1.0, rtol=1e-5)
    # alpha 0.5 flattens the draw: priorities 10 and 1 after the power.
    half = buffer.sample(20_000, np.random.default_rng(4), priority_alpha=0.5,
                         priority_beta=0.0)
    assert np.mean(half.indices == slots[0]) == pytest.approx(10 / 49, abs=0.01)
    assert (half.weights == 1.0).all()  # beta 0: no correction


def test_alpha_zero_draws_exactly_as_the_uniform_sampler() -> None:
    buffer, slots = prioritised_buffer()
    buffer.update_priorities(slots, np.linspace(0, 50, slots.size), epsilon=0.01)
    uniform = buffer.sample(64, np.random.default_rng(5))
    assert_batches_equal(uniform, buffer.sample(64, np.random.default_rng(5),
                                                priority_alpha=0.0, priority_beta=0.7))
    assert (uniform.weights == 1.0).all()


def test_bad_priority_updates_are_refused_and_change_nothing() -> None:
    buffer, slots = prioritised_buffer(4)
    before = buffer._priority.copy()
    free = int(np.flatnonzero(~buffer._valid)[0])
    for bad_slots, errors, match in (
            (slots[:2], np.array([1.0, np.nan]), "finite"),
            (np.array([slots[0], free]), np.ones(2), "holds no transition"),
            (slots[:2], np.ones(3), "same 1-D shape")):
        with pytest.raises(ValueError, match=match):
            buffer.update_priorities(bad_slots, errors, epsilon=0.01)
    with pytest.raises(ValueError, match="epsilon"):
        buffer.update_priorities(slots, np.ones(slots.size), epsilon=0.0)
    with pytest.raises(ValueError, match="priority_alpha"):
        buffer.sample(4, np.random.default_rng(0), priority_alpha=1.5)
    np.testing.assert_array_equal(buffer._priority, before)


def test_priorities_are_saved_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    buffer, slots = prioritised_buffer(6)
    buffer.update_priorities(slots, np.arange(slots.size, dtype=float), epsilon=0.5)
    path = tmp_path / "replay.npz"
    buffer.save(path)
    loaded = ReplayBuffer.from_file(path)
    assert_batches_equal(buffer.sample(50, np.random.default_rng(6), priority_alpha=0.6,
                                       priority_beta=0.4),
                         loaded.sample(50, np.random.default_rng(6), priority_alpha=0.6,
                                       priority_beta=0.4))
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["priority"][slots[2]] = -1.0
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="priority is not a positive number"):
        ReplayBuffer.from_file(path)


def test_drawing_one_action_alone() -> None:
    """only_action draws among the transitions that took it, each held one of them as often
    as the others, with their own rewards and next frames; none held is a clear error."""
    buffer = ReplayBuffer(capacity=300, image_size=8, depth_near_m=NEAR, depth_far_m=FAR)
    rec = Recorder(buffer, np.random.default_rng(21))
    for length in (5, 9, 7, 12, 6):
        rec.run_episode(length, "terminated")
    held = {key for key, (action, *_rest) in rec.transitions.items() if action == 8}
    assert held and buffer.holds_action(8)
    batch = buffer.sample(4000, np.random.default_rng(22), only_action=8)
    assert (batch.actions == 8).all()
    assert set(ids(batch.obs)) == held  # every one of them, and nothing else
    counts = np.unique(batch.indices, return_counts=True)[1]
    assert counts.min() > 0.5 * counts.mean()
    check_batch(rec, batch, n_step=1, gamma=0.9)
    empty = ReplayBuffer(capacity=50, image_size=8, depth_near_m=NEAR, depth_far_m=FAR)
    Recorder(empty, np.random.default_rng(23)).run_episode(3, "terminated")
    absent = next(a for a in range(9) if not empty.holds_action(a))
    with pytest.raises(ValueError, match=f"no transition with action {absent}"):
        empty.sample(4, np.random.default_rng(24), only_action=absent)
