"""colcon (ament_python) entry point of the Gazebo Harmonic driver package."""

from setuptools import setup

PACKAGE = "graspq_gazebo"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    zip_safe=True,
    description="GraspQ's robot interface on Gazebo Harmonic through ros_gz_bridge",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={"console_scripts": [
        f"gazebo_robot = {PACKAGE}.gazebo_robot:main",
        f"fake_gazebo = {PACKAGE}.fake_gazebo:main",
    ]},
)
