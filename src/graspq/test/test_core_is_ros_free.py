"""The core library must import without ROS and must not load any ROS module."""

import subprocess
import sys

CHECK = """
import pkgutil, sys, importlib
import graspq
for module in pkgutil.walk_packages(graspq.__path__, "graspq."):
    importlib.import_module(module.name)
ros = sorted(m for m in sys.modules if m.split(".")[0] in
             {"rclpy", "launch", "launch_ros", "ament_index_python", "sensor_msgs", "std_msgs"})
print(",".join(ros))
"""


def test_importing_every_core_module_loads_no_ros_module():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
