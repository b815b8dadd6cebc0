"""NYU Depth v2 metadata: the class tables and the official split, read and checked.

The metadata folder holds three MATLAB v5 files: ``splits.mat`` (``trainNdxs``,
``testNdxs``, 1-based), ``classMapping40.mat`` (``allClassName``, ``mapClass`` 894 -> 40,
``className``) and ``class13Mapping.mat`` (struct ``classMapping13``: ``labels13``
40 -> 13, ``classNames``). Every table is checked against the built-in label spaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io

from indoorseg.classes import BUILTIN_SPACES
from indoorseg.errors import DatasetError
from indoorseg.files import sha256_file

SPLITS_FILE = "splits.mat"
MAPPING40_FILE = "classMapping40.mat"
MAPPING13_FILE = "class13Mapping.mat"
META_FILES = (SPLITS_FILE, MAPPING40_FILE, MAPPING13_FILE)


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


def expect_names(names: list[str], expected: list[str] | tuple[str, ...], error: str) -> None:
    """Raise ``error`` with the first difference unless ``names == expected``."""
    expected = list(expected)
    if names == expected:
        return
    if len(names) != len(expected):
        raise DatasetError(f"{error} ({len(names)} names vs {len(expected)})")
    i = next(i for i, (x, y) in enumerate(zip(names, expected, strict=True)) if x != y)
    raise DatasetError(f"{error} (class {i + 1} is {names[i]!r} vs {expected[i]!r})")


def read_nyu_meta(meta_dir: str | Path) -> NyuMeta:
    """Read and check the three metadata files of NYU Depth v2.

    Raises:
        DatasetError: a file is missing, unreadable, lacks a variable, or its classes
            differ from the built-in nyu40 / nyu13 spaces; the message names the file.
    """
    meta_dir = Path(meta_dir)
    if not meta_dir.is_dir():
        raise DatasetError(f"{meta_dir}: metadata folder not found (needs {', '.join(META_FILES)})")
    raw_names, to_nyu40, nyu40_names = _read_mapping40(meta_dir / MAPPING40_FILE)
    nyu13_table, nyu13_names = _read_mapping13(meta_dir / MAPPING13_FILE)
    path_splits = meta_dir / SPLITS_FILE
    splits = _loadmat(path_splits, ("trainNdxs", "testNdxs"))
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


def _read_mapping40(path: Path) -> tuple[list[str], np.ndarray, list[str]]:
    """``classMapping40.mat``: the raw names, the raw -> nyu40 table, the nyu40 names."""
    m40 = _loadmat(path, ("allClassName", "mapClass", "className"))
    raw_names = _cellstr(m40["allClassName"], f"{path}: allClassName")
    to_nyu40 = _ints(m40["mapClass"], f"{path}: mapClass")
    if len(to_nyu40) != len(raw_names) or not len(raw_names):
        raise DatasetError(
            f"{path}: {len(raw_names)} names in allClassName but {len(to_nyu40)} in mapClass"
        )
    if to_nyu40.min() < 1 or to_nyu40.max() > 40:
        raise DatasetError(
            f"{path}: mapClass must hold ids 1..40, found {to_nyu40.min()}..{to_nyu40.max()}"
        )
    nyu40_names = _cellstr(m40["className"], f"{path}: className")
    names40 = BUILTIN_SPACES["nyu40"].names
    expect_names(nyu40_names, names40, f"{path}: className is not the nyu40 class list")
    return raw_names, to_nyu40, nyu40_names


def _read_mapping13(path: Path) -> tuple[np.ndarray, list[str]]:
    """``class13Mapping.mat``: the nyu40 -> nyu13 table and the nyu13 names."""
    struct = _loadmat(path, ("classMapping13",))["classMapping13"]
    if struct.dtype.names is None or not {"labels13", "classNames"} <= set(struct.dtype.names):
        raise DatasetError(f"{path}: classMapping13 must be a struct with labels13 and classNames")
    record = struct.ravel()[0]
    nyu13_table = _ints(record["labels13"], f"{path}: labels13")
    if not np.array_equal(nyu13_table, BUILTIN_SPACES["nyu40"].to["nyu13"]):
        raise DatasetError(f"{path}: labels13 is not the known 40 -> 13 table")
    nyu13_names = _cellstr(record["classNames"], f"{path}: classNames")
    error = f"{path}: classNames is not the nyu13 class list"
    expect_names(nyu13_names, BUILTIN_SPACES["nyu13"].names, error)
    return nyu13_table, nyu13_names
