"""Training configuration (``config/training.yaml``): learner, network, replay, schedule."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from graspq.actions import NUM_ACTIONS, EpisodeExploration, action_count
from graspq.config import ConfigError, param, section
from graspq.learning.model import GQNConfig
from graspq.learning.offset_channels import check_scene
from graspq.learning.precision import PRECISIONS

if TYPE_CHECKING:
    from graspq.sim.settings import EnvConfig

TRAINING_NODE_NAME = "graspq_training"
LEARNERS = ("qlearning", "dqn", "ddqn")
VIEWS = ("multi", "single")


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Widths of the Grasp-Q-Network (the image size comes from the env's camera config)."""

    stream_channels: int = param(32, "channels of every convolution in a camera stream", ge=1)
    joint_channels: int = param(64, "channels of the convolution over the joined streams", ge=1)
    fc_width: int = param(256, "width of the image and head fully connected layers", ge=1)
    motor_width: int = param(64, "width of the two motor-stream layers", ge=1)
    batchnorm_momentum: float = param(1.0, "weight of the newest batch in BatchNorm's running "
                                      "statistics (torch's 0.1 let them trail the weights; "
                                      "see graspq/learning/model.py)", gt=0.0, le=1.0)
    fingertip_features: bool = param(False, "give the motor stream the fingertip position and "
                                     "yaw computed from the joint angles by forward "
                                     "kinematics (an extension of the paper's motor state; "
                                     "see graspq/learning/fingertip.py)")
    fingertip_unit_m: float = param(0.01, "length that counts as 1 in the fingertip position "
                                    "features (one action step)", unit="m", gt=0.0, le=1.0)
    spatial_keypoints: bool = param(False, "give the head each camera stream's spatial-softmax "
                                    "keypoints: per channel, the expected image position of "
                                    "its activation, a continuous position signal beside the "
                                    "pooled 8x8 features (an extension; see "
                                    "graspq/learning/model.py)")
    fingertip_offset_channels: bool = param(
        False, "give the overhead stream three more input channels: each pixel's point, from "
        "its depth and the overhead camera's pose, less the fingertip position, in "
        "fingertip_unit_m, so that a convolution finding the object reads its offset from the "
        "fingertip there (an extension for single view; needs fingertip_features; see "
        "graspq/learning/offset_channels.py)")
    fingertip_glimpse: bool = param(
        False, "add a camera stream fed with the overhead image resampled around where the "
        "fingertip is in it (from forward kinematics and the overhead camera's pose), so that "
        "an object's place in it is its offset from the fingertip, as in the wrist camera's "
        "image (an extension for single view; needs fingertip_features; see "
        "graspq/learning/glimpse.py)")
    glimpse_zoom: float = param(1.0, "magnification of the fingertip glimpse: it spans "
                                "1/glimpse_zoom of the overhead image", ge=1.0, le=8.0)

    def gqn(self, image_size: int, views: str, num_actions: int = NUM_ACTIONS) -> GQNConfig:
        """The network shape for an image size, view mode and action count (see
        :func:`graspq.actions.action_count`)."""
        return GQNConfig(image_size=image_size, num_actions=num_actions,
                         stream_channels=self.stream_channels,
                         joint_channels=self.joint_channels, fc_width=self.fc_width,
                         motor_width=self.motor_width, views=views,
                         batchnorm_momentum=self.batchnorm_momentum,
                         fingertip_features=self.fingertip_features,
                         fingertip_unit_m=self.fingertip_unit_m,
                         spatial_keypoints=self.spatial_keypoints,
                         fingertip_offset_channels=self.fingertip_offset_channels,
                         fingertip_glimpse=self.fingertip_glimpse,
                         glimpse_zoom=self.glimpse_zoom)


