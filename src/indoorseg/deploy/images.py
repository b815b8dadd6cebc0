"""What ``predict`` reads: images of any kind as RGB arrays, and inputs expanded to files.

An image may be grayscale, palette, RGBA, 16-bit or EXIF-rotated: it comes back as the
(H, W, 3) uint8 RGB a person would see. A file that is not a readable image raises an
``InputError`` naming it and the reason.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from indoorseg.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def read_image(path: str | Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB, upright (EXIF orientation applied).

    16-bit images are scaled to 8 bits by their full range (65535 -> 255); an alpha
    channel is dropped (composited over nothing: the colour channels are kept).

    Raises:
        InputError: missing, empty, truncated or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            img.load()
            return to_rgb(img)
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image (unknown format)") from None
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data
        raise InputError(f"{path}: unreadable image ({err})") from None


def to_rgb(img: Image.Image) -> np.ndarray:
    """A PIL image of any mode as (H, W, 3) uint8 RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(img).astype(np.float64)
        top = 65535.0 if array.max(initial=0) > 255 or img.mode.startswith("I;16") else 255.0
        gray = np.clip(np.round(array * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "F":
        array = np.asarray(img, dtype=np.float64)
        top = 1.0 if array.max(initial=0) <= 1.0 else 255.0
        gray = np.clip(np.round(array * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "RGB":
        return np.asarray(img)
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        img = img.convert("RGBA")
    return np.ascontiguousarray(np.asarray(img.convert("RGB")))


@dataclass(frozen=True)
class Source:
    """One input of ``predict``: an image or a video file; ``name`` is unique per call."""

    path: Path
    kind: str  # "image" | "video"
    name: str


def expand_inputs(inputs: list[str]) -> tuple[list[Source], list[str]]:
    """Files, folders (their images and videos, sorted, not recursive) and globs -> sources.

    Returns:
        (sources, problems): an input that matches nothing is a problem, not an exception,
        so that the other inputs still run.
    """
    found: list[Path] = []
    problems = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and _kind(p))
            if not inside:
                problems.append(f"{path}: a folder with no images or videos in it")
            found += inside
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(raw):
            matches = sorted(Path(p) for p in glob.glob(raw) if Path(p).is_file())
            if not matches:
                problems.append(f"{raw}: matches no file")
            found += matches
        else:
            problems.append(f"{path}: no such file or folder")
    return unique_names(found), problems


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return "image" if suffix in IMAGE_SUFFIXES else None


def unique_names(paths: list[Path]) -> list[Source]:
    """Sources named by file stem, with ``-2``, ``-3``... where two stems are the same."""
    seen: dict[str, int] = {}
    sources = []
    for path in dict.fromkeys(paths):  # the same file twice is predicted once
        stem = path.stem
        seen[stem] = seen.get(stem, 0) + 1
        name = stem if seen[stem] == 1 else f"{stem}-{seen[stem]}"
        sources.append(Source(path, _kind(path) or "image", name))
    return sources


def read_video(path: Path) -> Iterator[np.ndarray]:
    """Frames of a video as (H, W, 3) uint8 RGB (OpenCV)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(f"{path}: not a readable video")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def video_info(path: Path) -> tuple[int, float]:
    """(frame count, frames per second) of a video, as its header says (0 when unknown)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise InputError(f"{path}: not a readable video")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        return max(count, 0), float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        capture.release()
