"""Inference: the one path from a model to class ids, for images of any size.

    from indoorseg.inference import Segmenter    # also indoorseg.deploy.Segmenter
    seg = Segmenter.load("runs/demo/runs/layout3-default-seed0")   # or a .safetensors / .onnx
    labels = seg.predict(rgb)                                      # (H, W) class ids
    labels, probs = seg.predict(rgb, probabilities=True)           # + (C, H, W) float32
    seg = Segmenter.load(path, regions=True)   # probabilities voted over image regions
    seg = Segmenter.load(path, scales=(1, 0.5), regions=True)  # at two sizes, then voted

``predict``, ``evaluate``, validation during training, ``export``'s checks, ``benchmark``
and the report's sample pictures all go through ``Segmenter``: an RGB image is resized (to
``max_side``, a scale, or an exported model's fixed size), normalised
(``indoorseg.images.normalize``) and padded to a multiple of 32 by repeating its border;
the backend's logits are cut and resized back to the image's own size. So every backend
and every use gets the same labels for the same image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from indoorseg.backends import Backend, Options, choose_backend, open_backend, open_model_file
from indoorseg.classes import Scheme, scheme_from_dict
from indoorseg.errors import UsageError
from indoorseg.images import Normalization, as_normalization, as_rgb, normalize

MULTIPLE = 32  # the networks' total stride: inputs are padded to a multiple of it
DEFAULT_MAX_SIDE = 1280  # larger images are run smaller unless the model says otherwise


@dataclass(frozen=True)
class ModelCard:
    """What comes with a model: its classes and colours, and how to feed it.

    Attributes:
        path: the model file (a checkpoint or an ``.onnx``).
        model: the model spec (``name``, ``num_classes``...).
        input_size: (H, W) an exported model was fixed to; None: any size.
        precision: the model file's: ``fp32`` or ``int8``.
        train_data: the data section of the training config (crop, split_set...); ``{}``
            when the file does not say.
        inference: how the model is run unless told otherwise: ``side`` (the longer side
            images are scaled down to for the network; 0: their own) and ``regions``.
    """

    path: Path
    model: dict
    scheme: Scheme
    normalization: Normalization
    input_size: tuple[int, int] | None = None
    precision: str = "fp32"
    train_data: dict | None = None
    inference: dict | None = None


def card_from(meta: dict, path: Path) -> ModelCard:
    """The card of a model from what its checkpoint or ONNX metadata says."""
    size = meta.get("input_size")
    return ModelCard(
        path=Path(path),
        model=dict(meta["model"]),
        scheme=scheme_from_dict(meta["scheme"], f"{path} scheme"),
        normalization=as_normalization(meta["normalization"]),
        input_size=tuple(size) if size else None,
        precision=meta.get("precision", "fp32"),
        train_data=dict(meta.get("train_data") or {}),
        inference=dict(meta.get("inference") or {}),
    )


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
            h, w = card.input_size
            raise UsageError(
                f"this model was exported for {h}x{w} images only: it runs at one scale "
                "(export it with dynamic=True for more)"
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
        max_side: int | None | str = "model",
        regions: bool | None = None,
        scales: tuple[float, ...] = (1.0,),
    ) -> Segmenter:
        """A run folder (its best checkpoint), a checkpoint or an exported ``.onnx``.

        ``backend``: a name of ``indoorseg.backends.BACKENDS`` (``torch``, ``onnxruntime``,
        ``openvino``...), or ``auto``: the fastest that ``benchmark`` measured and checked
        for this model on this machine, else onnxruntime for ``.onnx`` files and torch for
        checkpoints. ``max_side="model"`` and ``regions=None``: as the model's recipe says
        (``model.inference_side``, else 1280; ``model.inference_regions``).
        """
        model = open_model_file(path)
        name = choose_backend(model, backend)
        opened, model = open_backend(model, name, Options(device, threads))
        card = card_from(model.meta, model.path)
        if max_side == "model":
            max_side = card.inference.get("side") or DEFAULT_MAX_SIDE
        if regions is None:
            regions = bool(card.inference.get("regions"))
        return cls(opened, card, max_side, regions, scales)

    @property
    def class_names(self) -> list[str]:
        return self.card.scheme.class_names

    @property
    def colors(self) -> list[tuple[int, int, int]]:
        return self.card.scheme.colors

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def precision(self) -> str:
        """The precision that runs: the backend's (``fp32``, ``bf16``, ``int8``...)."""
        return self.backend.precision

    def predict(self, image: np.ndarray, probabilities: bool = False):
        """Class ids (H, W) uint8 (uint16 past 255 classes) for an (H, W, 3) uint8 RGB image
        (or (H, W) grayscale); with ``probabilities`` also the softmax (C, H, W) float32."""
        image = as_rgb(image)
        probs = None
        if self.scales == (1.0,) and not self.regions:
            scores = self.logits(image)
            if probabilities:
                probs = torch.softmax(scores, 0).cpu().numpy()
        else:
            scores = probs = self.probabilities(image)
        labels = argmax(scores)
        return (labels, probs) if probabilities else labels

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """Softmax probabilities averaged over the scales, voted over regions if asked.

        Shape: (H, W, 3) uint8 -> (C, H, W) float32.
        """
        image = as_rgb(image)
        total = None
        for scale in self.scales:
            probs = torch.softmax(self.logits(image, scale), 0)
            total = probs if total is None else total + probs
        probs = (total / len(self.scales)).cpu().numpy()
        if self.regions:
            from indoorseg.regions import region_vote  # scikit-image: only when asked for

            probs = region_vote(probs, image)
        return probs

    def logits(self, image: np.ndarray, scale: float = 1.0) -> torch.Tensor:
        """(C, H, W) float32 logits at the image's size, the network run at ``scale`` of
        its size (after ``max_side``), on the backend's device."""
        h, w = image.shape[:2]
        x, (sh, sw) = self.network_input(image, scale)
        out = self.backend(x)[..., :sh, :sw]
        if (sh, sw) != (h, w):
            out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
        return out[0]

    def network_input(self, image: np.ndarray, scale: float = 1.0):
        """The (1, 3, H', W') float32 batch the network gets for an RGB image, and the
        (h, w) of the image inside it (the rest is padding)."""
        h, w = image.shape[:2]
        size = self.card.input_size or scaled(network_size(h, w, self.max_side), scale)
        x = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None]
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        x = normalize(x, self.card.normalization)
        pad_h, pad_w = (-size[0]) % MULTIPLE, (-size[1]) % MULTIPLE
        if self.card.input_size is None and (pad_h or pad_w):
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return x, tuple(size)


def argmax(scores: torch.Tensor | np.ndarray) -> np.ndarray:
    """Class ids (H, W) of (C, H, W) scores: uint8, or uint16 past 256 classes."""
    dtype = np.uint8 if scores.shape[0] <= 256 else np.uint16
    if isinstance(scores, torch.Tensor):
        if scores.device.type != "cpu":
            return scores.argmax(0).cpu().numpy().astype(dtype)
        scores = scores.numpy()
    # numpy's argmax over the class axis: torch's took 50 ms on a 3x480x640 CPU tensor
    return scores.argmax(0).astype(dtype)


def network_size(h: int, w: int, max_side: int | None) -> tuple[int, int]:
    """The size the network sees: the image's, scaled down to ``max_side`` if larger."""
    if max_side is None or max(h, w) <= max_side:
        return h, w
    return scaled((h, w), max_side / max(h, w))


def scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    if scale == 1:
        return size
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


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
