"""Shared fixtures of the Baxter bridge's tests: a DDS domain of this run's own (real DDS on
this host) and, for the servo episodes, a tiny trained and exported policy."""

import pytest

from graspq_servo.test_support import isolate_ros_graph, tiny_policy

isolate_ros_graph()


@pytest.fixture(scope="session")
def trained_policy(tmp_path_factory):
    """``(policy.onnx, env.yaml)`` of a tiny policy trained for this run."""
    return tiny_policy(tmp_path_factory.mktemp("policy"))
