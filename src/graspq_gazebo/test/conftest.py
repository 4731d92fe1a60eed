"""Shared fixtures of the Gazebo driver's tests: an isolated DDS domain for the whole run and
a tiny trained, exported policy (real torch training, real ONNX export)."""

import os

import pytest

from graspq_servo.test_support import isolate_ros_graph, tiny_policy

isolate_ros_graph()
os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(scope="session")
def trained_policy(tmp_path_factory):
    """``(policy.onnx, env.yaml)`` of a tiny policy trained for this run."""
    return tiny_policy(tmp_path_factory.mktemp("policy"))
