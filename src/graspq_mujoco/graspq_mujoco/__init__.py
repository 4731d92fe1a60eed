"""GraspQ MuJoCo robot node: the embedded scene as a ROS 2 robot."""
