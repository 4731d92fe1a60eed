"""The training loop: collect episodes epsilon-greedily, learn, evaluate, checkpoint, resume.

The CLI (``graspq train``) and the ROS training node drive this one class. A run directory
holds the configs, ``train.csv`` (one row per episode), ``eval.csv`` (one row per greedy
evaluation), ``timing.json`` (where the time went), TensorBoard event files and the
checkpoints; ``resume`` continues exactly where
the last checkpoint left off (same weights, optimizer, replay, RNG streams and counters).
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import math
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import graspq
from graspq.actions import GreedyChooser, action_name, close_actions
from graspq.config import ConfigError, dump_yaml, to_mapping
from graspq.learning.actor_pool import LOCAL, ActorPool
from graspq.learning.actors import EpisodeTask, actor_epsilon
from graspq.learning.agent import QAgent, concat_batches, single_transition_batch
from graspq.learning.checkpoint import (
    CheckpointError,
    config_differences,
    config_hash,
    load_checkpoint,
    save_best_checkpoint,
    save_checkpoint,
)
from graspq.learning.collector import (
    AgentGuard,
    EpisodeCollector,
    check_collectable,
    collect_training_episode,
    evaluate_collected,
)
from graspq.learning.curriculum import Curriculum
from graspq.learning.demo_workers import DemoEpisode, DemoStyle, record_demonstrations
from graspq.learning.demonstrations import (
    demo_capacity,
    oracle_labels,
    record_oracle_episodes,
)
from graspq.learning.hindsight import HindsightCloseLabeller
from graspq.learning.pose import NO_POSE
from graspq.learning.precision import describe_precision
from graspq.learning.replay import NO_EXPERT, ReplayBuffer
from graspq.learning.settings import TRAINING_NODE_NAME, TrainingConfig
from graspq.learning.timing import PhaseTimer, append_session
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.oracle import OraclePolicy
from graspq.sim.rollout import run_episodes
from graspq.sim.settings import ENV_NODE_NAME, OBJECT_TYPES, EnvConfig

TRAIN_COLUMNS = ("episode", "env_steps", "updates", "steps", "return", "outcome", "object",
                 "epsilon", "loss", "success_rate_100", "steps_per_s", "wall_s")
CURRICULUM_COLUMNS = ("episode", "env_steps", "stage", "spawn_half_xy_m",
                      "start_height_above_table_m", "object_yaw_half_deg")
EVAL_COLUMNS = ("episode", "env_steps", "success_rate", *OBJECT_TYPES, "mean_steps",
                "mean_steps_to_success", "mean_return")
LOG_COLUMNS = {"train.csv": TRAIN_COLUMNS, "eval.csv": EVAL_COLUMNS,
               "curriculum.csv": CURRICULUM_COLUMNS}
_DEMO_SEED_OFFSET = 1 << 19  # demonstration episodes use seeds no training episode uses


def read_log(path: Path) -> list[dict[str, str]]:
    """Rows of a run's ``train.csv`` or ``eval.csv`` (empty if the file does not exist)."""
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def episode_seed(run_seed: int, episode: int) -> int:
    """Env seed of a training episode: distinct per run seed and episode."""
    return (run_seed << 20) + episode


def demo_plan(run_seed: int, count: int) -> list[DemoEpisode]:
    """A run's demonstration episodes: env seeds no training episode uses, and each
    episode's noise seed (with ``demo_noise_per_episode``)."""
    return [DemoEpisode(episode_seed(run_seed, _DEMO_SEED_OFFSET + index),
                        (run_seed, _DEMO_SEED_OFFSET, index)) for index in range(count)]


def demo_buffer(training: TrainingConfig, env_config: EnvConfig, episodes: int) -> ReplayBuffer:
    """An empty buffer with room for ``episodes`` of the run's demonstrations."""
    camera = env_config.camera
    return ReplayBuffer(demo_capacity(episodes, env_config.max_steps,
                                      training.demo_unturned_branches),
                        camera.image_size, training.views, camera.depth_near_m,
                        camera.depth_far_m)


def demo_style(training: TrainingConfig) -> DemoStyle:
    """How a run records its demonstrations (its ``demo_*`` keys)."""
    return DemoStyle(training.demo_epsilon, training.demo_unturned_branches,
                     training.expert_turn_ties)


