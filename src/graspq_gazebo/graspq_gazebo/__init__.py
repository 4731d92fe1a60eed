"""GraspQ on Gazebo Harmonic: the driver node and a stand-in world for the tests."""
