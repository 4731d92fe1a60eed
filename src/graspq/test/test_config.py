"""Config loading: complete files load, bad values fail with an error naming the key."""

from pathlib import Path

import pytest
import yaml

from graspq.config import ConfigError, from_mapping, load_config, to_mapping
from graspq.sim.settings import ENV_NODE_NAME, EnvConfig


def _write(tmp_path: Path, params: dict) -> Path:
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump({ENV_NODE_NAME: {"ros__parameters": params}}))
    return path


def _defaults() -> dict:
    return to_mapping(EnvConfig())


def test_round_trip_through_yaml(tmp_path):
    params = _defaults()
    params["actions"]["translation_step_m"] = 0.02
    loaded = load_config(EnvConfig, _write(tmp_path, params), ENV_NODE_NAME)
    assert loaded.actions.translation_step_m == 0.02
    assert loaded.camera == EnvConfig().camera


@pytest.mark.parametrize(("section", "key", "value", "message"), [
    ("actions", "translation_step_m", -0.01, "must be > 0"),
    ("objects", "types", ["cube", "pyramid"], "must be one of"),
    ("camera", "image_size", 0, "must be >= 16"),
    ("camera", "image_size", 64.5, "whole number"),
    ("rewards", "success", "ten", "expected a number"),
    ("objects", "mass_kg", [0.2, 0.1], "lower bound"),
    ("scene", "workspace_half_xy_m", float("nan"), "finite"),
])
def test_invalid_value_names_the_key(tmp_path, section, key, value, message):
    params = _defaults()
    params[section][key] = value
    with pytest.raises(ConfigError) as error:
        load_config(EnvConfig, _write(tmp_path, params), ENV_NODE_NAME)
    assert error.value.key.startswith(f"{section}.{key}")
    assert message in str(error.value)


def test_missing_key_is_named(tmp_path):
    params = _defaults()
    del params["gripper"]["force_n"]
    with pytest.raises(ConfigError, match=r"'gripper\.force_n': missing"):
        load_config(EnvConfig, _write(tmp_path, params), ENV_NODE_NAME)


def test_unknown_key_is_named(tmp_path):
    params = _defaults()
    params["actions"]["translation_stp_m"] = 0.01
    with pytest.raises(ConfigError, match=r"'actions\.translation_stp_m': unknown key"):
        load_config(EnvConfig, _write(tmp_path, params), ENV_NODE_NAME)


def test_malformed_file_is_a_config_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("graspq_env: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(EnvConfig, path, ENV_NODE_NAME)
    path.write_text("other_node: {ros__parameters: {}}\n")
    with pytest.raises(ConfigError, match="graspq_env"):
        load_config(EnvConfig, path, ENV_NODE_NAME)


def test_partial_mapping_takes_defaults_only_when_asked():
    partial = {"max_steps": 10}
    assert from_mapping(EnvConfig, partial, complete=False).max_steps == 10
    with pytest.raises(ConfigError, match="missing"):
        from_mapping(EnvConfig, partial)
