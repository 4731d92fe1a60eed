"""Keys added to stored configs (checkpoints, policy files) since they were first written, and
how a stored mapping gets them: the values that reproduce how the older run behaved, so older
runs still evaluate, export, resume and drive a robot. Light: the policy runtime imports it."""

from __future__ import annotations

from typing import Any

# Env keys added since, with the value of a scene stored before them (CLOSE closed where the
# gripper was).
LEGACY_ENV_VALUES: dict[str, Any] = {"actions.close_mode": "in_place",
                                     "actions.descend_speed_m_s": 0.1,
                                     "actions.close_yaw_turns": 0,  # the paper's 9 actions
                                     "objects.type_weights": [1.0],  # types drawn equally
                                     # held-out object types' sizes (issue #22, part 4): a
                                     # stored scene never drew them, so today's defaults
                                     "objects.box_narrow_side_m": [0.02, 0.026],
                                     "objects.box_long_side_m": [0.045, 0.06],
                                     "objects.box_height_m": [0.025, 0.04],
                                     "objects.capsule_diameter_m": [0.026, 0.032],
                                     "objects.capsule_length_m": [0.055, 0.07],
                                     "objects.ellipsoid_length_m": [0.05, 0.06],
                                     "objects.ellipsoid_width_m": [0.03, 0.034],
                                     "objects.ellipsoid_height_m": [0.026, 0.03],
                                     "objects.lying_cylinder_diameter_m": [0.026, 0.032],
                                     "objects.lying_cylinder_length_m": [0.045, 0.065],
                                     "objects.cube_small_side_m": [0.022, 0.024],
                                     "objects.cube_large_side_m": [0.036, 0.039],
                                     "objects.sphere_small_diameter_m": [0.022, 0.024],
                                     "objects.sphere_large_diameter_m": [0.036, 0.04],
                                     "objects.cylinder_small_diameter_m": [0.015, 0.022],
                                     "objects.cylinder_small_height_m": [0.02, 0.03],
                                     "objects.cylinder_large_diameter_m": [0.036, 0.039],
                                     "objects.cylinder_large_height_m": [0.06, 0.08]}


def fill_legacy_values(config: dict, values: dict[str, Any]) -> None:
    """Set each dotted key of ``values`` that a stored config mapping lacks, in place; a
    section added since comes in whole."""
    for dotted, value in values.items():
        *sections, key = dotted.split(".")
        node: Any = config
        for section in sections:
            node = node.setdefault(section, {}) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.setdefault(key, value)
