"""Keys added to stored configs (checkpoints, policy files) since they were first written, and
how a stored mapping gets them: the values that reproduce how the older run behaved, so older
runs still evaluate, export, resume and drive a robot. Light: the policy runtime imports it."""

from __future__ import annotations

from typing import Any

# Env keys added since, with the value of a scene stored before them (CLOSE closed where the
# gripper was).
LEGACY_ENV_VALUES: dict[str, Any] = {"actions.close_mode": "in_place",
                                     "actions.descend_speed_m_s": 0.1}


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
