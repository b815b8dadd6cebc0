"""Synthetic rooms written as a prepared dataset folder (``synthesize``)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

from indoorseg.data.prepared import (
    PreparedInfo,
    depth_to_mm,
    staged_output,
    write_info,
    write_sample,
)
from indoorseg.data.synthetic.furniture import NYU40
from indoorseg.data.synthetic.render import check_size, render_room
from indoorseg.errors import UsageError
from indoorseg.workers import in_order

GENERATOR = "indoorseg.synthetic v1"


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
    with staged_output(out, force) as tmp:
        if tmp is None:
            return None
        write_room = functools.partial(_write_room, tmp, seed, size)
        for done, _ in enumerate(in_order(write_room, range(n), workers), 1):
            if progress is not None:
                progress(done, n)
        write_info(tmp, PreparedInfo(
            name="synthetic",
            label_space="nyu40",
            class_names=list(NYU40.names),
            splits={"default": splits},
            default_split_set="default",
            image_size=list(size),
            extra={"seed": seed, "generator": GENERATOR},
        ))  # fmt: skip
    return Path(out)


def _write_room(root: Path, seed: int, size: tuple[int, int], index: int) -> None:
    sample = render_room(seed, index, size)
    write_sample(root, f"{index:05d}", sample.rgb, sample.label, depth_to_mm(sample.depth))


def parse_size(text: str) -> tuple[int, int]:
    """``"240x320"`` -> ``(240, 320)``: HEIGHTxWIDTH in pixels, both positive.

    Raises:
        UsageError: the text is not of that form.
    """
    parts = text.strip().lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise UsageError(f"size {text!r}: expected HEIGHTxWIDTH in pixels, e.g. 240x320")
    height, width = (int(p) for p in parts)
    if height < 1 or width < 1:
        raise UsageError(f"size {text!r}: height and width must be positive")
    return height, width
