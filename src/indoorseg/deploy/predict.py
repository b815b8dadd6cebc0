"""``predict``: masks for image files, folders, globs and videos, written for people and code.

Per image NAME: ``NAME.labels.png`` (class ids), ``NAME.mask.png`` (class colours),
``NAME.overlay.jpg`` (the photo with the colours blended in) and ``NAME.json`` (size,
model, backend, milliseconds, the share of pixels of each class). Per video:
``NAME.overlay.mp4`` and ``NAME.json`` (frames, frames/s, the shares over all frames).
A file that cannot be read is reported with its reason and skipped; every file is written
under a temporary name and renamed, so nothing half-written is left.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from indoorseg.classes import colorize, overlay
from indoorseg.deploy.sources import Source, read_video, video_info
from indoorseg.errors import InputError
from indoorseg.files import atomic_path, atomic_write_text
from indoorseg.images import read_image
from indoorseg.inference import Segmenter


@dataclass
class PredictSummary:
    """What a ``predict`` call did: files written per input, and the inputs that failed."""

    written: dict[str, list[Path]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # input path -> why, naming it


def class_shares(labels: np.ndarray, names: list[str]) -> dict[str, float]:
    """The share of pixels of each class (they sum to 1)."""
    counts = np.bincount(labels.ravel(), minlength=len(names))[: len(names)]
    return {name: float(c) / max(labels.size, 1) for name, c in zip(names, counts, strict=True)}


def predict_sources(
    seg: Segmenter,
    sources: list[Source],
    out_dir: str | Path,
    on_frame: Callable[[str, int, int | None], None] | None = None,
) -> PredictSummary:
    """Predict every source into ``out_dir``; failures are collected, not raised.

    Args:
        on_frame: ``(name, done, total)`` after each image or video frame, for progress.
    """
    out_dir = Path(out_dir)
    made = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = PredictSummary()
    for source in sources:
        try:
            if source.kind == "video":
                files = predict_video(seg, source, out_dir, on_frame)
            else:
                files = predict_image(seg, source, out_dir)
                if on_frame:
                    on_frame(source.name, 1, 1)
            summary.written[str(source.path)] = files
        except InputError as err:
            summary.failed[str(source.path)] = err.message
    if made and not summary.written and not any(out_dir.iterdir()):
        out_dir.rmdir()  # nothing to show: no empty folder left behind
    return summary


def predict_image(seg: Segmenter, source: Source, out_dir: Path) -> list[Path]:
    """The four files of one image."""
    image = read_image(source.path)
    start = time.perf_counter()
    labels = seg.predict(image)
    ms = 1000 * (time.perf_counter() - start)
    files = [
        _save(Image.fromarray(labels), out_dir / f"{source.name}.labels.png"),
        _save(
            Image.fromarray(colorize(labels, seg.card.scheme)), out_dir / f"{source.name}.mask.png"
        ),
        _save(
            Image.fromarray(overlay(image, labels, seg.card.scheme)),
            out_dir / f"{source.name}.overlay.jpg",
            quality=90,
        ),
    ]
    record = _record(seg, source, image.shape[:2], class_shares(labels, seg.class_names))
    record["milliseconds"] = round(ms, 1)
    files.append(_write_json(out_dir / f"{source.name}.json", record))
    return files


def predict_video(seg: Segmenter, source: Source, out_dir: Path, on_frame=None) -> list[Path]:
    """An overlay video and a JSON summary of one video (mp4v codec, the input's rate)."""
    import cv2

    total, fps = video_info(source.path)
    path = out_dir / f"{source.name}.overlay.mp4"
    counts, frames, seconds = None, 0, 0.0
    # OpenCV picks the container from the file name, so the temporary name ends in .mp4
    tmp = path.with_name(f".{path.stem}.partial.mp4")
    writer = None
    try:
        for frame in read_video(source.path):
            start = time.perf_counter()
            labels = seg.predict(frame)
            seconds += time.perf_counter() - start
            if writer is None:
                writer = _video_writer(tmp, fps, frame.shape[:2])
            writer.write(cv2.cvtColor(overlay(frame, labels, seg.card.scheme), cv2.COLOR_RGB2BGR))
            frame_counts = np.bincount(labels.ravel(), minlength=len(seg.class_names))
            counts = frame_counts if counts is None else counts + frame_counts
            frames += 1
            if on_frame:
                on_frame(source.name, frames, total or None)
        if writer is not None:
            writer.release()
        if frames == 0:
            raise InputError(f"{source.path}: a video with no readable frames")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    h, w = frame.shape[:2]
    shares = counts[: len(seg.class_names)] / counts.sum()
    shares = dict(zip(seg.class_names, map(float, shares), strict=True))
    record = _record(seg, source, (h, w), shares)
    record |= {"frames": frames, "frames_per_second": round(frames / max(seconds, 1e-9), 2)}
    return [path, _write_json(out_dir / f"{source.name}.json", record)]


def _video_writer(path: Path, fps: float, size: tuple[int, int]):
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps or 25.0, size[::-1])
    if not writer.isOpened():
        raise InputError(f"{path}: OpenCV cannot write an mp4 video here")
    return writer


def _record(seg: Segmenter, source: Source, size, shares: dict[str, float]) -> dict:
    return {
        "input": str(source.path),
        "height": int(size[0]),
        "width": int(size[1]),
        "model": seg.card.model.get("name"),
        "scheme": seg.card.scheme.name,
        "backend": seg.backend_name,
        "precision": seg.precision,
        "regions": seg.regions,
        "scales": list(seg.scales),
        "class_fractions": {name: round(share, 6) for name, share in shares.items()},
        "colors": {name: list(c) for name, c in zip(seg.class_names, seg.colors, strict=True)},
    }


def _save(img: Image.Image, path: Path, **options) -> Path:
    with atomic_path(path) as tmp:
        img.save(tmp, format="JPEG" if path.suffix == ".jpg" else "PNG", **options)
    return path


def _write_json(path: Path, record: dict) -> Path:
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path
