"""Per-class pixel statistics of label images under any class scheme."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indoorseg.classes import BUILTIN_SPACES, LabelSpace, Scheme, load_scheme
from indoorseg.data.prepared import DatasetError, read_info, read_label_png


@dataclass
class ClassStats:
    """Pixel counts per train id of a scheme, plus ignored pixels."""

    scheme: str
    images: int
    pixels: int
    counts: dict[str, int]
    ignored: int

    def fractions(self) -> dict[str, float]:
        """Share of all pixels per class (and ``ignored``), summing to 1."""
        out = {name: c / self.pixels for name, c in self.counts.items()}
        if self.ignored:
            out["(ignored)"] = self.ignored / self.pixels
        return out

    def to_dict(self) -> dict:
        return {
            "scheme": self.scheme,
            "images": self.images,
            "pixels": self.pixels,
            "counts": self.counts,
            "ignored": self.ignored,
            "fractions": self.fractions(),
        }


def raw_histogram(
    paths: Iterable[Path], num_ids: int, progress: Callable[[int], None] | None = None
) -> tuple[np.ndarray, int]:
    """Pixel count of every label id over label PNGs; returns (counts[num_ids], images)."""
    counts = np.zeros(num_ids, dtype=np.int64)
    images = 0
    for path in paths:
        label = read_label_png(path)
        if label.max(initial=0) >= num_ids:
            raise DatasetError(f"{path}: label {label.max()} is beyond the {num_ids - 1} classes")
        counts += np.bincount(label.ravel(), minlength=num_ids)
        images += 1
        if progress:
            progress(images)
    if images == 0:
        raise DatasetError("no label images found")
    return counts, images


def scheme_stats(
    raw_counts: np.ndarray, images: int, scheme: Scheme, space: LabelSpace
) -> ClassStats:
    """Fold raw-id counts into a scheme's classes through its lookup table."""
    lut = scheme.lut(space).astype(np.int64)
    folded = np.bincount(lut, weights=raw_counts, minlength=scheme.ignore_index + 1)
    counts = {name: int(folded[i]) for i, name in enumerate(scheme.class_names)}
    return ClassStats(
        scheme=scheme.name,
        images=images,
        pixels=int(raw_counts.sum()),
        counts=counts,
        ignored=int(folded[scheme.ignore_index]),
    )


def folder_stats(
    scheme_name: str,
    root: str | Path | None = None,
    labels: str | Path | None = None,
    space_name: str = "nyu40",
    split: str | None = None,
    split_set: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ClassStats:
    """Statistics of a prepared folder (``root``) or a plain folder of label PNGs (``labels``).

    Args:
        scheme_name: scheme name or YAML path.
        root: prepared dataset folder; all images, or one ``split``.
        labels: plain folder of label PNGs in ``space_name`` ids.
    """
    if (root is None) == (labels is None):
        raise ValueError("give exactly one of a prepared folder or a labels folder")
    if root is not None:
        info = read_info(root)
        space = info.space()
        if split:
            ids = info.ids(split, split_set)
        else:
            ids = sorted({i for parts in info.splits.values() for s in parts.values() for i in s})
        paths = [Path(root) / "label" / f"{i}.png" for i in ids]
    else:
        folder = Path(labels)
        if not folder.is_dir():
            raise DatasetError(f"{folder}: not a folder")
        if space_name not in BUILTIN_SPACES:
            raise DatasetError(
                f"label space {space_name!r} is not built in ({', '.join(BUILTIN_SPACES)}); "
                "nyu894 labels need a prepared folder"
            )
        space = BUILTIN_SPACES[space_name]
        paths = sorted(folder.glob("*.png"))
        if not paths:
            raise DatasetError(f"{folder}: no .png label images")
    scheme = load_scheme(scheme_name, space)
    counts, images = raw_histogram(paths, space.num_ids, progress)
    return scheme_stats(counts, images, scheme, space)
