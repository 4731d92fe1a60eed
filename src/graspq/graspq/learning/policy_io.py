"""Rebuild a trained agent from a checkpoint, for evaluation and export."""

from __future__ import annotations

from pathlib import Path

from graspq.config import ConfigError, from_mapping
from graspq.learning.agent import QAgent
from graspq.learning.checkpoint import CheckpointError, load_checkpoint
from graspq.learning.settings import TrainingConfig
from graspq.sim.settings import EnvConfig


def load_agent(path: Path) -> tuple[QAgent, EnvConfig, TrainingConfig]:
    """The agent saved in a checkpoint (file or run directory) and the configs it was trained
    with. Raises :class:`CheckpointError` on a corrupt or mismatched file."""
    payload = load_checkpoint(path)
    try:
        training = from_mapping(TrainingConfig, payload["training_config"])
        env_config = from_mapping(EnvConfig, payload["env_config"])
    except ConfigError as exc:
        raise CheckpointError(f"{payload['path']}: saved config is not valid for this "
                              f"GraspQ version ({exc})") from exc
    camera = env_config.camera
    agent = QAgent(training, training.network_shape(env_config),
                   camera.depth_near_m, camera.depth_far_m)
    try:
        agent.online.load_state_dict(payload["agent"]["online"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{payload['path']}: weights do not fit the network its config "
                              f"describes ({str(exc).splitlines()[0]})") from exc
    agent.online.eval()
    return agent, env_config, training
