"""Headless rendering of the overhead RGB-D and wrist RGB cameras.

One OpenGL context renders both cameras side by side; each camera draws only the geoms it can
show (:mod:`graspq.sim.culling`), and the lights are those of the overhead view for both, as
they have always been. The overhead colour and depth come from the same render.
Rendering is headless through ``MUJOCO_GL`` (``egl`` here); the offscreen buffer is sized to
the image and shadows are off (see the scene XML).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator

import mujoco
import numpy as np

from graspq.sim.culling import ViewCulling
from graspq.sim.scene import Scene
from graspq.sim.settings import CameraConfig

# Culled geoms are moved into this group, which the rig's option never shows, while the
# scene is built; their own group is restored at once.
_CULLED_GROUP = mujoco.mjNGROUP - 1


def _opaque(model: mujoco.MjModel, geom: int) -> bool:
    material = model.geom_matid[geom]
    rgba = model.mat_rgba[material] if material >= 0 else model.geom_rgba[geom]
    return bool(rgba[3] >= 1.0)


def _gl_context_class() -> type:
    """The OpenGL context class ``MUJOCO_GL`` asks for (EGL when unset).

    Chosen here rather than by ``mujoco.gl_context``, which reads the variable only once, when
    mujoco is first imported: a script that imports mujoco before graspq would otherwise get
    GLFW, which needs a display.
    """
    backend = os.environ.get("MUJOCO_GL", "egl").strip().lower()
    if backend == "osmesa":
        from mujoco.osmesa import GLContext
    elif backend in ("glfw", "glx"):
        from mujoco.glfw import GLContext
    else:
        from mujoco.egl import GLContext
    return GLContext


class CameraRig:
    """Renders ``overhead_rgbd`` (float32 H x W x 4) and ``wrist_rgb`` (uint8 H x W x 3).

    ``cull=False`` draws every geom for every camera: the same images, slower; the tests and
    ``graspq bench env`` compare against it.
    """

    def __init__(self, scene: Scene, image_size: int, cull: bool = True) -> None:
        model = scene.model
        if model.vis.global_.offwidth < 2 * image_size or model.vis.global_.offheight < image_size:
            raise ValueError(f"offscreen buffer smaller than two {image_size} px images")
        self._scene = scene
        self._size = image_size
        self._gl = _gl_context_class()(2 * image_size, image_size)
        self._gl.make_current()
        self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        # Reversed Z (1 at the near plane, 0 at the far one) keeps depth precise far away.
        self._context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._mjv_scene = mujoco.MjvScene(model, maxgeom=200)
        # Effects a 64 px image cannot show cost most of a frame on a software renderer.
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                     mujoco.mjtRndFlag.mjRND_SKYBOX, mujoco.mjtRndFlag.mjRND_FOG,
                     mujoco.mjtRndFlag.mjRND_HAZE):
            self._mjv_scene.flags[flag] = False
        self._option = mujoco.MjvOption()
        self._option.geomgroup[_CULLED_GROUP] = 0
        table = scene.table_geom if _opaque(model, scene.table_geom) else None
        self._culling = ViewCulling(model, scene.floor_geom, table) if cull else None
        self._perturb = mujoco.MjvPerturb()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._overhead_rect = mujoco.MjrRect(0, 0, image_size, image_size)
        self._wrist_rect = mujoco.MjrRect(image_size, 0, image_size, image_size)
        self._both_rect = mujoco.MjrRect(0, 0, 2 * image_size, image_size)
        self._rgb = np.empty((image_size, 2 * image_size, 3), dtype=np.uint8)
        self._depth = np.empty((image_size, 2 * image_size), dtype=np.float32)
        extent = model.stat.extent
        self._near = model.vis.map.znear * extent
        self._far = model.vis.map.zfar * extent

    def render(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        """Both camera images for the current simulation state.

        The two cameras are drawn side by side into one offscreen buffer and read back with a
        single ``mjr_readPixels``: the read-back, not the drawing, dominates at 64 px.
        """
        self._gl.make_current()
        model, size, scene = self._scene.model, self._size, self._mjv_scene
        # The call sequence is the one the reference images were rendered with (the wrist
        # view keeps the overhead view's lights); only the geoms each camera cannot show are
        # left out of its geom list.
        self._camera.fixedcamid = self._scene.overhead_camera
        with self._culled(data, self._scene.overhead_camera):
            mujoco.mjv_updateScene(model, data, self._option, self._perturb, self._camera,
                                   mujoco.mjtCatBit.mjCAT_ALL, scene)
        mujoco.mjr_render(self._overhead_rect, scene, self._context)
        self._camera.fixedcamid = self._scene.wrist_camera
        mujoco.mjv_updateCamera(model, data, self._camera, scene)
        scene.ngeom = 0
        with self._culled(data, self._scene.wrist_camera):
            mujoco.mjv_addGeoms(model, data, self._option, self._perturb,
                                mujoco.mjtCatBit.mjCAT_ALL, scene)
        mujoco.mjr_render(self._wrist_rect, scene, self._context)
        mujoco.mjr_readPixels(self._rgb, self._depth, self._both_rect, self._context)
        rgb, depth = self._rgb[::-1], self._depth[::-1]  # OpenGL rows run bottom-up
        overhead = np.empty((size, size, 4), dtype=np.float32)
        overhead[..., :3] = rgb[:, :size] * np.float32(1.0 / 255.0)
        overhead[..., 3] = self._metric_depth(depth[:, :size])
        return {"overhead_rgbd": overhead, "wrist_rgb": rgb[:, size:].copy()}

    @contextlib.contextmanager
    def _culled(self, data: mujoco.MjData, camera: int) -> Iterator[None]:
        """While open, the geoms ``camera`` cannot show sit in a group the rig does not draw
        (the model's groups are restored on leaving: other renderers share the model)."""
        if self._culling is None:
            yield
            return
        groups = self._scene.model.geom_group
        saved = groups.copy()
        groups[self._culling.hidden(data, camera, aspect=1.0)] = _CULLED_GROUP
        try:
            yield
        finally:
            groups[:] = saved

    def _metric_depth(self, buffer: np.ndarray) -> np.ndarray:
        """Undo MuJoCo's reversed-Z perspective depth buffer: values in metres (z-depth)."""
        near, far = np.float64(self._near), np.float64(self._far)
        c_coef = 0.5 * (far + near) / (far - near) - 0.5
        d_coef = far * near / (far - near)
        return (d_coef / (buffer.astype(np.float64) + c_coef)).astype(np.float32)

    def close(self) -> None:
        """Free the OpenGL resources (safe to call twice)."""
        if self._context is not None:
            self._gl.make_current()
            self._context.free()
            self._context = None
            self._gl.free()


def camera_intrinsics(fovy_deg: float, image_size: int) -> tuple[float, float, float, float]:
    """Pinhole intrinsics ``(fx, fy, cx, cy)`` in pixels of a square MuJoCo camera image.

    MuJoCo's ``fovy`` spans the image height edge to edge; the principal point is the image
    centre, which is ``(size - 1) / 2`` in the ROS convention of pixel centres at integers.
    """
    focal = 0.5 * image_size / math.tan(math.radians(fovy_deg) / 2.0)
    centre = (image_size - 1) / 2.0
    return focal, focal, centre, centre


# A MuJoCo camera looks along its -z with +y up; a ROS optical frame looks along +z with +y
# down (REP 103): the optical frame is the camera frame turned half a turn about x.
MUJOCO_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])


