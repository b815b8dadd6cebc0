"""One synthetic room as arrays: RGB through a simple sensor model, nyu40 labels, depth.

The scene comes from ``rooms.furnish``, the pixels from ``raycast``; the same
``(seed, index, size)`` always gives the same arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from indoorseg.data.synthetic import raycast as rc
from indoorseg.data.synthetic.furniture import NYU40
from indoorseg.data.synthetic.rooms import furnish
from indoorseg.errors import UsageError

MIN_SIZE = 32
ROOM_LABELS = [NYU40.id_of(n) for n in ["wall"] * 4 + ["floor", "ceiling"]]  # hit ids 0..5


@dataclass(frozen=True)
class RoomSample:
    """One rendered room.

    Attributes:
        rgb: (H, W, 3) uint8.
        label: (H, W) uint16 nyu40 ids, 0 = unlabelled.
        depth: (H, W) float32 z-depth in metres, positive everywhere.
    """

    rgb: np.ndarray
    label: np.ndarray
    depth: np.ndarray


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    if len(size) != 2 or not all(isinstance(v, int | np.integer) for v in size):
        raise UsageError(f"size must be (height, width) integers, got {size!r}")
    if min(size) < MIN_SIZE:
        raise UsageError(f"size {size[0]}x{size[1]} is too small; at least {MIN_SIZE}x{MIN_SIZE}")
    return int(size[0]), int(size[1])


def render_room(seed: int, index: int, size: tuple[int, int] = (240, 320)) -> RoomSample:
    """Render room ``index`` of the stream ``seed`` at ``size`` (height, width).

    The same ``(seed, index, size)`` gives the same arrays on every call.
    """
    h, w = check_size(size)
    if seed < 0 or index < 0:
        raise UsageError(f"seed and index must be non-negative, got seed={seed}, index={index}")
    rng = np.random.default_rng([seed, index])
    scene = furnish(rng, extras=np.random.default_rng([seed, index, 1]))
    rays = rc.pixel_rays((h, w))
    dirs = scene.rotation.astype(np.float32) @ rays.reshape(3, -1)  # (3, N), z-depth scaled
    origin = scene.origin.astype(np.float32)
    t, ids = rc.cast_room(origin, dirs, scene.dims)
    t, ids = t.reshape(h, w), ids.reshape(h, w)
    rc.cast_boxes(scene.boxes, origin, scene.rotation, dirs.reshape(3, h, w), t, ids)

    color = rc.shade(
        origin,
        dirs,
        t.ravel(),
        ids.ravel(),
        scene.dims,
        scene.room,
        scene.boxes,
        scene.lights,
        scene.ambient,
        scene.footprints,
    )
    table = np.array(ROOM_LABELS + [b.label for b in scene.boxes], dtype=np.uint16)
    label = table[ids]
    label[_object_edges(ids)] = 0  # as in NYU, outlines of objects are often left unlabelled
    rgb = _sensor(color.reshape(3, h, w), rays, rng)
    # Kinect-like depth noise, growing with the square of the distance
    depth = t * (1 + np.float32(0.001) * t * _gaussian(rng, (h, w)))
    return RoomSample(rgb=rgb, label=label, depth=depth.astype(np.float32))


def _object_edges(ids: np.ndarray) -> np.ndarray:
    """Pixels one step right of or below a change of hit id next to a box (not room edges)."""
    edges = np.zeros(ids.shape, dtype=bool)
    box = ids >= rc.ROOM_FACES
    edges[:, 1:] |= (ids[:, 1:] != ids[:, :-1]) & (box[:, 1:] | box[:, :-1])
    edges[1:] |= (ids[1:] != ids[:-1]) & (box[1:] | box[:-1])
    return edges


def _sensor(color: np.ndarray, rays: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Auto exposure, white balance, vignetting and noise: linear colour -> (H, W, 3) uint8."""
    gain = np.clip(rng.uniform(0.38, 0.5) / max(float(color.mean()), 1e-3), 0.5, 3.0)
    balance = (gain * rng.uniform(0.93, 1.07, 3)).astype(np.float32)[:, None, None]
    vignette = 1 - np.float32(0.35) * (rays[0] ** 2 + rays[1] ** 2)
    noise = _gaussian(rng, color.shape) * np.float32(rng.uniform(0.004, 0.015))
    image = color * balance * vignette + noise
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0).copy()


@lru_cache(maxsize=1)
def _noise_table() -> np.ndarray:
    """4M standard normals (16 MB), the same in every process."""
    return np.random.default_rng(20240601).standard_normal(1 << 22, dtype=np.float32)


def _gaussian(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal noise: a window of a fixed table at a random offset.

    Drawing fresh normals for every pixel takes a tenth of the render time; a random window
    of one 16 MB table is as good for sensor noise, and as deterministic.
    """
    table, size = _noise_table(), math.prod(shape)
    if size > len(table) // 2:
        return rng.standard_normal(shape, dtype=np.float32)
    start = int(rng.integers(len(table) - size))
    return table[start : start + size].reshape(shape)
