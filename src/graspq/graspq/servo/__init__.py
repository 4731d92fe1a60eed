"""The visual-servoing runtime (the paper's Algorithm 1) as a ROS-free component.

- :mod:`graspq.servo.sync`: approximate-time pairing of separately timestamped streams
  (overhead colour, overhead depth, wrist colour, joint states), with a max-age limit.
- :mod:`graspq.servo.safety`: workspace box, yaw range, per-cycle joint step and gripper force
  limits as pure functions.
- :mod:`graspq.servo.runtime`: :class:`~graspq.servo.runtime.ServoRuntime`: synchronised set
  -> input checks (hold on anything bad) -> policy -> Cartesian target -> IK -> clamped joint
  command; e-stop latch; episode reward and a status a ROS node can publish.
- :mod:`graspq.servo.episode_log`: every step to an MCAP episode log, and back into a
  :class:`~graspq.learning.replay.ReplayBuffer` as offline data.
- :mod:`graspq.servo.sim_devices`: the runtime driven by the MuJoCo scene as separate devices
  with their own rates, latency and jitter on a simulated clock (``graspq servo --sim``).

The core takes time as an argument (sensor stamps and ``now``); it never reads a wall clock
to decide anything. Wall time is only measured (policy latency, cycle time).
"""
