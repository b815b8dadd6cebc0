"""Using a trained model anywhere: Segmenter on each backend, predict, export, benchmark."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from indoorseg.backends import BACKENDS, Options
from indoorseg.checkpoint import Checkpoint, checkpoint_meta, load_checkpoint, save_checkpoint
from indoorseg.classes import load_scheme
from indoorseg.cli import app
from indoorseg.config import load_config
from indoorseg.deploy.benchmark import benchmark, markdown
from indoorseg.deploy.export import ExportResult, check_int8, export
from indoorseg.deploy.parity import random_images
from indoorseg.deploy.sources import expand_inputs
from indoorseg.errors import ExportError, InputError, UsageError
from indoorseg.images import IMAGENET, read_image
from indoorseg.inference import ModelCard, Segmenter
from indoorseg.machine import instruction_set, median_p90
from indoorseg.models import ModelSpec, build_model
from indoorseg.onnx_file import read_onnx_meta

from conftest import checkpoint_network, reference_logits, shared_nyu

runner = CliRunner()


def random_checkpoint(path: Path, scheme_name: str = "layout3", seed: int = 0) -> Path:
    """An untrained MobileNetV2 DeepLabv3+ whose classes vary over an image."""
    torch.manual_seed(seed)
    scheme = load_scheme(scheme_name)
    spec = ModelSpec("deeplabv3plus_mobilenet_v2", scheme.num_classes)
    model = build_model(spec)
    meta = checkpoint_meta(load_config(None, []), spec, scheme, epoch=1, step=0, metrics={})
    save_checkpoint(path, Checkpoint(meta, model.state_dict()))
    return path


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a == b).mean())


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A checkpoint and its dynamic-size ONNX export (exported once: it takes seconds)."""
    root = tmp_path_factory.mktemp("exported")
    ckpt = random_checkpoint(root / "model.safetensors")
    result = export(ckpt, root / "model.onnx", dynamic=True, size=(64, 96))
    return ckpt, root / "model.onnx", result


# --- reading images ---------------------------------------------------------------------


def test_images_of_every_kind_come_back_as_upright_rgb(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full((20, 30), 128, np.uint8)])).save(tmp_path / "a.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(tmp_path / "deep.png")
    rotated = Image.fromarray(rgb)
    exif = rotated.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    rotated.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    gray = read_image(tmp_path / "gray.png")
    assert gray.shape == (20, 30, 3) and (gray[..., 0] == rgb[..., 0]).all()
    assert (read_image(tmp_path / "a.png") == rgb).all()
    deep = read_image(tmp_path / "deep.png")
    assert deep.dtype == np.uint8 and (deep[..., 1] == rgb[..., 0]).all()
    assert read_image(tmp_path / "rot.jpg").shape == (30, 20, 3)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"hello, not an image", "not a readable image \\(unknown format"),
        (None, "not a readable image"),
    ],
)
def test_bad_image_files_name_the_file_and_the_reason(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    if content is None:  # a truncated PNG
        Image.fromarray(np.zeros((40, 40, 3), np.uint8) + 7).save(path)
        content = path.read_bytes()[:60]
    path.write_bytes(content)
    with pytest.raises(InputError, match=f"bad.png: {reason}"):
        read_image(path)


def test_inputs_expand_folders_and_globs_and_report_what_matches_nothing(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "empty").mkdir()
    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / "imgs" / name).write_bytes(b"x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.png").write_bytes(b"x")
    sources, problems = expand_inputs(
        [
            str(tmp_path / "imgs"),
            str(tmp_path / "other" / "*.png"),
            str(tmp_path / "empty"),
            str(tmp_path / "missing.png"),
        ]
    )
    assert [s.name for s in sources] == ["a", "b", "a-2"]
    assert len(problems) == 2 and "no images or videos" in problems[0]
    assert "no such file" in problems[1]


# --- Segmenter --------------------------------------------------------------------------


def test_segmenter_keeps_any_size_and_gives_probabilities(tmp_path):
    seg = Segmenter.load(random_checkpoint(tmp_path / "m.safetensors"), backend="torch")
    image = np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    labels, probs = seg.predict(image, probabilities=True)
    assert labels.shape == (50, 70) and labels.dtype == np.uint8
    assert probs.shape == (3, 50, 70)
    assert np.allclose(probs.sum(0), 1, atol=1e-5)
    assert (probs.argmax(0) == labels).all()
    assert seg.predict(image[..., 0]).shape == (50, 70)  # grayscale
    assert seg.class_names == ["background", "object", "other"]
    small = Segmenter(seg.backend, seg.card, max_side=32)
    assert small.predict(image).shape == (50, 70)  # run smaller, restored to full size
    with pytest.raises(InputError, match="uint8"):
        seg.predict(image.astype(np.float32))


