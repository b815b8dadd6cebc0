"""Small fake NYU Depth v2 files in the official layouts, for tests.

``write_fake_nyu_mat`` writes a MATLAB v7.3 (HDF5) file shaped like
``nyu_depth_v2_labeled.mat``: every image axis transposed, class names as a cell array of
object references to uint16 char arrays kept in a ``#refs#`` group. ``write_fake_meta``
writes the three MATLAB v5 metadata files for a small number of images.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import scipy.io

from indoorseg.classes import BUILTIN_SPACES

_MATLAB_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: fake. HDF5 schema 1.00 ."


def fake_names(num_classes: int = 894) -> list[str]:
    """Default raw class names of the fake files: ``class1``, ``class2``..."""
    return [f"class{i}" for i in range(1, num_classes + 1)]


def _ref_name(j: int) -> str:
    """MATLAB-like names in ``#refs#``: a, b, ..., z, ba, bb, ..."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    name = letters[j % 26]
    while j >= 26:
        j //= 26
        name = letters[j % 26] + name
    return name


def _write_char(group: h5py.Group, key: str, text: str) -> h5py.Dataset:
    if not text:  # MATLAB stores '' as its shape (uint64), flagged MATLAB_empty
        ds = group.create_dataset(key, data=np.array([1, 0], dtype=np.uint64))
        ds.attrs["MATLAB_empty"] = np.uint8(1)
    else:  # a 1xN char row is stored transposed: (N, 1) uint16 codes
        codes = np.array([ord(c) for c in text], dtype=np.uint16).reshape(-1, 1)
        ds = group.create_dataset(key, data=codes)
        ds.attrs["MATLAB_int_decode"] = np.int32(2)
    ds.attrs["MATLAB_class"] = np.bytes_("char")
    return ds


