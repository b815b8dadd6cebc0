"""Bad input, as a new user gives it: every case ends in one clear line naming the file or
option, a non-zero exit, no traceback and nothing half-made."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from indoorseg.checkpoint import Checkpoint, checkpoint_meta, save_checkpoint
from indoorseg.classes import load_scheme
from indoorseg.cli import app
from indoorseg.cli.common import unwrap_worker
from indoorseg.config import load_config
from indoorseg.files import atomic_folder
from indoorseg.models import ModelSpec, build_model

from conftest import write_blocks_dataset

runner = CliRunner()
TINY = [
    "--set",
    "model.name=deeplabv3plus_mobilenet_v2",
    "--set",
    "model.input_scale=1.0",
    "--set",
    "data.batch_size=2",
    "--set",
    "data.crop=[32,32]",
    "--set",
    "optim.epochs=1",
    "--set",
    "data.workers=0",
]


@pytest.fixture(scope="module")
def ground(tmp_path_factory) -> dict[str, Path]:
    """A tiny dataset and a run trained on it for one epoch."""
    root = tmp_path_factory.mktemp("ground")
    blocks = write_blocks_dataset(root / "blocks")
    result = runner.invoke(
        app,
        ["train", "--config", "realtime", "--data", str(blocks), "--out", str(root / "run"), *TINY],
    )
    assert result.exit_code == 0, result.output
    return {"blocks": blocks, "run": root / "run"}


def first_train_id(root: Path) -> str:
    info = json.loads((root / "dataset.json").read_text())
    return info["splits"][info["default_split_set"]]["train"][0]


def broken_dataset(ground, tmp: Path, how: str) -> Path:
    """A copy of the tiny dataset with one thing wrong."""
    root = tmp / f"data-{how}"
    shutil.copytree(ground["blocks"], root)
    first = first_train_id(root)
    rgb, label = root / "rgb" / f"{first}.png", root / "label" / f"{first}.png"
    info = json.loads((root / "dataset.json").read_text())
    if how == "size":
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(label)
    elif how == "label32":
        ids = np.asarray(Image.open(label)).astype(np.int32) + 65536  # wraps to the same ids
        Image.fromarray(ids, mode="I").save(label, format="TIFF")
    elif how == "float":
        ids = np.asarray(Image.open(label)).astype(np.float32) + 0.4  # rounds to the same ids
        Image.fromarray(ids, mode="F").save(label, format="TIFF")
    elif how == "colour-label":
        Image.open(rgb).save(label)
    elif how == "truncated":
        rgb.write_bytes(rgb.read_bytes()[:80])
    elif how == "fake":
        rgb.write_text("not a png")
    elif how == "zero":
        rgb.write_bytes(b"")
    elif how == "missing":
        rgb.unlink()
    elif how == "dotdot":
        info["splits"][info["default_split_set"]]["train"][0] = "../../etc/passwd"
    elif how == "absolute":
        info["splits"][info["default_split_set"]]["train"][0] = "/etc/passwd"
    elif how == "json-list":
        info = [1, 2]
    elif how == "splits-str":
        info["splits"] = {"default": "train"}
    elif how == "not-json":
        (root / "dataset.json").write_text("{ not json")
        return root
    (root / "dataset.json").write_text(json.dumps(info))
    return root


def bad_file(tmp: Path, kind: str) -> Path:
    files = {
        "yaml": ("bad.yaml", "model: [unclosed"),
        "yaml-list": ("list.yaml", "- 1\n- 2\n"),
        "yaml-section": ("section.yaml", "model: 3\n"),
        "ckpt": ("fake.safetensors", "\x00" * 100),
        "onnx": ("fake.onnx", "garbage"),
        "mat": ("nyu_depth_v2_labeled.mat", "MATLAB 5.0" + "\x00" * 100),
        "file": ("a-file", "x"),
        "image": ("photo.png", ""),
    }
    name, text = files[kind]
    (tmp / name).write_text(text)
    return tmp / name


# (id, command template, what the one line must name, setup)
# {blocks} {run}: the ground; {tmp}: this case's folder; {bad}: made by the setup;
# {out}: where the command would write (must not exist afterwards)
CASES = [
    # train: the dataset
    (
        "train-size-mismatch",
        "train --config realtime --data {bad} --out {out}",
        "000.png: label is 10x10",
        "data:size",
    ),
    (
        "train-32-bit-labels",
        "train --config realtime --data {bad} --out {out}",
        "000.png: label ids must be in 0..65535",
        "data:label32",
    ),
    (
        "train-float-labels",
        "train --config realtime --data {bad} --out {out}",
        "000.png: label ids must be 8- or 16-bit integers",
        "data:float",
    ),
    (
        "train-colour-label",
        "train --config realtime --data {bad} --out {out}",
        "000.png: a label image must be single-channel",
        "data:colour-label",
    ),
    (
        "train-truncated-png",
        "train --config realtime --data {bad} --out {out}",
        "000.png: not a readable image",
        "data:truncated",
    ),
    (
        "train-fake-png",
        "train --config realtime --data {bad} --out {out}",
        "000.png: not a readable image",
        "data:fake",
    ),
    (
        "train-zero-byte-png",
        "train --config realtime --data {bad} --out {out}",
        "000.png: empty file",
        "data:zero",
    ),
    (
        "train-missing-png",
        "train --config realtime --data {bad} --out {out}",
        "000.png: not found",
        "data:missing",
    ),
    (
        "train-worker-truncated",
        "train --config realtime --data {bad} --out {out} --set data.workers=1",
        "000.png: not a readable image",
        "data:truncated",
    ),
    (
        "train-id-dotdot",
        "train --config realtime --data {bad} --out {out}",
        "'../../etc/passwd'",
        "data:dotdot",
    ),
    (
        "train-id-absolute",
        "train --config realtime --data {bad} --out {out}",
        "'/etc/passwd'",
        "data:absolute",
    ),
    (
        "train-dataset-json-list",
        "train --config realtime --data {bad} --out {out}",
        "dataset.json: expected a JSON object",
        "data:json-list",
    ),
    (
        "train-dataset-json-broken",
        "train --config realtime --data {bad} --out {out}",
        "dataset.json: not valid JSON",
        "data:not-json",
    ),
    (
        "train-splits-not-lists",
        "train --config realtime --data {bad} --out {out}",
        "dataset.json: split set 'default'",
        "data:splits-str",
    ),
    (
        "train-no-dataset",
        "train --config realtime --data {tmp}/nowhere --out {out}",
        "nowhere",
        None,
    ),
    # train: options and recipes
    (
        "train-epochs-0",
        "train --config realtime --data {blocks} --out {out} --set optim.epochs=0",
        "optim.epochs",
        None,
    ),
    (
        "train-lr-negative",
        "train --config realtime --data {blocks} --out {out} --set optim.lr=-1",
        "optim.lr",
        None,
    ),
    (
        "train-lr-huge",
        "train --config realtime --data {blocks} --out {out} --set optim.lr=1e38",
        "optim.lr must be in (0, 10]",
        None,
    ),
    (
        "train-lr-text",
        "train --config realtime --data {blocks} --out {out} --set optim.lr=abc",
        "override 'optim.lr=abc': expected float",
        None,
    ),
    (
        "train-crop-text",
        "train --config realtime --data {blocks} --out {out} --set data.crop=big",
        "override 'data.crop=big'",
        None,
    ),
    (
        "train-crop-odd",
        "train --config realtime --data {blocks} --out {out} --set data.crop=[33,40]",
        "data.crop",
        None,
    ),
    (
        "train-unknown-key",
        "train --config realtime --data {blocks} --out {out} --set optim.nope=1",
        "unknown key 'nope'",
        None,
    ),
    (
        "train-override-no-equals",
        "train --config realtime --data {blocks} --out {out} --set optim.lr",
        "expected key=value",
        None,
    ),
    (
        "train-seed-negative",
        "train --config realtime --data {blocks} --out {out} --set train.seed=-1",
        "train.seed",
        None,
    ),
    (
        "train-flip-maybe",
        "train --config realtime --data {blocks} --out {out} --set data.flip=maybe",
        "override 'data.flip=maybe'",
        None,
    ),
    (
        "train-batch-1",
        "train --config realtime --data {blocks} --out {out} --set data.batch_size=1",
        "data.batch_size",
        None,
    ),
    (
        "train-workers-negative",
        "train --config realtime --data {blocks} --out {out} --set data.workers=-1",
        "data.workers",
        None,
    ),
    (
        "train-unknown-model",
        "train --config realtime --data {blocks} --out {out} --set model.name=nope",
        "unknown model 'nope'",
        None,
    ),
    (
        "train-unknown-scheme",
        "train --config realtime --data {blocks} --out {out} --set data.scheme=nope",
        "unknown scheme 'nope'",
        None,
    ),
    (
        "train-unknown-recipe",
        "train --config nope --data {blocks} --out {out}",
        "unknown recipe 'nope'",
        None,
    ),
    (
        "train-broken-yaml",
        "train --config {bad} --data {blocks} --out {out}",
        "bad.yaml: not valid YAML",
        "file:yaml",
    ),
    (
        "train-yaml-list",
        "train --config {bad} --data {blocks} --out {out}",
        "list.yaml: expected a mapping",
        "file:yaml-list",
    ),
    (
        "train-yaml-section-number",
        "train --config {bad} --data {blocks} --out {out}",
        "section 'model' is not a mapping",
        "file:yaml-section",
    ),
    (
        "train-out-is-a-file",
        "train --config realtime --data {blocks} --out {bad}",
        "a-file",
        "file:file",
    ),
    (
        "train-out-holds-a-run",
        "train --config realtime --data {blocks} --out {run}",
        "already holds a run",
        None,
    ),
    ("train-resume-nothing", "train --resume {tmp}/nowhere", "no last.safetensors", None),
    # evaluate
    ("evaluate-no-run", "evaluate {tmp}/nowhere --data {blocks}", "nowhere", None),
    (
        "evaluate-fake-checkpoint",
        "evaluate {bad} --data {blocks}",
        "fake.safetensors: not a safetensors checkpoint",
        "file:ckpt",
    ),
    (
        "evaluate-unknown-split",
        "evaluate {run} --data {blocks} --split nope",
        "no split 'nope'",
        None,
    ),
    (
        "evaluate-unknown-protocol",
        "evaluate {run} --data {blocks} --protocol nope",
        "protocol",
        None,
    ),
    (
        "evaluate-unknown-collapse",
        "evaluate {run} --data {blocks} --collapse-to nope",
        "unknown scheme 'nope'",
        None,
    ),
    (
        "evaluate-json-is-a-folder",
        "evaluate {run} --data {blocks} --json {tmp}",
        "--json needs a file name",
        None,
    ),
    (
        "evaluate-truncated-image",
        "evaluate {run} --data {bad} --split train",
        "000.png: not a readable image",
        "data:truncated",
    ),
    # predict, export, benchmark
    (
        "predict-fake-onnx",
        "predict {bad} {blocks}/rgb --out {out}",
        "fake.onnx: not a readable ONNX file",
        "file:onnx",
    ),
    (
        "predict-only-bad-images",
        "predict {run} {bad} --out {out}",
        "photo.png: empty file",
        "file:image",
    ),
    (
        "predict-unknown-backend",
        "predict {run} {blocks}/rgb --out {out} --backend nope",
        "backend",
        None,
    ),
    ("export-size-text", "export {run} --out {tmp}/m.onnx --size abc", "size 'abc'", None),
    (
        "export-size-not-multiple",
        "export {run} --out {tmp}/m.onnx --size 33x50",
        "multiples of 32",
        None,
    ),
    ("export-int8-no-calib", "export {run} --out {tmp}/m.onnx --int8", "--calib", None),
    ("export-out-not-onnx", "export {run} --out {tmp}/model.txt", ".onnx", None),
    ("export-fake-checkpoint", "export {bad} --out {tmp}/m.onnx", "fake.safetensors", "file:ckpt"),
    ("benchmark-runs-0", "benchmark --runs 0", "--runs", None),
    ("benchmark-unknown-model", "benchmark --model nope", "'nope'", None),
    ("benchmark-size-zero", "benchmark --size 0x0 --backend torch", "size '0x0'", None),
    # data
    ("synth-n-0", "data synth --n 0 --out {out}", "n must be at least 1", None),
    ("synth-size-tiny", "data synth --n 4 --size 1x1 --out {out}", "too small", None),
    ("synth-out-is-a-file", "data synth --n 4 --out {bad}/rooms", "a-file", "file:file"),
    (
        "prepare-no-metadata",
        "data prepare nyuv2 --mat {bad} --meta {tmp} --out {out}",
        "classMapping40.mat: not found",
        "file:mat",
    ),
    (
        "import-no-folders",
        "data import --rgb {tmp}/x --labels {tmp}/y --space nyu40 --out {out}",
        "x: not a folder",
        None,
    ),
    (
        "import-unknown-space",
        "data import --rgb {blocks}/rgb --labels {blocks}/label --space nope --out {out}",
        "label space 'nope'",
        None,
    ),
    (
        "import-mismatched-sizes",
        "data import --rgb {bad}/rgb --labels {bad}/label --space nyu40 --out {out}",
        "000.png: label is 10x10",
        "data:size",
    ),
    ("stats-unknown-scheme", "data stats {blocks} --scheme nope", "unknown scheme 'nope'", None),
    ("reproduce-unknown-budget", "reproduce --budget nope --out {out}", "budget", None),
    ("reproduce-paper-without-data", "reproduce --budget paper --out {out}", "--data", None),
]


@pytest.mark.parametrize(
    ("command", "names", "setup"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_gets_one_clear_line(ground, tmp_path, command, names, setup):
    bad = None
    if setup:
        kind, what = setup.split(":")
        bad = broken_dataset(ground, tmp_path, what) if kind == "data" else bad_file(tmp_path, what)
    out = tmp_path / "out"
    places = {
        "blocks": ground["blocks"],
        "run": ground["run"],
        "tmp": tmp_path,
        "bad": bad,
        "out": out,
    }
    before = sorted(p.name for p in ground["run"].iterdir())
    parts = command.split()
    if parts[:2] == ["train", "--config"]:  # a tiny model, unless the case says otherwise
        parts = parts[:3] + TINY + parts[3:]
    result = runner.invoke(app, [part.format(**places) for part in parts])
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), f"raw {result.exception!r}"
    assert "Traceback" not in result.output
    errors = [
        line for line in result.output.splitlines() if line.startswith(("error:", "skipped "))
    ]
    assert len(errors) == 1 and names in errors[0], result.output
    assert not out.exists(), f"{out} was left behind"
    assert not list(tmp_path.rglob(".*partial-*")) and not list(tmp_path.rglob(".*.tmp"))
    assert sorted(p.name for p in ground["run"].iterdir()) == before


def test_worker_errors_come_back_as_their_own_message():
    dumped = (
        "Caught DatasetError in DataLoader worker process 0.\nOriginal Traceback (most recent "
        'call last):\n  File "x.py", line 3, in f\n    raise DatasetError(m)\n'
        "indoorseg.errors.DatasetError: /data/rgb/7.png: not a readable image\n"
    )
    assert unwrap_worker(dumped) == "/data/rgb/7.png: not a readable image"
    assert unwrap_worker("plain message") == "plain message"


def test_debug_shows_the_traceback(ground, tmp_path, monkeypatch):
    monkeypatch.setenv("INDOORSEG_DEBUG", "0")  # --debug sets it: put back afterwards
    args = ["evaluate", str(ground["run"]), "--data", str(ground["blocks"]), "--split", "nope"]
    quiet = runner.invoke(app, args)
    assert isinstance(quiet.exception, SystemExit)
    loud = runner.invoke(app, ["--debug", *args])
    assert not isinstance(loud.exception, SystemExit)  # the error itself, with its traceback
    assert "no split 'nope'" in str(loud.exception)


def test_an_unexpected_error_is_called_a_bug_with_exit_1(ground, monkeypatch):
    monkeypatch.delenv("INDOORSEG_DEBUG", raising=False)

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("indoorseg.evaluation.evaluate_model", broken)
    result = runner.invoke(app, ["evaluate", str(ground["run"]), "--data", str(ground["blocks"])])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert (
        "internal error: ZeroDivisionError" in result.output
        and "INDOORSEG_DEBUG=1" in result.output
    )


def test_synth_says_when_a_split_is_empty(tmp_path):
    result = runner.invoke(
        app,
        [
            "data",
            "synth",
            "--n",
            "3",
            "--size",
            "32x32",
            "--out",
            str(tmp_path / "rooms"),
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "val and test are empty at --n 3" in result.output


def inconsistent_checkpoint(path: Path, stored_spec: ModelSpec, weights_spec: ModelSpec) -> Path:
    """A checkpoint in layout3 whose metadata says ``stored_spec`` and whose tensors come
    from ``weights_spec``."""
    meta = checkpoint_meta(
        load_config(None, []), stored_spec, load_scheme("layout3"), epoch=1, step=0, metrics={}
    )
    save_checkpoint(path, Checkpoint(meta, build_model(weights_spec).state_dict()))
    return path


@pytest.mark.parametrize(
    ("stored", "weights", "message"),
    [
        (
            ("deeplabv3plus_mobilenet_v2", 41),
            ("deeplabv3plus_mobilenet_v2", 41),
            "network has 41 outputs but its scheme 'layout3' has 3 classes",
        ),
        (
            ("deeplabv3plus_resnet18", 3),
            ("deeplabv3plus_mobilenet_v2", 3),
            "weights do not fit deeplabv3plus_resnet18",
        ),
        (("deeplabv3plus_mobilenet_v2", 3), ("deeplabv3plus_mobilenet_v2", 4), "of another shape"),
    ],
)
def test_a_checkpoint_that_does_not_add_up_is_refused_in_one_short_line(
    ground, tmp_path, stored, weights, message
):
    ckpt = inconsistent_checkpoint(
        tmp_path / "odd.safetensors", ModelSpec(*stored), ModelSpec(*weights)
    )
    result = runner.invoke(app, ["evaluate", str(ckpt), "--data", str(ground["blocks"])])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert message in result.output and len(result.output) < 600, result.output
    assert "weights_only" not in result.output


def test_a_checkpoint_with_an_impossible_normalisation_is_not_scored(blocks, tmp_path):
    spec = ModelSpec("deeplabv3plus_mobilenet_v2", 3)
    meta = checkpoint_meta(load_config(None, []), spec, load_scheme("layout3"), epoch=1)
    meta["normalization"]["std"] = [0.229, 0.0, 0.225]  # green divided by zero
    run = tmp_path / "run"
    save_checkpoint(run / "best.safetensors", Checkpoint(meta, build_model(spec).state_dict()))
    result = runner.invoke(app, ["evaluate", str(run), "--data", str(blocks)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    message = "normalization.std must be 3 positive finite numbers, got [0.229, 0.0, 0.225]"
    assert message in result.output and "best.safetensors" in result.output
    assert not (run / "eval").exists()


def test_stale_partial_folders_of_dead_processes_are_removed(tmp_path):
    dead = tmp_path / ".rooms.partial-999999999-abc"  # no such process
    live = tmp_path / f".rooms.partial-{os.getpid()}-def"
    other = tmp_path / ".other.partial-999999999-ghi"
    for folder in (dead, live, other):
        folder.mkdir()
    with atomic_folder(tmp_path / "rooms") as tmp:
        (tmp / "x").write_text("x")
    assert not dead.exists() and live.exists() and other.exists()
    assert (tmp_path / "rooms" / "x").is_file()


def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(ground, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(ground["run"], run)  # one good epoch
    good = (run / "last.safetensors").read_bytes()
    config = run / "config.yaml"  # one epoch more, whose loss goes NaN
    config.write_text(config.read_text().replace("epochs: 1", "epochs: 2"))
    cross_entropy = torch.nn.functional.cross_entropy
    monkeypatch.setattr(
        "indoorseg.engine.F.cross_entropy", lambda *a, **k: cross_entropy(*a, **k) * float("nan")
    )
    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "training diverged in epoch 2 at step 1 (loss nan)" in result.output
    assert "last.safetensors is the last good state" in result.output
    assert (run / "last.safetensors").read_bytes() == good


def test_a_new_run_that_diverges_leaves_nothing(ground, tmp_path, monkeypatch):
    cross_entropy = torch.nn.functional.cross_entropy
    monkeypatch.setattr(
        "indoorseg.engine.F.cross_entropy", lambda *a, **k: cross_entropy(*a, **k) * float("inf")
    )
    result = runner.invoke(
        app,
        [
            "train",
            "--config",
            "realtime",
            "--data",
            str(ground["blocks"]),
            "--out",
            str(tmp_path / "run"),
            *TINY,
        ],
    )
    assert result.exit_code == 2 and "training diverged in epoch 1 at step 1" in result.output
    assert "no checkpoint was kept" in result.output and not (tmp_path / "run").exists()
