"""GraspQ servo lifecycle node (ROS 2 adapter over graspq.servo.ServoRuntime)."""
