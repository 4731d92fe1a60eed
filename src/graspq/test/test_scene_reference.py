"""The scene replays a recorded reference: fixed seeds and actions give the same images,
rewards, terminations and joint positions as the code they were recorded from (issue #25,
item 6: the speed-ups of the scene must not change what it simulates or what the agent sees).

``data/scene_reference.npz`` was recorded from the scene before it was optimised. Regenerate
it (only when the scene is *meant* to change, and say why in the commit) with::

    MUJOCO_GL=egl .venv/bin/python src/graspq/test/test_scene_reference.py

Tolerances, and why. On the machine that recorded it the replay is bit-identical (difference
0 everywhere): MuJoCo and Mesa's llvmpipe are deterministic. The slack is for another
rasteriser or CPU (a GPU driver, other SIMD paths), where an edge pixel may land on the other
side of a triangle's edge:

- colour (overhead and wrist, uint8 levels): mean absolute difference per image <= 0.5
  levels, and at most 1 % of the pixels (41 of 4096 at 64x64) off by more than 8 levels.
  An edge pixel that flips changes by up to 255 levels, so a per-pixel maximum would demand
  bit-identical rasterisation; a real change (a moved camera, a missing or recoloured object,
  flipped rows, different lighting) moves far more pixels than 1 %.
- overhead depth (metres): mean absolute difference <= 1 mm, at most 1 % of the pixels off
  by more than 5 mm (the stored depth is rounded to 0.1 mm).
- the arm's and fingers' joint positions and the motor observation: within 1e-6 (rad or m),
  far below a pixel (about 4 mm at the table) but above the rounding noise another CPU's BLAS
  could add in the IK.
- the objects' poses (their free joints): within 2 mm and 2 deg. An object that the fingers
  push slides on friction contacts, which grow rounding differences: on a 2-core AMD EPYC
  without AVX-512 the cylinder that the last episode's close pushes ended 1.1 mm and 0.8 deg
  from the reference recorded on a Xeon, with the arm bit-identical and every image, reward
  and outcome within the bounds here. 2 mm is half an overhead pixel at the table.
- rewards, terminations, truncations, outcomes and whether each move was executed: exactly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from graspq.actions import Action  # noqa: E402
from graspq.observation import MOTOR_KEY, OVERHEAD_KEY, WRIST_KEY  # noqa: E402
from graspq.sim.env import BaxterGraspEnv  # noqa: E402
from graspq.sim.oracle import OraclePolicy  # noqa: E402

REFERENCE = Path(__file__).parent / "data" / "scene_reference.npz"
DEPTH_UNIT_M = 1e-4  # stored overhead depth: uint16 in units of 0.1 mm (up to 6.5 m)

A = Action
# (seed, object, actions played first, actions slipped in before the first CLOSE). Apart from
# these the recording let the privileged oracle play (its actions are stored, so a replay
# needs no oracle): every object is centred on, turned to where needed, descended on, closed
# on and lifted. The fourth episode pushes the cylinder a step before closing (the fingers
# touch it, the grasp fails: partial); the last walks into the workspace's top and yaw
# limits (moves not executed) and closes on nothing.
EPISODES: tuple[tuple[int, str | None, tuple[Action, ...], tuple[Action, ...]], ...] = (
    (101, "cube", (A.PLUS_YAW, A.MINUS_X, A.PLUS_Y), ()),
    (102, "sphere", (A.MINUS_Y,), ()),
    (103, "cylinder", (A.MINUS_YAW, A.MINUS_YAW, A.PLUS_X), ()),
    (109, "cylinder", (), (A.PLUS_X,)),
    (104, None, (*[A.PLUS_Z] * 11, *[A.MINUS_YAW] * 7, A.CLOSE), ()),
)

# Tolerances: see the module docstring.
RGB_MEAN_LEVELS = 0.5
RGB_OFF_LEVELS = 8
DEPTH_MEAN_M = 1e-3
DEPTH_OFF_M = 5e-3
MAX_OFF_FRACTION = 0.01
STATE_ATOL = 1e-6
OBJECT_POSITION_ATOL_M = 2e-3
OBJECT_TURN_ATOL_DEG = 2.0


def _frame(observation: dict[str, np.ndarray], env: BaxterGraspEnv) -> dict[str, np.ndarray]:
    """What the reference keeps of one observation (colour exactly: it is uint8 / 255)."""
    overhead = observation[OVERHEAD_KEY]
    return {
        "overhead_rgb": np.rint(overhead[..., :3] * 255.0).astype(np.uint8),
        "overhead_depth": np.rint(overhead[..., 3] / DEPTH_UNIT_M).astype(np.uint16),
        "wrist_rgb": observation[WRIST_KEY].copy(),
        "motor": observation[MOTOR_KEY].copy(),
        "qpos": env.data.qpos.copy(),
    }


def play(env: BaxterGraspEnv, actions: list[np.ndarray] | None = None
         ) -> dict[str, np.ndarray]:
    """Play :data:`EPISODES` (their recorded ``actions`` if given, else the scripts and the
    oracle); every frame after reset and after each step, stacked, plus each step's results.
    """
    frames: list[dict[str, np.ndarray]] = []
    steps: dict[str, list] = {k: [] for k in ("episode", "action", "reward", "terminated",
                                              "truncated", "executed", "outcome")}
    for index, (seed, kind, script, before_close) in enumerate(EPISODES):
        options = {"object": kind} if kind is not None else None
        observation, _ = env.reset(seed=seed, options=options)
        frames.append(_frame(observation, env))
        oracle = OraclePolicy(env)
        plan = list(actions[index]) if actions is not None else list(script)
        done, taken = False, 0
        while not done and (actions is None or taken < len(plan)):
            if taken == len(plan):  # recording: the oracle's turn
                plan.append(oracle.act())
                if plan[-1] == Action.CLOSE and before_close:
                    plan[-1:] = [*before_close, Action.CLOSE]
                    before_close = ()
            action = int(plan[taken])
            observation, reward, terminated, truncated, info = env.step(action)
            frames.append(_frame(observation, env))
            for key, value in (("episode", index), ("action", action), ("reward", reward),
                               ("terminated", terminated), ("truncated", truncated),
                               ("executed", info["executed"]), ("outcome", info["outcome"])):
                steps[key].append(value)
            done, taken = terminated or truncated, taken + 1
    result = {key: np.stack([f[key] for f in frames]) for key in frames[0]}
    result.update({key: np.array(value) for key, value in steps.items()})
    return result


def _episode_actions(reference: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [reference["action"][reference["episode"] == i] for i in range(len(EPISODES))]


def record(path: Path = REFERENCE) -> None:
    """Write the reference from the scene as it is now."""
    env = BaxterGraspEnv()
    try:
        result = play(env)
    finally:
        env.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **result)


@pytest.fixture(scope="module")
def reference_and_replay(env):
    reference = dict(np.load(REFERENCE))
    return reference, play(env, _episode_actions(reference))


def test_reference_covers_moves_turns_closes_and_every_object():
    reference = dict(np.load(REFERENCE))
    assert set(reference["action"].tolist()) == set(range(len(Action)))
    assert {"success", "partial", "miss"} <= set(reference["outcome"].tolist())
    assert not reference["executed"].all()
    assert [episode[1] for episode in EPISODES[:3]] == ["cube", "sphere", "cylinder"]


def test_results_are_exactly_the_reference(reference_and_replay):
    reference, replay = reference_and_replay
    for key in ("episode", "action", "reward", "terminated", "truncated", "executed",
                "outcome"):
        np.testing.assert_array_equal(replay[key], reference[key], err_msg=key)


def test_joint_positions_match_the_reference(reference_and_replay, env):
    reference, replay = reference_and_replay
    assert replay["qpos"].shape == reference["qpos"].shape, "the episodes ended elsewhere"
    # The scene's object handles (held-out shapes share the training shapes' bodies).
    objects = sorted({handle.qpos_adr for handle in env.scene.objects.values()})
    assert len(objects) == 3  # one body per object type, two of them parked each episode
    robot = np.ones(reference["qpos"].shape[1], dtype=bool)
    for address in objects:
        robot[address:address + 7] = False
    np.testing.assert_allclose(replay["qpos"][:, robot], reference["qpos"][:, robot], rtol=0,
                               atol=STATE_ATOL, err_msg="arm and finger joints")
    np.testing.assert_allclose(replay["motor"], reference["motor"], rtol=0, atol=STATE_ATOL,
                               err_msg="motor")
    for address in objects:
        position = np.linalg.norm(replay["qpos"][:, address:address + 3]
                                  - reference["qpos"][:, address:address + 3], axis=1)
        assert position.max() <= OBJECT_POSITION_ATOL_M, (address, position.max())
        # The angle between two unit quaternions q and p: 2 acos |q . p|.
        dot = np.abs(np.sum(replay["qpos"][:, address + 3:address + 7]
                            * reference["qpos"][:, address + 3:address + 7], axis=1))
        turn = np.degrees(2 * np.arccos(np.clip(dot, 0.0, 1.0)))
        assert turn.max() <= OBJECT_TURN_ATOL_DEG, (address, turn.max())


@pytest.mark.parametrize("key", ["overhead_rgb", "wrist_rgb"])
def test_colour_images_match_the_reference(reference_and_replay, key):
    reference, replay = reference_and_replay
    diff = np.abs(replay[key].astype(np.int16) - reference[key].astype(np.int16))
    for index, frame in enumerate(diff):
        assert frame.mean() <= RGB_MEAN_LEVELS, f"{key} frame {index}: mean {frame.mean()}"
        off = np.mean(frame.max(axis=-1) > RGB_OFF_LEVELS)
        assert off <= MAX_OFF_FRACTION, f"{key} frame {index}: {off:.1%} of pixels off"


def test_depth_matches_the_reference(reference_and_replay):
    reference, replay = reference_and_replay
    diff = DEPTH_UNIT_M * np.abs(replay["overhead_depth"].astype(np.int32)
                                 - reference["overhead_depth"].astype(np.int32))
    for index, frame in enumerate(diff):
        assert frame.mean() <= DEPTH_MEAN_M, f"depth frame {index}: mean {frame.mean()} m"
        off = np.mean(frame > DEPTH_OFF_M)
        assert off <= MAX_OFF_FRACTION, f"depth frame {index}: {off:.1%} of pixels off"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REFERENCE
    record(target)
    print(f"wrote {target}")
