"""Images in and out of a network: the one image reader and the one normalisation.

``read_image`` turns any image file a person would open (PNG, JPEG, BMP, TIFF, WebP;
grayscale, palette, RGBA, 16-bit, EXIF-rotated) into the (H, W, 3) uint8 RGB they would
see; ``data import``, the prepared folders and ``predict`` all read through it.
``normalize`` is the one place where pixels become a network's input, for training crops
and for inference alike.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from indoorseg.errors import IndoorsegError, InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Normalization = tuple[tuple[float, float, float], tuple[float, float, float]]  # (mean, std)
IMAGENET: Normalization = (IMAGENET_MEAN, IMAGENET_STD)


def read_image(path: str | Path, error: type[IndoorsegError] = InputError) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB, upright (EXIF orientation applied).

    16-bit images are scaled to 8 bits by their full range (65535 -> 255); an alpha
    channel is dropped (the colour channels are kept as they are).

    Raises:
        error: missing, empty, truncated or not an image, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: not found")
    if path.stat().st_size == 0:
        raise error(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            img.load()
            return to_rgb(img)
    except UnidentifiedImageError:
        raise error(f"{path}: not a readable image (unknown format)") from None
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data
        raise error(f"{path}: not a readable image ({err})") from None


def to_rgb(img: Image.Image) -> np.ndarray:
    """A PIL image of any mode as (H, W, 3) uint8 RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(img).astype(np.float64)
        top = 65535.0 if array.max(initial=0) > 255 or img.mode.startswith("I;16") else 255.0
        return _gray_to_rgb(array * (255.0 / top))
    if img.mode == "F":
        array = np.asarray(img, dtype=np.float64)
        top = 1.0 if array.max(initial=0) <= 1.0 else 255.0
        return _gray_to_rgb(array * (255.0 / top))
    if img.mode == "RGB":
        return np.asarray(img)
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        img = img.convert("RGBA")
    return np.ascontiguousarray(np.asarray(img.convert("RGB")))


def _gray_to_rgb(values: np.ndarray) -> np.ndarray:
    gray = np.clip(np.round(values), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


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


def normalize(pixels: torch.Tensor, normalization: Normalization = IMAGENET) -> torch.Tensor:
    """RGB values in 0..255 (uint8 or float) -> the network's float32 input.

    Shape: (..., 3, H, W) -> the same, ``(pixels / 255 - mean) / std`` per channel.
    """
    mean, std = (torch.tensor(v, dtype=torch.float32).view(3, 1, 1) for v in normalization)
    return (pixels.float() / 255.0 - mean.to(pixels.device)) / std.to(pixels.device)


def normalization_problem(value) -> str | None:
    """What is wrong with a stored normalisation ``{"mean": [...], "std": [...]}``, naming
    the field, or None when it is three finite means and three positive finite deviations."""
    if not isinstance(value, dict):
        return f"normalization must be an object with mean and std, got {value!r}"
    for key, positive in (("mean", False), ("std", True)):
        numbers = value.get(key)
        ok = isinstance(numbers, list | tuple) and len(numbers) == 3
        ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers)
        ok = ok and all(math.isfinite(v) and (v > 0 or not positive) for v in numbers)
        if not ok:
            what = "positive finite numbers" if positive else "finite numbers"
            return f"normalization.{key} must be 3 {what}, got {numbers!r}"
    return None


def as_normalization(value: dict) -> Normalization:
    """A checked ``{"mean", "std"}`` object as a (mean, std) pair of float triples."""
    mean, std = (tuple(float(v) for v in value[key]) for key in ("mean", "std"))
    return mean, std
