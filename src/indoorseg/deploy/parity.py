"""How far two segmenters agree, and how well one scores on a labelled folder.

Used by ``export`` and ``benchmark``: parity of a backend with a reference (largest logit
difference, share of pixels with the same class), and the mean IoU of a segmenter on a
prepared folder, scored exactly as ``evaluate`` scores it (``evaluation.score_segmenter``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from indoorseg.data.prepared import read_info
from indoorseg.errors import InputError
from indoorseg.evaluation import Scoring, score_segmenter
from indoorseg.images import IMAGE_SUFFIXES, read_image
from indoorseg.inference import Segmenter


@dataclass(frozen=True)
class Parity:
    """Attributes: max_logit_diff: the largest |a - b| over all logits; agreement: the
    share of pixels whose class is the same; images: how many were compared."""

    max_logit_diff: float
    agreement: float
    images: int

    def to_dict(self) -> dict:
        return asdict(self)


def parity(a: Segmenter, b: Segmenter, images: list[np.ndarray]) -> Parity:
    """Compare two segmenters' logits and classes on the same images."""
    worst, same, total = 0.0, 0, 0
    for image in images:
        la, lb = a.logits(image).cpu(), b.logits(image).cpu()
        worst = max(worst, float((la - lb).abs().max()))
        same += int((la.argmax(0) == lb.argmax(0)).sum())
        total += la.shape[1] * la.shape[2]
    return Parity(worst, same / max(total, 1), len(images))


def random_images(n: int, size: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """Uniform noise images: they reach logits that real images do not."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]


def folder_images(folder: str | Path, limit: int, split: str | None = None) -> list[np.ndarray]:
    """Up to ``limit`` images of a prepared folder (``split``, default its first) or of a
    plain folder of image files, in name order."""
    folder = Path(folder)
    if (folder / "dataset.json").is_file():
        info = read_info(folder)
        splits = info.splits[info.default_split_set]
        ids = info.ids(split or next(iter(splits)))
        return [read_image(folder / "rgb" / f"{i}.png") for i in ids[:limit]]
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder}: no images in it")
    return [read_image(p) for p in files[:limit]]


def mean_iou(segmenter: Segmenter, data_root: str | Path, split: str = "test") -> float:
    """Standard-protocol mean IoU (%) of a segmenter on a prepared folder's split, in its
    own classes, as ``evaluate`` would score it."""
    result = score_segmenter(segmenter, data_root, Scoring(split), workers=0)
    return 100.0 * result["metrics"]["mean_iou"]