class GreedyPolicy:
    """The agent's greedy policy, for evaluation: argmax of its Q-values, and with a
    ``revisit_window`` never a move back to a pose of its last steps
    (:class:`graspq.actions.GreedyChooser`; ``run_episodes`` calls :meth:`reset` at every
    episode start)."""

    def __init__(self, agent: QAgent, revisit_window: int = 0) -> None:
        self.agent = agent
        self.chooser = GreedyChooser(revisit_window)

    def reset(self) -> None:
        """Forget the episode's moves (a new episode)."""
        self.chooser.reset()

    def __call__(self, obs: dict[str, np.ndarray]) -> int:
        return int(self.chooser.choose(self.agent.q_values(obs)))


def evaluate(env: BaxterGraspEnv, agent: QAgent, episodes: int, seed: int,
             revisit_window: int = 0) -> dict[str, Any]:
    """Greedy success on a fixed, object-balanced episode set (seeds ``seed`` ...)."""
    return run_episodes(env, GreedyPolicy(agent, revisit_window), episodes, seed,
                        object_type=OBJECT_TYPES).as_dict()


@dataclasses.dataclass
class EpisodeStats:
    """What one training episode did, for the logs and the progress bar."""

    steps: int
    episode_return: float
    outcome: str
    object: str
    loss: float
    loss_parts: dict[str, float] = dataclasses.field(default_factory=dict)
    """Mean of each loss term over the episode's updates (td, margin, pose: unweighted)."""


