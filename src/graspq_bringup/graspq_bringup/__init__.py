"""GraspQ bringup: where the launch files find the workspace's files, and the lifecycle
autostart they share."""

from pathlib import Path
from typing import Any


def share(launch_file: str, relative: str) -> str:
    """A file from config/, urdf/ or rviz/ for the launch file at ``launch_file``: beside it
    in an installed ``share/graspq_bringup/``, or in a checkout (``launch/`` at the root,
    ``urdf/`` and ``rviz/`` under ``src/graspq_bringup/``)."""
    root = Path(launch_file).resolve().parent.parent
    for candidate in (root / relative, root / "src" / "graspq_bringup" / relative):
        if candidate.exists():
            return str(candidate)
    raise FileNotFoundError(f"{relative} not found under {root}")


def autostart(node: Any) -> list:
    """Launch actions that configure the lifecycle node ``node`` (a launch_ros
    ``LifecycleNode``), then activate it once configure has succeeded."""
    from launch.actions import EmitEvent, RegisterEventHandler
    from launch.events import matches_action
    from launch_ros.event_handlers import OnStateTransition
    from launch_ros.events.lifecycle import ChangeState
    from lifecycle_msgs.msg import Transition

    def change(transition: int) -> EmitEvent:
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                           transition_id=transition))

    return [RegisterEventHandler(OnStateTransition(
                target_lifecycle_node=node, start_state="configuring", goal_state="inactive",
                entities=[change(Transition.TRANSITION_ACTIVATE)])),
            change(Transition.TRANSITION_CONFIGURE)]
