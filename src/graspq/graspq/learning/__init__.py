"""Learning foundations of GraspQ: the Grasp-Q-Network, TD targets and the replay buffer.

- :mod:`graspq.learning.model`: :class:`GQNConfig`, :class:`GraspQNetwork` (paper Fig. 2),
  :func:`preprocess` (observation contract -> normalised NCHW tensors) and the
  :func:`grasp_probabilities` softmax readout.
- :mod:`graspq.learning.targets`: the Q-learning / DQN / Double DQN targets on one code path,
  and the TD loss (paper eq. 5).
- :mod:`graspq.learning.replay`: a uint8 replay buffer that stores every frame once.
"""
