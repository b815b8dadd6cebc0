"""``adapt``: a trained model self-trained on unlabelled photos into a new run folder, that
goes on where it stopped, keeps its pseudo-labels, and refuses bad photos and other runs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from test_engine import TINY, InterruptAt, assert_same_weights, weights
from typer.testing import CliRunner

from indoorseg.adaptation import AdaptSettings, adapt, keep_confident
from indoorseg.checkpoint import load_checkpoint
from indoorseg.classes import load_scheme
from indoorseg.cli import app
from indoorseg.config import load_config
from indoorseg.data.prepared import read_label_png
from indoorseg.errors import InputError, UsageError
from indoorseg.evaluation import evaluate_model
from indoorseg.inference import Segmenter
from indoorseg.training import train

runner = CliRunner()
SMALL = AdaptSettings(epochs=2, lr=1e-4, keep=0.5, side=64, seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run trained on blocks, and a folder of photos (with a README beside them)."""
    from conftest import write_blocks_dataset

    root = tmp_path_factory.mktemp("adapt")
    blocks = write_blocks_dataset(root / "blocks")
    train(load_config(None, TINY), blocks, root / "run")
    photos = root / "photos"
    (photos / "kitchen").mkdir(parents=True)
    rng = np.random.default_rng(5)
    for i, sub in enumerate(("", "", "kitchen")):
        image = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
        image[30:] = (40, 120, 40)  # a green floor, as in the blocks
        Image.fromarray(image).save(photos / sub / f"photo{i}.jpg")
    (photos / "README.md").write_text("not a photo")
    return root / "run", photos, blocks


def test_adapt_writes_a_run_that_evaluates_and_predicts(trained, tmp_path):
    run, photos, blocks = trained
    summary = adapt(run, photos, tmp_path / "adapted", SMALL)
    out = tmp_path / "adapted"
    assert summary["epoch"] == 2 and (out / "best.safetensors").is_file()
    info = json.loads((out / "run.json").read_text())
    assert info["adapted"]["settings"]["keep"] == 0.5 and info["data"] == str(blocks.resolve())
    names = sorted(p.stem for p in (out / "pseudo" / "rgb").glob("*.png"))
    assert names == ["kitchen__photo2", "photo0", "photo1"]
    label = read_label_png(out / "pseudo" / "label" / "photo0.png")
    assert label.shape == (48, 64) and (label == 255).any() and (label != 255).any()
    before, after = weights(run, "best"), weights(out, "best")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert evaluate_model(out, blocks, device="cpu", workers=0)["images"] == 2
    assert Segmenter.load(out, backend="torch").predict(np.zeros((40, 60, 3), np.uint8)).shape
    again = adapt(run, photos, out, SMALL)  # done: nothing to do
    assert again["reused"] is True


def test_an_interrupted_adaptation_goes_on_exactly(trained, tmp_path):
    run, photos, _ = trained
    adapt(run, photos, tmp_path / "straight", SMALL)
    with pytest.raises(KeyboardInterrupt):
        adapt(run, photos, tmp_path / "stopped", SMALL, reporter=InterruptAt(1, 2))
    assert load_checkpoint(tmp_path / "stopped" / "last.safetensors").meta["step"] == 2
    adapt(run, photos, tmp_path / "stopped", SMALL)
    assert_same_weights(weights(tmp_path / "straight"), weights(tmp_path / "stopped"))


def test_only_each_class_s_most_confident_pixels_are_kept_and_void_never():
    scheme = load_scheme("layout3")  # void is the class "other", id 2
    labels = [np.array([[0, 0, 1, 1, 2, 2]])]
    confidence = [np.array([[0.9, 0.6, 0.8, 0.7, 0.99, 0.95]])]
    kept = keep_confident(labels, confidence, 0.5, scheme, 255)[0]
    assert kept.tolist() == [[0, 255, 1, 255, 255, 255]]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: None, "no photos in it"),
        (lambda d: (d / "notes.txt").write_text("hello"), "no photos in it"),
        (lambda d: (d / "broken.jpg").write_bytes(b"not a jpeg"), "broken.jpg: not a readable"),
    ],
    ids=["empty", "no-images", "non-image"],
)
def test_bad_photo_folders_are_one_line_and_leave_nothing(trained, tmp_path, make, message):
    run, _, _ = trained
    folder = tmp_path / "photos"
    folder.mkdir()
    make(folder)
    args = ["adapt", str(run), "--photos", str(folder), "--out", str(tmp_path / "out")]
    result = runner.invoke(app, [*args, "--side", "64"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_another_adaptation_in_the_same_folder_is_refused(trained, tmp_path):
    run, photos, _ = trained
    adapt(run, photos, tmp_path / "adapted", SMALL)
    with pytest.raises(UsageError, match="holds something else than this adaptation"):
        adapt(run, photos, tmp_path / "adapted", AdaptSettings(epochs=2, side=64, keep=0.3))
    with pytest.raises(UsageError, match="keep must be in"):
        adapt(run, photos, tmp_path / "other", AdaptSettings(keep=0))
    shutil.rmtree(tmp_path / "adapted")
    with pytest.raises(InputError, match="not a folder of photos"):
        adapt(run, tmp_path / "nowhere", tmp_path / "adapted", SMALL)