def test_segmenter_feeds_the_network_as_a_hand_normalised_rgb_image(exported):
    ckpt, onnx_path, _ = exported
    image = np.random.default_rng(4).integers(0, 256, (64, 96, 3), dtype=np.uint8)  # unpadded
    logits = reference_logits(checkpoint_network(ckpt), image)
    expected = torch.softmax(logits, 0).numpy()
    # this untrained network's logits vary by about 1e-4 over an image, and a swapped mean
    # and std or BGR input moves them by 2e-4: hence the tight tolerances
    for backend, path in (("torch", ckpt), ("onnxruntime", onnx_path)):
        seg = Segmenter.load(path, backend=backend)
        labels, probs = seg.predict(image, probabilities=True)
        np.testing.assert_allclose(seg.logits(image), logits, rtol=0, atol=2e-6, err_msg=backend)
        np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-6, err_msg=backend)
        assert (labels == expected.argmax(0)).all(), backend


def test_every_backend_gives_the_same_labels_on_real_images(exported):
    ckpt, onnx_path, _ = exported
    rgb_dir = shared_nyu("rgb")
    images = [read_image(p) for p in sorted(rgb_dir.glob("*.png"))[:4]]
    reference = Segmenter.load(ckpt, backend="torch")
    others = [Segmenter.load(onnx_path, backend="onnxruntime")]
    pytest.importorskip("openvino", reason="openvino not installed")
    others.append(Segmenter.load(onnx_path, backend="openvino"))
    for image in images:
        expected = reference.predict(image)
        for seg in others:
            assert agreement(seg.predict(image), expected) >= 0.999, seg.backend_name


def test_export_writes_metadata_and_passes_parity(exported):
    ckpt, onnx_path, result = exported
    meta = read_onnx_meta(onnx_path)
    assert meta["scheme"]["name"] == "layout3" and meta["input_size"] is None
    assert [c["name"] for c in meta["scheme"]["classes"]][:2] == ["background", "object"]
    assert result.parity["random"]["agreement"] >= 0.999
    assert result.parity["random"]["max_logit_diff"] < 1e-3
    image = np.random.default_rng(2).integers(0, 256, (45, 77, 3), dtype=np.uint8)
    a = Segmenter.load(ckpt, backend="torch").predict(image)
    b = Segmenter.load(onnx_path).predict(image)  # auto: onnxruntime for an .onnx file
    assert agreement(a, b) >= 0.999


def test_export_refuses_an_onnx_file_that_disagrees_with_pytorch(exported, tmp_path, monkeypatch):
    ckpt, onnx_path, _ = exported
    # PyTorch gets the network with its last layer sharpened, the ONNX file stays that of
    # the network before: they disagree on about one pixel in seven, as a faulty export would
    sharpened = load_checkpoint(ckpt)
    sharpened.model["segmentation_head.0.weight"] *= 300
    model_path = save_checkpoint(tmp_path / "sharpened.safetensors", sharpened)
    written = []

    def stale_onnx(model, path, meta, size, dynamic):
        written.append(shutil.copyfile(onnx_path, path))
        return Path(path)

    monkeypatch.setattr("indoorseg.deploy.export.write_onnx", stale_onnx)
    out = tmp_path / "sharpened.onnx"
    with pytest.raises(ExportError, match=r"agrees with PyTorch on only [5-9]\d\.\d+ %"):
        export(model_path, out, dynamic=True, size=(64, 96))
    assert written and not out.exists()


def test_an_onnx_file_with_an_impossible_normalisation_is_refused(exported, tmp_path):
    import onnx

    _, onnx_path, _ = exported
    proto = onnx.load_model(str(onnx_path))
    entry = next(p for p in proto.metadata_props if p.key == "indoorseg")
    meta = json.loads(entry.value)
    meta["normalization"]["std"] = [0.229, 0.224, -0.225]
    entry.value = json.dumps(meta)
    doctored = tmp_path / "doctored.onnx"
    onnx.save_model(proto, str(doctored))
    message = "normalization.std must be 3 positive finite numbers, got [0.229, 0.224, -0.225]"
    with pytest.raises(InputError) as info:
        Segmenter.load(doctored)
    assert str(info.value) == f"{doctored}: {message}"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "room.png")
    args = ["predict", str(doctored), str(tmp_path / "room.png"), "--out", str(tmp_path / "o")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "o").exists()


