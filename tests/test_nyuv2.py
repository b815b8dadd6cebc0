"""NYU Depth v2 preparation: real metadata, fake .mat files in the official layout."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest

from indoorseg.classes import BUILTIN_SPACES
from indoorseg.data.nyuv2 import make_splits, prepare_nyuv2
from indoorseg.data.nyuv2_meta import read_nyu_meta
from indoorseg.data.prepared import (
    DatasetError,
    depth_to_mm,
    read_info,
    read_label_png,
)
from indoorseg.images import read_image

from fake_nyu import fake_names, write_fake_meta, write_fake_nyu_mat, write_full_size_fake_mat

REAL_META = Path(__file__).resolve().parents[2] / "shared" / "nyuv2" / "meta"
MAT = "nyu_depth_v2_labeled.mat"
NUM_CLASSES = 12  # small fakes: few names keep the files quick to write


@pytest.fixture(scope="module")
def real_meta_dir() -> Path:
    if not (REAL_META / "splits.mat").is_file():
        pytest.skip(f"real NYU Depth v2 metadata not found at {REAL_META}")
    return REAL_META


@pytest.fixture(scope="module")
def real_prepared(real_meta_dir, tmp_path_factory):
    """A fake .mat of all 1449 images (6x8, real class names) prepared with the real meta."""
    root = tmp_path_factory.mktemp("real")
    names = read_nyu_meta(real_meta_dir).raw_names
    arrays = write_fake_nyu_mat(root / MAT, n=1449, height=6, width=8, names=names)
    calls = []
    out = prepare_nyuv2(
        root / MAT, real_meta_dir, root / "out", progress=lambda d, t: calls.append((d, t))
    )
    return out, arrays, calls


@pytest.fixture
def fake(tmp_path):
    """A small fake .mat (6 images, 12x16) and fake metadata; returns (mat, meta, out)."""
    write_fake_nyu_mat(tmp_path / MAT, n=6, height=12, width=16, num_classes=NUM_CLASSES)
    write_fake_meta(tmp_path / "meta", n=6, num_classes=NUM_CLASSES)
    return tmp_path / MAT, tmp_path / "meta", tmp_path / "out"


def assert_nothing_left(out: Path) -> None:
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if ".partial-" in p.name]


def prepare_fails(mat: Path, meta: Path, out: Path, **kwargs) -> str:
    """Run prepare, expecting a DatasetError; returns its message."""
    with pytest.raises(DatasetError) as info:
        prepare_nyuv2(mat, meta, out, **kwargs)
    assert_nothing_left(out)
    return str(info.value)


# --- real metadata ------------------------------------------------------------------------


def test_read_real_meta(real_meta_dir):
    meta = read_nyu_meta(real_meta_dir)
    assert len(meta.raw_names) == 894 and len(set(meta.raw_names)) == 894
    assert meta.raw_names[3] == "ceiling" and meta.raw_names[10] == "floor"
    assert len(meta.train_ids) == 795 and len(meta.test_ids) == 654
    assert sorted(np.concatenate([meta.train_ids, meta.test_ids])) == list(range(1, 1450))
    assert meta.nyu40_names == list(BUILTIN_SPACES["nyu40"].names)
    assert meta.nyu13_names == list(BUILTIN_SPACES["nyu13"].names)
    assert meta.to_nyu40.shape == (894,) and meta.to_nyu40.min() >= 1 and meta.to_nyu40.max() <= 40
    # only raw ceiling, floor, wall map to nyu40 ceiling (22), floor (2), wall (1)
    for raw_id, nyu40_id in ((4, 22), (11, 2), (21, 1)):
        assert meta.to_nyu40[raw_id - 1] == nyu40_id
        assert np.flatnonzero(meta.to_nyu40 == nyu40_id).tolist() == [raw_id - 1]
    for name in ("splits.mat", "classMapping40.mat", "class13Mapping.mat"):
        digest = hashlib.sha256((real_meta_dir / name).read_bytes()).hexdigest()
        assert meta.sources[name] == digest


def test_prepare_with_real_meta(real_prepared, real_meta_dir):
    out, arrays, calls = real_prepared
    info = read_info(out)
    meta = read_nyu_meta(real_meta_dir)
    assert (info.name, info.label_space, info.default_split_set) == ("nyuv2", "nyu894", "official")
    assert info.class_names == meta.raw_names
    assert info.mappings == {"nyu40": meta.to_nyu40.tolist()}
    assert info.image_size == [6, 8]
    assert info.counts == {
        "official": {"train": 695, "val": 100, "test": 654},
        "paper": {"train": 889, "val": 224, "test": 336},
    }
    official = info.splits["official"]
    assert official["test"] == [f"{i:04d}" for i in sorted(meta.test_ids)]
    assert sorted(official["train"] + official["val"]) == [
        f"{i:04d}" for i in sorted(meta.train_ids)
    ]
    for parts in info.splits.values():
        ids = [i for part in parts.values() for i in part]
        assert sorted(ids) == [f"{i:04d}" for i in range(1, 1450)]  # disjoint, complete
    assert info.sources[MAT] == hashlib.sha256((out.parent / MAT).read_bytes()).hexdigest()
    assert {k: info.sources[k] for k in meta.sources} == meta.sources
    assert info.extra == {"seed": 0, "val_size": 100}
    assert info.space().table_to("nyu40", BUILTIN_SPACES)[[4, 11, 21]].tolist() == [22, 2, 1]
    assert calls == [(i, 1449) for i in range(1, 1450)]
    for i in (0, 700, 1448):  # spot checks; the round trip is tested in full below
        label = read_label_png(out / "label" / f"{i + 1:04d}.png")
        np.testing.assert_array_equal(label, arrays["labels"][i].T)
    assert len(list((out / "rgb").iterdir())) == 1449


def test_names_must_match_real_meta(real_meta_dir, tmp_path):
    names = read_nyu_meta(real_meta_dir).raw_names
    names[10] = "flor"
    write_fake_nyu_mat(tmp_path / MAT, n=2, height=4, width=4, names=names)
    message = prepare_fails(tmp_path / MAT, real_meta_dir, tmp_path / "out")
    assert MAT in message and "classMapping40.mat" in message and "'flor'" in message


# --- round trip ---------------------------------------------------------------------------


def test_round_trip(fake):
    mat, meta, out = fake
    with h5py.File(mat) as f:
        images, labels, depths = f["images"][()], f["labels"][()], f["depths"][()]
    assert prepare_nyuv2(mat, meta, out, val_size=1) == out
    assert read_info(out).image_size == [12, 16]
    for i in range(6):
        sample_id = f"{i + 1:04d}"
        rgb = read_image(out / "rgb" / f"{sample_id}.png")
        assert rgb.shape == (12, 16, 3)
        np.testing.assert_array_equal(rgb, images[i].transpose(2, 1, 0))
        np.testing.assert_array_equal(rgb[2, 5], images[i, :, 5, 2])  # row 2, column 5
        label = read_label_png(out / "label" / f"{sample_id}.png")
        np.testing.assert_array_equal(label, labels[i].T)
        depth = read_label_png(out / "depth" / f"{sample_id}.png")
        np.testing.assert_array_equal(depth, depth_to_mm(depths[i].T))
        assert depth[0, 0] == 0 and depth.max() > 1000  # mm, with missing readings kept at 0


def test_fake_splits_and_sources(fake):
    mat, meta, out = fake
    prepare_nyuv2(mat, meta, out, val_size=1, seed=3)
    info = read_info(out)
    official = info.splits["official"]
    assert official["test"] == ["0002", "0004", "0006"]
    assert len(official["val"]) == 1
    assert sorted(official["train"] + official["val"]) == ["0001", "0003", "0005"]
    assert info.counts["paper"] == {"train": 4, "val": 1, "test": 1}
    assert info.class_names == fake_names(NUM_CLASSES)
    assert info.mappings["nyu40"] == [(i % 40) + 1 for i in range(NUM_CLASSES)]
    assert set(info.sources) == {MAT, "splits.mat", "classMapping40.mat", "class13Mapping.mat"}
    assert info.extra == {"seed": 3, "val_size": 1}


def test_second_run_is_a_noop_unless_forced(fake):
    mat, meta, out = fake
    assert prepare_nyuv2(mat, meta, out, val_size=1) == out
    (out / "marker").write_text("still here")
    assert prepare_nyuv2(mat, meta, out, val_size=1) is None
    assert (out / "marker").is_file()
    assert prepare_nyuv2(mat, meta, out, val_size=1, force=True) == out
    assert not (out / "marker").exists()
    assert read_info(out).counts["official"]["test"] == 3


def test_bounded_memory(tmp_path):
    # Python-side peak (numpy arrays are traced) must stay far below the whole arrays.
    arrays = write_fake_nyu_mat(
        tmp_path / MAT, n=60, height=120, width=160, num_classes=NUM_CLASSES
    )
    total = sum(a.nbytes for a in arrays.values())
    write_fake_meta(tmp_path / "meta", n=60, num_classes=NUM_CLASSES)
    del arrays
    tracemalloc.start()
    try:
        prepare_nyuv2(tmp_path / MAT, tmp_path / "meta", tmp_path / "out", val_size=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 8e6
    assert peak < total / 4


# --- splits -------------------------------------------------------------------------------


def test_make_splits_sizes_and_determinism():
    train, test = np.arange(1, 796), np.arange(796, 1450)
    splits = make_splits(1449, train, test, val_size=100, seed=0)
    assert {k: len(v) for k, v in splits["official"].items()} == {
        "train": 695,
        "val": 100,
        "test": 654,
    }
    assert {k: len(v) for k, v in splits["paper"].items()} == {
        "train": 889,
        "val": 224,
        "test": 336,
    }
    assert set(splits["official"]["val"]) <= {f"{i:04d}" for i in train}
    assert make_splits(1449, train, test, seed=0) == splits
    other = make_splits(1449, train, test, seed=1)
    assert other["official"]["val"] != splits["official"]["val"]
    assert other["paper"]["test"] != splits["paper"]["test"]


@pytest.mark.parametrize("n", [3, 6, 10, 100, 2000])
def test_paper_split_scales_to_other_counts(n):
    paper = make_splits(n, [1, 3], [2], val_size=1)["paper"]
    sizes = [len(v) for v in paper.values()]
    assert sum(sizes) == n and min(sizes) >= 1
    shares = [s * n / 1449 for s in (889, 224, 336)]
    assert all(abs(size - share) < 1 for size, share in zip(sizes, shares, strict=True))
    assert sorted(i for v in paper.values() for i in v) == [f"{i:04d}" for i in range(1, n + 1)]


@pytest.mark.parametrize(
    ("num_images", "train", "test", "val_size", "expected"),
    [
        (6, [1, 3, 7], [2], 1, "outside 1..6"),
        (6, [0, 3], [2], 1, "outside 1..6"),
        (6, [1, 3], [3], 1, "share"),
        (6, [1, 1, 3], [2], 1, "repeat"),
        (6, [1, 3], [2], 0, "official/val is empty"),
        (6, [1, 3], [2], 2, "official/train is empty"),
        (6, [1, 3], [2], 3, "val_size"),
        (6, [1, 3], [], 1, "official/test is empty"),
        (2, [1], [2], 0, "cannot cut 2 images"),
    ],
)
def test_make_splits_errors(num_images, train, test, val_size, expected):
    with pytest.raises(DatasetError, match=expected):
        make_splits(num_images, train, test, val_size=val_size)


# --- bad inputs ---------------------------------------------------------------------------


def test_missing_mat(fake):
    mat, meta, out = fake
    mat.unlink()
    assert MAT in prepare_fails(mat, meta, out, val_size=1)


def test_not_hdf5(fake):
    mat, meta, out = fake
    mat.write_bytes(b"<html>not found</html>")
    message = prepare_fails(mat, meta, out, val_size=1)
    assert MAT in message and "HDF5" in message


@pytest.mark.parametrize("key", ["images", "labels", "depths", "names"])
def test_missing_key(fake, key):
    mat, meta, out = fake
    with h5py.File(mat, "a") as f:
        del f[key]
    message = prepare_fails(mat, meta, out, val_size=1)
    assert MAT in message and repr(key) in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"labels": np.zeros((5, 16, 12), np.uint16)}, "labels is (5, 16, 12)"),
        ({"labels": np.zeros((6, 12, 16), np.uint16)}, "labels is (6, 12, 16)"),
        ({"labels": np.zeros((6, 16, 12), np.float32)}, "labels has dtype float32"),
        ({"depths": np.zeros((6, 16, 13), np.float32)}, "depths is (6, 16, 13)"),
        ({"depths": np.zeros((6, 16, 12), np.uint16)}, "depths has dtype uint16"),
        ({"images": np.zeros((6, 4, 16, 12), np.uint8)}, "images must be (N, 3, W, H)"),
        ({"images": np.zeros((6, 16, 12), np.uint8)}, "images must be (N, 3, W, H)"),
        ({"images": np.zeros((6, 3, 16, 12), np.float32)}, "images must be uint8"),
        ({"names": np.zeros((1, 12), np.uint16)}, "object references"),
    ],
)
def test_bad_layout(fake, override, expected):
    mat, meta, out = fake
    if "names" in override:  # written by hand: the helper always writes proper names
        with h5py.File(mat, "a") as f:
            del f["names"]
            f["names"] = override["names"]
    else:
        write_fake_nyu_mat(mat, n=6, height=12, width=16, num_classes=NUM_CLASSES, **override)
    message = prepare_fails(mat, meta, out, val_size=1)
    assert MAT in message and expected in message


def test_label_beyond_names(fake):
    mat, meta, out = fake
    labels = np.ones((6, 16, 12), np.uint16)
    labels[2, 7, 3] = NUM_CLASSES + 1
    write_fake_nyu_mat(mat, n=6, height=12, width=16, num_classes=NUM_CLASSES, labels=labels)
    message = prepare_fails(mat, meta, out, val_size=1)
    assert MAT in message and "image 0003" in message and f"label {NUM_CLASSES + 1}" in message


def test_names_count_mismatch(fake):
    mat, meta, out = fake
    write_fake_nyu_mat(mat, n=6, height=12, width=16, num_classes=NUM_CLASSES + 1)
    message = prepare_fails(mat, meta, out, val_size=1)
    assert MAT in message and "classMapping40.mat" in message


def test_split_beyond_file(fake, tmp_path):
    mat, _, out = fake
    meta = write_fake_meta(tmp_path / "meta7", n=7, num_classes=NUM_CLASSES)  # train has 7
    message = prepare_fails(mat, meta, out, val_size=1)
    assert MAT in message and "splits.mat" in message and "[7]" in message


def test_empty_split(fake):
    mat, meta, out = fake
    message = prepare_fails(mat, meta, out, val_size=3)
    assert "splits.mat" in message and "train is empty" in message


@pytest.mark.parametrize("name", ["splits.mat", "classMapping40.mat", "class13Mapping.mat"])
def test_meta_missing_or_unreadable(fake, name):
    mat, meta, out = fake
    (meta / name).unlink()
    assert name in prepare_fails(mat, meta, out, val_size=1)
    (meta / name).write_bytes(b"garbage, not a MATLAB file")
    assert name in prepare_fails(mat, meta, out, val_size=1)


def test_meta_folder_missing(fake, tmp_path):
    mat, _, out = fake
    assert "nowhere" in prepare_fails(mat, tmp_path / "nowhere", out)


@pytest.mark.parametrize(
    ("override", "file_name", "expected"),
    [
        ({"testNdxs": None}, "splits.mat", "testNdxs"),
        ({"mapClass": None}, "classMapping40.mat", "mapClass"),
        ({"classMapping13": None}, "class13Mapping.mat", "classMapping13"),
        ({"mapClass": np.full((1, NUM_CLASSES), 41, np.uint8)}, "classMapping40.mat", "1..40"),
        ({"mapClass": np.ones((1, 3), np.uint8)}, "classMapping40.mat", "3 in mapClass"),
        ({"className": np.array([["wall", "flor"]], object)}, "classMapping40.mat", "nyu40"),
        (
            {"classMapping13": {"labels13": np.ones((1, 40), np.uint8), "classNames": np.zeros(1)}},
            "class13Mapping.mat",
            "labels13",
        ),
        ({"classMapping13": np.ones((1, 40))}, "class13Mapping.mat", "struct"),
    ],
)
def test_bad_meta(fake, tmp_path, override, file_name, expected):
    mat, _, out = fake
    meta = write_fake_meta(tmp_path / "bad_meta", n=6, num_classes=NUM_CLASSES, **override)
    message = prepare_fails(mat, meta, out, val_size=1)
    assert file_name in message and expected in message


def test_existing_foreign_folder_is_kept(fake):
    mat, meta, out = fake
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        prepare_nyuv2(mat, meta, out, val_size=1)
    assert (out / "precious.txt").read_text() == "mine"


@pytest.mark.slow
def test_prepare_at_full_size_stays_under_1_gb_of_memory(tmp_path):
    """The README's "< 1 GB": ``data prepare`` on a full-size .mat (1449 images of 480x640,
    about 4 GB), measured as the peak resident memory of the command's own process."""
    write_full_size_fake_mat(tmp_path / MAT)
    write_fake_meta(tmp_path / "meta", n=1449)
    command = [
        sys.executable,
        "-m",
        "indoorseg",
        "data",
        "prepare",
        "nyuv2",
        "--mat",
        str(tmp_path / MAT),
        "--meta",
        str(tmp_path / "meta"),
        "--out",
        str(tmp_path / "out"),
    ]
    # a fresh parent, so that the peak is this command's alone
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *command], capture_output=True, text=True, timeout=3600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    peak_mb = int(done.stdout.split()[-1]) / 1024
    print(f"data prepare at full size: peak {peak_mb:.0f} MB")
    assert peak_mb < 1024
    assert len(list((tmp_path / "out" / "rgb").iterdir())) == 1449
