"""GraspQ bringup: where the launch files find the workspace's files."""

from pathlib import Path


def share(launch_file: str, relative: str) -> str:
    """A file from config/, urdf/ or rviz/ for the launch file at ``launch_file``: beside it
    in an installed ``share/graspq_bringup/``, or in a checkout (``launch/`` at the root,
    ``urdf/`` and ``rviz/`` under ``src/graspq_bringup/``)."""
    root = Path(launch_file).resolve().parent.parent
    for candidate in (root / relative, root / "src" / "graspq_bringup" / relative):
        if candidate.exists():
            return str(candidate)
    raise FileNotFoundError(f"{relative} not found under {root}")
