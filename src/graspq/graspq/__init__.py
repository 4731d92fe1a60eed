"""GraspQ core: closed-loop grasp learning with deep Q-learning on a MuJoCo scene.

ROS-free by design: nothing under this package imports rclpy or message packages.
"""

__version__ = "0.1.0"
