"""Region voting: a model's class probabilities averaged over regions of the image.

A model trained on synthetic rooms labels real photos in speckles: patches of a wall
called object, half a cabinet called background. Regions where the image itself is
uniform (Felzenszwalb and Huttenlocher's graph segmentation) mostly belong to one class,
so each pixel takes the average probability of its region; segmentations at several
scales are averaged, so that no single choice of region size decides. The scales were
chosen on synthetic rooms rendered at NYU's 480x640 (see docs/synthetic-to-real.md);
``regions`` adapts them to other sizes.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from skimage.segmentation import felzenszwalb

REGION_SCALES = (100, 200, 400, 800)  # Felzenszwalb's k for a 480x640 image
REFERENCE_AREA = 480 * 640
MIN_REGION = 50  # pixels at 480x640
SIGMA = 0.8  # Gaussian smoothing before segmenting, pixels
KEPT = 32  # segmentations remembered: the same images are voted again for every model
# and scoring `reproduce` runs (8 real images x 4 scales), each segmentation ~1 s at 480x640
_kept: OrderedDict[tuple, np.ndarray] = OrderedDict()
_kept_lock = threading.Lock()


def regions(image: np.ndarray, scale: float) -> np.ndarray:
    """Region ids (H, W) int of an (H, W, 3) uint8 RGB image; ``scale`` is Felzenszwalb's
    k for a 480x640 image.

    For other sizes k and the smoothing go with the image's side, the smallest region with
    its area: the same room rendered at 240x320 and 480x640 then falls into about as many
    regions (k scaled with the area splits the smaller one twice as finely).
    """
    side = (image.shape[0] * image.shape[1] / REFERENCE_AREA) ** 0.5
    return felzenszwalb(
        image,
        scale=scale * side,
        sigma=SIGMA * side,
        min_size=max(2, round(MIN_REGION * side * side)),
    )


def region_vote(
    probabilities: np.ndarray, image: np.ndarray, scales: tuple[float, ...] = REGION_SCALES
) -> np.ndarray:
    """Each pixel's class probabilities replaced by their mean over its region, averaged
    over the segmentations at ``scales``.

    Shape:
        probabilities (C, H, W), image (H, W, 3) uint8 -> (C, H, W) float32.
    """
    if probabilities.shape[1:] != image.shape[:2]:
        raise ValueError(
            f"probabilities {probabilities.shape[1:]} and image {image.shape[:2]} differ in size"
        )
    channels = probabilities.reshape(len(probabilities), -1).astype(np.float64)
    voted = np.zeros_like(channels)
    # the segmentations are independent and mostly outside the GIL: 1.8 s -> 1.0 s for
    # four at 480x640 on two cores
    digest = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).digest()
    with ThreadPoolExecutor(min(len(scales), os.cpu_count() or 1)) as pool:
        segmentations = list(pool.map(lambda scale: _remembered(image, digest, scale), scales))
    for segmentation in segmentations:
        ids = segmentation.ravel()
        size = np.bincount(ids)
        for c, p in enumerate(channels):
            voted[c] += (np.bincount(ids, weights=p, minlength=len(size)) / size)[ids]
    return (voted / len(scales)).reshape(probabilities.shape).astype(np.float32)


def _remembered(image: np.ndarray, digest: bytes, scale: float) -> np.ndarray:
    """``regions(image, scale)``, computed once for the last ``KEPT`` (image, scale) pairs;
    ``digest`` identifies the image's bytes."""
    key = (digest, image.shape, image.dtype.str, scale)
    with _kept_lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    segmentation = regions(image, scale).astype(np.int32)
    segmentation.flags.writeable = False  # shared by every caller
    with _kept_lock:
        _kept[key] = segmentation
        while len(_kept) > KEPT:
            _kept.popitem(last=False)
    return segmentation
