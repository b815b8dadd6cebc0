"""The prepared dataset folder: the one on-disk format every command reads.

Layout::

    DIR/
      dataset.json        # label space, class names, tables, splits, counts, sources
      rgb/ID.png          # uint8 RGB
      label/ID.png        # uint16 ids of the label space (0 = unlabelled)
      depth/ID.png        # uint16 millimetres (0 = no reading)

Both ``data prepare nyuv2`` (label space ``nyu894``) and ``data synth`` (``nyu40``)
write it, so training, evaluation and statistics work on either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from indoorseg.classes import BUILTIN_SPACES, LabelSpace, nyu894_space
from indoorseg.errors import DatasetError
from indoorseg.files import JsonFormat, atomic_folder

DATASET_JSON = JsonFormat("indoorseg-prepared", 1, DatasetError)
# zlib level of written PNGs: level 1 writes a sample about 5x faster than Pillow's default
# (6) for about 13 % more bytes; the pixels are the same at every level.
PNG_LEVEL = 1


@dataclass
class PreparedInfo:
    """Contents of ``dataset.json``.

    Attributes:
        name: e.g. ``nyuv2`` or ``synthetic``.
        label_space: ``nyu894`` or ``nyu40`` (the ids stored in ``label/``).
        class_names: names of ids 1..K of that space.
        mappings: tables into other spaces, e.g. ``{"nyu40": [894 ints]}``.
        splits: ``{split_set: {split: [ids]}}``, e.g. ``{"official": {"train": [...]}}``.
        default_split_set: the split set used when none is named.
        image_size: ``[height, width]``.
        counts: number of images per split, per split set.
        sources: file name -> sha256 of what the folder was made from.
        extra: anything else worth recording (seed, generator settings...).
    """

    name: str
    label_space: str
    class_names: list[str]
    splits: dict[str, dict[str, list[str]]]
    default_split_set: str
    image_size: list[int]
    mappings: dict[str, list[int]] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def space(self) -> LabelSpace:
        """The label space of the stored labels, with its tables into other spaces."""
        if self.label_space == "nyu894":
            if "nyu40" not in self.mappings:
                raise DatasetError("dataset.json: label space nyu894 needs mappings.nyu40")
            return nyu894_space(self.class_names, self.mappings["nyu40"])
        if self.label_space in BUILTIN_SPACES:
            return BUILTIN_SPACES[self.label_space]
        return LabelSpace(self.label_space, tuple(self.class_names))

    def ids(self, split: str, split_set: str | None = None) -> list[str]:
        """Sample ids of one split; an unknown split names the ones that exist."""
        split_set = split_set or self.default_split_set
        if split_set not in self.splits:
            raise DatasetError(
                f"no split set {split_set!r}; this dataset has {sorted(self.splits)}"
            )
        if split not in self.splits[split_set]:
            raise DatasetError(
                f"no split {split!r} in split set {split_set!r}; "
                f"it has {sorted(self.splits[split_set])}"
            )
        return self.splits[split_set][split]


def read_info(root: str | Path) -> PreparedInfo:
    """Read and check ``root/dataset.json``."""
    path = Path(root) / "dataset.json"
    if not path.is_file():
        raise DatasetError(f"{path}: not found; is {root} a prepared dataset folder?")
    raw = DATASET_JSON.read(path)
    fields = {k: v for k, v in raw.items() if k not in ("format", "version")}
    try:
        info = PreparedInfo(**fields)
    except TypeError as err:
        raise DatasetError(f"{path}: {err}") from None
    _check_splits(path, info)
    return info


def _check_splits(path: Path, info: PreparedInfo) -> None:
    """Splits are {split_set: {split: [sample ids]}}, and an id names a file inside the
    folder: no separators, no ``..``, nothing absolute."""
    if not isinstance(info.splits, dict) or not info.splits:
        raise DatasetError(f"{path}: splits must map split sets to splits, got {info.splits!r}")
    for set_name, splits in info.splits.items():
        if not isinstance(splits, dict):
            raise DatasetError(
                f"{path}: split set {set_name!r} must map split names to lists "
                f"of ids, got {type(splits).__name__}"
            )
        for split, ids in splits.items():
            if not isinstance(ids, list):
                raise DatasetError(
                    f"{path}: split {set_name}/{split} must be a list of ids, "
                    f"got {type(ids).__name__}"
                )
            bad = [i for i in ids if not _safe_id(i)]
            if bad:
                raise DatasetError(
                    f"{path}: split {set_name}/{split} has an id that is not a "
                    f"plain file name: {bad[0]!r}"
                )
    if info.default_split_set not in info.splits:
        raise DatasetError(
            f"{path}: default_split_set {info.default_split_set!r} is not one "
            f"of its split sets {sorted(info.splits)}"
        )


def _safe_id(sample_id) -> bool:
    return (
        isinstance(sample_id, str)
        and sample_id not in ("", ".", "..")
        and not any(c in sample_id for c in "/\\\0")
    )


def write_info(root: str | Path, info: PreparedInfo) -> None:
    """Write ``dataset.json`` (counts filled from the splits)."""
    info.counts = {s: {k: len(v) for k, v in parts.items()} for s, parts in info.splits.items()}
    DATASET_JSON.write(Path(root) / "dataset.json", asdict(info))


def depth_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """Float metres -> uint16 millimetres (0 where invalid, clipped at 65.535 m)."""
    depth = np.nan_to_num(np.asarray(depth_m, dtype=np.float64), nan=0.0, posinf=0.0)
    return np.clip(np.rint(depth * 1000.0), 0, 65535).astype(np.uint16)


def write_sample(
    root: str | Path,
    sample_id: str,
    rgb: np.ndarray,
    label: np.ndarray,
    depth_mm: np.ndarray | None = None,
) -> None:
    """Write one sample as PNGs.

    Shape:
        rgb (H, W, 3) uint8; label (H, W) uint16 ids; depth_mm (H, W) uint16.
    """
    root = Path(root)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb of {sample_id} must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if label.shape != rgb.shape[:2]:
        raise ValueError(f"label of {sample_id} is {label.shape}, image is {rgb.shape[:2]}")
    for sub in ("rgb", "label", "depth"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(root / "rgb" / f"{sample_id}.png", compress_level=PNG_LEVEL)
    save_uint16_png(root / "label" / f"{sample_id}.png", label)
    if depth_mm is not None:
        save_uint16_png(root / "depth" / f"{sample_id}.png", depth_mm)


def save_uint16_png(path: Path, array: np.ndarray) -> None:
    """Save a 2-D array as a 16-bit greyscale PNG."""
    array = np.ascontiguousarray(array, dtype=np.uint16)
    Image.fromarray(array).save(path, compress_level=PNG_LEVEL)


@contextmanager
def _opened(path: str | Path) -> Iterator[Image.Image]:
    """An image file opened and decoded, or a DatasetError naming it and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: not found" if not path.exists() else f"{path}: not a file")
    try:
        with Image.open(path) as img:
            img.load()
            yield img
    except (OSError, SyntaxError, ValueError) as err:  # Pillow's ways of saying "broken"
        reason = "empty file" if path.stat().st_size == 0 else f"not a readable image ({err})"
        raise DatasetError(f"{path}: {reason}") from None


