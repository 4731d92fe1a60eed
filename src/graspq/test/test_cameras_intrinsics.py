"""graspq.sim.cameras: the intrinsics of the rendered cameras and the crop of a real
overhead frame that matches the trained view."""

import math

import pytest

from graspq.sim.cameras import camera_intrinsics, overhead_crop_box
from graspq.sim.settings import CameraConfig


def test_intrinsics_span_the_field_of_view():
    fx, fy, cx, cy = camera_intrinsics(70.0, 64)
    assert fx == fy and cx == cy == 31.5
    assert 2 * math.degrees(math.atan(32 / fy)) == pytest.approx(70.0)


def test_the_crop_of_a_nominal_realsense_frame_is_the_configured_one():
    camera = CameraConfig()
    top, left, side = overhead_crop_box(camera, 615.0, 319.5, 239.5, 640, 480)
    assert side == camera.overhead_crop_px
    assert (left + (side - 1) / 2, top + (side - 1) / 2) == (319.5, 239.5)


def test_the_crop_follows_the_real_focal_length_and_principal_point():
    camera = CameraConfig()
    top, left, side = overhead_crop_box(camera, 615.0 * 1.1, 330.0, 230.0, 640, 480)
    assert side == round(camera.overhead_crop_px * 1.1)  # same field of view
    assert abs(left + (side - 1) / 2 - 330.0) <= 0.5 and abs(top + (side - 1) / 2 - 230.0) <= 0.5
    # Near the border the square stays inside the frame.
    top, left, side = overhead_crop_box(camera, 615.0, 5.0, 470.0, 640, 480)
    assert left == 0 and top + side == 480
    with pytest.raises(ValueError, match="fx"):
        overhead_crop_box(camera, float("nan"), 320.0, 240.0, 640, 480)