@dataclasses.dataclass(frozen=True)
class ExplorationConfig:
    """Epsilon-greedy schedule, linear in episodes."""

    epsilon_start: float = param(1.0, "exploration rate at the first episode", ge=0.0, le=1.0)
    epsilon_end: float = param(0.05, "exploration rate after the decay", ge=0.0, le=1.0)
    epsilon_decay_episodes: int = param(1500, "episodes over which epsilon decays", ge=1)
    max_random_streak: int = param(1, "a random action is held for a length drawn from 1 to "
                                   "this many steps (ez-greedy, Dabney et al. 2021: turns and "
                                   "moves of several steps in a row; see graspq/actions.py); "
                                   "1 = plain epsilon-greedy", ge=1, le=60)
    turn_instead_of_close: float = param(
        0.0, "probability that a greedy CLOSE in a training episode becomes a turn, either way "
        "at random: turns tried where the policy takes itself to be placed to close, where a "
        "cube off its faces needs them (see graspq/actions.py); evaluations never swap; 0 = off",
        ge=0.0, le=1.0)
    turn_streak: int = param(
        1, "a close swapped for a turn (turn_instead_of_close) turns the same way for a "
        "length drawn from 1 to this many steps: a cube 30 deg off needs two turns in a row "
        "before its close lifts; 1 = one turn", ge=1, le=6)

    def epsilon(self, episode: int) -> float:
        """Exploration rate for a 0-based training episode."""
        fraction = min(1.0, episode / self.epsilon_decay_episodes)
        return self.epsilon_start + fraction * (self.epsilon_end - self.epsilon_start)

    def for_episode(self, epsilon: float) -> EpisodeExploration:
        """A training episode's exploration at rate ``epsilon`` (the schedule's, or an
        actor's own), with this config's streaks and close-to-turn swaps."""
        return EpisodeExploration(epsilon, self.max_random_streak, self.turn_instead_of_close,
                                  self.turn_streak)


@dataclasses.dataclass(frozen=True)
class ActorsConfig:
    """Parallel actors (``graspq train --actors N`` with N > 1; unused with one process)."""

    replay_ratio: float = param(1.0, "gradient updates per environment step the actors "
                                "collect (1 = one update per step, as update_every 1 in one "
                                "process; below 1 more actors bring more data per update)",
                                gt=0.0, le=16.0)
    sync_episodes: int = param(1, "finished episodes between sending the learner's weights to "
                               "the actors", ge=1)
    epsilon_alpha: float = param(0.0, "spread of exploration over actors (Ape-X): actor i of "
                                 "N explores with epsilon ** (1 + alpha * i / (N - 1)); 0 = "
                                 "every actor follows the schedule", ge=0.0, le=16.0)


@dataclasses.dataclass(frozen=True)
class CurriculumConfig:
    """A curriculum on the spawn range and the start height (training episodes only;
    evaluations always run the full task). See :mod:`graspq.learning.curriculum`."""

    stages: int = param(0, "stages from the first (easiest) to the full task; 0 = off", ge=0,
                        le=20)
    first_spawn_half_xy_m: float = param(
        0.0, "objects spawn within this half width of the workspace centre in the first "
        "stage; each stage widens it evenly to the scene's spawn_half_xy_m", unit="m", ge=0.0,
        le=0.25)
    first_start_height_above_table_m: float = param(
        0.15, "fingertip start height in the first stage; each stage moves it evenly to the "
        "scene's start_height_above_table_m", unit="m", gt=0.0, le=0.5)
    first_object_yaw_half_deg: float = param(
        45.0, "in the first stage an object's yaw lies within this of the gripper's start "
        "yaw (the fingers close across a cube's faces); each stage widens it evenly to 45 deg, "
        "where a cube, the same every quarter turn, shows every yaw; 45 = any yaw throughout",
        unit="deg", ge=0.0, le=45.0)
    start_over_object: bool = param(
        False, "the stages narrow where the gripper starts against the object, not where the "
        "object spawns: objects spawn anywhere in the scene's range and the fingertip starts "
        "over the object, at most the stage's spawn half width away in x and y (the last "
        "stage, the full task, starts over the workspace centre as always), so that from the "
        "first stage the object and the gripper appear all over the overhead view")
    promote_success: float = param(
        0.5, "success rate of the stage's last `window` training episodes that moves the "
        "curriculum to the next stage", gt=0.0, le=1.0)
    window: int = param(100, "training episodes a stage's success rate is measured over (a "
                        "stage lasts at least this long)", ge=1)


@dataclasses.dataclass(frozen=True)
class LearningRateDecayConfig:
    """Adam's learning rate, linear in episodes: ``learning_rate`` until ``start_episode``,
    then falling to ``final_fraction`` of it over ``episodes``, then held. A function of the
    episode alone, as epsilon is, so a resumed run sets the rate it would have had."""

    final_fraction: float = param(1.0, "learning rate after the decay, as a fraction of "
                                  "learning_rate (1 = no decay: the rate stays put; less "
                                  "quiets the values' noise late in a run, where a few tenths "
                                  "reorder the actions)", gt=0.0, le=1.0)
    start_episode: int = param(0, "first training episode of the decay", ge=0)
    episodes: int = param(5000, "episodes over which the rate falls to its final fraction",
                          ge=1)

    def factor(self, episode: int) -> float:
        """Multiplier of ``learning_rate`` for a 0-based training episode."""
        fraction = min(1.0, max(0.0, (episode - self.start_episode) / self.episodes))
        return 1.0 + fraction * (self.final_fraction - 1.0)


