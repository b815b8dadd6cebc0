"""Procedural indoor rooms: the toolkit's built-in dataset, labelled in the nyu40 space.

Each image is a random room (floor, ceiling, four walls) furnished with boxes: beds, tables
on legs, chairs, sofas, cabinets, shelves of books; doors, windows and pictures on the
walls; lamps, books and boxes on tables. A camera with the Kinect's intrinsics looks into
it. Rendering is vectorised ray casting in numpy (:mod:`indoorseg.data._raycast`), the
scenes come from :mod:`indoorseg.data._rooms`; a 240x320 image takes a few tens of
milliseconds on one CPU core.

Image ``i`` of seed ``S`` depends only on ``(S, i)``: the first 10 images of a run of 1000
are a run of 10.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from indoorseg.data import _raycast as rc
from indoorseg.data._furniture import NYU40
from indoorseg.data._rooms import furnish
from indoorseg.data.prepared import (
    PreparedInfo,
    depth_to_mm,
    staged_output,
    write_info,
    write_sample,
)

GENERATOR = "indoorseg.synthetic v1"
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


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if len(size) != 2 or not all(isinstance(v, int | np.integer) for v in size):
        raise ValueError(f"size must be (height, width) integers, got {size!r}")
    if min(size) < MIN_SIZE:
        raise ValueError(f"size {size[0]}x{size[1]} is too small; at least {MIN_SIZE}x{MIN_SIZE}")
    return int(size[0]), int(size[1])


def render_room(seed: int, index: int, size: tuple[int, int] = (240, 320)) -> RoomSample:
    """Render room ``index`` of the stream ``seed`` at ``size`` (height, width).

    The same ``(seed, index, size)`` gives the same arrays on every call.
    """
    h, w = _check_size(size)
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got seed={seed}, index={index}")
    rng = np.random.default_rng([seed, index])
    scene = furnish(rng)
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


def _split_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """Numbers of val and test images, rounded half up, leaving at least one for training."""
    n_val, n_test = math.floor(val_fraction * n + 0.5), math.floor(test_fraction * n + 0.5)
    while n_val + n_test > n - 1:
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test


def synthesize(
    out: str | Path,
    n: int,
    size: tuple[int, int] = (240, 320),
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path | None:
    """Write ``n`` rooms as a prepared dataset folder (see :mod:`indoorseg.data.prepared`).

    Ids are ``00000``, ``00001``...; the last ``test_fraction * n`` are the test split, the
    ``val_fraction * n`` before them validation, the rest (at least one) training.

    Args:
        out: the folder to write; built under a temporary name and renamed when complete.
        n: number of images.
        size: (height, width) of each image.
        seed: image ``i`` is ``render_room(seed, i, size)``.
        val_fraction, test_fraction: shares of the validation and test splits.
        force: rebuild ``out`` even if it already is a dataset.
        progress: called as ``progress(done, n)`` after each image.

    Returns:
        ``out``, or None when it already was a dataset and ``force`` is false (nothing done).
    """
    size = _check_size(size)
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction + test_fraction must be below 1, got {val_fraction} + {test_fraction}"
        )
    ids = [f"{i:05d}" for i in range(n)]
    n_val, n_test = _split_counts(n, val_fraction, test_fraction)
    n_train = n - n_val - n_test
    splits = {"train": ids[:n_train], "val": ids[n_train : n - n_test], "test": ids[n - n_test :]}
    with staged_output(out, force) as tmp:
        if tmp is None:
            return None
        for i, sample_id in enumerate(ids):
            sample = render_room(seed, i, size)
            write_sample(tmp, sample_id, sample.rgb, sample.label, depth_to_mm(sample.depth))
            if progress is not None:
                progress(i + 1, n)
        info = PreparedInfo(
            name="synthetic",
            label_space="nyu40",
            class_names=list(NYU40.names),
            splits={"default": splits},
            default_split_set="default",
            image_size=list(size),
            extra={"seed": seed, "generator": GENERATOR},
        )
        write_info(tmp, info)
    return Path(out)


def parse_size(text: str) -> tuple[int, int]:
    """``"240x320"`` -> ``(240, 320)``: HEIGHTxWIDTH in pixels, both positive.

    Raises:
        ValueError: the text is not of that form.
    """
    parts = text.strip().lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"size {text!r}: expected HEIGHTxWIDTH in pixels, e.g. 240x320")
    height, width = (int(p) for p in parts)
    if height < 1 or width < 1:
        raise ValueError(f"size {text!r}: height and width must be positive")
    return height, width
