"""colcon (ament_python) entry point; pip reads pyproject.toml, which stays authoritative.

This file adds what pyproject.toml cannot express: the ament index marker, package.xml,
and the workspace's top-level config/, launch/ and worlds/ folders, installed into
share/graspq/ so installed ROS nodes and `ros2 launch` find them.
"""

import os
from glob import glob
from pathlib import Path

from setuptools import find_namespace_packages, setup

PACKAGE = "graspq"
# Resolved: `colcon build --symlink-install` runs a symlink to this file in build/graspq/.
HERE = Path(__file__).resolve().parent
WORKSPACE = HERE.parent.parent


def _share(folder: str, pattern: str) -> list[tuple[str, list[str]]]:
    """A data_files entry for <workspace>/<folder>/<pattern>, or none when nothing matches.

    Sources are relative to the working directory, as install_data resolves them (and
    colcon requires relative paths). A missing folder, as in an sdist, adds nothing.
    """
    files = sorted(glob(str(WORKSPACE / folder / pattern)))
    sources = [os.path.relpath(f) for f in files]
    return [(f"share/{PACKAGE}/{folder}", sources)] if sources else []


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
        *_share("config", "*.yaml"),
        *_share("launch", "*.py"),
        *_share("worlds", "*.sdf"),
    ],
    **_project_kwargs(),
)
