"""``benchmark``: how fast a model serves masks on this machine, on every backend that applies.

Each backend is timed through ``Segmenter.predict`` (normalising, the network, class ids:
what a user's call costs) on one image of the asked size, after warm-up runs; the
figures are medians and 90th percentiles of ``runs`` calls. Against the model's FLOPs and
a matmul probe of the machine's peak, each row says how much of the machine it uses.
The fastest fp32 backend is recorded for ``Segmenter.load(..., backend="auto")``.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from indoorseg.classes import load_scheme
from indoorseg.deploy.backends import (
    ModelInfo,
    OnnxRuntimeBackend,
    OpenVINOBackend,
    TorchBackend,
    checkpoint_meta,
    choices_file,
    model_key,
    variant_runtime,
)
from indoorseg.deploy.export import quantize
from indoorseg.deploy.machine import machine_summary, matmul_peak_gflops, median_p90, model_gflops
from indoorseg.deploy.onnx_export import read_onnx_meta, write_onnx
from indoorseg.deploy.segmenter import Segmenter, card_from
from indoorseg.errors import IndoorsegError, UsageError
from indoorseg.files import atomic_write_text
from indoorseg.inference import LoadedModel, load_model
from indoorseg.models import ModelSpec, build_model, model_names
from indoorseg.runtime import make_runtime

ALL = ("torch", "torch-channels_last", "torch-bf16", "onnxruntime", "onnxruntime-int8",
       "openvino", "openvino-int8")  # fmt: skip


def benchmark(
    model: str = "deeplabv3plus_mobilenet_v2",
    size: tuple[int, int] = (480, 640),
    runs: int = 5,
    warmup: int = 2,
    backends: tuple[str, ...] = ALL,
    calib: str | Path | None = None,
    baseline: str | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> dict:
    """Time ``model`` (a registry name, with random weights and 3 classes; a run folder or
    checkpoint; or an ``.onnx`` file) on each of ``backends`` that applies here.

    Returns a dict with ``machine``, ``model`` (name, GFLOPs), ``peak_gflops`` and ``rows``
    (backend, precision, median and p90 ms, images/s, speed-up over torch, GFLOP/s, % of
    peak, or ``skipped`` with the reason). With ``baseline`` (another model, in the same
    forms), that model's torch eager fp32 is timed in the same run as ``baseline`` and
    every row gets its speed-up over it.
    """
    unknown = [b for b in backends if b not in ALL]
    if unknown:
        raise UsageError(f"unknown backend {unknown[0]!r}; valid: {', '.join(ALL)}")
    machine = machine_summary()
    say(f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['vector']}, "
        f"native bf16 {'yes' if machine['native_bf16'] else 'no'}")  # fmt: skip
    image = sample_image(size)
    with tempfile.TemporaryDirectory(prefix="indoorseg-bench-") as tmp:
        subject = Subject.open(model, Path(tmp), size)
        peak = matmul_peak_gflops()
        say(f"{subject.name}: {subject.gflops:.1f} GFLOPs at {size[0]}x{size[1]}; "
            f"matmul peak {peak:.0f} GFLOP/s")  # fmt: skip
        reference = None
        if baseline is not None:
            reference = time_baseline(baseline, Path(tmp) / "baseline", image, runs, warmup,
                                      machine, say)  # fmt: skip
        rows = []
        for name in backends:
            row = time_backend(subject, name, image, runs, warmup, machine, calib, say)
            rows.append(row)
    _add_ratios(rows, subject.gflops, peak, reference)
    result = {"machine": machine, "model": {"name": subject.name, "source": str(model),
              "gflops": subject.gflops, "size": list(size)}, "peak_gflops": peak,
              "runs": runs, "rows": rows}  # fmt: skip
    if reference is not None:
        result["baseline"] = reference
    record_fastest(model, rows)
    return result


def time_baseline(model: str, tmp: Path, image, runs, warmup, machine, say) -> dict:
    """The reference row: ``model`` on torch eager fp32, timed like every other row."""
    tmp.mkdir()
    subject = Subject.open(model, tmp, image.shape[:2])
    if subject.module is None:
        raise UsageError(f"the baseline {model!r} must be a model name, a run folder or a "
                         "checkpoint: it is timed on torch eager fp32")  # fmt: skip
    row = time_backend(subject, "torch", image, runs, warmup, machine, None,
                       lambda line: say(f"baseline {subject.name} {line}"))  # fmt: skip
    return {"name": subject.name, "source": str(model), "gflops": subject.gflops} | row


class Subject:
    """The model under test: a torch module (when there is one), an fp32 ONNX file, a card."""

    def __init__(self, name, module, onnx_path, meta, gflops) -> None:
        self.name, self.module, self.onnx, self.meta, self.gflops = (
            name, module, onnx_path, meta, gflops)  # fmt: skip
        self.card = card_from(ModelInfo(onnx_path, meta))

    @classmethod
    def open(cls, model: str, tmp: Path, size: tuple[int, int]) -> Subject:
        path = Path(model)
        if path.suffix == ".onnx":
            meta = read_onnx_meta(path)
            return cls(meta["model"]["name"], None, path, meta, float("nan"))
        if model in model_names():
            spec = ModelSpec(model, 3)
            loaded = LoadedModel(build_model(spec).eval(), _fake_record(spec))
        elif path.exists():
            loaded = load_model(path, make_runtime("cpu"))
        else:
            raise UsageError(f"model must be a model name, a run folder, a checkpoint or an "
                             f".onnx file; {model!r} is none of them")  # fmt: skip
        meta = checkpoint_meta(loaded)
        onnx_path = write_onnx(loaded.model, tmp / "model.onnx", meta, size, dynamic=False)
        meta = read_onnx_meta(onnx_path)
        return cls(
            meta["model"]["name"], loaded.model, onnx_path, meta, model_gflops(loaded.model, size)
        )


def _fake_record(spec: ModelSpec):
    """The record of an untrained registry model: layout3, ImageNet normalisation."""
    from indoorseg.checkpoint import ModelRecord
    from indoorseg.data.dataset import IMAGENET_MEAN, IMAGENET_STD

    norm = (list(IMAGENET_MEAN), list(IMAGENET_STD))
    return ModelRecord(Path(spec.name), spec, load_scheme("layout3"), {}, {}, norm)


def sample_image(size: tuple[int, int]) -> np.ndarray:
    """A rendered synthetic room at ``size``: real-looking input for timing."""
    from indoorseg.data.synthetic.render import render_room

    return render_room(0, 0, size).rgb


def time_backend(subject, name, image, runs, warmup, machine, calib, say) -> dict:
    """One row: the backend's timings, or why it was skipped."""
    precision = "int8" if name.endswith("-int8") else "bf16" if name == "torch-bf16" else "fp32"
    row = {"backend": name, "precision": precision}
    reason = skip_reason(subject, name, machine)
    if reason:
        say(f"{name}: skipped ({reason})")
        return row | {"skipped": reason}
    try:
        seg = Segmenter(open_variant(subject, name, image.shape[:2], calib, say), subject.card)
    except IndoorsegError as err:
        say(f"{name}: skipped ({err.message})")
        return row | {"skipped": err.message}
    for _ in range(warmup):
        seg.predict(image)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        seg.predict(image)
        times.append(1000 * (time.perf_counter() - start))
    median, p90 = median_p90(times)
    say(f"{name}: median {median:.1f} ms, p90 {p90:.1f} ms")
    return row | {"median_ms": median, "p90_ms": p90, "images_per_s": 1000 / median}