class _EpisodeLosses:
    """The losses of one episode's updates, and their loss terms, for its EpisodeStats."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.parts: dict[str, list[float]] = collections.defaultdict(list)

    def add(self, loss: float | None, trainer: Trainer) -> None:
        """Record an update's loss (None: no update); its terms too, for replay learners
        (the Q-learning baseline logs its loss alone)."""
        if loss is None:
            return
        self.losses.append(loss)
        if trainer.replay is not None:
            for name, value in trainer.agent.loss_parts.items():
                self.parts[name].append(value)

    def stats(self, steps: int, episode_return: float, outcome: str,
              object_type: str) -> EpisodeStats:
        return EpisodeStats(steps, episode_return, outcome, object_type,
                            float(np.mean(self.losses)) if self.losses else float("nan"),
                            {name: float(np.mean(v)) for name, v in self.parts.items()})


class _StopRequest:
    """First Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the current episode and
    checkpoint; a second one aborts. SIGTERM is what ``kill``, a job scheduler, a container
    stop and a session's end send: without it they lost every episode since the last
    periodic checkpoint.

    A signal within ``_REPEAT_S`` of the first counts as the same request: ``ros2 launch``
    passes the terminal's Ctrl-C on to a node that got it already.
    """

    _REPEAT_S = 1.0
    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._requested_at = -math.inf
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        try:
            for signum in self._SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        except ValueError:  # not the main thread (e.g. inside a ROS executor)
            self._previous = {}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        now = time.monotonic()
        if self.requested and now - self._requested_at > self._REPEAT_S:
            raise KeyboardInterrupt
        if not self.requested:
            self.requested, self._requested_at = True, now

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


class Trainer:
    """Trains one agent in one run directory."""

    def __init__(self, training: TrainingConfig, env_config: EnvConfig, run_dir: Path,
                 resume: bool = False, log: Callable[[str], None] = print,
                 collector: EpisodeCollector | None = None, actors: int = 1,
                 ray_address: str = LOCAL) -> None:
        """``collector``: run the episodes (training and evaluation) on a robot through it
        instead of the in-process env (:mod:`graspq.learning.collector`). ``actors`` > 1:
        collect the training episodes with that many Ray actors (started in this process, or
        on the cluster at ``ray_address``; :mod:`graspq.learning.actor_pool`) and learn here."""
        if collector is not None:
            check_collectable(training)
        if actors < 1:
            raise ValueError(f"--actors must be at least 1, got {actors}")
        if collector is not None and training.curriculum.stages:
            raise ConfigError("curriculum.stages", "places objects and the start pose in the "
                              "embedded scene, which a robot backend does not do: set it to 0")
        if actors > 1 and (collector is not None or training.learner == "qlearning"):
            raise ValueError("--actors > 1 needs a replay learner (dqn, ddqn) on the "
                             "embedded scene: the qlearning baseline learns from its latest "
                             "transition only, and a robot is one actor")
        self.collector = collector
        self.actor_count, self.ray_address = actors, ray_address
        self.pool: ActorPool | None = None  # started by run(), after any pre-training
        self.training = training
        self.env_config = env_config
        self.run_dir = Path(run_dir)
        self.log = log
        torch.set_num_threads(training.torch_threads)
        torch.manual_seed(training.seed)
        camera = env_config.camera
        self.env = BaxterGraspEnv(env_config)
        self.agent = QAgent(training, training.network_shape(env_config),
                            camera.depth_near_m, camera.depth_far_m)
        self.guard = AgentGuard(self.agent)
        self.replay = None
        if training.learner != "qlearning":
            self.replay = ReplayBuffer(training.replay_capacity, camera.image_size,
                                       training.views, camera.depth_near_m, camera.depth_far_m)
        self.demos = None
        if training.demo_episodes:
            self.demos = demo_buffer(training, env_config, training.demo_episodes)
        # DAgger-style teacher: reads the env's privileged state, so it labels the state the
        # agent is in right now (its action, the pose targets); it never acts and never
        # reaches the exported policy.
        self.teacher = (OraclePolicy(self.env)
                        if training.expert_labels or training.pose_loss_weight > 0 else None)
        self.rng = np.random.default_rng(training.seed)
        self.curriculum = Curriculum(training.curriculum, env_config.scene)
        self.hindsight = (HindsightCloseLabeller(training.hindsight_min_offset_m,
                                                 env_config.rewards)
                          if training.hindsight_close_labels else None)
        self.hindsight_labels = 0  # labelled since this process started (for the logs)
        self.episode = 0  # completed training episodes
        self.env_steps = 0
        # Episode seeds handed out: with actors the episodes in flight run ahead of those
        # finished; one process uses index episode + seed_shift (0 unless the run was
        # resumed from one with actors, whose handed-out seeds it then does not repeat).
        self.next_dispatch = 0
        self.seed_shift = 0
        self.update_credit = 0.0  # updates owed to the steps collected so far
        self.recent_outcomes: collections.deque[str] = collections.deque(maxlen=100)
        self.wall_s = 0.0
        # Best periodic evaluation so far ({"episode", "success_rate"}), kept in best.pt.
        self.best_eval: dict[str, Any] | None = None
        self._training_mapping = to_mapping(training)
        self.precision_note = describe_precision(training.precision, self.agent.precision)
        self._env_mapping = to_mapping(env_config)
        checkpoints = self.run_dir / "checkpoints" / "latest.json"
        if resume:
            self._restore()
        elif checkpoints.exists():
            raise CheckpointError(f"{self.run_dir} already holds a run; pass --resume to "
                                  "continue it or choose another --out")
        else:  # an attempt that ended before its first checkpoint is redone from scratch
            for name in LOG_COLUMNS:
                (self.run_dir / name).unlink(missing_ok=True)
        self._write_configs()
        self._writer = None

    # ------------------------------------------------------------------ checkpointing
    def _comparable(self, mapping: dict) -> dict:
        # The episode budget may grow on resume, and the thread and process counts and the
        # precision fit another machine (or a second run beside it); everything else must
        # match. A resume is bit-identical only on the same machine and precision.
        return {key: value for key, value in mapping.items()
                if key not in ("episodes", "torch_threads", "demo_workers", "precision")}

    def _restore(self) -> None:
        payload = load_checkpoint(self.run_dir)
        differences = config_differences(self._comparable(payload["training_config"]),
                                         self._comparable(self._training_mapping))
        differences += config_differences(payload["env_config"], self._env_mapping, "env.")
        if differences:
            raise CheckpointError(f"{payload['path']}: config differs from the checkpoint's: "
                                  + "; ".join(differences))
        try:
            self.agent.load_state_dict(payload["agent"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"{payload['path']}: weights do not fit this network "
                                  f"({str(exc).splitlines()[0]})") from exc
        if self.replay is not None:
            replay_file = payload.get("replay_file")
            if replay_file is None:
                raise CheckpointError(f"{payload['path']}: no replay buffer saved with it")
            replay_path = Path(payload["path"]).parent / replay_file
            if not replay_path.is_file():
                raise CheckpointError(_missing_replay_message(Path(payload["path"]),
                                                              replay_path))
            self.replay.load(replay_path)
        self.rng.bit_generator.state = payload["policy_rng"]
        torch.set_rng_state(payload["torch_rng"])
        self.episode = int(payload["episode"])
        self.env_steps = int(payload["env_steps"])
        self.recent_outcomes.extend(payload["recent_outcomes"])
        self.wall_s = float(payload["wall_s"])
        self.best_eval = payload.get("best_eval")  # absent in checkpoints from before best.pt
        # Absent before parallel actors: every episode index was the episode count.
        self.next_dispatch = int(payload.get("next_dispatch", self.episode))
        self.seed_shift = self.next_dispatch - self.episode
        self.update_credit = float(payload.get("update_credit", 0.0))
        if "curriculum" in payload:  # absent before the curriculum: it was off
            self.curriculum.load_state_dict(payload["curriculum"])
        # Checkpoints from before the precision key trained in float32.
        trained_in = payload.get("precision", "fp32")
        if trained_in != self.agent.precision:
            self.log(f"note: the checkpoint trained in {trained_in}, this run goes on in "
                     f"{self.agent.precision}: the resumed run will not be bit-identical to an "
                     "uninterrupted one")
        for name in LOG_COLUMNS:
            self._truncate_log(name, self.episode)
        self.log(f"resumed {self.run_dir} at episode {self.episode} "
                 f"({self.env_steps} env steps, {self.agent.updates} updates)")

    def checkpoint(self) -> Path:
        """Write a checkpoint of the current state (at an episode boundary)."""
        return save_checkpoint(self.run_dir, self._payload(), self.replay)

    def _payload(self) -> dict[str, Any]:
        return {
            "graspq_version": graspq.__version__,
            "training_config": self._training_mapping,
            "env_config": self._env_mapping,
            "config_hash": config_hash(self._training_mapping, self._env_mapping),
            "episode": self.episode,
            "env_steps": self.env_steps,
            "agent": self.agent.state_dict(),
            "policy_rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "recent_outcomes": list(self.recent_outcomes),
            "wall_s": self.wall_s,
            "best_eval": self.best_eval,
            "precision": self.agent.precision,
            # Episodes in flight on actors are not in it: a resume hands out new ones.
            "next_dispatch": (self.next_dispatch if self.pool is not None
                              else self.episode + self.seed_shift),
            "update_credit": self.update_credit,
            "curriculum": self.curriculum.state_dict(),
        }

    # ------------------------------------------------------------------ logs
    def _write_configs(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "training.yaml").write_text(
            dump_yaml(self.training, TRAINING_NODE_NAME,
                      f"Configuration of this run. Learner {self.precision_note}."))
        (self.run_dir / "env.yaml").write_text(
            dump_yaml(self.env_config, ENV_NODE_NAME, "Env configuration of this run."))

    def _truncate_log(self, name: str, episode: int) -> None:
        """Drop rows logged after ``episode`` (they will be redone), and write the log with
        today's columns: a run begun before a column was added gets it, empty in its older
        rows. The one place a log's header changes."""
        path = self.run_dir / name
        if not path.exists():
            return
        kept = [row for row in read_log(path) if int(row["episode"]) <= episode]
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, LOG_COLUMNS[name])
            writer.writeheader()
            writer.writerows(kept)

    def _append(self, name: str, columns: tuple[str, ...], row: dict) -> None:
        path = self.run_dir / name
        new = not path.exists()
        with open(path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, columns)
            if new:
                writer.writeheader()
            writer.writerow(row)

    def _tensorboard(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"),
                                         purge_step=self.episode or None)
            self._writer.add_text("run/precision", self.precision_note, self.episode)
        return self._writer

    # ------------------------------------------------------------------ the loop
    def add_offline_data(self, paths: list[Path]) -> int:
        """Put the transitions of servo episode logs (MCAP, from ``graspq servo --log-dir`` or
        the robot) into the replay buffer before training; returns how many were added."""
        if self.replay is None:
            raise ValueError("offline data needs a replay buffer: the qlearning baseline "
                             "learns from its latest transition only")
        if self.episode > 0:
            raise ValueError("offline data can only be added to a new run (a resumed run's "
                             "replay buffer already holds what it was given)")
        from graspq.servo.episode_log import load_into_replay

        report = load_into_replay(paths, self.replay)
        self.log(f"offline data: {report}")
        return len(self.replay)

    def _record_demonstrations(self) -> None:
        """Oracle demonstration episodes into their own buffer (an option, off by default).

        With ``demo_epsilon`` > 0 some steps take a random action, labelled with the oracle's
        choice (:func:`graspq.learning.demonstrations.record_oracle_episodes`). They are
        deterministic (fixed seeds, scripted policy, own RNG), so a resumed run records them
        again instead of storing them in every checkpoint; with ``demo_workers`` > 1, in
        several processes (:mod:`graspq.learning.demo_workers`).
        """
        if self.demos is None:
            return
        cfg = self.training
        started = time.perf_counter()
        style = demo_style(cfg)
        episodes = demo_plan(cfg.seed, cfg.demo_episodes)
        if cfg.demo_noise_per_episode:
            counts = record_demonstrations(self.env, self.demos, episodes, style,
                                           cfg.demo_workers)
        else:  # runs from before demo_noise_per_episode: one generator, in order
            shared = np.random.default_rng([cfg.seed, _DEMO_SEED_OFFSET])
            counts = record_oracle_episodes(
                self.env, self.demos, ((episode.env_seed, shared) for episode in episodes),
                style.epsilon, style.unturned_branches, style.turn_ties)
        with_branches = (f", {counts.branches} unturned branches "
                         f"({counts.branch_successes} picked without the turn)"
                         if cfg.demo_unturned_branches else "")
        ties = (f" ({self.demos.tied_label_count()} with both turns as labels)"
                if cfg.expert_turn_ties else "")
        self.log(f"demonstrations: {cfg.demo_episodes} oracle episodes "
                 f"(demo_epsilon {cfg.demo_epsilon:g}, {counts.successes} successes)"
                 f"{with_branches}, "
                 f"{len(self.demos)} transitions{ties}, in "
                 f"{time.perf_counter() - started:.0f} s ({cfg.demo_workers} process"
                 f"{'es' if cfg.demo_workers > 1 else ''})")
        if cfg.margin_balance > 0:
            num_actions = self.agent.online.config.num_actions
            weights = self.agent.balance_labels(self.demos.label_counts(num_actions))
            named = (f"{action_name(action)} {weight:.2f}"
                     for action, weight in enumerate(weights))
            self.log(f"margin loss weights (margin_balance {cfg.margin_balance:g}): "
                     + ", ".join(named))

    def _pretrain(self) -> None:
        """DQfD-style updates on the demonstrations alone, before the first episode."""
        cfg = self.training
        if self.demos is None or self.episode > 0 or self.agent.updates > 0:
            return
        started = time.perf_counter()
        for _ in range(cfg.pretrain_updates):
            self.agent.update(None, self._sample_demos(cfg.batch_size))
        if cfg.pretrain_updates:
            self.log(f"pre-trained on demonstrations: {cfg.pretrain_updates} updates in "
                     f"{time.perf_counter() - started:.0f} s")

    def _sample_demos(self, count: int):
        return self.demos.sample(count, self.rng, self.training.n_step, self.training.gamma)

    def _learn(self) -> float | None:
        """The updates a new transition pays for, once enough has been collected:
        ``updates_per_step`` every ``update_every`` steps in one process,
        ``actors.replay_ratio`` per step with actors. Returns the last one's loss."""
        cfg = self.training
        if len(self.replay) < cfg.learning_starts:
            return None
        if self.pool is not None:
            self.update_credit += cfg.actors.replay_ratio
        elif self.env_steps % cfg.update_every == 0:
            self.update_credit += cfg.updates_per_step
        loss = None
        while self.update_credit >= 1.0:
            self.update_credit -= 1.0
            loss = self._update()
        return loss

    def _update(self) -> float:
        """One update from replay (and demonstrations, and extra CLOSE rows)."""
        cfg = self.training
        num_demos = round(cfg.batch_size * cfg.demo_fraction) if self.demos is not None else 0
        priority = cfg.prioritized_replay
        batch = None
        if cfg.batch_size - num_demos > 0:
            batch = self.replay.sample(cfg.batch_size - num_demos, self.rng, cfg.n_step,
                                       cfg.gamma, priority.alpha,
                                       priority.beta(self.episode))
        extra = self._sample_demos(num_demos) if num_demos else None
        closing = close_actions(self.agent.online.config.num_actions)
        if cfg.close_replay_rows and self.replay.holds_action(closing):
            # A close (turned or not) ends its episode: its one-step reward is the whole target.
            closes = self.replay.sample(cfg.close_replay_rows, self.rng, only_action=closing)
            extra = closes if extra is None else concat_batches(extra, closes)
        loss = self.agent.update(batch, extra)
        if batch is not None and priority.alpha > 0:
            self.replay.update_priorities(batch.indices, self.agent.td_errors,
                                          priority.epsilon)
        return loss

    def _observe(self, obs: dict[str, np.ndarray], action: int, reward: float,
                 next_obs: dict[str, np.ndarray], terminated: bool, truncated: bool,
                 labels: Any = None) -> float | None:
        """Store one transition (or, for Q-learning, learn from it alone) and update; returns
        the update's loss, if one was made."""
        cfg = self.training
        expert = labels.expert if labels is not None and cfg.expert_labels else NO_EXPERT
        tie = labels.tie if labels is not None and cfg.expert_labels else NO_EXPERT
        pose = labels.pose if labels is not None and cfg.pose_loss_weight > 0 else NO_POSE
        self.env_steps += 1
        with self.guard.lock:
            if self.replay is None:
                return self.agent.update(single_transition_batch(
                    obs, action, reward, next_obs, terminated, truncated))
            slot = self.replay.add(obs, action, reward, next_obs, terminated, truncated,
                                   expert_action=expert, pose_target=pose, expert_tie=tie)
            if self.hindsight is not None:
                self._label_in_hindsight(slot, obs, reward, terminated, truncated)
            return self._learn()

    def _label_in_hindsight(self, slot: int, obs: dict[str, np.ndarray], reward: float,
                            terminated: bool, truncated: bool) -> None:
        """Collect the episode's states; once it succeeds, label them (hindsight.py)."""
        self.hindsight.step(slot, obs)
        if terminated or truncated:
            success = terminated and reward == self.env_config.rewards.success
            slots, values = self.hindsight.finish(success)
            if slots.size:
                self.replay.set_close_labels(slots, values)
                self.hindsight_labels += int(slots.size)

    def _run_collected_episode(self) -> EpisodeStats:
        """One exploring episode on the robot of :attr:`collector`, learning from each step."""
        cfg = self.training
        losses = _EpisodeLosses()

        def learn(step: Any) -> None:
            losses.add(self._observe(step.obs, int(step.action), step.reward, step.next_obs,
                                     step.terminated, step.truncated), self)

        record = collect_training_episode(
            self.collector, self.guard, episode_seed(cfg.seed, self.episode + self.seed_shift),
            cfg.exploration.for_episode(cfg.exploration.epsilon(self.episode)),
            np.random.default_rng([cfg.seed, self.episode]), learn)
        return losses.stats(record.steps, record.episode_return, record.outcome, record.object)

    def run_episode(self) -> EpisodeStats:
        """One epsilon-greedy training episode with its updates."""
        if self.collector is not None:
            return self._run_collected_episode()
        if self.pool is not None:
            return self._run_actor_episode()
        cfg = self.training
        exploration = cfg.exploration.for_episode(cfg.exploration.epsilon(self.episode))
        obs, info = self.env.reset(seed=episode_seed(cfg.seed, self.episode + self.seed_shift),
                                   options=self.curriculum.reset_options())
        total, steps, done = 0.0, 0, False
        losses = _EpisodeLosses()
        while not done:
            action = self.agent.act(obs, exploration, self.rng)
            # The teacher exists when either label is wanted (see __init__).
            labels = (oracle_labels(self.teacher, cfg.expert_turn_ties)
                      if self.teacher is not None else None)
            next_obs, reward, terminated, truncated, info = self.env.step(action)
            steps += 1
            total += reward
            losses.add(self._observe(obs, action, reward, next_obs, terminated, truncated,
                                     labels), self)
            obs, done = next_obs, terminated or truncated
        return losses.stats(steps, total, info["outcome"], info["object"])

    def _actor_task(self, actor: int) -> EpisodeTask:
        """The next episode index for ``actor``, with its seeds and epsilon."""
        cfg, index = self.training, self.next_dispatch
        self.next_dispatch += 1
        epsilon = actor_epsilon(cfg.exploration.epsilon(self.episode), actor,
                                self.pool.count, cfg.actors.epsilon_alpha)
        return EpisodeTask(index, episode_seed(cfg.seed, index), epsilon, (cfg.seed, index),
                           self.pool.version, self.curriculum.reset_options())

    def _run_actor_episode(self) -> EpisodeStats:
        """The next episode an actor finishes (every idle actor is given one first), learnt
        from transition by transition, as if this process had run it."""
        pool = self.pool
        episode = None
        while episode is None:  # None: an episode was dropped whole, wait for the next
            for actor in pool.idle():
                pool.submit(actor, self._actor_task(actor))
            episode = pool.next_finished()
        losses = _EpisodeLosses()
        observations, last = episode.observations, episode.steps - 1
        for t, (action, reward) in enumerate(zip(episode.actions, episode.rewards,
                                                 strict=True)):
            losses.add(self._observe(observations[t], action, reward, observations[t + 1],
                                     episode.terminated and t == last,
                                     episode.truncated and t == last, episode.labels[t]),
                       self)
        if (self.episode + 1) % self.training.actors.sync_episodes == 0:
            pool.publish(self.agent.online.state_dict())
        return losses.stats(episode.steps, episode.episode_return, episode.outcome,
                            episode.object)

    def _start_actors(self) -> None:
        """Start the actor pool (after pre-training, so the first episodes act with the
        pre-trained weights)."""
        if self.actor_count < 2 or self.pool is not None:
            return
        if self.next_dispatch < self.episode:  # a run from one process goes on with actors
            self.next_dispatch = self.episode + self.seed_shift
        self.pool = ActorPool(self.training, self.env_config, self.actor_count,
                              self.ray_address, self.log)
        self.pool.publish(self.agent.online.state_dict())
        self.log(f"{self.actor_count} actors on Ray ({self.ray_address}), one learner here")

    def run(self, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train up to ``training.episodes``; returns the last evaluation's report. The time
        of each phase goes to the run's ``timing.json``, also when the run stops early."""
        timer = PhaseTimer()
        try:
            return self._run(progress, timer)
        finally:
            append_session(self.run_dir, timer.session(
                episodes=self.episode, env_steps=self.env_steps, updates=self.agent.updates,
                precision=self.agent.precision))

    def _run(self, progress: Callable[[dict[str, Any]], None] | None,
             timer: PhaseTimer) -> dict[str, Any]:
        cfg = self.training
        if self.replay is not None and self.episode == 0:
            self.log(self.replay.describe())
        self.log(f"learner {self.precision_note}")
        with timer.phase("demonstrations"):
            self._record_demonstrations()
        with timer.phase("pretraining"):
            self._pretrain()
        self._start_actors()
        if self.curriculum.enabled and self.episode == 0:
            self._log_curriculum()
        last_eval: dict[str, Any] = {}
        with _StopRequest() as stop:
            while self.episode < cfg.episodes and not stop.requested:
                self.agent.set_learning_rate(cfg.learning_rate_at(self.episode))
                started = time.perf_counter()
                with timer.phase("episodes"):
                    stats = self.run_episode()
                elapsed = time.perf_counter() - started
                self.wall_s += elapsed
                self.episode += 1
                self.recent_outcomes.append(stats.outcome)
                row = self._log_episode(stats, elapsed)
                if self.curriculum.record(stats.outcome == "success"):
                    self._log_curriculum()
                if self.episode % cfg.eval_every == 0 or self.episode == cfg.episodes:
                    with timer.phase("evaluations"):
                        last_eval = self._evaluate()
                if self.episode % cfg.checkpoint_every == 0 or self.episode == cfg.episodes:
                    with timer.phase("checkpoints"):
                        self.checkpoint()
                if progress is not None:
                    progress(row)
            if stop.requested:
                with timer.phase("checkpoints"):
                    path = self.checkpoint()
                self.log(f"stopped at episode {self.episode}; checkpoint {path}")
        if self._writer is not None:
            self._writer.flush()
        return last_eval

    def _log_episode(self, stats: EpisodeStats, elapsed: float) -> dict[str, Any]:
        success_100 = float(np.mean([o == "success" for o in self.recent_outcomes]))
        row = {
            "episode": self.episode, "env_steps": self.env_steps,
            "updates": self.agent.updates, "steps": stats.steps,
            "return": round(stats.episode_return, 4), "outcome": stats.outcome,
            "object": stats.object,
            "epsilon": round(self.training.exploration.epsilon(self.episode - 1), 4),
            "loss": stats.loss, "success_rate_100": success_100,
            "steps_per_s": round(stats.steps / elapsed, 2), "wall_s": round(self.wall_s, 2),
        }
        self._append("train.csv", TRAIN_COLUMNS, row)
        writer = self._tensorboard()
        for key, tag in (("return", "charts/episode_return"), ("steps", "charts/episode_steps"),
                         ("success_rate_100", "charts/success_rate_100"),
                         ("epsilon", "charts/epsilon"), ("steps_per_s", "charts/steps_per_s"),
                         ("loss", "losses/total")):
            if not (isinstance(row[key], float) and np.isnan(row[key])):
                writer.add_scalar(tag, row[key], self.episode)
        for name, value in stats.loss_parts.items():
            writer.add_scalar(f"losses/{name}", value, self.episode)
        if self.training.learning_rate_decay.final_fraction < 1.0:
            writer.add_scalar("charts/learning_rate",
                              self.training.learning_rate_at(self.episode - 1), self.episode)
        if self.hindsight is not None:
            writer.add_scalar("charts/hindsight_labels", self.hindsight_labels, self.episode)
        priority = self.training.prioritized_replay
        if priority.alpha > 0 and self.replay is not None:
            writer.add_scalar("replay/priority_max", self.replay.max_priority(), self.episode)
            writer.add_scalar("replay/priority_beta", priority.beta(self.episode - 1),
                              self.episode)
        return row

    def _log_curriculum(self) -> None:
        """A stage begins: the log, curriculum.csv and TensorBoard say where and when."""
        curriculum = self.curriculum
        self.log(f"episode {self.episode}: {curriculum.describe()}")
        self._append("curriculum.csv", CURRICULUM_COLUMNS, {
            "episode": self.episode, "env_steps": self.env_steps, "stage": curriculum.stage,
            "spawn_half_xy_m": round(curriculum.spawn_half_xy_m(), 6),
            "start_height_above_table_m": round(curriculum.start_height_above_table_m(), 6),
            "object_yaw_half_deg": round(curriculum.object_yaw_half_deg(), 3)})
        self._tensorboard().add_scalar("charts/curriculum_stage", curriculum.stage,
                                       self.episode)

    def _evaluate(self) -> dict[str, Any]:
        cfg = self.training
        if self.collector is not None:
            report = evaluate_collected(self.collector, self.guard, cfg.eval_episodes,
                                        cfg.eval_seed, cfg.revisit_window)
        else:
            report = evaluate(self.env, self.agent, cfg.eval_episodes, cfg.eval_seed,
                              cfg.revisit_window)
        row = {"episode": self.episode, "env_steps": self.env_steps,
               "success_rate": report["success_rate"],
               "mean_steps": report["mean_steps"],
               "mean_steps_to_success": report["mean_steps_to_success"],
               "mean_return": report["mean_return"]}
        for kind in OBJECT_TYPES:
            row[kind] = report["per_object"].get(kind, {}).get("success_rate")
        self._append("eval.csv", EVAL_COLUMNS, row)
        writer = self._tensorboard()
        writer.add_scalar("eval/success_rate", report["success_rate"], self.episode)
        for kind in OBJECT_TYPES:
            if row[kind] is not None:
                writer.add_scalar(f"eval/success_{kind}", row[kind], self.episode)
        if report["mean_steps_to_success"] is not None:
            writer.add_scalar("eval/mean_steps_to_success", report["mean_steps_to_success"],
                              self.episode)
        report["episode"] = self.episode
        # Ties go to the later, longer-trained weights. Selecting on these episodes and
        # reporting on another set (graspq eval's seeds) keeps the reported number unbiased.
        if self.best_eval is None or report["success_rate"] >= self.best_eval["success_rate"]:
            self.best_eval = {"episode": self.episode, "success_rate": report["success_rate"]}
            save_best_checkpoint(self.run_dir, self._payload())
        return report

    def close(self) -> None:
        """Stop the actors, release the renderer and flush the logs."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self._writer is not None:
            self._writer.close()
        self.env.close()


def _missing_replay_message(checkpoint: Path, replay_path: Path) -> str:
    """Why a run cannot continue exactly without its replay buffer, and what is left."""
    earlier = sorted(path.name for path in checkpoint.parent.glob("ep*.pt")
                     if path != checkpoint
                     and path.with_name(path.name.replace(".pt", ".replay.npz")).is_file())
    message = (f"{checkpoint}: its replay buffer {replay_path.name} is missing, so the run "
               "cannot continue exactly")
    if earlier:
        message += (f"; earlier checkpoints with their buffers: {', '.join(earlier)} "
                    f"(checkpoints/latest.json names the one to resume)")
    return message