def test_int8_export_reports_its_accuracy_and_refuses_a_drop(blocks, tmp_path):
    ckpt = random_checkpoint(tmp_path / "m.safetensors")
    out = tmp_path / "m-int8.onnx"
    # a fixed size other than the images' (64x96): parity must compare network with network
    common = dict(size=(32, 64), int8=True, calib=blocks, eval_data=blocks)
    with pytest.raises(ExportError, match="loses"):
        export(ckpt, out, max_drop=-101.0, **common)  # must gain 101 points: impossible
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))
    result = export(ckpt, out, max_drop=100.0, **common)
    assert result.parity["real"]["agreement"] >= 0.999
    assert set(result.miou) == {"fp32", "int8"}
    assert read_onnx_meta(out)["precision"] == "int8"
    assert read_onnx_meta(out)["input_size"] == [32, 64]
    labels = Segmenter.load(out).predict(np.zeros((64, 96, 3), np.uint8))
    assert labels.shape == (64, 96)


def stub_segmenter(precision: str) -> Segmenter:
    """A segmenter of the given precision whose network answers zeros."""
    card = ModelCard(Path("stub"), {}, load_scheme("layout3"), IMAGENET, precision=precision)
    return Segmenter(lambda x: torch.zeros(1, 3, *x.shape[2:]), card)


@pytest.mark.parametrize(
    ("int8_miou", "allow_drop", "kept"),
    [(45.0, False, False), (49.5, False, True), (52.0, False, True), (45.0, True, True)],
    ids=["loses-5", "loses-0.5", "gains-2", "loses-5-allowed"],
)
def test_int8_gate_refuses_a_real_loss_and_keeps_a_gain(monkeypatch, int8_miou, allow_drop, kept):
    figures = {"fp32": 50.0, "int8": int8_miou}  # mean IoU (%) of each on the eval data

    def mean_iou(segmenter, root, split):
        return figures[segmenter.card.precision]

    monkeypatch.setattr("indoorseg.deploy.export.mean_iou", mean_iou)
    fp32, int8 = (stub_segmenter(precision) for precision in ("fp32", "int8"))
    result = ExportResult(Path("model.onnx"))
    gate = (result, fp32, int8, random_images(1, (32, 32)), ("eval-data", "test"))
    if kept:
        check_int8(*gate, (1.0, allow_drop), say=lambda line: None)
        assert result.miou == figures
    else:
        with pytest.raises(ExportError, match="int8 loses 5.00 points"):
            check_int8(*gate, (1.0, allow_drop), say=lambda line: None)


# --- predict ----------------------------------------------------------------------------


def write_video(path: Path, frames: int = 5, size=(48, 64)) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size[::-1])
    rng = np.random.default_rng(3)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    writer.release()
    return path


