"""Synthetic rooms written as a prepared dataset folder (``synthesize``).

A folder records the generator that rendered it (``GENERATOR``, in ``dataset.json``'s
``extra``), with its seed; rooms of another generator or other settings are never reused
silently: ``synthesize`` refuses them (``force`` renders them again), and a run trained on
them is refused by ``train --resume`` and ``reproduce`` (``indoorseg.training``).
``GENERATOR`` goes up whenever the rendered rooms change; ``rooms_fingerprint`` (a hash of
a few small rooms, pinned by the tests for each version) tells when they did.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from indoorseg.data.prepared import (
    PreparedInfo,
    depth_to_mm,
    read_info,
    staged_output,
    write_info,
    write_sample,
)
from indoorseg.data.synthetic.furniture import NYU40
from indoorseg.data.synthetic.render import check_size, render_room
from indoorseg.errors import DatasetError, UsageError
from indoorseg.workers import in_order

# v1: the first rooms; v2: the rooms with furniture in the walls' colour (the version was
# not raised then: v2 names the rooms as they have been rendered since).
GENERATOR = "indoorseg.synthetic v2"
FINGERPRINT_ROOMS = 3  # rooms 0..2 of seed 0 at 48x64


def rooms_fingerprint() -> str:
    """sha256 of a few small rooms: their labels and depth (mm), exactly, and the mean of
    each colour channel in whole levels; it changes when the rendered rooms do.

    Colours are summarised because numpy's SIMD code differs between CPUs: with baseline
    SSE instead of AVX2, a few dozen pixels of these rooms come out one level apart (their
    means move by under 0.01; the closest is 0.07 from a rounding boundary), while labels and
    depth stay bit for bit the same.
    """
    digest = hashlib.sha256()
    for index in range(FINGERPRINT_ROOMS):
        room = render_room(0, index, (48, 64))
        means = np.rint(room.rgb.reshape(-1, 3).mean(0)).astype(np.int64)
        for array in (room.label, depth_to_mm(room.depth), means):
            digest.update(array.tobytes())
    return digest.hexdigest()


def split_ids(n: int, val_fraction: float, test_fraction: float) -> dict[str, list[str]]:
    """Ids ``00000``... of ``n`` images: the last ``test_fraction * n`` (rounded half up)
    are the test split, the ``val_fraction * n`` before them validation, the rest (at least
    one) training."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise UsageError(f"{name} must be in [0, 1), got {value}")
    if val_fraction + test_fraction >= 1:
        raise UsageError(
            f"val_fraction + test_fraction must be below 1, got {val_fraction} + {test_fraction}"
        )
    n_val, n_test = math.floor(val_fraction * n + 0.5), math.floor(test_fraction * n + 0.5)
    while n_val + n_test > n - 1:
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    ids, n_train = [f"{i:05d}" for i in range(n)], n - n_val - n_test
    return {"train": ids[:n_train], "val": ids[n_train : n - n_test], "test": ids[n - n_test :]}


def synthesize(
    out: str | Path,
    n: int,
    size: tuple[int, int] = (240, 320),
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> Path | None:
    """Write ``n`` rooms as a prepared dataset folder (see :mod:`indoorseg.data.prepared`),
    split by ``split_ids``; image ``i`` is ``render_room(seed, i, size)``.

    Args:
        out: the folder to write; built under a temporary name and renamed when complete.
        force: rebuild ``out`` even if it already is a dataset.
        progress: called as ``progress(done, n)`` after each image.
        workers: processes rendering rooms (default: one per available CPU core); the
            files are the same whatever their number.

    Returns:
        ``out``, or None when it already was a dataset and ``force`` is false (nothing done).
    """
    size = check_size(size)
    if seed < 0:
        raise UsageError(f"seed must be non-negative, got {seed}")
    if n < 1:
        raise UsageError(f"n must be at least 1, got {n}")
    splits = split_ids(n, val_fraction, test_fraction)
    if not force:
        check_rooms(out, seed, size, splits)
    with staged_output(out, force) as tmp:
        if tmp is None:
            return None
        write_room = functools.partial(_write_room, tmp, seed, size)
        for done, _ in enumerate(in_order(write_room, range(n), workers), 1):
            if progress is not None:
                progress(done, n)
        write_info(tmp, rooms_info(splits, size, seed))
    return Path(out)


def rooms_info(splits: dict, size: tuple[int, int], seed: int) -> PreparedInfo:
    """The ``dataset.json`` of a folder of rooms, with the generator that rendered them."""
    return PreparedInfo(
        name="synthetic",
        label_space="nyu40",
        class_names=list(NYU40.names),
        splits={"default": splits},
        default_split_set="default",
        image_size=list(size),
        extra={"seed": seed, "generator": GENERATOR},
    )


def _write_room(root: Path, seed: int, size: tuple[int, int], index: int) -> None:
    sample = render_room(seed, index, size)
    write_sample(root, f"{index:05d}", sample.rgb, sample.label, depth_to_mm(sample.depth))


def check_rooms(out: str | Path, seed: int, size: tuple[int, int], splits: dict) -> None:
    """Refuse a dataset folder at ``out`` that holds rooms of another generator or other
    settings than these (nothing to check when there is none)."""
    if not (Path(out) / "dataset.json").is_file():
        return
    info = read_info(out)
    made = info.extra.get("generator", "no recorded generator")
    wanted = {"generator": GENERATOR, "seed": seed, "size": list(size), "splits": splits}
    found = {
        "generator": made,
        "seed": info.extra.get("seed"),
        "size": info.image_size,
        "splits": info.splits.get("default"),
    }
    differ = [key for key in wanted if wanted[key] != found[key]]
    if differ:
        what = {
            "generator": f"made by {made}, this indoorseg renders {GENERATOR}",
            "seed": f"seed {found['seed']}",
            "size": f"size {found['size']}",
            "splits": "another number of rooms or other splits",
        }
        reasons = "; ".join(what[key] for key in differ)
        raise DatasetError(
            f"{out}: holds synthetic rooms of other settings ({reasons}); they are not reused",
            {"force": True, "out": None},
        )