def skip_reason(subject: Subject, name: str, machine: dict) -> str | None:
    if name.startswith("torch") and subject.module is None:
        return "an ONNX file has no PyTorch model"
    if name == "torch-bf16" and not machine["native_bf16"]:
        return "this CPU has no native bf16 (emulated bf16 is several times slower than fp32)"
    if name.startswith("openvino"):
        try:
            import openvino  # noqa: F401
        except ImportError:
            return "the openvino package is not installed (pip install 'indoorseg[openvino]')"
    return None


def open_variant(subject: Subject, name: str, size, calib, say):
    """The backend object for one benchmark row (int8 rows quantize the ONNX file first)."""
    if name.startswith("torch"):
        return TorchBackend(subject.module, variant_runtime(name, "cpu"), name)
    path = subject.onnx
    if name.endswith("-int8") and subject.meta.get("precision") != "int8":
        path = int8_file(subject, size, calib, say)
    backend = OnnxRuntimeBackend(path) if name.startswith("onnxruntime") else OpenVINOBackend(path)
    backend.name = name
    return backend


def int8_file(subject: Subject, size, calib, say) -> Path:
    """The subject quantized to int8 (once), calibrated on ``calib`` or rendered rooms."""
    path = subject.onnx.with_name("model-int8.onnx")
    if not path.exists():
        if calib:
            from indoorseg.deploy.accuracy import folder_images

            images = folder_images(calib, 16)
        else:
            from indoorseg.data.synthetic.render import render_room

            images = [render_room(1, i, size).rgb for i in range(16)]
        seg = Segmenter(OnnxRuntimeBackend(subject.onnx), subject.card)
        quantize(subject.onnx, path, seg, images, say)
    return path


def _add_ratios(rows: list[dict], gflops: float, peak: float, reference: dict | None) -> None:
    eager = next((r["median_ms"] for r in rows if r["backend"] == "torch" and "median_ms" in r),
                 None)  # fmt: skip
    for row in rows:
        if "median_ms" not in row:
            continue
        if eager:
            row["speedup_vs_torch"] = eager / row["median_ms"]
        if reference is not None:
            row["speedup_vs_baseline"] = reference["median_ms"] / row["median_ms"]
        if gflops == gflops:  # not NaN
            row["gflops_per_s"] = gflops / (row["median_ms"] / 1000)
            row["percent_of_peak"] = 100 * row["gflops_per_s"] / peak


