"""Depth quantisation and the compact uint8 storage of the overhead image."""

import numpy as np

from graspq.observation import decode_overhead, dequantise_depth, encode_overhead, quantise_depth

NEAR, FAR = 0.6, 1.1


def test_depth_round_trip_error_is_at_most_half_a_step():
    depth = np.random.default_rng(0).uniform(NEAR, FAR, size=10_000).astype(np.float32)
    restored = dequantise_depth(quantise_depth(depth, NEAR, FAR), NEAR, FAR)
    step = (FAR - NEAR) / 255
    assert np.max(np.abs(restored - depth)) <= step / 2 + 1e-6


def test_depth_outside_the_bounds_saturates():
    codes = quantise_depth(np.array([0.1, NEAR, FAR, 5.0], np.float32), NEAR, FAR)
    assert codes.tolist() == [0, 0, 255, 255]


def test_overhead_encode_decode_keeps_colour_and_depth():
    rng = np.random.default_rng(1)
    rgbd = np.empty((8, 8, 4), np.float32)
    rgbd[..., :3] = rng.integers(0, 256, (8, 8, 3)) / 255.0
    rgbd[..., 3] = rng.uniform(NEAR, FAR, (8, 8))
    codes = encode_overhead(rgbd, NEAR, FAR)
    assert codes.dtype == np.uint8
    decoded = decode_overhead(codes, NEAR, FAR)
    np.testing.assert_allclose(decoded[..., :3], rgbd[..., :3], atol=1e-6)
    np.testing.assert_allclose(decoded[..., 3], rgbd[..., 3], atol=(FAR - NEAR) / 510 + 1e-6)
