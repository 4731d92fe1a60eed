"""colcon (ament_python) entry point of the servo node package."""

from setuptools import setup

PACKAGE = "graspq_servo"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    zip_safe=True,
    description="GraspQ's servo lifecycle node",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={"console_scripts": [f"servo_node = {PACKAGE}.servo_node:main",
                                      f"servo_bench = {PACKAGE}.bench:main"]},
)
