"""The training dataset: a prepared folder seen through a class scheme.

Labels are turned into train ids by one lookup-table index (``lut[label]``); no one-hot
encoding happens anywhere, so the cost of a sample does not grow with the class count.

Augmentation is deterministic per ``(seed, epoch, index)``: a resumed run sees exactly
the samples the uninterrupted one would have, and workers need no RNG bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from indoorseg.classes import Scheme, load_scheme
from indoorseg.data.prepared import DatasetError, read_info, read_label_png
from indoorseg.images import IMAGENET, Normalization, normalize, read_image


@dataclass(frozen=True)
class TrainTransform:
    """Paired training transform: random scale, random crop padded with the ignore label,
    horizontal flip, and photometric changes of the image alone.

    Attributes:
        crop: (height, width) of the crop.
        scale: (min, max) of the random rescale factor; (1, 1) disables it.
        flip: random horizontal flip.
        color: strength of the photometric changes (``photometric``); 0 draws nothing, so
            runs without them are the same as before they existed.
    """

    crop: tuple[int, int] = (256, 256)
    scale: tuple[float, float] = (1.0, 1.0)
    flip: bool = True
    color: float = 0.0

    def __call__(
        self, image: np.ndarray, label: np.ndarray, ignore: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Shape: image (H, W, 3) uint8, label (H, W) -> (crop_h, crop_w, 3), (crop_h, crop_w)."""
        if self.scale != (1.0, 1.0):
            factor = rng.uniform(*self.scale)
            h, w = label.shape
            size = (max(1, round(w * factor)), max(1, round(h * factor)))
            image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
            # Nearest neighbour keeps labels valid class ids; mode I;16 keeps wide ids intact.
            label = np.asarray(
                Image.fromarray(label.astype(np.uint16)).resize(size, Image.NEAREST)
            ).astype(label.dtype)
        ch, cw = self.crop
        h, w = label.shape
        pad_h, pad_w = max(ch - h, 0), max(cw - w, 0)
        if pad_h or pad_w:
            image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)))
            label = np.pad(label, ((0, pad_h), (0, pad_w)), constant_values=ignore)
            h, w = label.shape
        top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        image = image[top : top + ch, left : left + cw]
        label = label[top : top + ch, left : left + cw]
        if self.flip and rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        if self.color > 0:
            image = photometric(image, self.color, rng)
        return image, label


