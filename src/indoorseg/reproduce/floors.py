"""Trivial predictors that any model must beat, scored like the models.

``all CLASS``: every pixel one class (the training set's majority class among them).
``per-pixel prior``: at each pixel position, the class most often there in the training
labels (a 'room layout' prior: ceiling on top, floor below), resized to each image.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from indoorseg.classes import Scheme
from indoorseg.data.dataset import SegmentationDataset
from indoorseg.evaluation import SCORERS, scored_classes

PRIOR_SIZE = (120, 160)  # (H, W) the prior is counted at


def pixel_prior(dataset: SegmentationDataset, size: tuple[int, int] = PRIOR_SIZE) -> np.ndarray:
    """Counts of each scored class at each pixel position, labels resized to ``size``.

    Shape: (num_classes, H, W) int64; void and ignored pixels are not counted.
    """
    scheme = dataset.scheme
    counts = np.zeros((scheme.num_classes, *size), np.int64)
    for index in range(len(dataset)):
        label = dataset.label(index)
        small = resize_nearest(label, size)
        for c in scored_classes(scheme):
            counts[c] += small == c
    return counts


def resize_nearest(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A label map resized to ``size`` (H, W) by nearest neighbour."""
    image = Image.fromarray(label.astype(np.uint16))
    return np.asarray(image.resize((size[1], size[0]), Image.NEAREST)).astype(label.dtype)


def floor_maps(prior: np.ndarray, scheme: Scheme) -> dict[str, np.ndarray]:
    """Name -> predicted train-id map (at the prior's size) of every floor."""
    totals = prior.sum((1, 2))
    majority = int(np.argmax(totals))
    maps = {}
    for c in scored_classes(scheme):
        name = f"all {scheme.class_names[c]}" + (" (majority)" if c == majority else "")
        maps[name] = np.full(prior.shape[1:], c, np.int64)
    maps["per-pixel prior"] = prior.argmax(0).astype(np.int64)
    return maps


def score_floors(maps: dict[str, np.ndarray], dataset: SegmentationDataset) -> dict:
    """``{floor: {protocol: scores}}`` of each floor on every image of ``dataset``."""
    labels = [torch.from_numpy(dataset.label(i).astype(np.int64)) for i in range(len(dataset))]
    scores = {}
    for name, small in maps.items():
        pairs = [
            (y[None], torch.from_numpy(resize_nearest(small, tuple(y.shape)))[None]) for y in labels
        ]
        scores[name] = {p: scorer(pairs, dataset.scheme) for p, scorer in SCORERS.items()}
    return scores


def floors_for(
    train: SegmentationDataset, scored: dict[str, SegmentationDataset]
) -> dict[str, dict]:
    """Floors from ``train``'s labels, scored on each named dataset."""
    maps = floor_maps(pixel_prior(train), train.scheme)
    return {name: score_floors(maps, dataset) for name, dataset in scored.items()}