def write_fake_nyu_mat(
    path: str | Path,
    n: int = 6,
    height: int = 48,
    width: int = 64,
    num_classes: int = 894,
    names: list[str] | None = None,
    seed: int = 0,
    **overrides: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """Write a small labelled .mat in exactly the official layout (as h5py reads it).

    Random, non-symmetric content: ``images`` (n, 3, W, H) uint8, ``labels`` (n, W, H)
    uint16 in 0..num_classes, ``depths`` (n, W, H) float32 metres (some zeros), ``names``
    (1, num_classes) references to char arrays.

    Args:
        names: class names (default ``fake_names(num_classes)``).
        **overrides: ``images=...``, ``labels=...``, ``depths=...`` (or any other key): an
            array written as is instead of the generated one; ``None`` leaves the key out.

    Returns:
        The arrays written, by key, in the file's (transposed) layout.
    """
    rng = np.random.default_rng(seed)
    names = fake_names(num_classes) if names is None else list(names)
    depths = rng.uniform(0.5, 10.0, size=(n, width, height)).astype(np.float32)
    depths[:, :2, :3] = 0.0  # missing readings
    arrays: dict[str, np.ndarray | None] = {
        "images": rng.integers(0, 256, size=(n, 3, width, height), dtype=np.uint8),
        "labels": rng.integers(0, len(names) + 1, size=(n, width, height), dtype=np.uint16),
        "depths": depths,
    }
    arrays.update(overrides)
    matlab_class = {"uint8": "uint8", "uint16": "uint16", "float32": "single", "float64": "double"}
    with h5py.File(path, "w", userblock_size=512) as f:
        for key, array in arrays.items():
            if array is not None:
                ds = f.create_dataset(key, data=array)
                ds.attrs["MATLAB_class"] = np.bytes_(matlab_class.get(array.dtype.name, "double"))
        _write_names(f, names)
    _write_header(path)
    return {k: v for k, v in arrays.items() if v is not None}


def write_full_size_fake_mat(
    path: str | Path,
    n: int = 1449,
    names: list[str] | None = None,
    height: int = 480,
    width: int = 640,
) -> Path:
    """The official layout at full size (about 4 GB for 1449 images), written one image at
    a time so that writing it needs little memory; content is cheap, varied noise."""
    names = fake_names(894) if names is None else list(names)
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 256, size=(3, 64, 48), dtype=np.uint8)
    layout = {
        "images": ((n, 3, width, height), np.uint8, "uint8"),
        "labels": ((n, width, height), np.uint16, "uint16"),
        "depths": ((n, width, height), np.float32, "single"),
    }
    with h5py.File(path, "w", userblock_size=512) as f:
        ds = {}
        for key, (shape, dtype, matlab) in layout.items():
            ds[key] = f.create_dataset(key, shape=shape, dtype=dtype, chunks=(1, *shape[1:]))
            ds[key].attrs["MATLAB_class"] = np.bytes_(matlab)
        reps = (1, width // 64 + 1, height // 48 + 1)
        for i in range(n):
            image = np.roll(np.tile(tile, reps)[:, :width, :height], i, axis=1)
            ds["images"][i] = image
            ds["labels"][i] = image[0].astype(np.uint16) * (len(names) + 1) // 256
            ds["depths"][i] = 0.5 + image[1] / 32.0
        _write_names(f, names)
    _write_header(path)
    return Path(path)


def _write_names(f: h5py.File, names: list[str]) -> None:
    refs_group = f.create_group("#refs#")
    refs = np.empty((1, len(names)), dtype=h5py.ref_dtype)
    for j, name in enumerate(names):
        refs[0, j] = _write_char(refs_group, _ref_name(j), name).ref
    f.create_dataset("names", data=refs).attrs["MATLAB_class"] = np.bytes_("cell")


def _write_header(path: str | Path) -> None:
    with open(path, "r+b") as fh:  # the MATLAB header lives in the HDF5 user block
        fh.write(_MATLAB_HEADER.ljust(116) + bytes(8) + b"\x00\x02IM")


def _cell(strings: list[str]) -> np.ndarray:
    """A (1, k) object array, which savemat writes as a MATLAB cell array."""
    cell = np.empty((1, len(strings)), dtype=object)
    for j, s in enumerate(strings):
        cell[0, j] = s
    return cell


def write_fake_meta(
    meta_dir: str | Path,
    n: int = 6,
    num_classes: int = 894,
    names: list[str] | None = None,
    **overrides: np.ndarray | dict | None,
) -> Path:
    """Write ``splits.mat``, ``classMapping40.mat`` and ``class13Mapping.mat`` for n images.

    Odd image indices are official train, even ones test. Raw class ``i`` maps to nyu40 id
    ``(i - 1) % 40 + 1``; the nyu40 and nyu13 names and tables are the real ones.

    Args:
        names: raw class names (default ``fake_names(num_classes)``).
        **overrides: any variable (``trainNdxs``, ``testNdxs``, ``allClassName``,
            ``mapClass``, ``className``, ``classMapping13``) replaced by the value given,
            or left out with ``None``.

    Returns:
        ``meta_dir``.
    """
    meta_dir = Path(meta_dir)
    meta_dir.mkdir(parents=True, exist_ok=True)
    names = fake_names(num_classes) if names is None else list(names)
    ids = np.arange(1, n + 1, dtype=np.uint16)
    nyu40 = BUILTIN_SPACES["nyu40"]
    files = {
        "splits.mat": {
            "trainNdxs": ids[ids % 2 == 1].reshape(-1, 1),
            "testNdxs": ids[ids % 2 == 0].reshape(-1, 1),
        },
        "classMapping40.mat": {
            "allClassName": _cell(names),
            "mapClass": (np.arange(len(names)) % 40 + 1).astype(np.uint8).reshape(1, -1),
            "className": _cell(list(nyu40.names)),
        },
        "class13Mapping.mat": {
            "classMapping13": {
                "labels13": nyu40.to["nyu13"].astype(np.uint8).reshape(1, -1),
                "classNames": _cell(list(BUILTIN_SPACES["nyu13"].names)),
            }
        },
    }
    for file_name, variables in files.items():
        for key in variables.keys() & overrides.keys():
            variables[key] = overrides[key]
        kept = {k: v for k, v in variables.items() if v is not None}
        scipy.io.savemat(meta_dir / file_name, kept)
    return meta_dir
