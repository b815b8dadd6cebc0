"""Inference: the one path from a checkpoint to predictions, for images of any size.

``load_model`` rebuilds a network from a checkpoint (weights only, no pickle);
``predict_logits`` runs it on images of any size; ``predictions`` walks a loader of
(image, label) pairs. Evaluation, validation during training and every future use
(prediction on files, export) go through here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from indoorseg.checkpoint import ModelRecord, read_model
from indoorseg.errors import CheckpointError
from indoorseg.models import build_model
from indoorseg.runtime import Runtime

Normalization = tuple[list[float], list[float]]  # (mean, std) per channel, of 0..1 pixels


@dataclass
class LoadedModel:
    """A network rebuilt from a checkpoint, in eval mode on its runtime's device, with what
    the checkpoint says about it (``record.scheme``, ``record.normalization``...)."""

    model: nn.Module
    record: ModelRecord

    @property
    def path(self) -> Path:
        return self.record.path


def load_model(path: str | Path, runtime: Runtime, which: str = "best") -> LoadedModel:
    """Rebuild a model from a checkpoint file or a run folder (``which``: best or last)."""
    record = read_model(path, which)
    model = build_model(record.spec)
    misfit = weights_misfit(model.state_dict(), record.weights)
    if misfit:
        raise CheckpointError(f"{record.path}: its weights do not fit {record.spec.name} "
                              f"({misfit})")  # fmt: skip
    model.load_state_dict(record.weights, strict=True)
    return LoadedModel(runtime.prepare(model).eval(), record)


def weights_misfit(expected: dict, found: dict) -> str:
    """What keeps ``found`` tensors from loading into a model with ``expected`` ones, in a
    few words (torch's own message lists every tensor), or "" when they fit."""
    missing = [k for k in expected if k not in found]
    extra = [k for k in found if k not in expected]
    shapes = [
        k for k in expected if k in found and tuple(found[k].shape) != tuple(expected[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensors missing, e.g. {missing[0]}")
    if extra:
        parts.append(f"{len(extra)} unexpected, e.g. {extra[0]}")
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} of another shape, e.g. {k} {tuple(found[k].shape)} "
                     f"instead of {tuple(expected[k].shape)}")  # fmt: skip
    return "; ".join(parts)


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, runtime: Runtime, multiple: int = 32):
    """Logits at the input size for images of any size (padded to a multiple of 32).

    Shape: images (N, 3, H, W) -> logits (N, C, H, W) float32.
    """
    h, w = images.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    x = runtime.images(images)
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    with runtime.autocast():
        logits = model(x)
    return logits[..., :h, :w].float()


@torch.no_grad()
def predictions(
    model: nn.Module,
    loader: DataLoader,
    runtime: Runtime,
    crop: tuple[int, int] | None = None,
    regions: Normalization | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(label, predicted ids)`` per batch of whole images, on the CPU.

    Args:
        crop: score only the top-left ``(h, w)`` of each image (the paper's test script).
        regions: the (mean, std) the images were normalised with: when given, the
            probabilities are voted over regions of each image (``indoorseg.regions``).

    Shape: label, pred (B, H, W) int64.
    """
    model.eval()
    for x, y in loader:
        if crop is not None:
            x, y = x[..., : crop[0], : crop[1]], y[..., : crop[0], : crop[1]]
        logits = predict_logits(model, x, runtime).cpu()
        if regions is None:
            yield y, logits.argmax(1)
        else:
            yield y, voted(logits, pixels(x, regions)).argmax(1)


def pixels(images: torch.Tensor, normalization: Normalization) -> np.ndarray:
    """Normalised images back to their RGB bytes. Shape: (N, 3, H, W) -> (N, H, W, 3) uint8."""
    mean, std = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1) for v in normalization)
    rgb = (images.float().cpu() * std + mean) * 255
    return rgb.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def voted(logits: torch.Tensor, images: np.ndarray) -> torch.Tensor:
    """Softmax probabilities voted over regions of each image (``indoorseg.regions``).

    Shape: logits (N, C, H, W), images (N, H, W, 3) uint8 -> (N, C, H, W) float32.
    """
    from indoorseg.regions import region_vote  # scikit-image: only when asked for

    probs = torch.softmax(logits.float(), 1).numpy()
    voted = [region_vote(p, image) for p, image in zip(probs, images, strict=True)]
    return torch.from_numpy(np.stack(voted))
