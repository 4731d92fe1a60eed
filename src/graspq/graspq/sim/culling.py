"""Which geoms a fixed camera cannot show, so that the renderer need not draw them.

On Mesa's software renderer (llvmpipe) a frame's cost is the geometry sent to it, not its
64 x 64 pixels: every geom costs about 6 us per camera, and the floor, a plane drawn as a
grid of 62 x 62 quads, about 200 us, most of a frame (issue #25). A geom is left out only when
it provably adds no pixel, so the images stay bit for bit what they were:

- its bounding sphere (``geom_rbound``, which holds the drawn, tessellated surface) lies
  wholly outside the camera's view frustum, or
- it is the floor and every ray of the view meets the table top first: the four corner rays
  meet the table-top plane inside the table's rectangle (so do all rays between them, the
  footprint being the convex hull of the corners' and the rectangle being convex), between
  the near and far clipping planes, and the floor lies below the table top. The opaque table
  then wins the depth test at every pixel.

Both tests keep a margin of ``MARGIN_M`` (float32 rendering works to about 1e-7 m here).
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

MARGIN_M = 1e-3


def _view(model: mujoco.MjModel, camera: int, aspect: float
          ) -> tuple[np.ndarray, np.ndarray] | None:
    """``(tangents, slopes)`` (2,) each of the half-angles across and up the view of a
    perspective camera whose frustum follows from ``cam_fovy`` alone; None for any other
    camera (orthographic, or sized by a sensor), which is then never culled."""
    # MuJoCo 3.3 names the projection ``cam_orthographic``; later versions ``cam_projection``.
    projection = getattr(model, "cam_projection", getattr(model, "cam_orthographic", None))
    if int(projection[camera]) != 0 or np.any(model.cam_sensorsize[camera]):
        return None
    tan_y = math.tan(math.radians(model.cam_fovy[camera]) / 2.0)
    tans = np.array([tan_y * aspect, tan_y])
    return tans, np.sqrt(1.0 + tans * tans)


class ViewCulling:
    """Geoms a fixed, perspective camera cannot show in the current state.

    Args:
        model: the compiled scene.
        floor_geom: id of the floor plane, or None.
        table_geom: id of the opaque table-top box that hides the floor, or None. Both are
            read as fixed in the world (bodiless geoms: their pose is the model's).
    """

    def __init__(self, model: mujoco.MjModel, floor_geom: int | None = None,
                 table_geom: int | None = None) -> None:
        self._model = model
        self._near = float(model.vis.map.znear * model.stat.extent)
        self._far = float(model.vis.map.zfar * model.stat.extent)
        self._hidden = np.zeros(model.ngeom, dtype=bool)
        self._views: dict[tuple[int, float], tuple[np.ndarray, np.ndarray] | None] = {}
        self._floor = floor_geom
        self._table_top: tuple[float, float, float, float, float] | None = None
        if floor_geom is not None and table_geom is not None:
            self._table_top = _table_top(model, floor_geom, table_geom)

    def hidden(self, data: mujoco.MjData, camera: int, aspect: float) -> np.ndarray:
        """(ngeom,) bool: True for the geoms the fixed camera ``camera`` cannot show in a
        viewport of width / height ``aspect``. Reads the poses of ``data`` as
        ``mjv_updateScene`` does (``geom_xpos``, ``cam_xpos``, ``cam_xmat``). The returned
        array is reused by the next call. The camera's field of view is read once."""
        model, hidden = self._model, self._hidden
        key = (camera, aspect)
        if key not in self._views:
            self._views[key] = _view(model, camera, aspect)
        view = self._views[key]
        if view is None:
            hidden[:] = False
            return hidden
        tans, slopes = view
        # MuJoCo's camera looks along its -z with +y up and +x to the right.
        axes = data.cam_xmat[camera].reshape(3, 3)
        position = data.cam_xpos[camera]
        local = (data.geom_xpos - position) @ axes  # right, up, -depth of each geom centre
        depth = -local[:, 2]
        rbound = self._model.geom_rbound
        radius = rbound + MARGIN_M
        # Outside a side plane: the centre's distance beyond it exceeds the radius.
        side = np.abs(local[:, :2]) - depth[:, None] * tans
        np.any(side > radius[:, None] * slopes, axis=1, out=hidden)
        hidden |= depth < self._near - radius
        hidden |= depth > self._far + radius
        hidden &= rbound > 0.0  # rbound 0: a plane, unbounded
        if self._table_top is not None:
            hidden[self._floor] = self._table_hides_floor(axes.tolist(), position.tolist(),
                                                          float(tans[0]), float(tans[1]))
        return hidden

    def _table_hides_floor(self, axes: list[list[float]], position: list[float],
                           tan_x: float, tan_y: float) -> bool:
        """Whether all four corner rays meet the table top inside it (see the module)."""
        x0, x1, y0, y1, top = self._table_top
        px, py, pz = position
        height = pz - top
        if height <= 0.0:
            return False
        (rx, ux, bx), (ry, uy, by), (rz, uz, bz) = axes  # columns: right, up, back
        for sx in (-tan_x, tan_x):
            for sy in (-tan_y, tan_y):
                # The ray through this corner, scaled to depth 1 along the view.
                dx, dy, dz = sx * rx + sy * ux - bx, sx * ry + sy * uy - by, sx * rz + sy * uz - bz
                if dz >= 0.0:
                    return False
                depth = height / -dz
                if not self._near + MARGIN_M <= depth <= self._far - MARGIN_M:
                    return False
                if not (x0 <= px + depth * dx <= x1 and y0 <= py + depth * dy <= y1):
                    return False
        return True


def _table_top(model: mujoco.MjModel, floor: int, table: int
               ) -> tuple[float, float, float, float, float] | None:
    """``(x min, x max, y min, y max, z)`` of the table's top face shrunk by ``MARGIN_M``, if
    it can hide the floor: both geoms fixed in the world and level, the floor below."""
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    level = np.eye(3).ravel()
    for geom in (floor, table):
        if model.body_weldid[model.geom_bodyid[geom]] != 0:
            return None  # moves with something
        if not np.allclose(data.geom_xmat[geom], level, atol=1e-12):
            return None
    (cx, cy, cz), (hx, hy, hz) = data.geom_xpos[table], model.geom_size[table]
    top = float(cz + hz)
    if data.geom_xpos[floor][2] >= top - MARGIN_M:
        return None
    return (float(cx - hx + MARGIN_M), float(cx + hx - MARGIN_M),
            float(cy - hy + MARGIN_M), float(cy + hy - MARGIN_M), top)
