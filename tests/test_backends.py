"""The backend registry, and every model file scored and timed through it: each registered
name opens the runner it names and says the precision that really runs; ``evaluate`` scores
an exported (and an int8) ``.onnx`` like its checkpoint; ``auto`` picks only checked rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from indoorseg.backends import (
    BACKENDS,
    OnnxRuntimeBackend,
    OpenVINOBackend,
    Options,
    TorchBackend,
    fastest_measured,
    open_backend,
    open_model_file,
)
from indoorseg.cli import app
from indoorseg.deploy.benchmark import AUTO_MIN_AGREEMENT, Subject, record_fastest
from indoorseg.deploy.export import export
from indoorseg.evaluation import evaluate_model

RUNNERS = {
    "torch": TorchBackend,
    "torch-channels_last": TorchBackend,
    "torch-bf16": TorchBackend,
    "onnxruntime": OnnxRuntimeBackend,
    "openvino": OpenVINOBackend,
    "openvino-bf16": OpenVINOBackend,
}
PRECISIONS = {"torch-bf16": "bf16", "openvino-bf16": "bf16"}  # the rest: fp32 on a CPU


@pytest.fixture(scope="module")
def model_files(tmp_path_factory, request):
    """A checkpoint, its fp32 ``.onnx`` and its int8 ``.onnx`` (any input size)."""
    from conftest import varied_checkpoint, write_blocks_dataset

    root = tmp_path_factory.mktemp("models")
    blocks = write_blocks_dataset(root / "blocks")
    ckpt = varied_checkpoint(root / "model.safetensors", 30.0, crop=(32, 64))
    export(ckpt, root / "model.onnx", dynamic=True, size=(64, 96))
    common = dict(dynamic=True, size=(64, 96), int8=True, calib=blocks, allow_drop=True)
    export(ckpt, root / "model-int8.onnx", **common)
    return {
        "ckpt": ckpt,
        "onnx": root / "model.onnx",
        "int8": root / "model-int8.onnx",
        "blocks": blocks,
    }


@pytest.mark.parametrize("name", list(BACKENDS))
def test_each_backend_runs_what_it_names_at_the_precision_it_says(model_files, name):
    kind = BACKENDS[name]
    if kind.missing(Options()):
        pytest.skip(f"{name} cannot run here: {kind.missing(Options())}")
    backend, _ = open_backend(open_model_file(model_files["ckpt"]), name)
    assert isinstance(backend, RUNNERS[name]) and backend.name == name
    assert backend.precision == PRECISIONS.get(name, "fp32")
    logits = backend(torch.zeros(1, 3, 64, 96))
    assert logits.shape == (1, 3, 64, 96) and logits.dtype == torch.float32


def test_an_onnx_file_runs_only_on_onnx_backends_and_int8_says_so(model_files):
    onnx, int8 = open_model_file(model_files["onnx"]), open_model_file(model_files["int8"])
    with pytest.raises(ValueError, match="runs on onnxruntime or openvino, not torch"):
        open_backend(onnx, "torch")
    assert open_backend(int8, "onnxruntime")[0].precision == "int8"
    if not BACKENDS["openvino"].missing(Options()):
        assert open_backend(int8, "openvino")[0].precision == "int8+fp32"
    with pytest.raises(ValueError, match="backend must be auto or one of"):
        open_backend(onnx, "tensorrt")


def test_evaluate_scores_an_exported_model_like_its_checkpoint(model_files):
    blocks = model_files["blocks"]
    reference = evaluate_model(model_files["ckpt"], blocks, device="cpu", workers=0)
    exported = evaluate_model(model_files["onnx"], blocks, workers=0)
    assert exported["backend"] == "onnxruntime" and reference["backend"] == "torch"
    assert 0 < reference["metrics"]["mean_iou"] < 1
    # export's parity: 99.9 % of pixels of the same class, so the scores barely move
    assert exported["metrics"]["mean_iou"] == pytest.approx(
        reference["metrics"]["mean_iou"], abs=0.002
    )
    onnx = model_files["onnx"]
    assert Path(exported["out_dir"]).is_relative_to(onnx.parent / "eval" / onnx.stem)


def test_the_evaluate_command_takes_an_int8_onnx_and_the_paper_crop(model_files, tmp_path):
    int8, blocks = model_files["int8"], model_files["blocks"]
    args = ["evaluate", str(int8), "--data", str(blocks), "--json", str(tmp_path / "r.json")]
    result = CliRunner().invoke(app, [*args, "--protocol", "paper", "--top-left-crop"])
    assert result.exit_code == 0, result.output
    scored = json.loads((tmp_path / "r.json").read_text())
    assert scored["precision"] == "int8" and scored["top_left_crop"] == [32, 64]
    assert 0 < scored["metrics"]["mean_iou"] <= 1


def rows(*specs) -> list[dict]:
    return [
        {"backend": b, "precision": p, "median_ms": ms, "agreement": a, "auto": b in BACKENDS}
        for b, p, ms, a in specs
    ]


def test_auto_picks_the_fastest_backend_whose_classes_were_checked(
    model_files, tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    subject = Subject(
        "m", open_model_file(model_files["ckpt"]), None, 1.0, model_files["ckpt"], [], None
    )
    below = AUTO_MIN_AGREEMENT - 0.01
    found = rows(
        ("torch", "fp32", 50.0, 1.0),
        ("torch-bf16", "bf16", 20.0, below),
        ("onnxruntime-int8", "int8", 10.0, 1.0),
        ("onnxruntime", "fp32", 40.0, 1.0),
    )
    assert record_fastest(subject, found)["backend"] == "onnxruntime"
    assert fastest_measured(model_files["ckpt"]) == "onnxruntime"
    found[1]["agreement"] = AUTO_MIN_AGREEMENT
    assert record_fastest(subject, found)["backend"] == "torch-bf16"
    if BACKENDS["torch-bf16"].missing(Options()) is None:
        assert fastest_measured(model_files["ckpt"]) == "torch-bf16"


def test_the_backends_command_lists_the_registry():
    result = CliRunner().invoke(app, ["backends"])
    assert result.exit_code == 0, result.output
    for name in BACKENDS:
        assert name in result.output
    assert np.all([name in result.output for name in ("torch", "openvino")])
