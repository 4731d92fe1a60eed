"""colcon (ament_python) entry point of the Baxter driver bridge package."""

from setuptools import setup

PACKAGE = "graspq_baxter"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml", "README.md"]),
    ],
    zip_safe=True,
    description="GraspQ's robot interface on a Baxter (driver bridge) and a fake Baxter",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={"console_scripts": [f"baxter_bridge = {PACKAGE}.bridge_node:main",
                                      f"fake_baxter = {PACKAGE}.fake_baxter:main",
                                      f"baxter_bench = {PACKAGE}.bench:main"]},
)
