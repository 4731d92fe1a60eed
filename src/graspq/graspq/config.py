"""Typed, validated configuration shared by the CLI and the ROS 2 nodes.

Each component has one frozen dataclass whose fields carry their default, unit, documentation
and bounds (see :func:`param`). Defaults live only in those dataclasses; the files in
``config/`` are generated from them (``graspq config dump``) and a test keeps them in sync.

The YAML files use the ROS 2 parameter-file layout, ``<node_name>: {ros__parameters: {...}}``,
so one file drives both runtimes. A file given to the CLI must be complete: a missing or unknown
key is an error naming the key, so that a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config key '{key}': {message}")
        self.key = key


class ConfigFileError(ConfigError):
    """A config file that cannot be read: missing, or not YAML. Names the file, not a key."""

    def __init__(self, path: str | Path, message: str) -> None:
        ValueError.__init__(self, f"config file '{path}': {message}")
        self.key = str(path)


def param(
    default: Any,
    doc: str,
    *,
    unit: str = "",
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    choices: Sequence[Any] | None = None,
) -> Any:
    """A dataclass field with documentation, unit and bounds checked by :func:`validate`.

    Bounds apply to a number, or to every element of a list/tuple of numbers; ``choices`` to a
    string, or to every element of a list of strings.
    """
    meta = {"doc": doc, "unit": unit, "gt": gt, "ge": ge, "le": le, "choices": choices}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(cls: type[T], doc: str) -> Any:
    """A dataclass field holding a nested config section, defaulted to ``cls()``."""
    return dataclasses.field(default_factory=cls, metadata={"doc": doc, "section": True})


def _check_number(key: str, value: Any, meta: Mapping[str, Any]) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(key, f"must be finite, got {value!r}")
    if meta.get("gt") is not None and not value > meta["gt"]:
        raise ConfigError(key, f"must be > {meta['gt']}, got {value!r}")
    if meta.get("ge") is not None and not value >= meta["ge"]:
        raise ConfigError(key, f"must be >= {meta['ge']}, got {value!r}")
    if meta.get("le") is not None and not value <= meta["le"]:
        raise ConfigError(key, f"must be <= {meta['le']}, got {value!r}")


def _check_value(key: str, value: Any, hint: Any, meta: Mapping[str, Any]) -> Any:
    """Coerce ``value`` to the field's type ``hint`` and check its bounds; return it."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {value!r}")
        return value
    if hint in (int, float):
        _check_number(key, value, meta)
        if hint is int and not float(value).is_integer():
            raise ConfigError(key, f"expected a whole number, got {value!r}")
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}")
        if meta.get("choices") is not None and value not in meta["choices"]:
            raise ConfigError(key, f"must be one of {list(meta['choices'])}, got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            if not value:
                raise ConfigError(key, "must not be empty")
            items = [_check_value(f"{key}[{i}]", v, args[0], meta) for i, v in enumerate(value)]
        else:
            if len(value) != len(args):
                raise ConfigError(key, f"expected {len(args)} values, got {len(value)}")
            items = [_check_value(f"{key}[{i}]", v, a, meta) for i, (v, a) in
                     enumerate(zip(value, args, strict=True))]
        if len(items) != len(set(items)) and meta.get("choices") is not None:
            raise ConfigError(key, f"has duplicates: {value!r}")
        return tuple(items)
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"{key}: union-typed config fields are not supported")
    raise TypeError(f"{key}: unsupported config field type {hint!r}")


def validate(instance: Any, prefix: str = "") -> None:
    """Check every field of a config dataclass (recursively) against its type and bounds."""
    hints = typing.get_type_hints(type(instance))
    for field in dataclasses.fields(instance):
        key = f"{prefix}{field.name}"
        value = getattr(instance, field.name)
        if field.metadata.get("section"):
            validate(value, key + ".")
        else:
            _check_value(key, value, hints[field.name], field.metadata)


