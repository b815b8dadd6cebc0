"""NYU Depth v2: the official labelled ``.mat`` and its metadata -> a prepared folder.

Inputs:
- ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3, i.e. HDF5, about 2.8 GB). As h5py reads it,
  every image axis is transposed: ``images`` (N, 3, W, H) uint8, ``labels`` (N, W, H)
  uint16 (0 = unlabelled, 1..894 raw classes), ``depths`` (N, W, H) float32 metres,
  ``names`` (1, 894) object references to MATLAB char arrays (uint16 codes).
- the metadata folder (``indoorseg.data.nyuv2_meta``): class tables and the official split.

The ``.mat`` is read one image at a time, so memory stays at a few images whatever the
size of the file. Sample ids are ``NNNN``, the 1-based image index (as in ``splits.mat``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from indoorseg.data.nyuv2_meta import (
    MAPPING40_FILE,
    SPLITS_FILE,
    NyuMeta,
    expect_names,
    read_nyu_meta,
)
from indoorseg.data.prepared import (
    PreparedInfo,
    depth_to_mm,
    staged_output,
    write_info,
    write_sample,
)
from indoorseg.errors import DatasetError
from indoorseg.files import sha256_file

MAT_NAME = "nyu_depth_v2_labeled.mat"
PAPER_SIZES = (889, 224, 336)  # train / val / test of a random cut of all 1449 images

# Chunk cache per dataset: MATLAB stores large variables in compressed chunks that may span
# several images; a cache of a few chunks avoids decompressing each chunk once per image.
_CHUNK_CACHE = 32 << 20


def _sample_ids(indices: np.ndarray) -> list[str]:
    return [f"{i:04d}" for i in sorted(int(i) for i in indices)]


def _scaled_sizes(num_images: int, sizes: tuple[int, ...]) -> list[int]:
    """``sizes`` scaled to sum to ``num_images``, every part at least 1."""
    total = sum(sizes)
    if num_images == total:
        return list(sizes)
    if num_images < len(sizes):
        raise DatasetError(f"cannot cut {num_images} images into {len(sizes)} non-empty splits")
    exact = [s * num_images / total for s in sizes]
    scaled = [max(1, int(e)) for e in exact]
    while sum(scaled) < num_images:  # give to the part furthest below its share
        scaled[max(range(len(sizes)), key=lambda j: exact[j] - scaled[j])] += 1
    while sum(scaled) > num_images:  # take from the part furthest above it
        shrinkable = [j for j in range(len(sizes)) if scaled[j] > 1]
        scaled[max(shrinkable, key=lambda j: scaled[j] - exact[j])] -= 1
    return scaled


def make_splits(
    num_images: int,
    train_ids: np.ndarray,
    test_ids: np.ndarray,
    val_size: int = 100,
    seed: int = 0,
    paper_sizes: tuple[int, ...] = PAPER_SIZES,
) -> dict[str, dict[str, list[str]]]:
    """The two split sets of NYU Depth v2, as sample ids ``NNNN`` (1-based, sorted).

    ``official``: the official test set, and the official training set less ``val_size``
    images drawn by ``seed`` for validation. ``paper``: a random permutation (by ``seed``)
    of all images cut into train/val/test of ``paper_sizes`` (889/224/336 for 1449 images,
    scaled proportionally for another count).

    Raises:
        DatasetError: ids outside ``1..num_images``, repeated or in both official splits;
            ``val_size`` not below the training set size; or any split empty.
    """
    train_ids, test_ids = _check_official(num_images, train_ids, test_ids)
    if not 0 <= val_size <= len(train_ids):
        raise DatasetError(f"val_size {val_size} must be in 0..{len(train_ids)} (the train set)")
    val = np.random.default_rng(seed).choice(train_ids, size=val_size, replace=False)
    official = {
        "train": _sample_ids(np.setdiff1d(train_ids, val)),
        "val": _sample_ids(val),
        "test": _sample_ids(test_ids),
    }
    sizes = _scaled_sizes(num_images, tuple(paper_sizes))
    order = np.random.default_rng(seed).permutation(np.arange(1, num_images + 1))
    parts = np.split(order, np.cumsum(sizes)[:-1])
    paper = {name: _sample_ids(p) for name, p in zip(("train", "val", "test"), parts, strict=True)}

    splits = {"official": official, "paper": paper}
    for set_name, named in splits.items():
        for split, ids in named.items():
            if not ids:
                raise DatasetError(f"split {set_name}/{split} is empty")
    return splits


def _check_official(
    num_images: int, train_ids: np.ndarray, test_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The official splits as flat int64 ids, once they lie in 1..num_images and never
    repeat."""
    train_ids = np.asarray(train_ids, dtype=np.int64).ravel()
    test_ids = np.asarray(test_ids, dtype=np.int64).ravel()
    for name, ids in (("train", train_ids), ("test", test_ids)):
        outside = ids[(ids < 1) | (ids > num_images)]
        if outside.size:
            raise DatasetError(
                f"official {name} split refers to images {outside[:5].tolist()} "
                f"outside 1..{num_images}"
            )
    both = np.concatenate([train_ids, test_ids])
    if len(np.unique(both)) != len(both):
        raise DatasetError("the official train and test splits repeat or share images")
    return train_ids, test_ids


