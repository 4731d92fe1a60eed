"""colcon (ament_python) entry point of the training node package."""

from setuptools import setup

PACKAGE = "graspq_training"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    zip_safe=True,
    description="GraspQ's training node",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={"console_scripts": [f"training_node = {PACKAGE}.training_node:main"]},
)
