"""Evaluation edge cases: split set, collapsing onto an ignore label, mixed image sizes,
incomplete checkpoints. Models here are built by hand so their answers are known."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from indoorseg.checkpoint import Checkpoint, CheckpointError, checkpoint_meta, save_checkpoint
from indoorseg.classes import load_scheme
from indoorseg.config import ConfigError, load_config
from indoorseg.data.dataset import SegmentationDataset
from indoorseg.data.prepared import read_info, write_info, write_sample
from indoorseg.evaluation import evaluate_model
from indoorseg.images import read_image
from indoorseg.metrics import ConfusionMatrix, PaperScores
from indoorseg.models import ModelSpec, build_model
from indoorseg.runlog import write_run_info
from indoorseg.training import train

from conftest import checkpoint_network, reference_logits, write_blocks_dataset


def constant_checkpoint(path, scheme_name: str, answer: int, **config_overrides):
    """A checkpoint whose model answers class ``answer`` on every pixel."""
    scheme = load_scheme(scheme_name)
    spec = ModelSpec("deeplabv3plus_mobilenet_v2", scheme.num_classes)
    model = build_model(spec)
    head = model.segmentation_head[0]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[answer] = 10.0
    config = load_config(None, [f"data.{k}={v}" for k, v in config_overrides.items()])
    meta = checkpoint_meta(config, spec, scheme, epoch=1, step=0, metrics={})
    save_checkpoint(path, Checkpoint(meta, model.state_dict()))
    return path


def sharpened_checkpoint(path, scheme_name: str = "layout3"):
    """A checkpoint of an untrained network whose last layer is made 1000 times stronger,
    so that its answers vary over an image and with how the image is fed to it."""
    torch.manual_seed(0)
    scheme = load_scheme(scheme_name)
    spec = ModelSpec("deeplabv3plus_mobilenet_v2", scheme.num_classes)
    model = build_model(spec)
    with torch.no_grad():
        model.segmentation_head[0].weight.mul_(1000)
    meta = checkpoint_meta(load_config(None, []), spec, scheme, epoch=1, step=0, metrics={})
    save_checkpoint(path, Checkpoint(meta, model.state_dict()))
    return path


def test_confusion_matrix_refuses_predictions_out_of_range():
    confusion = ConfusionMatrix(3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        confusion.update(torch.tensor([0, 1]), torch.tensor([0, 3]))


def test_other_collapsed_onto_an_ignore_label_counts_as_wrong(blocks, tmp_path):
    ckpt = constant_checkpoint(tmp_path / "other.safetensors", "layout3", answer=2)
    result = evaluate_model(ckpt, blocks, collapse_to="layout3-ignore", device="cpu")
    metrics = result["metrics"]
    # Every labelled pixel got "other", which layout3-ignore does not score: all wrong.
    assert metrics["pixel_accuracy"] == 0.0 and metrics["mean_iou"] == 0.0
    assert metrics["pixels"] == 2 * (64 * 96 - 9)
    assert result["class_names"][-1] == "(unscored)"
    paper = evaluate_model(
        ckpt, blocks, "test", protocol="paper", collapse_to="layout3-ignore", device="cpu"
    )
    # Paper protocol: the 9 unlabelled pixels of each image are right ("other" = void).
    assert paper["metrics"]["pixel_accuracy"] == pytest.approx(9 / (64 * 96))


def test_collapse_of_a_constant_wall_model(blocks, tmp_path):
    ckpt = constant_checkpoint(tmp_path / "wall.safetensors", "nyu40", answer=0)  # wall
    result = evaluate_model(ckpt, blocks, collapse_to="layout3", device="cpu")
    per_class = result["metrics"]["per_class_iou"]
    info = read_info(blocks)
    assert result["images"] == len(info.splits["default"]["test"])
    assert per_class["object"] == 0.0 and 0 < per_class["background"] < 1
    # Only background is ever predicted, so its IoU is its share of the labelled pixels.
    assert result["metrics"]["pixel_accuracy"] == pytest.approx(per_class["background"])


def test_split_set_defaults_to_the_training_one(blocks, tmp_path):
    info = read_info(blocks)
    ids = info.splits["default"]["train"] + info.splits["default"]["test"]
    info.splits["other"] = {"train": ids[:4], "val": ids[4:5], "test": ids[5:6]}
    write_info(blocks, info)
    ckpt = constant_checkpoint(tmp_path / "c.safetensors", "layout3", 0, split_set="other")
    result = evaluate_model(ckpt, blocks, device="cpu")
    assert result["split_set"] == "other" and result["images"] == 1
    explicit = evaluate_model(
        ckpt, blocks, split_set="default", device="cpu", out_dir=tmp_path / "e"
    )
    assert explicit["split_set"] == "default" and explicit["images"] == 2


def test_images_of_different_sizes(tmp_path):
    root = write_blocks_dataset(tmp_path / "mixed")
    rng = np.random.default_rng(1)
    label = np.full((61, 93), 1, np.uint16)  # an odd-sized image, not a multiple of 32
    write_sample(root, "006", rng.integers(0, 255, (61, 93, 3)).astype(np.uint8), label)
    ckpt = constant_checkpoint(tmp_path / "c.safetensors", "layout3", 0)
    result = evaluate_model(ckpt, root, device="cpu")
    assert result["metrics"]["pixels"] == 61 * 93 + 64 * 96 - 9
    paper = evaluate_model(ckpt, root, protocol="paper", device="cpu")
    assert paper["images"] == 2


def test_the_paper_crop_is_height_by_width_from_the_top_left(blocks, tmp_path):
    # A crop of 32 rows by 48 columns holds the ceiling, the wall and a corner of the
    # chair; 48 rows by 32 columns would hold floor instead: other scores.
    wall = load_scheme("nyu40").class_names.index("wall")
    ckpt = constant_checkpoint(tmp_path / "wall.safetensors", "nyu40", wall, crop="[32,48]")
    paper_crop = {"protocol": "paper", "top_left_crop": True}
    result = evaluate_model(ckpt, blocks, device="cpu", workers=0, **paper_crop)
    assert result["top_left_crop"] == [32, 48]
    test = SegmentationDataset(blocks, "nyu40", "test")
    expected = PaperScores()
    for index in range(len(test)):
        label = test.label(index).astype(np.int64)
        label[label == test.scheme.ignore_index] = test.scheme.num_classes  # void: a class
        expected.update(label[:32, :48], np.full((32, 48), wall))
    for name in ("pixel_accuracy", "mean_iou"):
        assert result["metrics"][name] == pytest.approx(expected.summary()[name], abs=1e-9)


def test_incomplete_checkpoint_is_a_clear_error(blocks, tmp_path):
    path = constant_checkpoint(tmp_path / "c.safetensors", "layout3", 0)
    model = {
        k: v
        for k, v in build_model(ModelSpec("deeplabv3plus_mobilenet_v2", 3)).state_dict().items()
    }
    meta = {"model": {"name": "deeplabv3plus_mobilenet_v2", "num_classes": 3}}  # no scheme
    save_checkpoint(path, Checkpoint(meta, model))
    with pytest.raises(CheckpointError, match="c.safetensors"):
        evaluate_model(path, blocks, device="cpu")
    assert json.loads(path.with_suffix(".json").read_text())["model"]["num_classes"] == 3


def test_crop_must_suit_the_network(blocks, tmp_path):
    config = load_config(None, ["data.crop=[50,50]", "data.batch_size=2", "train.device=cpu"])
    with pytest.raises(ConfigError, match="multiples of 16"):
        train(config, blocks, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_collapse_is_applied_to_the_predictions(blocks, tmp_path):
    # nyu40 "cabinet" (train id 2) is an object; uncollapsed, id 2 would read as layout3
    # "other" and the object IoU would be 0.
    cabinet = load_scheme("nyu40").class_names.index("cabinet")
    ckpt = constant_checkpoint(tmp_path / "cabinet.safetensors", "nyu40", answer=cabinet)
    result = evaluate_model(ckpt, blocks, collapse_to="layout3", device="cpu")
    per_class = result["metrics"]["per_class_iou"]
    assert result["collapsed"] and result["scheme"] == "layout3"
    assert 0 < per_class["object"] < 1 and per_class["background"] == 0.0
    # every chair pixel of the test images (nyu40 chair -> object) is right
    assert result["confusion_matrix"][1][1] > 0 and result["confusion_matrix"][0][1] > 0


def test_collapse_into_the_same_void_class_keeps_other(blocks, tmp_path):
    ckpt = constant_checkpoint(tmp_path / "other.safetensors", "layout3", answer=2)
    paper = evaluate_model(ckpt, blocks, protocol="paper", collapse_to="layout3", device="cpu")
    # "other" stays "other": the 9 unlabelled pixels of each image are right
    assert paper["metrics"]["pixel_accuracy"] == pytest.approx(9 / (64 * 96))
    standard = evaluate_model(ckpt, blocks, collapse_to="layout3", device="cpu")
    # predicting "other" on labelled pixels is wrong, never skipped
    assert standard["metrics"]["pixel_accuracy"] == 0.0
    assert standard["metrics"]["pixels"] == 2 * (64 * 96 - 9)


def test_scoring_a_run_on_two_datasets_keeps_both_results(tmp_path):
    trained_on = write_blocks_dataset(tmp_path / "blocks")
    other = write_blocks_dataset(tmp_path / "elsewhere" / "blocks", n=5)  # the same name
    run = tmp_path / "run"
    constant_checkpoint(run / "best.safetensors", "layout3", 0)
    write_run_info(run, {"data": str(trained_on.resolve())})

    own = evaluate_model(run, trained_on, device="cpu")
    assert Path(own["out_dir"]) == run / "eval" / "test-standard"  # where it always was
    foreign = evaluate_model(run, other, device="cpu")
    assert Path(foreign["out_dir"]).parent.name.startswith("blocks-")
    assert Path(foreign["out_dir"]).parent.parent == run / "eval"
    kept = [json.loads((Path(r["out_dir"]) / "metrics.json").read_text()) for r in (own, foreign)]
    assert [k["dataset"] for k in kept] == [str(trained_on), str(other)]

    # scoring the same thing again replaces its own results whole, nothing left beside them
    again = evaluate_model(run, other, device="cpu")
    assert again["out_dir"] == foreign["out_dir"]
    assert sorted(p.name for p in Path(again["out_dir"]).iterdir()) == [
        "confusion.png",
        "metrics.json",
        "metrics.md",
    ]
    assert sorted(p.name for p in (run / "eval").iterdir()) == sorted(
        [Path(foreign["out_dir"]).parent.name, "test-standard"]
    )


def test_a_checkpoint_without_run_records_keys_every_dataset(blocks, tmp_path):
    ckpt = constant_checkpoint(tmp_path / "loose" / "c.safetensors", "layout3", 0)
    result = evaluate_model(ckpt, blocks, protocol="paper", collapse_to="layout3", device="cpu")
    out = Path(result["out_dir"])
    assert out.name == "test-paper-to-layout3" and out.parent.name.startswith("blocks-")


def test_a_report_never_replaces_a_folder_of_other_files(blocks, tmp_path):
    ckpt = constant_checkpoint(tmp_path / "c.safetensors", "layout3", 0)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="other than a report"):
        evaluate_model(ckpt, blocks, device="cpu", out_dir=mine)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_a_report_never_replaces_a_file(blocks, tmp_path):
    ckpt = constant_checkpoint(tmp_path / "c.safetensors", "layout3", 0)
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    with pytest.raises(ValueError, match="is a file"):
        evaluate_model(ckpt, blocks, device="cpu", out_dir=precious)
    assert precious.read_text() == "keep me"


def test_naming_the_default_split_set_scores_into_the_same_folder(blocks, tmp_path):
    ckpt = constant_checkpoint(tmp_path / "run" / "best.safetensors", "layout3", 0)
    implicit = evaluate_model(ckpt, blocks, device="cpu")
    explicit = evaluate_model(ckpt, blocks, split_set="default", device="cpu")
    assert implicit["out_dir"] == explicit["out_dir"]
    info = read_info(blocks)
    info.splits["other"] = info.splits["default"]
    write_info(blocks, info)
    other = evaluate_model(ckpt, blocks, split_set="other", device="cpu")
    assert Path(other["out_dir"]).name == "other.test-standard"


def test_evaluation_feeds_the_network_as_a_hand_normalised_rgb_image(blocks, tmp_path):
    ckpt = sharpened_checkpoint(tmp_path / "sharp.safetensors")
    result = evaluate_model(ckpt, blocks, device="cpu", workers=0)
    network, test = checkpoint_network(ckpt), SegmentationDataset(blocks, "layout3", "test")
    expected = np.zeros((3, 3), np.int64)  # [label, prediction] over every pixel
    for index, sample_id in enumerate(test.ids):
        rgb = read_image(blocks / "rgb" / f"{sample_id}.png")
        pred = reference_logits(network, rgb).argmax(0).numpy()
        np.add.at(expected, (test.label(index), pred), 1)
    assert (expected.sum(0) > 1000).sum() >= 2  # the answers vary: a real comparison
    # equal here; a pixel or two at a near tie may flip with another machine's float sums
    assert np.abs(np.array(result["confusion_matrix"]) - expected).sum() <= 4, expected
