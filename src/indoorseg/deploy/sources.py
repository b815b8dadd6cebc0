"""What ``predict`` reads: files, folders and globs expanded to images and videos, and the
frames of a video. Images are read by ``indoorseg.images.read_image``."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indoorseg.errors import InputError
from indoorseg.images import IMAGE_SUFFIXES

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


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