def fixed_camera_optical_pose(model: mujoco.MjModel, camera: int
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Position (3,) m and rotation (3, 3) in the world (base) frame of the ROS optical frame
    of a camera fixed in the world (the overhead camera): any state of the scene gives it,
    so a fresh MjData of ``model`` is used and no caller's state is touched."""
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    return (data.cam_xpos[camera].copy(),
            data.cam_xmat[camera].reshape(3, 3) @ MUJOCO_TO_OPTICAL)


def overhead_crop_box(camera: CameraConfig, fx: float, cx: float, cy: float, width: int,
                      height: int) -> tuple[int, int, int]:
    """``(top, left, side)`` in pixels of the square of a real overhead frame that shows what
    the trained camera shows: ``overhead_crop_px`` at the nominal focal length
    ``overhead_native_focal_px``, scaled by the real camera's ``fx`` (from its CameraInfo),
    centred on its principal point ``(cx, cy)`` and kept inside the ``width`` x ``height``
    frame."""
    if not (math.isfinite(fx) and fx > 0):
        raise ValueError(f"camera focal length fx must be positive, got {fx!r}")
    side = round(camera.overhead_crop_px * fx / camera.overhead_native_focal_px)
    side = max(1, min(side, width, height))
    left = min(max(round(cx - (side - 1) / 2), 0), width - side)
    top = min(max(round(cy - (side - 1) / 2), 0), height - side)
    return top, left, side
