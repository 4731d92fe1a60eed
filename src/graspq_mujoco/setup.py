"""colcon (ament_python) entry point of the MuJoCo robot node package."""

from setuptools import setup

PACKAGE = "graspq_mujoco"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    zip_safe=True,
    description="The MuJoCo scene as a ROS 2 robot",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={"console_scripts": [f"robot_node = {PACKAGE}.robot_node:main"]},
)
