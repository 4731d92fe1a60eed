"""The shipped config files are exactly what `graspq config dump` generates from the code."""

import re
from pathlib import Path

import pytest

from graspq.cli import _config_kinds
from graspq.config import apply_overrides, dump_yaml, load_config

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"
FILES = {"env.yaml": "env", "training.yaml": "training", "training_demos.yaml": "training",
         "env_reward_only.yaml": "env", "training_reward_only.yaml": "training",
         "servo.yaml": "servo"}


@pytest.mark.parametrize(("name", "kind"), FILES.items())
def test_config_file_is_generated_from_the_code(name, kind):
    cls, node, header = _config_kinds()[kind]
    text = (CONFIG_DIR / name).read_text()
    changed = re.search(r"^# Defaults changed with: (.*)$", text, re.MULTILINE)
    assignments = changed.group(1).replace("--set ", "").split() if changed else []
    if assignments:
        header += "\nDefaults changed with: " + " ".join(f"--set {a}" for a in assignments)
    expected = dump_yaml(apply_overrides(cls(), assignments), node, header)
    assert text == expected, f"config/{name} is stale: regenerate it with `graspq config dump`"
    assert load_config(cls, CONFIG_DIR / name, node) == apply_overrides(cls(), assignments)
