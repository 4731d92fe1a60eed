"""GraspQ on a real Baxter: the driver bridge to the Baxter SDK and a fake Baxter."""