def _dataset(f: h5py.File, key: str, path: Path) -> h5py.Dataset:
    if key not in f or not isinstance(f[key], h5py.Dataset):
        raise DatasetError(f"{path}: no dataset {key!r}; is it the labelled NYU Depth v2 .mat?")
    return f[key]


def _check_layout(f: h5py.File, path: Path) -> tuple[h5py.Dataset, h5py.Dataset, h5py.Dataset]:
    """``images``, ``labels``, ``depths`` after checking their shapes and dtypes."""
    images, labels, depths = (_dataset(f, key, path) for key in ("images", "labels", "depths"))
    if images.ndim != 4 or images.shape[1] != 3 or min(images.shape) == 0:
        raise DatasetError(f"{path}: images must be (N, 3, W, H), got {images.shape}")
    if images.dtype != np.uint8:
        raise DatasetError(f"{path}: images must be uint8, got {images.dtype}")
    n, _, width, height = images.shape
    for name, ds, kinds in (("labels", labels, "u"), ("depths", depths, "f")):
        if ds.shape != (n, width, height):
            raise DatasetError(
                f"{path}: {name} is {ds.shape}, expected {(n, width, height)} to match images"
            )
        if ds.dtype.kind not in kinds or (name == "labels" and ds.dtype.itemsize > 2):
            raise DatasetError(f"{path}: {name} has dtype {ds.dtype}")
    return images, labels, depths


def _read_names(f: h5py.File, path: Path) -> list[str]:
    """Decode ``names``: a cell array, i.e. references to uint16 char arrays in ``#refs#``."""
    ds = _dataset(f, "names", path)
    if h5py.check_dtype(ref=ds.dtype) is not h5py.Reference:
        raise DatasetError(f"{path}: names must be object references (a cell array of strings)")
    names = []
    for j, ref in enumerate(ds[()].ravel()):
        try:
            target = f[ref] if ref else None
        except (KeyError, ValueError):  # a dangling reference
            target = None
        if not isinstance(target, h5py.Dataset):
            raise DatasetError(f"{path}: names entry {j + 1} does not refer to a char array")
        if target.attrs.get("MATLAB_empty", 0):  # MATLAB stores '' as its shape, flagged
            names.append("")
            continue
        codes = np.asarray(target[()])
        if codes.dtype.kind not in "ui":
            raise DatasetError(f"{path}: names entry {j + 1} is {codes.dtype}, not char codes")
        names.append("".join(map(chr, codes.ravel())))
    return names


