"""GraspQ training node (ROS 2 adapter over graspq.learning.trainer.Trainer)."""
