"""NYU Depth v2: the official labelled ``.mat`` and its metadata -> a prepared folder.

Inputs:
- ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3, i.e. HDF5, about 2.8 GB). As h5py reads it,
  every image axis is transposed: ``images`` (N, 3, W, H) uint8, ``labels`` (N, W, H)
  uint16 (0 = unlabelled, 1..894 raw classes), ``depths`` (N, W, H) float32 metres,
  ``names`` (1, 894) object references to MATLAB char arrays (uint16 codes).
- the metadata folder (MATLAB v5): ``splits.mat`` (``trainNdxs``, ``testNdxs``, 1-based),
  ``classMapping40.mat`` (``allClassName``, ``mapClass`` 894 -> 40, ``className``) and
  ``class13Mapping.mat`` (struct ``classMapping13``: ``labels13`` 40 -> 13, ``classNames``).

The ``.mat`` is read one image at a time, so memory stays at a few images whatever the
size of the file. Sample ids are ``NNNN``, the 1-based image index (as in ``splits.mat``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from indoorseg.classes import BUILTIN_SPACES
from indoorseg.data.download import sha256_file
from indoorseg.data.prepared import (
    DatasetError,
    PreparedInfo,
    depth_to_mm,
    staged_output,
    write_info,
    write_sample,
)

MAT_NAME = "nyu_depth_v2_labeled.mat"
SPLITS_FILE = "splits.mat"
MAPPING40_FILE = "classMapping40.mat"
MAPPING13_FILE = "class13Mapping.mat"
META_FILES = (SPLITS_FILE, MAPPING40_FILE, MAPPING13_FILE)
PAPER_SIZES = (889, 224, 336)  # train / val / test of a random cut of all 1449 images

# Chunk cache per dataset: MATLAB stores large variables in compressed chunks that may span
# several images; a cache of a few chunks avoids decompressing each chunk once per image.
_CHUNK_CACHE = 32 << 20


@dataclass
class NyuMeta:
    """The NYU Depth v2 metadata: class names, class tables and the official split.

    Attributes:
        raw_names: the 894 raw class names; raw id ``i`` is ``raw_names[i - 1]``.
        to_nyu40: raw id ``i`` -> nyu40 id ``to_nyu40[i - 1]`` (1..40).
        nyu40_names: the 40 class names.
        nyu13_table: nyu40 id ``i`` -> nyu13 id ``nyu13_table[i - 1]`` (1..13).
        nyu13_names: the 13 class names.
        train_ids: official training images, 1-based indices (795).
        test_ids: official test images, 1-based indices (654).
        sources: metadata file name -> sha256.
    """

    raw_names: list[str]
    to_nyu40: np.ndarray
    nyu40_names: list[str]
    nyu13_table: np.ndarray
    nyu13_names: list[str]
    train_ids: np.ndarray
    test_ids: np.ndarray
    sources: dict[str, str] = field(default_factory=dict)


def _loadmat(path: Path, keys: tuple[str, ...]) -> dict:
    if not path.is_file():
        raise DatasetError(f"{path}: not found")
    try:
        raw = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises many types on a file that is not MATLAB v5
        raise DatasetError(f"{path}: not a readable MATLAB v5 file ({err})") from None
    missing = [k for k in keys if k not in raw]
    if missing:
        present = sorted(k for k in raw if not k.startswith("__"))
        raise DatasetError(f"{path}: missing variable(s) {missing}; it has {present}")
    return raw


def _cellstr(cells: np.ndarray, where: str) -> list[str]:
    """A MATLAB cell array of strings, as loadmat returns it, as a list of str."""
    names = []
    for cell in np.asarray(cells).ravel():
        chars = np.asarray(cell)
        if chars.size and chars.dtype.kind != "U":
            raise DatasetError(f"{where}: expected a cell array of strings, found {chars.dtype}")
        names.append("".join(chars.ravel().tolist()))
    return names


def _ints(values: np.ndarray, where: str) -> np.ndarray:
    """A numeric MATLAB array as a flat int64 array (MATLAB often stores doubles)."""
    values = np.asarray(values)
    kind = values.dtype.kind
    if kind not in "iuf" or (kind == "f" and not np.array_equal(values, np.round(values))):
        raise DatasetError(f"{where}: expected integers, found {values.dtype}")
    return values.astype(np.int64).ravel()


def _expect_names(names: list[str], expected: list[str] | tuple[str, ...], error: str) -> None:
    """Raise ``error`` with the first difference unless ``names == expected``."""
    expected = list(expected)
    if names == expected:
        return
    if len(names) != len(expected):
        raise DatasetError(f"{error} ({len(names)} names vs {len(expected)})")
    i = next(i for i, (x, y) in enumerate(zip(names, expected, strict=True)) if x != y)
    raise DatasetError(f"{error} (class {i + 1} is {names[i]!r} vs {expected[i]!r})")


def read_meta(meta_dir: str | Path) -> NyuMeta:
    """Read and check the three metadata files of NYU Depth v2.

    Raises:
        DatasetError: a file is missing, unreadable, lacks a variable, or its classes
            differ from the built-in nyu40 / nyu13 spaces; the message names the file.
    """
    meta_dir = Path(meta_dir)
    if not meta_dir.is_dir():
        raise DatasetError(f"{meta_dir}: metadata folder not found (needs {', '.join(META_FILES)})")
    path40, path13, path_splits = (
        meta_dir / n for n in (MAPPING40_FILE, MAPPING13_FILE, SPLITS_FILE)
    )
    m40 = _loadmat(path40, ("allClassName", "mapClass", "className"))
    m13 = _loadmat(path13, ("classMapping13",))
    splits = _loadmat(path_splits, ("trainNdxs", "testNdxs"))

    raw_names = _cellstr(m40["allClassName"], f"{path40}: allClassName")
    to_nyu40 = _ints(m40["mapClass"], f"{path40}: mapClass")
    if len(to_nyu40) != len(raw_names) or not len(raw_names):
        raise DatasetError(
            f"{path40}: {len(raw_names)} names in allClassName but {len(to_nyu40)} in mapClass"
        )
    if to_nyu40.min() < 1 or to_nyu40.max() > 40:
        raise DatasetError(
            f"{path40}: mapClass must hold ids 1..40, found {to_nyu40.min()}..{to_nyu40.max()}"
        )
    nyu40 = BUILTIN_SPACES["nyu40"]
    nyu40_names = _cellstr(m40["className"], f"{path40}: className")
    _expect_names(nyu40_names, nyu40.names, f"{path40}: className is not the nyu40 class list")

    struct = m13["classMapping13"]
    if struct.dtype.names is None or not {"labels13", "classNames"} <= set(struct.dtype.names):
        raise DatasetError(
            f"{path13}: classMapping13 must be a struct with labels13 and classNames"
        )
    record = struct.ravel()[0]
    nyu13_table = _ints(record["labels13"], f"{path13}: labels13")
    if not np.array_equal(nyu13_table, nyu40.to["nyu13"]):
        raise DatasetError(f"{path13}: labels13 is not the known 40 -> 13 table")
    nyu13_names = _cellstr(record["classNames"], f"{path13}: classNames")
    nyu13_error = f"{path13}: classNames is not the nyu13 class list"
    _expect_names(nyu13_names, BUILTIN_SPACES["nyu13"].names, nyu13_error)

    return NyuMeta(
        raw_names=raw_names,
        to_nyu40=to_nyu40,
        nyu40_names=nyu40_names,
        nyu13_table=nyu13_table,
        nyu13_names=nyu13_names,
        train_ids=_ints(splits["trainNdxs"], f"{path_splits}: trainNdxs"),
        test_ids=_ints(splits["testNdxs"], f"{path_splits}: testNdxs"),
        sources={name: sha256_file(meta_dir / name) for name in META_FILES},
    )


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
        meta = read_meta(meta_dir)
        if not mat_path.is_file():
            raise DatasetError(f"{mat_path}: not found (expected {MAT_NAME})")
        if not h5py.is_hdf5(mat_path):
            raise DatasetError(f"{mat_path}: not an HDF5 (MATLAB v7.3) file; truncated download?")
        with h5py.File(mat_path, "r", rdcc_nbytes=_CHUNK_CACHE) as f:
            arrays = _check_layout(f, mat_path)  # images, labels, depths
            n, _, width, height = arrays[0].shape
            names = _read_names(f, mat_path)
            mismatch = (
                f"{mat_path}: class names differ from allClassName of {meta_dir / MAPPING40_FILE}"
            )
            _expect_names(names, meta.raw_names, mismatch)
            try:
                splits = make_splits(n, meta.train_ids, meta.test_ids, val_size, seed)
            except DatasetError as err:
                where = f"{meta_dir / SPLITS_FILE} with {mat_path} ({n} images)"
                raise DatasetError(f"{where}: {err}") from None
            for i in range(n):
                _convert_image(arrays, i, len(names), tmp, mat_path)
                if progress is not None:
                    progress(i + 1, n)
        info = PreparedInfo(
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
        write_info(tmp, info)
    return Path(out)
