"""``data import``: plain folders of images and labels into a prepared folder."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from indoorseg.cli import app
from indoorseg.data.plain_folders import import_folders
from indoorseg.data.prepared import DatasetError, read_info, read_label_png
from indoorseg.images import read_image

from conftest import shared_nyu


def write_pairs(root: Path, names=("a", "b", "c"), size=(20, 30), extra_labels=("z",)):
    """Images as JPEG, greyscale PNG and RGBA PNG; nyu40 labels; one label without image."""
    rng = np.random.default_rng(0)
    (root / "rgb").mkdir(parents=True)
    (root / "labels").mkdir()
    h, w = size
    images, labels = {}, {}
    for i, name in enumerate(names):
        label = rng.integers(0, 41, (h, w)).astype(np.uint8)
        Image.fromarray(label).save(root / "labels" / f"{name}.png")
        rgb = rng.integers(0, 255, (h, w, 3)).astype(np.uint8)
        if i % 3 == 0:
            Image.fromarray(rgb).save(root / "rgb" / f"{name}.png")
        elif i % 3 == 1:
            Image.fromarray(rgb[..., 0]).save(root / "rgb" / f"{name}.png")  # greyscale
            rgb = np.repeat(rgb[..., :1], 3, axis=2)
        else:
            Image.fromarray(np.dstack([rgb, np.full((h, w), 255, np.uint8)])).save(
                root / "rgb" / f"{name}.png"
            )  # RGBA
        images[name], labels[name] = rgb, label
    for name in extra_labels:
        Image.fromarray(np.zeros((h, w), np.uint8)).save(root / "labels" / f"{name}.png")
    return images, labels


def test_images_and_labels_are_matched_by_name(tmp_path):
    images, labels = write_pairs(tmp_path)
    out = import_folders(tmp_path / "rgb", tmp_path / "labels", tmp_path / "out")
    info = read_info(out)
    assert info.label_space == "nyu40" and info.splits == {"default": {"test": ["a", "b", "c"]}}
    assert info.image_size == [20, 30] and info.name == "out"
    for name in images:  # the label without an image ("z") is left out
        np.testing.assert_array_equal(read_image(out / "rgb" / f"{name}.png"), images[name])
        np.testing.assert_array_equal(read_label_png(out / "label" / f"{name}.png"), labels[name])
    assert not (out / "label" / "z.png").exists()


def test_missing_labels_name_the_images(tmp_path):
    write_pairs(tmp_path)
    (tmp_path / "labels" / "b.png").unlink()
    with pytest.raises(DatasetError, match=r"no label for 1 of 3 images, e.g. \['b.png'\]"):
        import_folders(tmp_path / "rgb", tmp_path / "labels", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_size_mismatch_names_the_file(tmp_path):
    write_pairs(tmp_path)
    Image.fromarray(np.zeros((21, 30), np.uint8)).save(tmp_path / "labels" / "c.png")
    with pytest.raises(DatasetError, match=r"c.png: label is 30x21, its image c.png is 30x20"):
        import_folders(tmp_path / "rgb", tmp_path / "labels", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels", "rgb"]  # nothing else


def test_ids_outside_the_label_space_are_refused(tmp_path):
    write_pairs(tmp_path)
    label = np.zeros((20, 30), np.uint8)
    label[3, 4] = 41  # nyu40 has ids 0..40
    Image.fromarray(label).save(tmp_path / "labels" / "a.png")
    with pytest.raises(DatasetError, match=r"a.png: label id 41 is not in nyu40"):
        import_folders(tmp_path / "rgb", tmp_path / "labels", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels", "rgb"]
    # nyu13 has fewer ids still
    with pytest.raises(DatasetError, match="not in nyu13"):
        import_folders(tmp_path / "rgb", tmp_path / "labels", tmp_path / "out", space="nyu13")


def test_bad_inputs_are_one_clear_line_through_the_cli(tmp_path):
    write_pairs(tmp_path)
    (tmp_path / "rgb" / "d.png").write_bytes(b"not an image")
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp_path / "labels" / "d.png")
    result = CliRunner().invoke(
        app,
        [
            "data",
            "import",
            "--rgb",
            str(tmp_path / "rgb"),
            "--labels",
            str(tmp_path / "labels"),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 2 and "d.png: not a readable image" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
    result = CliRunner().invoke(
        app,
        [
            "data",
            "import",
            "--rgb",
            str(tmp_path / "rgb"),
            "--labels",
            str(tmp_path / "labels"),
            "--out",
            str(tmp_path / "out"),
            "--space",
            "nyu894",
        ],
    )
    assert result.exit_code == 2 and "cannot be imported" in result.output


def test_the_real_nyu_test_images(tmp_path):
    rgb = shared_nyu("rgb")
    result = CliRunner().invoke(
        app,
        [
            "data",
            "import",
            "--rgb",
            str(rgb),
            "--labels",
            str(shared_nyu("labels40")),
            "--depth",
            str(shared_nyu("depth")),
            "--out",
            str(tmp_path / "real"),
        ],
    )
    assert result.exit_code == 0, result.output
    info = read_info(tmp_path / "real")
    ids = sorted(p.stem for p in rgb.glob("*.png"))
    assert info.splits["default"]["test"] == ids and len(ids) == 8
    assert info.image_size == [480, 640]
    label = read_label_png(tmp_path / "real" / "label" / f"{ids[0]}.png")
    assert label.max() <= 40 and (label == 0).any()  # nyu40 ids, some unlabelled


def test_the_fifteen_real_nyu_test_images_from_two_folders(tmp_path):
    rgb, rgb2 = shared_nyu("rgb"), shared_nyu("rgb2")
    args = ["data", "import", "--rgb", str(rgb), "--rgb", str(rgb2), "--labels"]
    result = CliRunner().invoke(
        app, [*args, str(shared_nyu("labels40")), "--out", str(tmp_path / "real")]
    )
    assert result.exit_code == 0, result.output
    ids = sorted(p.stem for folder in (rgb, rgb2) for p in folder.glob("*.png"))
    assert read_info(tmp_path / "real").splits["default"]["test"] == ids and len(ids) == 15
    assert not (tmp_path / "real" / "depth").exists() or not any(
        (tmp_path / "real" / "depth").iterdir()
    )


def test_the_same_name_in_two_folders_is_refused(tmp_path):
    write_pairs(tmp_path / "one")
    write_pairs(tmp_path / "two", names=("c", "d"))
    with pytest.raises(DatasetError, match=r"several images named \['c'\]"):
        import_folders(
            [tmp_path / "one" / "rgb", tmp_path / "two" / "rgb"],
            tmp_path / "one" / "labels",
            tmp_path / "out",
        )
    assert not (tmp_path / "out").exists()


def test_a_folder_imported_from_other_images_is_not_reused(tmp_path):
    write_pairs(tmp_path / "one")
    write_pairs(tmp_path / "two", names=("d", "e"))
    labels, out = tmp_path / "one" / "labels", tmp_path / "out"
    shutil.copy(tmp_path / "two" / "labels" / "d.png", labels)
    shutil.copy(tmp_path / "two" / "labels" / "e.png", labels)
    assert import_folders(tmp_path / "one" / "rgb", labels, out) == out
    assert import_folders(tmp_path / "one" / "rgb", labels, out) is None  # the same: kept
    both = [tmp_path / "one" / "rgb", tmp_path / "two" / "rgb"]
    with pytest.raises(DatasetError, match="imported from other folders or other images"):
        import_folders(both, labels, out)
    assert import_folders(both, labels, out, force=True) == out
    assert read_info(out).splits["default"]["test"] == ["a", "b", "c", "d", "e"]
