"""``Segmenter``: a trained model ready for images, on the backend that runs it fastest.

    from indoorseg.deploy import Segmenter
    seg = Segmenter.load("runs/demo/runs/layout3-default-seed0")   # or a .safetensors / .onnx
    labels = seg.predict(rgb)                                      # (H, W) class ids
    labels, probs = seg.predict(rgb, probabilities=True)           # + (C, H, W) float32
    seg = Segmenter.load(path, regions=True)   # probabilities voted over image regions
    seg = Segmenter.load(path, scales=(1, 0.5), regions=True)  # at two sizes, then voted
    seg.class_names, seg.colors

Every backend gets the same input (normalised, padded to a multiple of 32 by repeating the
border, or resized to an exported model's fixed size) and returns logits that are cut or
resized back to the image's own size, so the labels are the same from each.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from indoorseg.classes import Scheme, scheme_from_dict
from indoorseg.deploy.backends import BACKENDS, Backend, ModelInfo, open_backend
from indoorseg.errors import InputError, UsageError
from indoorseg.inference import averaged_over_scales, check_scales

MULTIPLE = 32  # the networks' total stride: inputs are padded to a multiple of it


@dataclass(frozen=True)
class ModelCard:
    """What comes with a model: its classes and colours, and how to feed it.

    Attributes:
        input_size: (H, W) an exported model was fixed to; None: any multiple of 32.
        precision: ``fp32`` or ``int8``.
    """

    model: dict
    scheme: Scheme
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: tuple[int, int] | None = None
    precision: str = "fp32"


class Segmenter:
    """A model and a backend; ``predict`` maps an RGB image to class ids at its own size.

    Args:
        max_side: images whose longer side is larger are scaled down to it for the network
            (the labels still come back at full size); None: never.
        regions: vote the probabilities over regions of each image (``indoorseg.regions``):
            cleaner masks on real photos, at about a second more for 480x640 on 2 cores.
        scales: sizes to run the network at, relative to the image's (after ``max_side``);
            their probabilities are averaged. Fixed-size exported models take one scale.
    """

    def __init__(
        self,
        backend: Backend,
        card: ModelCard,
        max_side: int | None = 1280,
        regions: bool = False,
        scales: tuple[float, ...] = (1.0,),
    ) -> None:
        scales = check_scales(tuple(scales))
        if scales != (1.0,) and card.input_size is not None:
            raise UsageError(
                f"this model was exported for {card.input_size[0]}x{card.input_size[1]} "
                "images only: it runs at one scale (export it with --dynamic for more)"
            )
        self.backend, self.card, self.max_side = backend, card, max_side
        self.regions, self.scales = regions, scales

    @classmethod
    def load(
        cls,
        path: str | Path,
        backend: str = "auto",
        device: str = "cpu",
        threads: int | None = None,
        max_side: int | None = 1280,
        regions: bool = False,
        scales: tuple[float, ...] = (1.0,),
    ) -> Segmenter:
        """A run folder (its best checkpoint), a checkpoint or an exported ``.onnx``.

        ``backend``: ``torch`` (checkpoints), ``onnxruntime`` or ``openvino`` (``.onnx``;
        or a checkpoint, exported in memory first), ``auto``: the fastest that ``benchmark``
        measured for this model on this machine, else onnxruntime for ``.onnx`` files and
        torch for checkpoints.
        """
        if backend != "auto" and backend not in BACKENDS:
            raise UsageError(
                f"backend must be auto or one of {', '.join(BACKENDS)}, got {backend!r}"
            )
        opened, info = open_backend(Path(path), backend, device, threads)
        return cls(opened, card_from(info), max_side, regions, scales)

    @property
    def class_names(self) -> list[str]:
        return self.card.scheme.class_names

    @property
    def colors(self) -> list[tuple[int, int, int]]:
        return self.card.scheme.colors

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def predict(self, image: np.ndarray, probabilities: bool = False):
        """Class ids (H, W) uint8 (uint16 past 255 classes) for an (H, W, 3) uint8 RGB image
        (or (H, W) grayscale); with ``probabilities`` also the softmax (C, H, W) float32."""
        image = as_rgb(image)
        h, w = image.shape[:2]
        probs = None
        if self.scales == (1.0,) and not self.regions:
            scores = self.logits(image).numpy()
        else:
            x = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None]
            probs = averaged_over_scales(self._logits_of_batch, x, self.scales)[0].numpy()
            if self.regions:
                from indoorseg.regions import region_vote  # scikit-image: only when asked for

                probs = region_vote(probs, image)
            scores = probs
        # numpy's argmax over the class axis: torch's took 50 ms on a 3x480x640 CPU tensor
        dtype = np.uint8 if scores.shape[0] <= 256 else np.uint16
        labels = scores.argmax(0).astype(dtype)
        assert labels.shape == (h, w)
        if probabilities and probs is None:
            probs = torch.softmax(torch.from_numpy(scores), 0).numpy()
        return (labels, probs) if probabilities else labels

    def _logits_of_batch(self, x: torch.Tensor) -> torch.Tensor:
        """``logits`` of a batch of one (1, 3, H, W) float image. Shape: -> (1, C, H, W)."""
        return self.logits(x[0].permute(1, 2, 0).numpy())[None]

    def logits(self, image: np.ndarray) -> torch.Tensor:
        """(C, H, W) float32 logits at the image's size."""
        h, w = image.shape[:2]
        x, (sh, sw) = self.network_input(image)
        out = torch.from_numpy(np.asarray(self.backend(x), dtype=np.float32))
        out = out[..., :sh, :sw]
        if (sh, sw) != (h, w):
            out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
        return out[0]

    def network_input(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """The (1, 3, H', W') float32 batch the network gets for an RGB image, and the
        (h, w) of the image inside it (the rest is padding)."""
        h, w = image.shape[:2]
        x = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None]
        size = self.card.input_size or network_size(h, w, self.max_side)
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        mean = torch.tensor(self.card.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.card.std).view(1, 3, 1, 1)
        x = (x / 255.0 - mean) / std
        pad_h, pad_w = (-size[0]) % MULTIPLE, (-size[1]) % MULTIPLE
        if self.card.input_size is None and (pad_h or pad_w):
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return x.numpy(), tuple(size)


def network_size(h: int, w: int, max_side: int | None) -> tuple[int, int]:
    """The size the network sees: the image's, scaled down to ``max_side`` if larger."""
    if max_side is None or max(h, w) <= max_side:
        return h, w
    scale = max_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 from (H, W) or (H, W, 3|4) uint8 arrays; anything else is refused."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise InputError(f"image must be uint8 RGB, got dtype {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image[..., :3]
    raise InputError(f"image must be (H, W, 3) RGB, got shape {image.shape}")


def card_from(info: ModelInfo) -> ModelCard:
    """The card of a model from what its checkpoint or ONNX metadata says."""
    norm = info.meta["normalization"]
    size = info.meta.get("input_size")
    return ModelCard(
        model=dict(info.meta["model"]),
        scheme=scheme_from_dict(info.meta["scheme"], f"{info.path} scheme"),
        mean=tuple(norm["mean"]),
        std=tuple(norm["std"]),
        input_size=tuple(size) if size else None,
        precision=info.meta.get("precision", "fp32"),
    )