def _convert_image(
    arrays: tuple[h5py.Dataset, ...], i: int, num_names: int, root: Path, mat_path: Path
) -> None:
    """Read image ``i`` (0-based) of the .mat and write it as sample ``NNNN`` (1-based)."""
    images, labels, depths = arrays  # kept open: each holds its own chunk cache
    sample_id = f"{i + 1:04d}"
    try:
        rgb = images[i].transpose(2, 1, 0)  # (3, W, H) -> (H, W, 3)
        label = labels[i].T  # (W, H) -> (H, W)
        depth = depths[i].T
    except OSError as err:
        raise DatasetError(f"{mat_path}: cannot read image {sample_id} ({err})") from None
    if label.max() > num_names:
        raise DatasetError(
            f"{mat_path}: image {sample_id} has label {label.max()}, "
            f"beyond the {num_names} class names"
        )
    rgb = np.ascontiguousarray(rgb)
    write_sample(root, sample_id, rgb, label.astype(np.uint16), depth_to_mm(depth))


def prepare_nyuv2(
    mat_path: str | Path,
    meta_dir: str | Path,
    out: str | Path,
    val_size: int = 100,
    seed: int = 0,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path | None:
    """Convert the labelled NYU Depth v2 ``.mat`` into a prepared dataset folder.

    Labels are kept in the raw space (``nyu894``), with the 894 -> 40 table in
    ``dataset.json``; depth is stored in millimetres.

    Args:
        mat_path: ``nyu_depth_v2_labeled.mat``.
        meta_dir: folder with ``splits.mat``, ``classMapping40.mat``, ``class13Mapping.mat``.
        out: the folder to write; built under a temporary name and renamed when complete.
        val_size: images of the official training set held out for validation.
        seed: seed of the validation draw and of the ``paper`` split.
        force: rewrite ``out`` when it already holds a dataset.
        progress: called as ``progress(done, total)`` after each image.

    Returns:
        ``out``, or ``None`` when it already held a dataset and ``force`` is false.

    Raises:
        DatasetError: an input is missing or malformed; the message names the file, and
            nothing is left at ``out``.
    """
    mat_path, meta_dir = Path(mat_path), Path(meta_dir)
    with staged_output(out, force) as tmp:
        if tmp is None:
            return None
        meta = read_nyu_meta(meta_dir)
        if not mat_path.is_file():
            raise DatasetError(f"{mat_path}: not found (expected {MAT_NAME})")
        if not h5py.is_hdf5(mat_path):
            raise DatasetError(f"{mat_path}: not an HDF5 (MATLAB v7.3) file; truncated download?")
        write_info(tmp, _convert(mat_path, meta, meta_dir, tmp, val_size, seed, progress))
    return Path(out)


def _convert(
    mat_path: Path,
    meta: NyuMeta,
    meta_dir: Path,
    root: Path,
    val_size: int,
    seed: int,
    progress: Callable[[int, int], None] | None,
) -> PreparedInfo:
    """Every image of the .mat into ``root``, after checking it against the metadata."""
    with h5py.File(mat_path, "r", rdcc_nbytes=_CHUNK_CACHE) as f:
        arrays = _check_layout(f, mat_path)  # images, labels, depths
        n, _, width, height = arrays[0].shape
        names = _read_names(f, mat_path)
        mapping = meta_dir / MAPPING40_FILE
        expect_names(
            names, meta.raw_names, f"{mat_path}: names differ from allClassName of {mapping}"
        )
        try:
            splits = make_splits(n, meta.train_ids, meta.test_ids, val_size, seed)
        except DatasetError as err:
            where = f"{meta_dir / SPLITS_FILE} with {mat_path} ({n} images)"
            raise DatasetError(f"{where}: {err}") from None
        for i in range(n):
            _convert_image(arrays, i, len(names), root, mat_path)
            if progress is not None:
                progress(i + 1, n)
    return PreparedInfo(
        name="nyuv2",
        label_space="nyu894",
        class_names=names,
        mappings={"nyu40": meta.to_nyu40.tolist()},
        splits=splits,
        default_split_set="official",
        image_size=[height, width],
        sources={mat_path.name: sha256_file(mat_path), **meta.sources},
        extra={"seed": seed, "val_size": val_size},
    )
