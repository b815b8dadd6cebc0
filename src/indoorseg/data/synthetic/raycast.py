"""Vectorised ray casting of box rooms: camera rays, nearest hits, shading.

A private helper of :mod:`indoorseg.data.synthetic`. Every step works on all pixels at once:
points and directions are ``(3, N)`` arrays, per-pixel values ``(N,)`` (N = H * W). Python
loops run only over the few dozen boxes of a scene.

Ids of the hit map: ``0..5`` are the room's surfaces (walls at x=0, x=W, y=0, y=D, then
floor and ceiling), ``ROOM_FACES + k`` is ``boxes[k]``. A face of a box is
``2 * axis + (side > 0)`` in the box's own frame: x along its width, y towards its back
(its front faces -y), z up. The room uses the same numbering, seen from inside. Surfaces
get their colour from :mod:`indoorseg.data.synthetic.textures`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from indoorseg.data.synthetic.textures import TEXTURES, Material

NYU_SIZE = (480, 640)  # height, width of the Kinect colour images
NYU_INTRINSICS = (518.86, 519.47, 325.58, 253.74)  # fx, fy, cx, cy at NYU_SIZE
ROOM_FACES = 6
FLOOR, CEILING = 4, 5


@dataclass(frozen=True)
class Box:
    """A box in the world: centre (metres), half sizes in its own frame, yaw about z (radians)."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    yaw: float
    label: int
    material: Material


def intrinsics(size: tuple[int, int]) -> tuple[float, float, float, float]:
    """fx, fy, cx, cy of the NYU camera scaled to ``size`` (height, width): same field of view."""
    sy, sx = size[0] / NYU_SIZE[0], size[1] / NYU_SIZE[1]
    fx, fy, cx, cy = NYU_INTRINSICS
    # pixel centres scale about the image corner, hence the half-pixel shifts
    return fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5


