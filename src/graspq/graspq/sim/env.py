"""``GraspQ/BaxterGrasp-v0``: closed-loop grasping from cameras and motor state.

Observation (the paper's I^o, I^w, M; see :mod:`graspq.observation`), nine discrete actions
(:class:`graspq.actions.Action`; with ``actions.close_yaw_turns`` N > 0, 2N turned closes after
them), and the paper's rewards (:mod:`graspq.rewards`). A move
goes through damped-least-squares IK with the gripper pointing down; one that cannot be
executed (outside the workspace box or yaw range, joint limit, IK not converging) leaves the
arm where it is. CLOSE closes the gripper (first descending to the table with
``actions.close_mode: descend``), lifts, judges the grasp and ends the episode. A turned
close first turns the gripper by its yaw steps (a turn it cannot make is a move that cannot be
executed: the episode goes on), then closes as CLOSE does.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import gymnasium
import mujoco
import numpy as np

from graspq.actions import MOVE_DIRECTIONS, Action, action_count, as_action, close_turn_steps
from graspq.drivers.trajectory import RAMP_FRACTION
from graspq.observation import MOTOR_KEY, MOTOR_SIZE, OVERHEAD_KEY, WRIST_KEY
from graspq.rewards import Outcome, step_reward
from graspq.sim.cameras import CameraRig
from graspq.sim.grasp_motion import (
    CONTACT_CHECK_EVERY,
    HOME_SEED,
    LIFT_HOLD_S,
    descent_steps,
    descent_waypoints,
    home_joints,
    home_position,
    judge_grasp,
    lift_schedule,
)
from graspq.sim.ik import DownwardIK
from graspq.sim.objects import (
    ObjectSpec,
    draw_object,
    lowest_point_z,
    place_object,
    shape_object,
)
from graspq.sim.scene import CLOSED_GAP_M, FINGER_STROKE_M, build_scene
from graspq.sim.settings import EnvConfig
from graspq.sim.viewer import camera_panel

_RAMP_CHUNKS = 6  # the ramp is applied in this many increments
_RESET_OPTIONS = {"object", "object_pose", "spawn_half_xy_m", "start_height_above_table_m",
                  "object_yaw_half_deg", "start_offset_half_xy_m"}


@dataclasses.dataclass
class _Command:
    """The pose the arm is being servoed to: fingertip position (m) and yaw offset (rad)."""

    position: np.ndarray
    yaw_offset: float
    joints: np.ndarray


class BaxterGraspEnv(gymnasium.Env):
    """Baxter's right arm grasping one random object from a table. See the module docstring.

    ``reset(options=...)`` accepts ``{"object": "cube" | "sphere" | "cylinder"}`` and
    ``{"object_pose": (x, y, yaw)}`` to fix what the seed would otherwise draw, and (a
    training curriculum's) ``{"spawn_half_xy_m": m}`` to narrow the spawn square and
    ``{"start_height_above_table_m": m}`` to start the fingertip at another height and
    ``{"object_yaw_half_deg": d}`` to turn the object at most ``d`` deg from the gripper's
    start yaw (where the fingers close across a cube's faces), and
    ``{"start_offset_half_xy_m": m}`` to start the fingertip over the object instead of over
    the workspace centre, at most ``m`` away in x and in y (kept inside the workspace).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, config: EnvConfig | None = None, render_mode: str | None = None) -> None:
        self.config = config if config is not None else EnvConfig()
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.scene = build_scene(self.config)
        self.model = self.scene.model
        self.data = mujoco.MjData(self.model)
        self.ik = DownwardIK(self.scene, self.config.ik)
        self.cameras = CameraRig(self.scene, self.config.camera.image_size)
        self._substeps = max(1, round(self.config.physics.action_duration_s /
                                      self.config.physics.timestep_s))
        self._start_yaw = math.radians(self.config.scene.start_yaw_deg)
        self._home_position = home_position(self.config)
        self._home_joints = home_joints(self.ik, self.config)
        self._start_joints: dict[float, np.ndarray] = {}  # other start heights' poses
        self.action_space = gymnasium.spaces.Discrete(
            action_count(self.config.actions.close_yaw_turns))
        self.observation_space = self._make_observation_space()
        self._command: _Command | None = None
        self._object: ObjectSpec | None = None
        self._observation: dict[str, np.ndarray] | None = None
        self._steps = 0

    # ----------------------------------------------------------------------------- spaces
    @property
    def _table_z(self) -> float:
        return self.config.scene.table_top_z_m

    def _make_observation_space(self) -> gymnasium.spaces.Dict:
        size = self.config.camera.image_size
        far_clip = float(self.model.vis.map.zfar * self.model.stat.extent)
        overhead_high = np.broadcast_to(np.array([1.0, 1.0, 1.0, far_clip], np.float32),
                                        (size, size, 4))
        motor_low = np.append(self.scene.arm_range[:, 0], CLOSED_GAP_M).astype(np.float32)
        motor_high = np.append(self.scene.arm_range[:, 1],
                               CLOSED_GAP_M + 2 * FINGER_STROKE_M).astype(np.float32)
        # Small slack: physics may push a joint a hair past its limit.
        slack = np.float32(0.05)
        return gymnasium.spaces.Dict({
            OVERHEAD_KEY: gymnasium.spaces.Box(np.zeros_like(overhead_high), overhead_high,
                                               dtype=np.float32),
            WRIST_KEY: gymnasium.spaces.Box(0, 255, (size, size, 3), dtype=np.uint8),
            MOTOR_KEY: gymnasium.spaces.Box(motor_low - slack, motor_high + slack,
                                            (MOTOR_SIZE,), dtype=np.float32),
        })

    # ------------------------------------------------------------------------------ reset
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict]:
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - _RESET_OPTIONS
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}")
        spawn_half = options.get("spawn_half_xy_m")
        if spawn_half is not None and not 0.0 <= spawn_half <= self.config.scene.spawn_half_xy_m:
            raise ValueError(f"reset option spawn_half_xy_m must lie in [0, "
                             f"{self.config.scene.spawn_half_xy_m}] m, got {spawn_half!r}")
        yaw_half = options.get("object_yaw_half_deg")
        if yaw_half is not None and not 0.0 <= yaw_half <= 180.0:
            raise ValueError(f"reset option object_yaw_half_deg must lie in [0, 180] deg, "
                             f"got {yaw_half!r}")
        start_offset_half = options.get("start_offset_half_xy_m")
        if start_offset_half is not None and not 0.0 <= start_offset_half <= 1.0:
            raise ValueError("reset option start_offset_half_xy_m must lie in [0, 1] m, got "
                             f"{start_offset_half!r}")
        start_position, start_joints = self._start_pose(
            options.get("start_height_above_table_m"))
        yaw_range = None if yaw_half is None else (self._start_yaw, math.radians(yaw_half))
        self._object = draw_object(self.config, self.np_random, options.get("object"),
                                   options.get("object_pose"), spawn_half, yaw_range)
        if start_offset_half is not None:
            # Drawn after the object, so the object draws of a seed stay as without it.
            start_position, start_joints = self._start_over_object(start_position,
                                                                   start_offset_half)
        model, data = self.model, self.data
        shape_object(self.scene, data, self._object)
        mujoco.mj_resetData(model, data)
        data.qpos[self.scene.arm_qpos_adr] = start_joints
        data.ctrl[self.scene.arm_actuators] = start_joints
        data.qpos[self.scene.finger_qpos_adr] = FINGER_STROKE_M
        data.ctrl[self.scene.finger_actuators] = FINGER_STROKE_M
        place_object(self.scene, data, self._object)
        settle = round(self.config.physics.settle_duration_s / self.config.physics.timestep_s)
        if settle:
            mujoco.mj_step(model, data, nstep=settle)
        self._command = _Command(start_position, 0.0, start_joints.copy())
        self._steps = 0
        self._observation = self._observe()
        return self._observation, self._info(Outcome.RUNNING, executed=True)

    def _start_pose(self, height: float | None) -> tuple[np.ndarray, np.ndarray]:
        """Fingertip position (3,) m and joints (7,) rad of the episode's start: the home
        pose, or the pose ``height`` m above the table over the workspace centre (solved
        once per height, from the home pose's seed)."""
        if height is None or height == self.config.scene.start_height_above_table_m:
            return self._home_position.copy(), self._home_joints
        position = np.array([*self._home_position[:2], self._table_z + height])
        if not self.in_workspace(position):
            raise ValueError("reset option start_height_above_table_m must lie inside the "
                             f"workspace's z range, got {height!r}")
        if height not in self._start_joints:
            solution = self.ik.solve(HOME_SEED, position, self._start_yaw)
            if not solution.converged:
                raise ValueError(f"reset option start_height_above_table_m {height!r}: the "
                                 "start pose is out of reach")
            self._start_joints[height] = solution.joints
        return position, self._start_joints[height]

    def _start_over_object(self, start_position: np.ndarray, half_m: float
                           ) -> tuple[np.ndarray, np.ndarray]:
        """The start pose moved to within ``half_m`` (x and y) of the drawn object, at the
        same height and yaw, clipped to the workspace: fingertip position (3,) and joints."""
        scene = self.config.scene
        centre = np.asarray(scene.workspace_center_xy_m)
        wanted = (np.array([self._object.x, self._object.y])
                  + self.np_random.uniform(-half_m, half_m, 2))
        position = start_position.copy()
        position[:2] = np.clip(wanted, centre - scene.workspace_half_xy_m,
                               centre + scene.workspace_half_xy_m)
        solution = self.ik.solve(HOME_SEED, position, self._start_yaw)
        if not solution.converged:
            raise ValueError(f"reset option start_offset_half_xy_m: the start pose over "
                             f"{position.round(3).tolist()} is out of reach")
        return position, solution.joints

    # ------------------------------------------------------------------------------- step
    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        if self._command is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(int(action)):
            raise ValueError(f"action must be an integer in [0, {self.action_space.n}), got "
                             f"{action!r}")
        action = as_action(int(action))
        self._steps += 1
        turn = close_turn_steps(action)
        if turn is None:
            executed, outcome = self._move(action), Outcome.RUNNING
        elif turn == 0:
            outcome, executed = self._close_and_judge(), True
        else:
            # A turn of k steps takes k moves' time, as k turns would.
            executed = self._servo_by((0.0, 0.0, 0.0, float(turn)), abs(turn) * self._substeps)
            outcome = self._close_and_judge() if executed else Outcome.RUNNING
        truncated = outcome is Outcome.RUNNING and self._steps >= self.config.max_steps
        if truncated:
            outcome = Outcome.TIMEOUT
        terms = step_reward(self.config.rewards, executed, outcome)
        terminated = outcome in (Outcome.SUCCESS, Outcome.PARTIAL, Outcome.MISS)
        self._observation = self._observe()
        info = self._info(outcome, executed)
        info["reward_terms"] = terms.as_dict()
        return self._observation, terms.total, terminated, truncated, info

    def _move(self, action: Action) -> bool:
        """Servo one discrete step; False (and the arm left still) if it cannot be done."""
        return self._servo_by(MOVE_DIRECTIONS[action], self._substeps)

    def _servo_by(self, steps_xyz_yaw: tuple[float, float, float, float],
                  physics_steps: int) -> bool:
        """Servo by whole action steps in x, y, z and yaw over ``physics_steps``; False (and
        the arm left still) if it cannot be done."""
        command = self._command
        dx, dy, dz, dyaw = steps_xyz_yaw
        step = self.config.actions.translation_step_m
        position = command.position + step * np.array([dx, dy, dz])
        yaw_offset = command.yaw_offset + dyaw * math.radians(self.config.actions.yaw_step_deg)
        if not self.in_workspace(position, yaw_offset):
            return False
        solution = self.ik.solve(command.joints, position, self._start_yaw + yaw_offset)
        if not solution.converged:
            return False
        start = self._command.joints
        self._command = _Command(position, yaw_offset, solution.joints)
        self._servo_joints(start, solution.joints, physics_steps)
        return True

    def _servo_joints(self, start: np.ndarray, goal: np.ndarray, steps: int) -> None:
        """Ramp the arm's joint targets from ``start`` to ``goal`` over the first part of
        ``steps`` physics steps, then hold (see :meth:`joint_ramp`)."""
        for targets, n in self.joint_ramp(start, goal, steps):
            self.data.ctrl[self.scene.arm_actuators] = targets
            mujoco.mj_step(self.model, self.data, nstep=n)

    def joint_ramp(self, start: np.ndarray, goal: np.ndarray,
                   steps: int | None = None) -> list[tuple[np.ndarray, int]]:
        """The arm's joint-target schedule for one move: ``(targets (7,) rad, physics steps)``
        segments, applied in order.

        The targets ramp from ``start`` to ``goal`` over the first part of ``steps`` (default:
        one action's duration) physics steps, then hold: a smooth, near-straight fingertip
        path instead of the swing a step change in the position targets causes. The servo
        simulation (:mod:`graspq.servo.sim_devices`) plays the same schedule, so a move
        commanded by the servo runtime has the dynamics of a training step.
        """
        steps = self._substeps if steps is None else steps
        ramp_steps = max(1, int(steps * RAMP_FRACTION))
        chunk = max(1, ramp_steps // _RAMP_CHUNKS)
        schedule = []
        done = 0
        while done < ramp_steps:
            n = min(chunk, ramp_steps - done)
            done += n
            schedule.append((start + (done / ramp_steps) * (goal - start), n))
        if steps > ramp_steps:
            schedule.append((schedule[-1][0], steps - ramp_steps))
        return schedule

    def in_workspace(self, position: np.ndarray, yaw_offset: float = 0.0) -> bool:
        """Whether a fingertip position (m, base frame) and yaw offset (rad) are allowed."""
        scene = self.config.scene
        offset_xy = np.abs(position[:2] - scene.workspace_center_xy_m)
        height = position[2] - self._table_z
        eps = 1e-9  # tolerate rounding of repeated steps onto the boundary
        return bool(
            np.all(offset_xy <= scene.workspace_half_xy_m + eps)
            and scene.workspace_z_min_above_table_m - eps <= height
            <= scene.workspace_z_max_above_table_m + eps
            and abs(yaw_offset) <= math.radians(scene.yaw_limit_deg) + eps
        )

    def close_and_judge(self) -> Outcome:
        """Close the gripper, lift and judge the grasp from the current commanded pose; the
        episode's closing step without its reward (the servo simulation's gripper)."""
        if self._command is None:
            raise RuntimeError("call reset() first")
        return self._close_and_judge()

    def _close_and_judge(self) -> Outcome:
        """Close the gripper, lift, and judge the grasp as the paper does (Sec. IV-D)."""
        gripper, physics = self.config.gripper, self.config.physics
        data = self.data
        touched = (self._descend() if self.config.actions.close_mode == "descend"
                   else False)
        data.ctrl[self.scene.finger_actuators] = 0.0
        touched = self._simulate_watching_contact(round(gripper.close_duration_s /
                                                        physics.timestep_s), touched)
        command = self._command
        for targets, n in lift_schedule(self.ik, self.config, command.joints, command.position,
                                        command.yaw_offset):
            data.ctrl[self.scene.arm_actuators] = targets
            touched = self._simulate_watching_contact(n, touched)
        return self.judge_grasp(self._simulate_watching_contact(
            round(LIFT_HOLD_S / physics.timestep_s), touched))

    def _descend(self) -> bool:
        """The descend close's descent: lower the open gripper straight down to the lowest
        height, waypoint by waypoint (:func:`descent_waypoints`), and stop where a finger
        first touches the object. The close and the lift then start from where it stopped.
        Returns whether a finger touched the object."""
        command = self._command
        for position, joints in descent_waypoints(self.ik, self.config, command.joints,
                                                  command.position, command.yaw_offset):
            steps = descent_steps(self.config, command.position[2], position[2])
            for done in range(0, steps, CONTACT_CHECK_EVERY):
                # Targets move at a steady speed (no ramp-and-hold per waypoint).
                n = min(CONTACT_CHECK_EVERY, steps - done)
                fraction = (done + n) / steps
                self.data.ctrl[self.scene.arm_actuators] = (
                    command.joints + fraction * (joints - command.joints))
                if self._simulate_watching_contact(n):
                    # Hold where the arm is now: the close and the lift start here.
                    here = self.data.qpos[self.scene.arm_qpos_adr].copy()
                    self.data.ctrl[self.scene.arm_actuators] = here
                    fingertip = self.fingertip_position()
                    self._command = _Command(np.array([*command.position[:2], fingertip[2]]),
                                             command.yaw_offset, here)
                    return True
            command = self._command = _Command(position, command.yaw_offset, joints)
        return False

    def judge_grasp(self, touched: bool) -> Outcome:
        """The paper's judge, on the state now: success if the gripper is not fully closed
        and the object's bottom is above the success height; else partial if a finger
        ``touched`` the object during the grasp, else a miss (privileged: reads the object)."""
        height = lowest_point_z(self.scene, self.data, self.object_spec.kind) - self._table_z
        return judge_grasp(self.config.gripper, self.scene.gripper_opening(self.data), height,
                           touched)

    def _simulate_watching_contact(self, steps: int, touched: bool = False) -> bool:
        """Step the physics ``steps`` times; True if ``touched`` already or a finger touches
        the object at any checked step (every ``CONTACT_CHECK_EVERY`` steps)."""
        done = 0
        while done < steps and not touched:
            n = min(CONTACT_CHECK_EVERY, steps - done)
            mujoco.mj_step(self.model, self.data, nstep=n)
            done += n
            touched = self.finger_touches_object()
        # Once touched, the answer is known: the rest in one call (the same steps, so the same
        # physics as stepping it in pieces), without a contact check every few steps.
        if done < steps:
            mujoco.mj_step(self.model, self.data, nstep=steps - done)
        return touched

    def finger_touches_object(self) -> bool:
        """Whether a finger pad is in contact with the episode's object right now."""
        ncon = self.data.ncon
        if not ncon:
            return False
        object_geom = self.scene.objects[self._object.kind].geom_id
        fingers = self.scene.finger_geoms
        # Plain ints from one array: a third of the cost of zipping two numpy views.
        return any((a == object_geom and b in fingers) or (b == object_geom and a in fingers)
                   for a, b in self.data.contact.geom[:ncon].tolist())

    # ------------------------------------------------------------------- observation, info
    def _observe(self) -> dict[str, np.ndarray]:
        images = self.cameras.render(self.data)
        motor = np.empty(MOTOR_SIZE, dtype=np.float32)
        motor[:-1] = self.data.qpos[self.scene.arm_qpos_adr]
        motor[-1] = self.scene.gripper_opening(self.data)
        return {OVERHEAD_KEY: images[OVERHEAD_KEY], WRIST_KEY: images[WRIST_KEY],
                MOTOR_KEY: motor}

    def _info(self, outcome: Outcome, executed: bool) -> dict[str, Any]:
        return {
            "object": self._object.kind,
            "object_spec": self._object,
            "outcome": outcome.value,
            "executed": executed,
            "steps": self._steps,
        }

    @property
    def object_spec(self) -> ObjectSpec:
        """The current episode's object (privileged information, for the oracle and tests)."""
        if self._object is None:
            raise RuntimeError("call reset() first")
        return self._object

    @property
    def fingertip_command(self) -> tuple[np.ndarray, float]:
        """Commanded fingertip position (m) and yaw offset from the start yaw (rad)."""
        if self._command is None:
            raise RuntimeError("call reset() first")
        return self._command.position.copy(), self._command.yaw_offset

    def set_fingertip_command(self, position: np.ndarray, yaw_offset: float,
                              joints: np.ndarray) -> None:
        """Record a pose the arm was commanded to from outside :meth:`step` (the servo
        simulation): fingertip position (m), yaw offset from the start yaw (rad) and the joint
        angles (7,) solving it. :meth:`close_and_judge` lifts from this pose."""
        if self._command is None:
            raise RuntimeError("call reset() first")
        self._command = _Command(np.array(position, dtype=float), float(yaw_offset),
                                 np.array(joints, dtype=float))

    @property
    def home_joints(self) -> np.ndarray:
        """Arm joint angles (7,) rad at the start of every episode."""
        return self._home_joints.copy()

    def object_position(self) -> np.ndarray:
        """Current position (m, base frame) of the object's centre."""
        return self.data.xpos[self.scene.objects[self.object_spec.kind].body_id].copy()

    def fingertip_position(self) -> np.ndarray:
        """Current (measured) fingertip position (m, base frame)."""
        return self.data.site_xpos[self.scene.tcp_site].copy()

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self._observation is None:
            return None
        return camera_panel(self._observation, self.config.camera)

    def close(self) -> None:
        cameras = getattr(self, "cameras", None)
        if cameras is not None:
            cameras.close()
