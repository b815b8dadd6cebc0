"""Time per training epoch against the class count, for two label pipelines (Table 3).

``integer``: indoorseg's pipeline; a label becomes train ids by one table lookup and the
loss is ``cross_entropy`` on integer targets, whatever the class count.
``one-hot``: the paper's reference code (Semantic-Segmentation-Suite); each label crop is
one-hot encoded on the CPU by comparing its colours with every class colour, one class at
a time, and the loss takes the (C, H, W) float target.

Both run the same steps in one process, as the reference code did: a batch is loaded,
augmented and encoded (data time), then trained on (compute time). Medians over a few
steps give a step's cost; an epoch of ``images`` training images is that many steps.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from indoorseg.classes import WIDE_IGNORE_INDEX
from indoorseg.data.dataset import SegmentationDataset, TrainTransform
from indoorseg.data.prepared import read_info
from indoorseg.models import ModelSpec, build_model
from indoorseg.runtime import Runtime, make_runtime

PIPELINES = ("integer", "one-hot")
CLASS_COUNTS = (3, 40, 894)
SCHEMES = {3: "layout3", 40: "nyu40", 894: "nyu894"}
PAPER_EPOCH_IMAGES = 889  # the paper's training split


@dataclass(frozen=True)
class StepTime:
    """Median seconds of one training step's data and compute, for one setting."""

    classes: int
    pipeline: str
    batch_size: int
    crop: tuple[int, int]
    data_s: float
    compute_s: float
    steps: int

    def epoch_s(self, images: int = PAPER_EPOCH_IMAGES) -> dict[str, float]:
        """Data, compute and total seconds of an epoch of ``images`` training images."""
        steps = math.ceil(images / self.batch_size)
        data, compute = steps * self.data_s, steps * self.compute_s
        return {"data_s": data, "compute_s": compute, "total_s": data + compute}

    def to_dict(self) -> dict:
        return {**asdict(self), "crop": list(self.crop), "epoch": self.epoch_s()}


def class_colours(num_classes: int) -> np.ndarray:
    """A distinct RGB colour per class id, as a colour-coded label file would hold.

    Shape: (num_classes, 3) uint8.
    """
    codes = np.arange(1, num_classes + 1)  # black (0, 0, 0) is left to ignored pixels
    return np.stack([codes // 65536, codes // 256 % 256, codes % 256], 1).astype(np.uint8)


def one_hot_like_reference(label: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """The reference code's encoding of one label: colour it, then one boolean plane per
    class colour, as float32. Ignored pixels (no class) are all zero.

    Shape: label (H, W) train ids -> (num_classes, H, W) float32.
    """
    rgb = np.zeros((*label.shape, 3), np.uint8)
    known = label < len(colours)
    rgb[known] = colours[label[known]]
    planes = [np.all(np.equal(rgb, colour), axis=-1) for colour in colours]
    return np.stack(planes, axis=0).astype(np.float32)


class TimedLabels(Dataset):
    """A training dataset whose labels come as the pipeline gives them, for ``classes``
    model outputs. Without an nyu894 dataset, 894 classes are timed on nyu40 labels (the
    encoding costs the same whatever ids the labels hold)."""

    def __init__(self, data_root: Path, classes: int, pipeline: str, crop, seed: int = 0):
        space = read_info(data_root).label_space
        scheme = SCHEMES[classes] if classes != 894 or space == "nyu894" else "nyu40"
        transform = TrainTransform(tuple(crop), (1.0, 1.0), True)
        self.samples = SegmentationDataset(
            data_root, scheme, "train", transform=transform, seed=seed
        )
        self.ignore = self.samples.scheme.ignore_index
        self.ignore_index = WIDE_IGNORE_INDEX if classes > 255 else self.ignore  # of labels out
        self.classes, self.pipeline = classes, pipeline
        self.colours = class_colours(classes) if pipeline == "one-hot" else None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.samples[index]  # label: (H, W) int64 train ids
        if self.ignore != self.ignore_index:  # the nyu40 stand-in for 894 classes
            label = torch.where(label == self.ignore, self.ignore_index, label)
        if self.pipeline == "integer":
            return image, label
        return image, torch.from_numpy(one_hot_like_reference(label.numpy(), self.colours))


def loss_fn(pipeline: str, ignore_index: int) -> Callable:
    if pipeline == "integer":
        return lambda logits, y: F.cross_entropy(logits, y, ignore_index=ignore_index)
    return lambda logits, y: F.cross_entropy(logits, y)  # class probabilities as target


def time_steps(
    data_root: str | Path,
    model_name: str,
    classes: int,
    pipeline: str,
    runtime: Runtime,
    batch_size: int = 4,
    crop: tuple[int, int] = (256, 256),
    steps: int = 3,
    warmup: int = 1,
) -> StepTime:
    """Median data and compute time of ``steps`` training steps (after ``warmup``)."""
    dataset = TimedLabels(Path(data_root), classes, pipeline, crop)
    torch.manual_seed(0)
    model = runtime.prepare(build_model(ModelSpec(model_name, classes))).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_of = loss_fn(pipeline, dataset.ignore_index)
    data_times, compute_times = [], []
    for step in range(warmup + steps):
        start = time.perf_counter()
        batch = [dataset[(step * batch_size + i) % len(dataset)] for i in range(batch_size)]
        x, y = (torch.stack(parts) for parts in zip(*batch, strict=True))
        loaded = time.perf_counter()
        x, y = runtime.images(x), y.to(runtime.device)
        with runtime.autocast():
            logits = model(x)
        loss = loss_of(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()  # waits for the device
        if step >= warmup:
            data_times.append(loaded - start)
            compute_times.append(time.perf_counter() - loaded)
    data_s, compute_s = statistics.median(data_times), statistics.median(compute_times)
    return StepTime(classes, pipeline, batch_size, tuple(crop), data_s, compute_s, steps)


def training_speed(
    model_name: str,
    classes=(3, 40, 894),
    crop=(256, 256),
    batch_size: int = 4,
    steps: int = 2,
    say: Callable[[str], None] = lambda line: None,
) -> list[dict]:
    """Training images/s (data and compute, integer labels) at each class count, on
    rendered rooms; the class count changes only the last layer and the loss."""
    from indoorseg.data.synthetic.folder import synthesize  # only when asked for

    runtime = make_runtime("auto", amp="off", channels_last="off")
    rows = []
    with tempfile.TemporaryDirectory(prefix="indoorseg-bench-train-") as tmp:
        root = synthesize(Path(tmp) / "rooms", 8, size=(256, 320), seed=0, workers=1)
        for count in classes:
            step = time_steps(
                root, model_name, count, "integer", runtime, batch_size, tuple(crop), steps
            )
            per_s = batch_size / (step.data_s + step.compute_s)
            say(f"training {count} classes: {per_s:.2f} images/s")
            rows.append(
                {
                    "classes": count,
                    "images_per_s": per_s,
                    "data_s": step.data_s,
                    "compute_s": step.compute_s,
                    "batch_size": batch_size,
                    "crop": list(crop),
                    "device": str(runtime.device),
                }
            )
    return rows