def record_fastest(model: str, rows: list[dict]) -> None:
    """Remember the fastest fp32 backend for this model file (not for registry names)."""
    path = Path(model)
    timed = [r for r in rows if "median_ms" in r and r["precision"] == "fp32"]
    if not timed or not path.exists():
        return
    best = min(timed, key=lambda r: r["median_ms"])["backend"]
    file = choices_file()
    try:
        choices = json.loads(file.read_text()) if file.exists() else {}
    except ValueError:
        choices = {}
    choices[model_key(path)] = best
    atomic_write_text(file, json.dumps(choices, indent=2) + "\n")


def training_speed(
    model_name: str,
    classes=(3, 40, 894),
    crop=(256, 256),
    batch_size: int = 4,
    steps: int = 2,
    say: Callable[[str], None] = lambda line: None,
) -> list[dict]:
    """Training images/s (data and compute, integer labels) at each class count, on
    rendered rooms; the class count changes only the last layer and the loss."""
    from indoorseg.data.synthetic.folder import synthesize
    from indoorseg.epoch_time import time_steps

    runtime = make_runtime("auto", amp="off", channels_last="off")
    rows = []
    with tempfile.TemporaryDirectory(prefix="indoorseg-bench-train-") as tmp:
        root = synthesize(Path(tmp) / "rooms", 8, size=(256, 320), seed=0, workers=1)
        for count in classes:
            step = time_steps(root, model_name, count, "integer", runtime, batch_size,
                              tuple(crop), steps)  # fmt: skip
            per_s = batch_size / (step.data_s + step.compute_s)
            say(f"training {count} classes: {per_s:.2f} images/s")
            rows.append({"classes": count, "images_per_s": per_s, "data_s": step.data_s,
                         "compute_s": step.compute_s, "batch_size": batch_size,
                         "crop": list(crop), "device": str(runtime.device)})  # fmt: skip
    return rows


def markdown(result: dict) -> str:
    """The benchmark as a Markdown table with its machine and model."""
    m, model, ref = result["machine"], result["model"], result.get("baseline")
    lines = [
        f"Model `{model['name']}` at {model['size'][0]}x{model['size'][1]}: "
        f"{model['gflops']:.1f} GFLOPs. Machine: {m['cpu']}, {m['cores']} cores, "
        f"{m['vector']} (native bf16: {'yes' if m['native_bf16'] else 'no'}, VNNI: "
        f"{'yes' if m['vnni'] else 'no'}), fp32 matmul peak {result['peak_gflops']:.0f} GFLOP/s. "
        f"Median and p90 of {result['runs']} calls of Segmenter.predict. GFLOP/s is the "
        "model's fp32 FLOPs over the time taken: int8 and fast convolution algorithms "
        "(Winograd) can pass the fp32 peak.",
    ]
    if ref is not None and "median_ms" in ref:
        lines.append(f"Baseline `{ref['name']}` on torch eager fp32 in the same run: median "
                     f"{ref['median_ms']:.1f} ms, p90 {ref['p90_ms']:.1f} ms.")  # fmt: skip
    header = ["backend", "precision", "median ms", "p90 ms", "images/s", "vs torch"]
    header += ["vs baseline"] if ref is not None else []
    header += ["GFLOP/s", "% of fp32 peak"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in result["rows"]:
        if "skipped" in r:
            lines.append(f"| {r['backend']} | {r['precision']} | skipped: {r['skipped']} |"
                         + " |" * (len(header) - 3))  # fmt: skip
            continue
        cells = [f"{r['median_ms']:.1f}", f"{r['p90_ms']:.1f}", f"{r['images_per_s']:.1f}",
                 _fmt(r.get("speedup_vs_torch"), "{:.2f}x")]  # fmt: skip
        cells += [_fmt(r.get("speedup_vs_baseline"), "{:.2f}x")] if ref is not None else []
        cells += [_fmt(r.get("gflops_per_s"), "{:.0f}"), _fmt(r.get("percent_of_peak"), "{:.0f} %")]
        lines.append(f"| {r['backend']} | {r['precision']} | " + " | ".join(cells) + " |")
    if result.get("training"):
        lines += ["", "| training, classes | images/s | data s/step | compute s/step |",
                  "| --- | --- | --- | --- |"]  # fmt: skip
        for t in result["training"]:
            lines.append(f"| {t['classes']} | {t['images_per_s']:.2f} | {t['data_s']:.3f} "
                         f"| {t['compute_s']:.3f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _fmt(value, pattern: str) -> str:
    return "" if value is None else pattern.format(value)
