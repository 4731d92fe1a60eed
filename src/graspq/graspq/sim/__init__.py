"""The embedded MuJoCo grasping scene and its gymnasium environment.

Importing this package registers ``GraspQ/BaxterGrasp-v0`` and, unless ``MUJOCO_GL`` says
otherwise, selects headless EGL rendering (MuJoCo reads the variable when it is first imported).
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium  # noqa: E402 - after MUJOCO_GL is set

ENV_ID = "GraspQ/BaxterGrasp-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="graspq.sim.env:BaxterGraspEnv")
