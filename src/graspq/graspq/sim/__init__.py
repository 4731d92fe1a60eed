"""The embedded MuJoCo grasping scene and its gymnasium environment.

Importing this package registers ``GraspQ/BaxterGrasp-v0``.
"""

import gymnasium

ENV_ID = "GraspQ/BaxterGrasp-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="graspq.sim.env:BaxterGraspEnv")