def from_mapping(cls: type[T], data: Mapping[str, Any], prefix: str = "",
                 complete: bool = True) -> T:
    """Build config dataclass ``cls`` from a nested mapping, with errors naming the key.

    With ``complete`` every field must be present; otherwise missing ones take their default.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(prefix.rstrip(".") or "<root>", f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in data:
        if name not in fields:
            raise ConfigError(f"{prefix}{name}", f"unknown key (known: {sorted(fields)})")
    kwargs = {}
    for name, field in fields.items():
        key = f"{prefix}{name}"
        if name not in data:
            if complete:
                raise ConfigError(key, "missing")
            continue
        if field.metadata.get("section"):
            kwargs[name] = from_mapping(hints[name], data[name], key + ".", complete)
        else:
            kwargs[name] = _check_value(key, data[name], hints[name], field.metadata)
    instance = cls(**kwargs)
    validate(instance, prefix)
    return instance


def to_mapping(instance: Any) -> dict[str, Any]:
    """Plain nested dict of a config dataclass, tuples as lists (YAML and JSON friendly)."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        if field.metadata.get("section"):
            out[field.name] = to_mapping(value)
        elif isinstance(value, tuple):
            out[field.name] = list(value)
        else:
            out[field.name] = value
    return out


def load_yaml_section(path: str | Path, node_name: str) -> dict[str, Any]:
    """Read ``<node_name>.ros__parameters`` from a ROS 2 parameter file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigFileError(path, "file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigFileError(path, f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or node_name not in raw:
        raise ConfigError(node_name, f"missing top-level node section in {path}")
    body = raw[node_name]
    if not isinstance(body, dict) or "ros__parameters" not in body:
        raise ConfigError(f"{node_name}.ros__parameters", f"missing in {path}")
    return body["ros__parameters"]


def load_config(cls: type[T], path: str | Path, node_name: str) -> T:
    """Load and validate a complete config file for ``cls``."""
    return from_mapping(cls, load_yaml_section(path, node_name))


def dump_yaml(instance: Any, node_name: str, header: str = "") -> str:
    """Render a config as a ROS 2 parameter file, each key commented with its doc and unit."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [f"{node_name}:", "  ros__parameters:"]
    _dump_fields(instance, lines, indent=4)
    return "\n".join(lines) + "\n"


def _dump_fields(instance: Any, lines: list[str], indent: int) -> None:
    pad = " " * indent
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        doc = field.metadata.get("doc", "")
        unit = field.metadata.get("unit", "")
        comment = f"{doc} [{unit}]" if unit else doc
        if field.metadata.get("section"):
            lines.append(f"{pad}# {comment}")
            lines.append(f"{pad}{field.name}:")
            _dump_fields(value, lines, indent + 2)
            continue
        lines.append(f"{pad}{field.name}: {yaml_value(value)}  # {comment}")


def yaml_value(value: Any) -> str:
    """One config value as YAML text on one line: as the dumped files write it, and as
    ``apply_overrides`` reads a ``KEY=VALUE`` assignment."""
    rendered = yaml.safe_dump(list(value) if isinstance(value, tuple) else value,
                              default_flow_style=True, width=1000).strip()
    return rendered.removesuffix("\n...").removesuffix("...").strip()


def apply_overrides(instance: T, assignments: Sequence[str]) -> T:
    """A copy of a config with ``dotted.key=value`` assignments applied (values are YAML).

    Unknown keys and bad values raise :class:`ConfigError` naming the key.
    """
    mapping = to_mapping(instance)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key:
            raise ConfigError(assignment, "expected KEY=VALUE")
        *parents, leaf = key.split(".")
        node = mapping
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise ConfigError(key, "unknown key")
            node = node[part]
        if leaf not in node or isinstance(node[leaf], dict):
            raise ConfigError(key, "unknown key")
        try:
            node[leaf] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(key, f"value is not valid YAML: {text!r}") from exc
    return from_mapping(type(instance), mapping)
