"""colcon (ament_python) entry point: installs the workspace's user-facing files.

config/, launch/ and worlds/ live at the workspace root (users run `ros2 launch
launch/servo.launch.py` from a checkout); this package installs them, with urdf/ and rviz/,
into share/graspq_bringup/ for a built workspace.
"""

import os
from glob import glob
from pathlib import Path

from setuptools import setup

PACKAGE = "graspq_bringup"
# Resolved: `colcon build --symlink-install` runs a symlink to this file in build/<pkg>/.
HERE = Path(__file__).resolve().parent
WORKSPACE = HERE.parent.parent


def _share(folder: Path, pattern: str, target: str) -> list[tuple[str, list[str]]]:
    """A data_files entry for folder/pattern, or none when nothing matches.

    Sources are relative to the working directory, as install_data resolves them (and colcon
    requires relative paths).
    """
    sources = [os.path.relpath(f) for f in sorted(glob(str(folder / pattern)))]
    return [(f"share/{PACKAGE}/{target}", sources)] if sources else []


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *_share(WORKSPACE / "config", "*.yaml", "config"),
        *_share(WORKSPACE / "launch", "*.py", "launch"),
        *_share(WORKSPACE / "worlds", "*.sdf", "worlds"),
        *_share(WORKSPACE / "worlds", "*.yaml", "worlds"),
        *_share(HERE / "urdf", "*.urdf", "urdf"),
        *_share(HERE / "rviz", "*.rviz", "rviz"),
    ],
    zip_safe=True,
    description="GraspQ's launch files, configuration, URDF and rviz2 configuration",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
)
