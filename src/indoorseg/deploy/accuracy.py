"""How far two backends agree, and how well one scores on a labelled folder.

Used by ``export``: parity of an ONNX file with PyTorch (largest logit difference, share of
pixels with the same class), and the mean IoU of fp32 and int8 models on a prepared
folder, scored with the standard protocol (one confusion matrix, void ignored).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from indoorseg.data.prepared import read_info, read_label_png, read_rgb_png
from indoorseg.deploy.images import IMAGE_SUFFIXES, read_image
from indoorseg.deploy.segmenter import Segmenter
from indoorseg.errors import InputError
from indoorseg.evaluation import score_standard


@dataclass(frozen=True)
class Parity:
    """Attributes: max_logit_diff: the largest |a - b| over all logits; agreement: the
    share of pixels whose class is the same; images: how many were compared."""

    max_logit_diff: float
    agreement: float
    images: int

    def to_dict(self) -> dict:
        return {"max_logit_diff": self.max_logit_diff, "agreement": self.agreement,
                "images": self.images}  # fmt: skip


def parity(a: Segmenter, b: Segmenter, images: list[np.ndarray]) -> Parity:
    """Compare two segmenters' logits and classes on the same images."""
    worst, same, total = 0.0, 0, 0
    for image in images:
        la, lb = a.logits(image), b.logits(image)
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
        return [read_rgb_png(folder / "rgb" / f"{i}.png") for i in ids[:limit]]
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder}: no images in it")
    return [read_image(p) for p in files[:limit]]


def labelled_pairs(
    segmenter: Segmenter, data_root: str | Path, split: str
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(train-id label, predicted ids) for every image of a prepared folder's split."""
    root = Path(data_root)
    info = read_info(root)
    lut = torch.from_numpy(segmenter.card.scheme.lut(info.space()).astype(np.int64))
    for sample in info.ids(split):
        label = lut[
            torch.from_numpy(read_label_png(root / "label" / f"{sample}.png").astype(np.int64))
        ]
        pred = segmenter.predict(read_rgb_png(root / "rgb" / f"{sample}.png"))
        yield label[None], torch.from_numpy(pred.astype(np.int64))[None]


def mean_iou(
    segmenter: Segmenter, data_root: str | Path, split: str, on_step: Callable | None = None
) -> float:
    """Standard-protocol mean IoU (%) of a segmenter on a prepared folder's split."""
    pairs = labelled_pairs(segmenter, data_root, split)
    return 100.0 * score_standard(pairs, segmenter.card.scheme, on_step)["metrics"]["mean_iou"]