@dataclasses.dataclass(frozen=True)
class PrioritizedReplayConfig:
    """Proportional prioritised replay (Schaul et al. 2016, arXiv:1511.05952): a transition
    is drawn with probability ``(|TD error| + epsilon) ** alpha`` over the sum, and its loss is
    weighted by ``(N * P) ** -beta`` over the largest such weight, beta annealed linearly in
    episodes (a schedule of its own, as epsilon's, so a run cut short or extended on resume
    draws as an unbroken one). Demonstrations stay uniform."""

    alpha: float = param(0.0, "how strongly the TD error sets a transition's draw "
                         "probability: 0 = uniform replay (off), 1 = proportional; the paper "
                         "uses 0.6", ge=0.0, le=1.0)
    beta_start: float = param(0.4, "importance-sampling exponent at the first episode, "
                              "annealed linearly to 1 over beta_episodes", ge=0.0, le=1.0)
    beta_episodes: int = param(7000, "episodes over which beta rises to 1", ge=1)
    epsilon: float = param(0.01, "added to |TD error| so no transition's probability is 0",
                           gt=0.0)

    def beta(self, episode: int) -> float:
        """Importance-sampling exponent for a 0-based training episode."""
        fraction = min(1.0, episode / self.beta_episodes)
        return self.beta_start + fraction * (1.0 - self.beta_start)


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Everything ``graspq train`` needs beyond the env config."""

    learner: str = param("ddqn", "TD target: qlearning (online max, no replay, no target "
                         "net), dqn (target max), ddqn (target at the online argmax)",
                         choices=LEARNERS)
    views: str = param("multi", "multi: overhead RGB-D + wrist RGB + motor; single: overhead "
                       "RGB-D + motor", choices=VIEWS)
    episodes: int = param(3000, "training episodes", ge=1)
    seed: int = param(0, "seed of the run (episodes, exploration, weights)", ge=0)
    gamma: float = param(0.95, "discount factor", gt=0.0, le=1.0)
    learning_rate: float = param(2.5e-4, "Adam learning rate", gt=0.0)
    adam_eps: float = param(1.5e-4, "Adam epsilon", gt=0.0)
    grad_clip_norm: float = param(10.0, "gradient norm clipping threshold", gt=0.0)
    loss: str = param("mse", "TD loss: mse (paper eq. 5) or huber", choices=("mse", "huber"))
    batch_size: int = param(32, "transitions per update (dqn, ddqn)", ge=1)
    replay_capacity: int = param(100_000, "replay buffer size in transitions", ge=1)
    learning_starts: int = param(1000, "transitions collected before the first update", ge=1)
    update_every: int = param(1, "environment steps per gradient update", ge=1)
    updates_per_step: int = param(1, "gradient updates each update_every steps pay for (the "
                                  "replay ratio in one process: 2 reuses every transition "
                                  "twice as often for twice the update time; with actors, "
                                  "actors.replay_ratio sets it)", ge=1)
    close_replay_rows: int = param(0, "rows added to every update, drawn from the replay's "
                                   "CLOSE transitions alone (their target is the close's own "
                                   "reward, robot-knowable): the close's value, which decides "
                                   "between closing and turning or moving first, gets that many "
                                   "more samples per update; 0 = off", ge=0, le=256)
    advantage_learning: float = param(0.0, "advantage learning (Bellemare et al. 2016): every "
                                      "TD target less this times the target network's gap "
                                      "V'(s) - Q'(s, a) between the best action and the one "
                                      "taken, at the state itself. It widens the gaps between "
                                      "actions, so that a move's small cost (two steps for a "
                                      "wrong one) is not lost in the values' noise; 0 = off",
                                      ge=0.0, le=0.99)
    target_update_every: int = param(1000, "updates between hard copies of the target net",
                                     ge=1)
    n_step: int = param(1, "n-step returns (1 = the paper's one-step target)", ge=1, le=20)
    demo_episodes: int = param(0, "oracle demonstration episodes put in the replay buffer "
                               "before training (0 = none, the paper-faithful default)", ge=0)
    demo_epsilon: float = param(0.0, "share of demonstration steps that take a random action "
                                "instead of the oracle's, labelled with the oracle's (DART "
                                "noise injection: demonstrations that show recoveries)",
                                ge=0.0, le=1.0)
    demo_unturned_branches: bool = param(False, "after each demonstration in which the "
                                         "oracle turns, also record the branch from its "
                                         "first turn state that never turns: descends and "
                                         "closes unaligned, as the trained policy's cube "
                                         "failures do (labelled with the oracle's turns; "
                                         "see graspq/learning/demonstrations.py)")
    demo_noise_per_episode: bool = param(True, "each demonstration draws its noise from its "
                                         "own generator (seeded by the run seed and its "
                                         "index), so the demonstrations are the same however "
                                         "many processes record them; false = one generator "
                                         "for all, in order (runs before the key)")
    demo_workers: int = param(1, "processes recording the demonstrations (needs "
                              "demo_noise_per_episode; they cost one core each, and the "
                              "demonstrations are the same for any number)", ge=1, le=64)
    expert_turn_ties: bool = param(False, "where a cube is as near aligned turning either "
                                   "way (yaw still to turn beyond 45 deg less half a turn "
                                   "step), label both turns as the expert's: the margin loss "
                                   "accepts either. The oracle picks one by a sign no image "
                                   "shows near +-45 deg (see graspq/sim/oracle.py)")
    demo_fraction: float = param(0.25, "share of each batch drawn from the demonstrations "
                                 "(when demo_episodes > 0)", ge=0.0, le=1.0)
    demo_margin: float = param(0.0, "DQfD large-margin loss on demonstrations: margin of the "
                               "expert's action over the others (0 = off)", ge=0.0)
    expert_labels: bool = param(False, "label every state the agent visits with the scripted "
                                "oracle's action (privileged teacher at training time only, "
                                "DAgger-style); the margin loss then covers the agent's own "
                                "transitions too (needs demo_margin > 0)")
    margin_balance: float = param(0.0, "weight each labelled row's margin loss by its "
                                  "action's share of the demonstrations' labels to the power "
                                  "-margin_balance: 0 = unweighted, 0.5 = inverse square "
                                  "root, 1 = inverse frequency (rare labels such as the cube "
                                  "turn count as much as common ones)", ge=0.0, le=1.0)
    turn_margin_weight: float = param(1.0, "weight of the margin loss on states the oracle "
                                      "labels with a turn, against 1 for every other label "
                                      "(more asks the policy harder to take the cube's "
                                      "turns; on top of margin_balance)", ge=0.0)
    pretrain_updates: int = param(0, "updates on demonstrations alone before the first "
                                  "episode (DQfD pre-training)", ge=0)
    hindsight_close_labels: bool = param(False, "after a successful episode, label each "
                                         "state whose fingertip was at least "
                                         "hindsight_min_offset_m from where the gripper closed "
                                         "(x or y) with the miss reward as its CLOSE target: "
                                         "the object stood there (robot-knowable: joint angles "
                                         "and the reward; see graspq/learning/hindsight.py)")
    hindsight_min_offset_m: float = param(0.02, "how far from the successful close a "
                                          "state's fingertip must be for its hindsight label",
                                          unit="m", gt=0.0, le=0.2)
    pose_loss_weight: float = param(0.0, "weight of the auxiliary pose loss: a head on the "
                                    "joined features regresses the object's offset and the "
                                    "yaw still to turn, read from the simulator (privileged, "
                                    "training only; see graspq/learning/pose.py). 0 = off",
                                    ge=0.0)
    pose_yaw_weight: float = param(1.0, "weight of the pose loss's two yaw terms against its "
                                   "three offset terms (1 = the plain mean; more teaches the "
                                   "streams the cube's yaw harder)", ge=0.0)
    augment_shift_px: int = param(0, "random image shift for updates, pixels (0 = off)",
                                  ge=0, le=16)
    exploration: ExplorationConfig = section(ExplorationConfig, "epsilon-greedy schedule")
    learning_rate_decay: LearningRateDecayConfig = section(
        LearningRateDecayConfig, "learning-rate schedule (linear in episodes)")
    network: NetworkConfig = section(NetworkConfig, "network widths")
    actors: ActorsConfig = section(ActorsConfig, "parallel actors (graspq train --actors N)")
    prioritized_replay: PrioritizedReplayConfig = section(
        PrioritizedReplayConfig, "prioritised replay (dqn, ddqn; alpha 0 = uniform)")
    curriculum: CurriculumConfig = section(CurriculumConfig, "curriculum on the spawn range "
                                           "and the start height (training episodes only)")
    eval_every: int = param(100, "episodes between greedy evaluations", ge=1)
    eval_episodes: int = param(30, "episodes per evaluation, cycling cube/sphere/cylinder",
                               ge=1)
    eval_seed: int = param(1_000_000, "seed of the fixed evaluation episode set", ge=0)
    revisit_window: int = param(0, "the greedy policy (evaluations, graspq eval, the "
                                "exported policy) never takes a move back to a pose it held "
                                "before any of its last revisit_window steps, but the best "
                                "other action (breaks loops; 1 = never undo the previous "
                                "move; 0 = plain argmax; see graspq/actions.py); training's "
                                "exploration is unchanged", ge=0)
    checkpoint_every: int = param(50, "episodes between checkpoints", ge=1)
    torch_threads: int = param(2, "CPU threads for torch", ge=1, le=64)
    precision: str = param("auto", "arithmetic of the learner's updates: bf16 (bfloat16 "
                           "mixed precision: layers in bf16; weights, Adam state, targets and "
                           "losses in float32), fp32, or auto (bf16 where the CPU runs it "
                           "natively, AMX or AVX512-BF16; fp32 elsewhere). Acting is float32 "
                           "(see graspq/learning/precision.py)", choices=PRECISIONS)

    def learning_rate_at(self, episode: int) -> float:
        """Adam's learning rate for a 0-based training episode."""
        return self.learning_rate * self.learning_rate_decay.factor(episode)

    def network_shape(self, env_config: EnvConfig) -> GQNConfig:
        """The network this config trains in a scene: its widths and views, the scene's image
        size and action set (:func:`graspq.actions.action_count`). Refuses, naming the key,
        a scene that offset channels were not computed for."""
        for option in ("fingertip_offset_channels", "fingertip_glimpse"):
            if getattr(self.network, option):
                check_scene(env_config, f"network.{option}")
        return self.network.gqn(env_config.camera.image_size, self.views,
                                action_count(env_config.actions.close_yaw_turns))

    def __post_init__(self) -> None:
        if self.learning_starts < self.batch_size:
            raise ConfigError("learning_starts", "must be at least batch_size")
        if self.learner == "qlearning" and (self.n_step != 1 or self.demo_episodes
                                            or self.expert_labels or self.pose_loss_weight):
            raise ConfigError("learner", "qlearning learns from the latest transition only: "
                              "n_step must be 1, demo_episodes 0, expert_labels false and "
                              "pose_loss_weight 0")
        if self.learner == "qlearning" and self.hindsight_close_labels:
            raise ConfigError("hindsight_close_labels", "qlearning has no replay buffer to "
                              "label: set it to false")
        if self.learner == "qlearning" and self.prioritized_replay.alpha > 0:
            raise ConfigError("prioritized_replay.alpha", "qlearning has no replay buffer to "
                              "prioritise: set it to 0")
        if self.learner == "qlearning" and self.updates_per_step > 1:
            raise ConfigError("updates_per_step", "qlearning learns once from each latest "
                              "transition, with no replay buffer to draw more: set it to 1")
        if self.learner == "qlearning" and self.advantage_learning > 0:
            raise ConfigError("advantage_learning", "needs the target network's values, and "
                              "qlearning has none: set it to 0")
        if self.learner == "qlearning" and self.close_replay_rows > 0:
            raise ConfigError("close_replay_rows", "qlearning has no replay buffer to draw "
                              "CLOSE transitions from: set it to 0")
        if self.margin_balance > 0 and (self.demo_margin <= 0 or not self.demo_episodes):
            raise ConfigError("margin_balance", "weights the margin loss by the "
                              "demonstrations' label counts: set demo_margin > 0 and "
                              "demo_episodes > 0")
        if self.demo_workers > 1 and not self.demo_noise_per_episode:
            raise ConfigError("demo_workers", "more than one process needs "
                              "demo_noise_per_episode: true (one shared noise generator "
                              "must run through the episodes in order)")
        if self.expert_labels and self.demo_margin <= 0:
            raise ConfigError("expert_labels", "the labels feed the margin loss: set "
                              "demo_margin > 0")
        if self.network.fingertip_offset_channels and not self.network.fingertip_features:
            raise ConfigError("network.fingertip_offset_channels", "sets each pixel against "
                              "the fingertip position: set network.fingertip_features true")
        if self.network.fingertip_glimpse and not self.network.fingertip_features:
            raise ConfigError("network.fingertip_glimpse", "is centred on the fingertip "
                              "position: set network.fingertip_features true")


def evaluation_revisit_window(training: TrainingConfig, override: int | None) -> int:
    """The revisit window an evaluation uses: the run's ``revisit_window``, unless
    ``override`` (``--revisit-window`` of graspq eval and the diagnosis tool) is given."""
    if override is None:
        return training.revisit_window
    if override < 0:
        raise ValueError(f"--revisit-window must be 0 or more, got {override}")
    return override
