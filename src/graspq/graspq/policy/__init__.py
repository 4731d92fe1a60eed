"""The deployable policy: a trained GQN exported to ONNX, and its ONNX Runtime loader.

- :mod:`graspq.policy.export` (needs torch): checkpoint -> one self-describing ``.onnx`` file
  whose graph takes the raw observation contract of :mod:`graspq.observation` and does the
  normalisation itself, verified against torch before it is kept.
- :mod:`graspq.policy.runtime` (numpy + onnxruntime only, no torch): :class:`OnnxPolicy`
  checks the file's metadata against the running config, validates every observation and
  decides the next action. The servo runtime and the ROS servo node use this.
- :mod:`graspq.policy.quantize`: the int8 copy of an exported file, calibrated and checked
  on observations recorded from the scene (:mod:`graspq.policy.recording`), written only if
  it acts like the float32 policy (issue #25); the runtime loads either.
- :mod:`graspq.policy.evaluate`: ``graspq eval --policy FILE.onnx``, a policy file in the scene.
- :mod:`graspq.policy.commands`: ``graspq export`` and ``graspq bench policy``.

Nothing is imported here, so that importing the runtime never pulls in torch.
"""
