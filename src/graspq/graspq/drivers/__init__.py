"""ROS-free logic of the robot drivers that serve GraspQ's robot interface
(docs/ros_interface.md) on other backends: the trajectory they follow, and what each backend
needs of its own (Gazebo's episodes, Baxter's gripper and faults). The ROS nodes in
``graspq_gazebo`` and ``graspq_baxter`` are thin adapters over these."""