LABEL_MODES = ("L", "P", "1", "I;16", "I;16L", "I;16B", "I")


def read_label_png(path: str | Path) -> np.ndarray:
    """Read a label PNG (8- or 16-bit greyscale ids) as (H, W) uint16; any other kind of
    image (colour, float, ids beyond 16 bits) is refused, never wrapped or rounded."""
    with _opened(path) as img:
        mode = img.mode
        array = np.asarray(img)
    if array.ndim != 2:
        raise DatasetError(f"{path}: a label image must be single-channel, got shape {array.shape}")
    if mode not in LABEL_MODES:  # integer modes only: no float ("F") or colour labels
        raise DatasetError(
            f"{path}: label ids must be 8- or 16-bit integers, got a {mode!r} ({array.dtype}) image"
        )
    if array.size and (array.min() < 0 or array.max() > 65535):
        raise DatasetError(
            f"{path}: label ids must be in 0..65535, found {array.min()}..{array.max()}"
        )
    return array.astype(np.uint16)


@contextmanager
def staged_output(out: str | Path, force: bool = False) -> Iterator[Path | None]:
    """Build a dataset folder under a temporary name beside ``out``, renamed to ``out`` on
    success (``files.atomic_folder``).

    Yields ``None`` when ``out`` already holds a dataset and ``force`` is false (the caller
    then does nothing). On any error the temporary folder is removed, so nothing that
    looks complete is ever left behind.
    """
    out = Path(out)
    if (out / "dataset.json").is_file() and not force:
        yield None
        return
    if out.exists() and any(out.iterdir()) and not (out / "dataset.json").is_file():
        raise DatasetError(f"{out}: exists, is not empty and is not a prepared dataset; refusing")
    with atomic_folder(out) as tmp:
        yield tmp
