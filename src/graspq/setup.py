"""colcon (ament_python) entry point; pip reads pyproject.toml, which stays authoritative.

This file adds what pyproject.toml cannot express: the ament index marker and package.xml.
The workspace's top-level config/, launch/ and worlds/ are installed by graspq_bringup.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

PACKAGE = "graspq"
# Resolved: `colcon build --symlink-install` runs a symlink to this file in build/graspq/.
HERE = Path(__file__).resolve().parent


def _project_kwargs() -> dict:
    """Metadata for runs where setuptools cannot see pyproject.toml by itself.

    colcon's symlink build runs `setup.py develop` in build/graspq/, which holds symlinks
    to setup.py, setup.cfg, the package and data files only, not pyproject.toml; there we
    read it here so name, version, packages and the console script still come from it.
    """
    if Path("pyproject.toml").is_file():
        return {}
    import tomllib  # Python >= 3.11; ROS 2 Jazzy ships 3.12.

    pyproject = tomllib.loads((HERE / "pyproject.toml").read_text())
    project, tool = pyproject["project"], pyproject["tool"]["setuptools"]
    find = tool["packages"]["find"]
    return {
        "name": project["name"],
        "version": project["version"],
        "description": project["description"],
        "packages": find_namespace_packages(include=find["include"], exclude=find["exclude"]),
        "package_data": tool["package-data"],
        "entry_points": {
            "console_scripts": [f"{k} = {v}" for k, v in project["scripts"].items()]
        },
    }


setup(
    python_requires=">=3.10",  # Here, not in pyproject.toml: see the note there.
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    **_project_kwargs(),
)