def look_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera -> world rotation (3, 3). Camera axes: x right, y down, z forward; world z up.

    yaw 0 looks along +y, positive yaw turns left; positive pitch looks up.
    """
    base = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # columns: right, down, forward

    def about(axis: int, angle: float) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        i, j = [(1, 2), (2, 0), (0, 1)][axis]
        r = np.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        return r

    return about(2, yaw) @ base @ about(0, pitch) @ about(2, roll)


@lru_cache(maxsize=4)
def pixel_rays(size: tuple[int, int]) -> np.ndarray:
    """Ray of every pixel centre in the camera frame, scaled so that z = 1 (then t = z-depth).

    Shape:
        (3, H, W) float32, read-only (cached).
    """
    fx, fy, cx, cy = intrinsics(size)
    v, u = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float32)
    rays = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)]).astype(np.float32)
    rays.flags.writeable = False
    return rays


def cast_room(origin: np.ndarray, dirs: np.ndarray, dims: np.ndarray) -> tuple[np.ndarray, ...]:
    """Where rays from inside the room ``[0, dims]`` leave it: the nearest of the six planes.

    Shape:
        dirs (3, N) -> t (N,) float32, face (N,) int16 in 0..5.
    """
    t = face = None
    for a in range(3):
        d = dirs[a]
        ahead = np.where(d > 0, np.float32(dims[a] - origin[a]), np.float32(origin[a]))
        with np.errstate(divide="ignore"):
            t_a = ahead / np.abs(d)  # +inf for rays parallel to these two planes
        if t is None:
            t, face = t_a, (d > 0).astype(np.int16)
        else:
            nearer = t_a < t
            t, face = np.where(nearer, t_a, t), np.where(nearer, 2 * a + (d > 0), face)
    return t, face.astype(np.int16)


_CORNERS = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], float)


def screen_rects(
    boxes: list[Box], origin: np.ndarray, rotation: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """Pixel rows r0:r1 and columns c0:c1 that may see each box (empty when none can).

    Shape:
        (K, 4) int: r0, r1, c0, c1.
    """
    center = np.array([b.center for b in boxes]).reshape(-1, 1, 3)
    local = _CORNERS * np.array([b.half for b in boxes]).reshape(-1, 1, 3)  # (K, 8, 3)
    yaw = np.array([b.yaw for b in boxes]).reshape(-1, 1)
    c, s = np.cos(yaw), np.sin(yaw)
    x, y = c * local[..., 0] - s * local[..., 1], s * local[..., 0] + c * local[..., 1]
    cam = (np.stack([x, y, local[..., 2]], -1) + center - origin) @ rotation  # camera frame
    behind = cam[..., 2] <= 1e-3
    z = np.maximum(cam[..., 2], 1e-3)
    fx, fy, cx, cy = intrinsics(size)
    u, v = fx * cam[..., 0] / z + cx, fy * cam[..., 1] / z + cy
    rects = np.stack([v.min(1), v.max(1) + 1, u.min(1), u.max(1) + 1], -1)
    rects = np.clip(np.floor(rects), 0, [size[0], size[0], size[1], size[1]]).astype(int)
    rects[behind.any(1)] = (0, size[0], 0, size[1])  # straddles the image plane: every pixel
    rects[behind.all(1)] = 0  # wholly behind the camera, and a box is convex
    return rects


def cast_boxes(
    boxes: list[Box],
    origin: np.ndarray,
    rotation: np.ndarray,
    dirs: np.ndarray,
    t: np.ndarray,
    ids: np.ndarray,
) -> None:
    """Slab test of each box on the pixels of its screen rectangle; keeps the nearest hit.

    Shape:
        dirs (3, H, W); t (H, W) and ids (H, W), updated in place.
    """
    if not boxes:
        return
    with np.errstate(divide="ignore"):
        inverse = 1.0 / dirs
    for k, (box, (r0, r1, c0, c1)) in enumerate(
        zip(boxes, screen_rects(boxes, origin, rotation, t.shape), strict=True)
    ):
        if r0 >= r1 or c0 >= c1:
            continue
        window = (slice(None), slice(r0, r1), slice(c0, c1))
        o, half, inv = _box_frame(box, origin, dirs[window], inverse[window])
        near = far = None
        with np.errstate(invalid="ignore"):
            for a in range(3):
                t1, t2 = (-half[a] - o[a]) * inv[a], (half[a] - o[a]) * inv[a]
                lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
                near = lo if near is None else np.maximum(near, lo)
                far = hi if far is None else np.minimum(far, hi)
        view_t, view_ids = t[r0:r1, c0:c1], ids[r0:r1, c0:c1]
        hit = (near < far) & (near > 0) & (near < view_t)
        np.copyto(view_t, near, where=hit)
        np.copyto(view_ids, ROOM_FACES + k, where=hit)


def _box_frame(box: Box, origin: np.ndarray, d: np.ndarray, inverse: np.ndarray) -> tuple:
    """The ray origin, the box's half sizes and the inverse ray directions in a frame where
    the box is axis-aligned.

    Shape: d, inverse (3, h, w): directions of some pixels and their inverses.
    """
    o, half = origin - np.asarray(box.center), box.half
    c, s = np.cos(box.yaw), np.sin(box.yaw)
    if min(abs(c), abs(s)) < 1e-9:  # turned by a multiple of 90 degrees: still axis-aligned
        half = (abs(c) * half[0] + abs(s) * half[1], abs(s) * half[0] + abs(c) * half[1], half[2])
        return o, half, inverse
    c, s = np.float32(c), np.float32(s)  # into the box frame: rotate by -yaw
    o = np.array([c * o[0] + s * o[1], -s * o[0] + c * o[1], o[2]])
    with np.errstate(divide="ignore"):
        inv = (1.0 / (c * d[0] + s * d[1]), 1.0 / (c * d[1] - s * d[0]), inverse[2])
    return o, half, inv


def _rotate(v: np.ndarray, yaw: float) -> np.ndarray:
    """Turn points (3, n) or (2, n) about z by ``yaw``."""
    c, s = np.float32(np.cos(yaw)), np.float32(np.sin(yaw))
    return np.stack([c * v[0] - s * v[1], s * v[0] + c * v[1], *v[2:]])


def shade(
    origin: np.ndarray,
    dirs: np.ndarray,
    t: np.ndarray,
    ids: np.ndarray,
    dims: np.ndarray,
    room: list[Material],
    boxes: list[Box],
    lights: list[tuple[np.ndarray, float]],
    ambient: float,
    footprints: list[tuple[float, float, float, float, float]],
) -> np.ndarray:
    """Colour of every pixel: texture x (ambient + headlight + point lights), contact shadows.

    Args:
        room: materials of the six room faces; lights: (position, power) pairs;
        footprints: (x, y, half_x, half_y, yaw) of things standing on the floor.

    Shape:
        dirs (3, N), t (N,), ids (N,) -> colour (3, N) float32, roughly in [0, 1].
    """
    # sort the pixels by what they see: each surface is then a slice, not a scattered index
    order = np.argsort(ids, kind="stable")
    counts = np.bincount(ids, minlength=ROOM_FACES + len(boxes))
    starts = np.cumsum(counts) - counts
    dirs = dirs[:, order]
    points = origin[:, None].astype(np.float32) + dirs * t[order]
    albedo, normal = np.empty_like(points), np.empty_like(points)
    emit, occlusion = np.zeros_like(t), np.ones_like(t)
    for k in np.flatnonzero(counts):
        part = slice(starts[k], starts[k] + counts[k])
        if k < ROOM_FACES:
            half, m = dims.astype(np.float32) / 2, room[k]
            p, face, normal[:, part], occlusion[part] = _room_hit(points[:, part], k, half)
        else:
            box = boxes[k - ROOM_FACES]
            half, m = np.asarray(box.half, np.float32), box.material
            p, face, normal[:, part] = _box_hit(points[:, part], box, half)
        albedo[:, part] = TEXTURES[m.kind](p, face, half, m)
        emit[part] = m.emit
    light = _lighting(points, normal, dirs, lights, ambient)
    floor = slice(starts[FLOOR], starts[FLOOR] + counts[FLOOR])
    _contact_shadows(points[:2, floor], occlusion[floor], footprints)
    color = np.empty_like(points)
    color[:, order] = albedo * (light * occlusion * (1 - emit) + 1.2 * emit)
    return color


def _room_hit(points: np.ndarray, k: int, half: np.ndarray) -> tuple[np.ndarray, ...]:
    """Hit points on room face ``k`` about the room's centre, the face, its inward normal,
    and an occlusion that darkens towards the room's edges (a cheap ambient occlusion).

    Shape: points (3, n) -> p (3, n), face (n,), normal (3, n), occlusion (n,).
    """
    p, face = points - half[:, None], np.full(points.shape[1], k)
    normal = np.zeros_like(points)
    normal[k >> 1] = -1.0 if k & 1 else 1.0
    edge = half[:, None] - np.abs(p)
    edge[k >> 1] = np.inf
    return p, face, normal, 1 - 0.35 * np.exp(-edge.min(0) / 0.25)


def _box_hit(points: np.ndarray, box: Box, half: np.ndarray) -> tuple[np.ndarray, ...]:
    """Hit points in the box's frame, the face hit and its normal in the room's frame.

    Shape: points (3, n) -> p (3, n), face (n,), normal (3, n).
    """
    p = _rotate(points - np.asarray(box.center, np.float32)[:, None], -box.yaw)
    r = np.abs(p) / half[:, None]  # 1 on the face that was hit
    axis = np.where(r[0] >= r[1], np.where(r[0] >= r[2], 0, 2), np.where(r[1] >= r[2], 1, 2))
    positive = np.where(axis == 0, p[0], np.where(axis == 1, p[1], p[2])) > 0
    face, sign = 2 * axis + positive, np.where(positive, np.float32(1), np.float32(-1))
    return p, face, _rotate(np.stack([(axis == a) * sign for a in range(3)]), box.yaw)


def _lighting(
    points: np.ndarray,
    normal: np.ndarray,
    dirs: np.ndarray,
    lights: list[tuple[np.ndarray, float]],
    ambient: float,
) -> np.ndarray:
    """Ambient + headlight + point lights at each point. Shape: (3, N) each -> (N,)."""
    (nx, ny, nz), (dx, dy, dz) = normal, dirs
    facing = np.abs(nx * dx + ny * dy + nz * dz) / np.sqrt(dx * dx + dy * dy + dz * dz)
    light = ambient + 0.3 * facing  # a headlight, so that faces of a box differ
    for position, power in lights:
        lx, ly, lz = (np.float32(c) - q for c, q in zip(position, points, strict=True))
        dist2 = lx * lx + ly * ly + lz * lz
        cos = (nx * lx + ny * ly + nz * lz) / np.sqrt(dist2)
        light += np.float32(power) * np.maximum(cos, 0) / (1 + dist2 / 6)
    return light


def _contact_shadows(
    floor_xy: np.ndarray,
    occlusion: np.ndarray,
    footprints: list[tuple[float, float, float, float, float]],
) -> None:
    """Darken ``occlusion`` (in place) in a soft patch under each piece of furniture.

    Shape: floor_xy (2, n) floor points, occlusion (n,).
    """
    for x, y, hx, hy, yaw in footprints:
        q = _rotate(floor_xy - np.array([[x], [y]], np.float32), -yaw)
        outside = np.maximum(np.abs(q[0]) - hx, np.abs(q[1]) - hy)
        occlusion *= 1 - 0.45 * np.clip(1 - outside / 0.12, 0, 1)
