"""Shared fixtures: one real MuJoCo environment per test module (building one costs ~0.1 s)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402

from graspq.sim.env import BaxterGraspEnv  # noqa: E402


@pytest.fixture(scope="module")
def env():
    environment = BaxterGraspEnv()
    yield environment
    environment.close()
