"""``reproduce --budget smoke``: the whole report in miniature, and its reuse of finished work."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from indoorseg.classes import BUILTIN_SPACES
from indoorseg.cli import app
from indoorseg.data.plain_folders import import_folders
from indoorseg.data.prepared import PreparedInfo, write_info, write_sample
from indoorseg.data.synthetic import render_room
from indoorseg.reproduce import reproduce, study
from indoorseg.reproduce.budgets import SCHEMES, get_budget

SMOKE_SEEDS = 2


def fake_real_folder(root):
    """Three 'photos' with nyu40 labels, through ``data import`` as a user would."""
    (root / "rgb").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(3):
        room = render_room(7, i, (72, 96))
        Image.fromarray(room.rgb).save(root / "rgb" / f"photo{i}.jpg", quality=95)
        Image.fromarray(room.label.astype(np.uint8)).save(root / "labels" / f"photo{i}.png")
    return import_folders(root / "rgb", root / "labels", root / "real")


def in_unit(value):
    return value is None or 0.0 <= value <= 1.0


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    real = fake_real_folder(root / "photos")
    return root / "report", real, reproduce(root / "report", "smoke", real=real)


def test_smoke_writes_the_report_and_its_plots(smoke):
    out, _, results = smoke
    assert json.loads((out / "results.json").read_text())["budget"]["name"] == "smoke"
    report = (out / "report.md").read_text()
    for heading in (
        "## Table 2",
        "## The fair comparison",
        "## Table 3",
        "## Floors",
        "## The two protocols",
    ):
        assert heading in report
    assert "51.9" in report and "63 min 11 s" in report  # the paper's figures beside ours
    for path in results["plots"].values():
        with Image.open(out / path) as image:
            assert image.width > 300 and image.height > 200
        assert f"]({path})" in report


def test_smoke_trains_every_model_and_scores_it_in_layout3(smoke):
    _, _, results = smoke
    runs = results["runs"]
    assert sorted({r["scheme"] for r in runs}) == sorted(SCHEMES)
    assert len(runs) == len(SCHEMES) * SMOKE_SEEDS
    for run in runs:
        for scoring in ("standard", "paper", "paper_crop"):
            scores = run["scores"][scoring]
            assert in_unit(scores["mean_iou"]) and in_unit(scores["pixel_accuracy"])
        assert set(run["scores"]["standard"]["per_class_iou"]) == {"background", "object"}
        assert len(run["epochs"]) == 2 and run["real"]["standard"]["images"] == 3
        # real photos as predict answers by default: the recipe's region vote, and without
        assert "-regions" in Path(run["real"]["standard"]["out_dir"]).name
        assert "-regions" not in Path(run["real"]["standard_no_regions"]["out_dir"]).name
        assert "-regions" not in Path(run["scores"]["standard"]["out_dir"]).name
    for model, figures in results["real_models"].items():
        assert figures["standard mIoU, no region vote"]["n"] == SMOKE_SEEDS, model
    for model, figures in results["models"].items():
        assert figures["standard mIoU"]["n"] == SMOKE_SEEDS, model
        assert figures["standard mIoU"]["std"] >= 0
    assert results["verdicts"]["default"]["answer"] in (
        "yes",
        "no clear difference",
        "no: the 40-class model collapsed to 3 does better",
    )


def test_smoke_floors_and_epoch_times(smoke):
    _, _, results = smoke
    for where, floors in results["floors"].items():
        assert {"all background", "all object", "per-pixel prior"} <= {
            name.replace(" (majority)", "") for name in floors
        }, where
        for scores in floors.values():
            for protocol in ("standard", "paper"):
                assert in_unit(scores[protocol]["metrics"]["mean_iou"])
    # every image of every constant floor is one class: its standard pixel accuracies sum to 1
    test_floors = results["floors"]["the test split (default)"]
    constants = [s for n, s in test_floors.items() if n.startswith("all ")]
    total = sum(s["standard"]["metrics"]["pixel_accuracy"] for s in constants)
    assert total == pytest.approx(1.0)
    rows = {(r["classes"], r["pipeline"]): r for r in results["epoch_time"]}
    assert set(rows) == {(c, p) for c in (3, 40, 894) for p in ("integer", "one-hot")}
    for row in rows.values():
        epoch = row["epoch"]
        assert epoch["data_s"] > 0 and epoch["compute_s"] > 0
        assert epoch["total_s"] == pytest.approx(epoch["data_s"] + epoch["compute_s"])


def test_a_second_reproduction_reuses_what_is_done(smoke):
    out, real, first = smoke
    result = CliRunner().invoke(
        app, ["reproduce", "--budget", "smoke", "--out", str(out), "--real", str(real)]
    )
    assert result.exit_code == 0, result.output
    again = json.loads((out / "results.json").read_text())
    assert {r["done"] for r in again["runs"]} == {"reused"}
    assert again["epoch_time"] == first["epoch_time"]  # read back, not measured again
    assert again["models"] == json.loads(json.dumps(first["models"]))
    assert "## Table 3" in result.output


NYU40 = BUILTIN_SPACES["nyu40"]


def two_layouts(root, train: int, test: int, h: int = 60, w: int = 80):
    """A prepared folder of wall above chair: in the training images the wall fills the top
    ``train`` rows, in the test images (one more of them) the top ``test`` rows."""
    splits = {"train": ["train0", "train1"], "test": ["test0", "test1", "test2"]}
    for split, ids in splits.items():
        for sample_id in ids:
            label = np.full((h, w), NYU40.id_of("chair"), np.uint16)
            label[: train if split == "train" else test] = NYU40.id_of("wall")
            write_sample(root, sample_id, np.zeros((h, w, 3), np.uint8), label)
    splits["val"] = splits["test"]
    info = PreparedInfo(
        name="layouts",
        label_space="nyu40",
        class_names=list(NYU40.names),
        splits={"default": splits},
        default_split_set="default",
        image_size=[h, w],
    )
    write_info(root, info)
    return root


def test_the_per_pixel_prior_is_counted_on_the_training_labels_only(tmp_path):
    data = two_layouts(tmp_path / "layouts", train=30, test=15)
    result = study.floors(get_budget("smoke"), data, None)["the test split (default)"]
    prior = result["per-pixel prior"]["standard"]["metrics"]
    # the training layout says wall (background) over 30 rows, chair (object) below; the
    # test images have wall over 15 rows only, so rows 15-29 are wrong
    assert prior["pixel_accuracy"] == pytest.approx(45 / 60)
    assert prior["per_class_iou"] == pytest.approx({"background": 15 / 30, "object": 30 / 45})