def photometric(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and saturation each scaled by a factor in [1 - s, 1 + s], a
    gamma in [1 / (1 + s), 1 + s], the colour channels in a random order with probability
    s / 2, and grey with probability s / 4 (s = ``strength``): the rooms' look randomised,
    so that a model cannot lean on it. Every call draws the same numbers.

    Shape: (H, W, 3) uint8 -> (H, W, 3) uint8.
    """
    s = strength
    brightness, contrast, saturation = rng.uniform(1 - s, 1 + s, 3)
    gamma = float(np.exp(rng.uniform(-1, 1) * np.log1p(s)))
    order = rng.permutation(3)
    shuffle, grey = rng.random() < s / 2, rng.random() < s / 4
    x = image.astype(np.float32) * (brightness / 255)
    x = (x - x.mean()) * contrast + x.mean()
    luma = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    x = luma + (x - luma) * (0.0 if grey else saturation)
    x = np.clip(x, 0, 1) ** gamma
    if shuffle:
        x = x[..., order]
    return (x * 255 + 0.5).astype(np.uint8)


def to_tensor(image: np.ndarray, normalization: Normalization = IMAGENET) -> torch.Tensor:
    """(H, W, 3) uint8 -> normalised float (3, H, W): the network's input."""
    return normalize(torch.from_numpy(np.array(image)).permute(2, 0, 1), normalization)


class SegmentationDataset(Dataset):
    """(image, label) pairs of one split of a prepared folder, in a scheme's train ids.

    Args:
        root: prepared dataset folder.
        scheme: a ``Scheme`` or the name/path of one.
        split: ``train``, ``val`` or ``test``.
        split_set: ``official``, ``paper``... (default: the folder's default).
        transform: a ``TrainTransform``; ``None`` returns whole images (evaluation).
        seed: base of the per-sample augmentation RNG.
        normalization: (mean, std) per channel, as the model is trained with; None: the
            images come as they are, for a ``Segmenter`` to normalise (evaluation).

    Returns per item ``(image, label)``: float (3, H, W) normalised (or uint8 (H, W, 3) when
    ``normalization`` is None), int64 (H, W).
    """

    def __init__(
        self,
        root: str | Path,
        scheme: Scheme | str,
        split: str,
        split_set: str | None = None,
        transform: TrainTransform | None = None,
        seed: int = 0,
        normalization: Normalization | None = IMAGENET,
    ) -> None:
        self.root = Path(root)
        self.info = read_info(self.root)
        space = self.info.space()
        self.scheme = scheme if isinstance(scheme, Scheme) else load_scheme(scheme, space)
        self.lut = self.scheme.lut(space)
        self.split_set = split_set or self.info.default_split_set
        self.ids = list(self.info.ids(split, self.split_set))
        if not self.ids:
            raise DatasetError(f"{self.root}: split {split!r} is empty")
        self.transform = transform
        self.seed = seed
        self.normalization = normalization
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the augmentation stream; call before iterating each epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw image (H, W, 3) uint8 and its label in train ids (H, W)."""
        image = read_image(self.root / "rgb" / f"{self.ids[index]}.png", DatasetError)
        label = self.label(index)
        if label.shape != image.shape[:2]:
            raise DatasetError(
                f"{self.root / 'label' / self.ids[index]}.png: label is {label.shape[1]}x"
                f"{label.shape[0]}, its image is {image.shape[1]}x{image.shape[0]} (width x height)"
            )
        return image, label

    def label(self, index: int) -> np.ndarray:
        """The label of one image in train ids (H, W)."""
        path = self.root / "label" / f"{self.ids[index]}.png"
        raw = read_label_png(path)
        if raw.max(initial=0) >= len(self.lut):
            raise DatasetError(
                f"{path}: label {raw.max()} is beyond the {len(self.lut) - 1} classes of "
                f"{self.info.label_space}"
            )
        return self.lut[raw]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.load(index)
        if self.transform is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image, label = self.transform(image, label, self.scheme.ignore_index, rng)
        target = torch.from_numpy(np.ascontiguousarray(label).astype(np.int64))
        if self.normalization is None:
            return torch.from_numpy(np.array(image)), target
        return to_tensor(image, self.normalization), target


class EpochSampler(Sampler[int]):
    """A shuffled order fixed by ``(seed, epoch)``, optionally starting part-way.

    Resuming mid-epoch at batch ``k`` sets ``start = k * global_batch``: the remaining
    samples are exactly those the uninterrupted run would have seen. Among ``world``
    processes, global batch ``k`` is ``order[k * global_batch:][:global_batch]`` whatever
    the number of processes, and process ``rank`` takes its ``batch``-sized slice of it.
    """

    def __init__(
        self,
        size: int,
        seed: int = 0,
        shuffle: bool = True,
        batch: int = 1,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.batch, self.rank, self.world = batch, rank, world
        self.epoch, self.start = 0, 0

    @property
    def global_batch(self) -> int:
        return self.batch * self.world

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.size, generator=generator).tolist()

    def mine(self) -> list[int]:
        rest = self.order()[self.start :]
        if self.world == 1:
            return rest
        whole, ours = len(rest) // self.global_batch * self.global_batch, []
        for first in range(self.rank * self.batch, whole, self.global_batch):
            ours += rest[first : first + self.batch]
        return ours

    def __iter__(self):
        return iter(self.mine())

    def __len__(self) -> int:
        rest = max(self.size - self.start, 0)
        return rest if self.world == 1 else rest // self.global_batch * self.batch
