"""ROS parameters from GraspQ's config dataclasses, and back.

Each field of a core config dataclass (:mod:`graspq.config`: typed, defaulted, documented,
bounded) becomes one ROS parameter named ``<prefix><field>`` (sections nest with dots, as a
ROS parameter file's nested keys do), declared with a descriptor that carries the field's
documentation, unit and range. Reading them back goes through the core's own validation, so
a bad value is refused with the core's message naming the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

from graspq.config import ConfigError, from_mapping, to_mapping

T = TypeVar("T")


def _leaves(instance: Any, prefix: str) -> Iterable[tuple[str, Any, dataclasses.Field]]:
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        if field.metadata.get("section"):
            yield from _leaves(value, f"{prefix}{field.name}.")
        else:
            yield f"{prefix}{field.name}", value, field


def _descriptor(name: str, value: Any, field: dataclasses.Field,
                read_only: bool) -> ParameterDescriptor:
    meta = field.metadata
    unit = f" [{meta['unit']}]" if meta.get("unit") else ""
    descriptor = ParameterDescriptor(name=name, description=f"{meta.get('doc', '')}{unit}",
                                     read_only=read_only)
    low = meta.get("ge") if meta.get("ge") is not None else meta.get("gt")
    high = meta.get("le")
    if low is not None and high is not None and not isinstance(value, (list, tuple)):
        if isinstance(value, bool):
            pass
        elif isinstance(value, int):
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high),
                                                     step=0)]
        elif isinstance(value, float):
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(low), to_value=float(high), step=0.0)]
    if meta.get("choices") is not None:
        descriptor.additional_constraints = f"one of {list(meta['choices'])}"
    return descriptor


def _ros_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def declare_config(node: Node, defaults: Any, prefix: str,
                   read_only: Iterable[str] = ()) -> list[str]:
    """Declare one parameter per field of the config dataclass instance ``defaults``, named
    ``prefix + field`` (nested sections joined by dots); ``read_only`` names fields (without
    the prefix) that cannot change after start. Returns the parameter names."""
    frozen = set(read_only)
    names = []
    for name, value, field in _leaves(defaults, prefix):
        descriptor = _descriptor(name, value, field, name[len(prefix):] in frozen)
        node.declare_parameter(name, _ros_value(value), descriptor)
        names.append(name)
    return names


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        target = nested
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return nested


def read_config(node: Node, cls: type[T], prefix: str,
                changes: Mapping[str, Any] | None = None) -> T:
    """The config dataclass ``cls`` from the node's parameters under ``prefix``, with
    ``changes`` (full parameter names to new values, e.g. from a set-parameters callback)
    applied on top. Raises :class:`graspq.config.ConfigError` naming the parameter."""
    flat = {}
    for name, _, _ in _leaves(cls(), prefix):
        value = node.get_parameter(name).value
        if changes is not None and name in changes:
            value = changes[name]
        flat[name[len(prefix):]] = value
    try:
        return from_mapping(cls, _nest(flat), prefix)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(prefix.rstrip("."), str(exc)) from exc


def as_parameter_overrides(instance: Any, prefix: str) -> dict[str, Any]:
    """``{parameter name: value}`` for every field of ``instance`` (for a launch file or a
    test that starts a node with a whole config)."""
    flat: dict[str, Any] = {}

    def walk(mapping: Mapping[str, Any], path: str) -> None:
        for key, value in mapping.items():
            if isinstance(value, Mapping):
                walk(value, f"{path}{key}.")
            else:
                flat[f"{path}{key}"] = _ros_value(value)

    walk(to_mapping(instance), prefix)
    return flat

