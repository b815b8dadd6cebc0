"""Inference: the one path from a checkpoint to predictions, for images of any size.

``load_model`` rebuilds a network from a checkpoint (weights only, no pickle);
``predict_logits`` runs it on images of any size; ``predictions`` walks a loader of
(image, label) pairs. Evaluation, validation during training and every future use
(prediction on files, export) go through here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from indoorseg.checkpoint import ModelRecord, read_model
from indoorseg.errors import CheckpointError, UsageError
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
    scales: tuple[float, ...] = (1.0,),
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(label, predicted ids)`` per batch of whole images, on the CPU.

    Args:
        crop: score only the top-left ``(h, w)`` of each image (the paper's test script).
        regions: the (mean, std) the images were normalised with: when given, the
            probabilities are voted over regions of each image (``indoorseg.regions``).
        scales: the image sizes to run the network at, relative to the image's own; their
            probabilities are averaged.

    Shape: label, pred (B, H, W) int64.
    """
    model.eval()
    for x, y in loader:
        if crop is not None:
            x, y = x[..., : crop[0], : crop[1]], y[..., : crop[0], : crop[1]]
        if regions is None and tuple(scales) == (1.0,):
            yield y, predict_logits(model, x, runtime).argmax(1).cpu()
            continue
        probs = multiscale_probabilities(model, x, runtime, scales)
        if regions is not None:
            probs = voted(probs, pixels(x, regions))
        yield y, probs.argmax(1)


@torch.no_grad()
def multiscale_probabilities(
    model: nn.Module, images: torch.Tensor, runtime: Runtime, scales: tuple[float, ...]
) -> torch.Tensor:
    """``averaged_over_scales`` of a model, on the CPU.

    Shape: images (N, 3, H, W) -> (N, C, H, W) float32.
    """
    return averaged_over_scales(lambda x: predict_logits(model, x, runtime).cpu(), images, scales)


def averaged_over_scales(
    run: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, scales: tuple[float, ...]
) -> torch.Tensor:
    """Softmax probabilities averaged over ``run`` (images -> logits at their size) on the
    images resized by each of ``scales`` (antialiased), the answers resized back.

    Shape: images (N, 3, H, W) -> (N, C, H, W) float32.
    """
    h, w = images.shape[-2:]
    total = None
    for scale in scales:
        x = images
        if scale != 1:
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            x = F.interpolate(images, size=size, mode="bilinear", antialias=True)
        logits = run(x)
        if scale != 1:
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        probs = torch.softmax(logits, 1)
        total = probs if total is None else total + probs
    return total / len(scales)


def parse_scales(text: str) -> tuple[float, ...]:
    """``"1,0.5"`` -> ``(1.0, 0.5)``, checked by ``check_scales``."""
    try:
        scales = tuple(float(part) for part in text.split(","))
    except ValueError:
        scales = ()
    return check_scales(scales, text)


def check_scales(scales: tuple[float, ...], given: str | None = None) -> tuple[float, ...]:
    """Image sizes to run a network at, relative to the image's own: each above 0 and at
    most 4. ``given``: how the user wrote them, for the message."""
    if not scales or not all(0 < scale <= 4 for scale in scales):
        shown = repr(given) if given is not None else repr(scales)
        raise UsageError(
            f"scales must be numbers in (0, 4] separated by commas, such as 1,0.5; got {shown}"
        )
    return tuple(float(scale) for scale in scales)


def pixels(images: torch.Tensor, normalization: Normalization) -> np.ndarray:
    """Normalised images back to their RGB bytes. Shape: (N, 3, H, W) -> (N, H, W, 3) uint8."""
    mean, std = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1) for v in normalization)
    rgb = (images.float().cpu() * std + mean) * 255
    return rgb.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def voted(probabilities: torch.Tensor, images: np.ndarray) -> torch.Tensor:
    """Probabilities voted over regions of each image (``indoorseg.regions``).

    Shape: probabilities (N, C, H, W), images (N, H, W, 3) uint8 -> (N, C, H, W) float32.
    """
    from indoorseg.regions import region_vote  # scikit-image: only when asked for

    probs = probabilities.float().numpy()
    voted = [region_vote(p, image) for p, image in zip(probs, images, strict=True)]
    return torch.from_numpy(np.stack(voted))