def test_predict_writes_masks_skips_bad_files_and_fails_at_the_end(exported, tmp_path):
    _, onnx_path, _ = exported
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(inputs / "room.png")
    (inputs / "broken.jpg").write_bytes(b"")
    write_video(inputs / "clip.mp4")
    out = tmp_path / "out"
    result = runner.invoke(app, ["predict", str(onnx_path), str(inputs), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "broken.jpg: empty file" in result.output
    summary = json.loads((out / "room.json").read_text())
    assert summary["width"] == 60 and summary["backend"] == "onnxruntime"
    assert abs(sum(summary["class_fractions"].values()) - 1) < 1e-4
    assert np.asarray(Image.open(out / "room.labels.png")).shape == (40, 60)
    assert (out / "room.mask.png").exists() and (out / "room.overlay.jpg").exists()
    video = json.loads((out / "clip.json").read_text())
    assert video["frames"] == 5 and video["frames_per_second"] > 0
    import cv2

    written = cv2.VideoCapture(str(out / "clip.overlay.mp4"))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert int(written.get(cv2.CAP_PROP_FRAME_WIDTH)) == 64
    assert not list(out.glob(".*"))  # nothing half-written


def test_predict_with_only_good_inputs_exits_zero(exported, tmp_path):
    ckpt, _, _ = exported
    Image.fromarray(np.full((33, 47), 200, np.uint8)).save(tmp_path / "gray.png")
    result = runner.invoke(
        app,
        [
            "predict",
            str(ckpt),
            str(tmp_path / "gray.png"),
            "--out",
            str(tmp_path / "o"),
            "--backend",
            "torch",
        ],
    )
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(tmp_path / "o" / "gray.labels.png")).shape == (33, 47)


def test_predict_refuses_a_file_that_is_not_a_model(tmp_path):
    (tmp_path / "fake.onnx").write_bytes(b"not onnx")
    result = runner.invoke(
        app, ["predict", str(tmp_path / "fake.onnx"), str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "fake.onnx: not a readable ONNX file" in result.output


# --- benchmark --------------------------------------------------------------------------


def test_bf16_is_never_picked_without_native_support(monkeypatch):
    machine = instruction_set({"avx2", "fma"})
    assert machine == {
        "vector": "avx2",
        "native_bf16": False,
        "vnni": False,
        "flags": ["avx2", "fma"],
    }
    assert instruction_set({"avx512f", "avx512_bf16"})["native_bf16"]
    assert instruction_set({"avx512f", "amx_bf16"})["native_bf16"]
    monkeypatch.setattr("indoorseg.backends.native_bf16", lambda: False)
    assert "no native bf16" in BACKENDS["torch-bf16"].missing(Options("cpu"))
    assert "no native bf16" in (BACKENDS["openvino-bf16"].missing(Options("cpu")) or "")
    assert BACKENDS["torch"].missing(Options("cpu")) is None
    monkeypatch.setattr("indoorseg.backends.native_bf16", lambda: True)
    assert BACKENDS["torch-bf16"].missing(Options("cpu")) is None


def test_median_and_p90():
    assert median_p90([5.0, 1.0, 3.0, 2.0, 4.0]) == (3.0, 5.0)
    assert median_p90(list(map(float, range(1, 11)))) == (5.5, 9.0)


def test_benchmark_times_backends_and_records_the_fastest(exported, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ckpt, _, _ = exported
    result = benchmark(
        str(ckpt), size=(64, 96), runs=2, warmup=1, backends=("torch", "onnxruntime", "torch-bf16")
    )
    rows = {r["backend"]: r for r in result["rows"]}
    assert rows["torch"]["median_ms"] > 0 and rows["torch"]["speedup_vs_torch"] == 1
    assert rows["onnxruntime"]["p90_ms"] >= rows["onnxruntime"]["median_ms"]
    assert result["model"]["gflops"] > 0 and result["peak_gflops"] > 0
    if not result["machine"]["native_bf16"]:
        assert "skipped" in rows["torch-bf16"]
    assert "| torch |" in markdown(result)
    fastest = min((rows["torch"], rows["onnxruntime"]), key=lambda r: r["median_ms"])
    assert Segmenter.load(ckpt).backend_name == fastest["backend"]


def test_benchmark_gives_speed_ups_over_a_baseline_timed_in_the_same_run(
    exported, tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ckpt, onnx_path, _ = exported
    result = benchmark(
        str(ckpt),
        size=(64, 96),
        runs=2,
        warmup=1,
        backends=("onnxruntime",),
        baseline="lraspp_mobilenet_v3_large",
    )
    ref, row = result["baseline"], result["rows"][0]
    assert ref["name"] == "lraspp_mobilenet_v3_large" and ref["backend"] == "torch"
    assert row["speedup_vs_baseline"] == pytest.approx(ref["median_ms"] / row["median_ms"])
    table = markdown(result)
    assert "vs baseline" in table and "Baseline `lraspp_mobilenet_v3_large`" in table
    with pytest.raises(UsageError, match="baseline"):
        benchmark(
            str(ckpt),
            size=(64, 96),
            runs=1,
            warmup=0,
            backends=("onnxruntime",),
            baseline=str(onnx_path),
        )


# --- the real-time model ----------------------------------------------------------------


def test_lraspp_with_a_lower_internal_resolution_serves_full_size(tmp_path):
    spec = ModelSpec("lraspp_mobilenet_v3_large", 3, input_scale=0.5)
    model = build_model(spec).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 96, 128)).shape == (1, 3, 96, 128)
    from torchvision.models import mobilenet_v3_large

    torch.save(mobilenet_v3_large().state_dict(), tmp_path / "mnv3.pth")
    loaded = build_model(ModelSpec("lraspp_mobilenet_v3_large", 3), tmp_path / "mnv3.pth")
    source = torch.load(tmp_path / "mnv3.pth", weights_only=True)
    assert torch.equal(loaded.encoder.features["0"][0].weight, source["features.0.0.weight"])
