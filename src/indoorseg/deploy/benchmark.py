"""``benchmark``: how fast a model serves masks on this machine, on every backend that applies.

Each row is a registered backend (``indoorseg.backends.BACKENDS``), or one of the ONNX
backends on the model quantized to int8 (``onnxruntime-int8``, ``openvino-int8``). It is
timed through ``Segmenter.predict`` (normalising, the network, class ids: what a user's
call costs) on one image of the asked size, after warm-up runs; the figures are medians and
90th percentiles of ``runs`` calls, against the model's FLOPs and a matmul probe of the
machine's peak. Each row says the precision that really ran (the backend's own report:
OpenVINO's CPU plugin, for one, runs bf16 on CPUs with native bf16 unless held to f32) and
how far its classes agree with fp32 PyTorch (or fp32 ONNX Runtime for an ``.onnx`` file).

The fastest row that ``Segmenter.load(..., backend="auto")`` can open again from the model
file alone, and whose classes agree with fp32 on at least ``AUTO_MIN_AGREEMENT`` of the
pixels, is recorded for this model file on this machine.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from indoorseg.backends import (
    BACKENDS,
    ModelFile,
    Options,
    choices_file,
    model_key,
    open_backend,
    open_model_file,
    record_meta,
)
from indoorseg.checkpoint import ModelRecord
from indoorseg.classes import load_scheme
from indoorseg.deploy.export import quantize
from indoorseg.deploy.parity import folder_images
from indoorseg.errors import IndoorsegError, UsageError
from indoorseg.files import atomic_write_text
from indoorseg.images import IMAGENET
from indoorseg.inference import Segmenter, card_from
from indoorseg.machine import machine_summary, matmul_peak_gflops, median_p90, model_gflops
from indoorseg.markdown import table
from indoorseg.models import ModelSpec, build_model, model_names
from indoorseg.onnx_file import read_onnx_meta, write_onnx
from indoorseg.runtime import make_runtime

INT8_ROWS = ("onnxruntime-int8", "openvino-int8")
ALL = (*BACKENDS, *INT8_ROWS)
AUTO_MIN_AGREEMENT = 0.99  # share of pixels of the fp32 class a backend must keep for auto
CHECK_IMAGES = 2


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
    """Time ``model`` (a registry name, with random weights and 3 classes; a run folder,
    checkpoint or ``.onnx`` file) on each of ``backends`` that applies here; ``baseline``
    (a name, run folder or checkpoint) on torch fp32 in the same run, to give each row's
    speed-up over it.

    Returns ``machine``, ``model`` (name, GFLOPs), ``peak_gflops``, ``rows`` (backend, the
    precision that ran, median and p90 ms, images/s, speed-ups, GFLOP/s, % of peak, share
    of pixels as fp32; or ``skipped`` and why) and ``auto`` (what ``backend="auto"`` gets).
    """
    unknown = [b for b in backends if b not in ALL]
    if unknown:
        raise UsageError(f"unknown backend {unknown[0]!r}; valid: {', '.join(ALL)}")
    machine = machine_summary()
    say(
        f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['vector']}, native "
        f"bf16 {_yes(machine['native_bf16'])}"
    )
    timing = Timing(sample_image(size), runs, warmup, say)
    with tempfile.TemporaryDirectory(prefix="indoorseg-bench-") as tmp:
        subject = Subject.open(model, Path(tmp), size, calib, say)
        peak = matmul_peak_gflops()
        say(
            f"{subject.name}: {subject.gflops:.1f} GFLOPs at {size[0]}x{size[1]}; "
            f"matmul peak {peak:.0f} GFLOP/s"
        )
        reference = time_baseline(baseline, Path(tmp), size, timing) if baseline else None
        rows = [time_row(subject, name, timing) for name in backends]
        auto = record_fastest(subject, rows)
    _add_ratios(rows, subject.gflops, peak, reference)
    about = dict(name=subject.name, source=str(model), gflops=subject.gflops, size=list(size))
    result = dict(machine=machine, model=about, peak_gflops=peak, runs=runs, rows=rows)
    result["auto"] = auto
    if reference is not None:
        result["baseline"] = reference
    return result


class Timing:
    """How each row is timed: ``runs`` calls on ``image`` after ``warmup`` calls."""

    def __init__(self, image: np.ndarray, runs: int, warmup: int, say) -> None:
        self.image, self.runs, self.warmup, self.say = image, runs, warmup, say

    def __call__(self, seg: Segmenter) -> dict:
        for _ in range(self.warmup):
            seg.predict(self.image)
        times = []
        for _ in range(self.runs):
            start = time.perf_counter()
            seg.predict(self.image)
            times.append(1000 * (time.perf_counter() - start))
        median, p90 = median_p90(times)
        return {"median_ms": median, "p90_ms": p90, "images_per_s": 1000 / median}


class Subject:
    """The model under test: its file (a checkpoint, made here for a registry name; or an
    ``.onnx``), the fixed-size fp32 ONNX file the ONNX rows run, and the images its rows'
    classes are checked on against fp32.

    Attributes:
        source: the model file given, or None for a registry name (nothing to record).
    """

    def __init__(self, name, model: ModelFile, onnx: ModelFile, gflops, source, check, say):
        self.name, self.model, self.onnx, self.gflops = name, model, onnx, gflops
        self.source, self.check, self.say = source, check, say
        self._int8: ModelFile | None = None
        self._reference: list[np.ndarray] | None = None

    @classmethod
    def open(cls, model: str, tmp: Path, size: tuple[int, int], calib, say) -> Subject:
        check = check_images(calib, size)
        path = Path(model)
        if path.suffix == ".onnx":
            file = open_model_file(path)
            return cls(file.meta["model"]["name"], file, file, float("nan"), path, check, say)
        if model in model_names():
            file, source = registry_model(model), None
        elif path.exists():
            file, source = open_model_file(path), path
        else:
            raise UsageError(
                f"model must be a model name, a run folder, a checkpoint or an "
                f".onnx file; {model!r} is none of them"
            )
        module = network_of(file)
        onnx_path = write_onnx(module, tmp / "model.onnx", file.meta, size, dynamic=False)
        onnx = ModelFile(onnx_path, read_onnx_meta(onnx_path))
        gflops = model_gflops(module, size)
        return cls(file.meta["model"]["name"], file, onnx, gflops, source, check, say)

    def segmenter(self, row: str) -> Segmenter:
        """The segmenter of one row (int8 rows quantize the fp32 ONNX file first, once)."""
        name = row.removesuffix("-int8")
        if row in INT8_ROWS:
            if self.onnx.meta.get("precision") == "int8":
                raise UsageError("the model file is int8 already: see its onnxruntime row")
            model = self.int8_file()
        else:
            model = self.onnx if BACKENDS[name].runs_onnx else self.model
        backend, model = open_backend(model, name, Options("cpu"))
        backend.name = row
        return Segmenter(backend, card_from(model.meta, model.path))

    def int8_file(self) -> ModelFile:
        if self._int8 is None:
            path = self.onnx.path.with_name("model-int8.onnx")
            images = [render_room(1, i, self.check[0].shape[:2]).rgb for i in range(16)]
            quantize(self.onnx.path, path, self.segmenter("onnxruntime"), images, self.say)
            self._int8 = ModelFile(path, read_onnx_meta(path))
        return self._int8

    def agreement(self, seg: Segmenter) -> float:
        """The share of pixels of the check images whose class is fp32's."""
        if self._reference is None:
            reference = self.segmenter("onnxruntime" if self.model.is_onnx else "torch")
            self._reference = [reference.predict(image) for image in self.check]
        same = sum(
            int((seg.predict(im) == ref).sum())
            for im, ref in zip(self.check, self._reference, strict=True)
        )
        return same / sum(ref.size for ref in self._reference)


def registry_model(name: str) -> ModelFile:
    """An untrained registry model, in layout3 with ImageNet normalisation."""
    spec = ModelSpec(name, 3)
    weights = build_model(spec).state_dict()
    record = ModelRecord(Path(name), spec, load_scheme("layout3"), weights, {}, IMAGENET)
    return ModelFile(record.path, record_meta(record), record)


def network_of(model: ModelFile):
    from indoorseg.backends import network

    return network(model.record, make_runtime("cpu", "off", "off"))


def sample_image(size: tuple[int, int]) -> np.ndarray:
    """A rendered synthetic room at ``size``: real-looking input for timing."""
    return render_room(0, 0, size).rgb


def render_room(seed: int, index: int, size: tuple[int, int]):
    from indoorseg.data.synthetic.render import render_room as render

    return render(seed, index, size)


def check_images(calib, size: tuple[int, int]) -> list[np.ndarray]:
    """The images each row's classes are compared on: ``calib``'s first (resized to
    ``size``), else rendered rooms."""
    if calib is None:
        return [render_room(2, i, size).rgb for i in range(CHECK_IMAGES)]
    from PIL import Image

    images = folder_images(calib, CHECK_IMAGES)
    return [np.asarray(Image.fromarray(im).resize(size[::-1], Image.BILINEAR)) for im in images]


def time_row(subject: Subject, name: str, timing: Timing) -> dict:
    """One row: the backend's timings, precision and agreement with fp32, or why it was
    skipped."""
    try:
        seg = subject.segmenter(name)
    except IndoorsegError as err:
        timing.say(f"{name}: skipped ({err.message})")
        return {"backend": name, "skipped": err.message}
    row = {"backend": name, "precision": seg.precision, **timing(seg)}
    row["agreement"] = subject.agreement(seg)
    row["auto"] = name in BACKENDS  # it opens again from the model file alone
    timing.say(
        f"{name} ({seg.precision}): median {row['median_ms']:.1f} ms, p90 "
        f"{row['p90_ms']:.1f} ms, {100 * row['agreement']:.2f} % of pixels as fp32"
    )
    return row


def time_baseline(model: str, tmp: Path, size: tuple[int, int], timing: Timing) -> dict:
    """The reference row: ``model`` on torch fp32, timed like every other row."""
    if Path(model).suffix == ".onnx":
        raise UsageError(
            f"the baseline {model!r} must be a model name, a run folder or a "
            "checkpoint: it is timed on torch fp32"
        )
    (tmp / "baseline").mkdir()
    subject = Subject.open(model, tmp / "baseline", size, None, timing.say)
    seg = subject.segmenter("torch")
    row = {"backend": "torch", "precision": seg.precision, **timing(seg)}
    timing.say(f"baseline {subject.name}: median {row['median_ms']:.1f} ms")
    return {"name": subject.name, "source": str(model), "gflops": subject.gflops} | row


def _add_ratios(rows: list[dict], gflops: float, peak: float, reference: dict | None) -> None:
    timed = {r["backend"]: r["median_ms"] for r in rows if "median_ms" in r}
    eager = timed.get("torch")
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


def record_fastest(subject: Subject, rows: list[dict]) -> dict | None:
    """Remember the fastest row ``backend="auto"`` may pick for this model file: one that
    opens from the file alone and keeps fp32's class on ``AUTO_MIN_AGREEMENT`` of pixels."""
    candidates = [r for r in rows if r.get("auto") and r["agreement"] >= AUTO_MIN_AGREEMENT]
    if not candidates or subject.source is None:
        return None
    best = min(candidates, key=lambda r: r["median_ms"])
    choice = {k: best[k] for k in ("backend", "precision", "median_ms", "agreement")}
    file = choices_file()
    try:
        choices = json.loads(file.read_text()) if file.exists() else {}
    except ValueError:
        choices = {}
    choices[model_key(subject.model.path)] = choice
    atomic_write_text(file, json.dumps(choices, indent=2) + "\n")
    return choice


def markdown(result: dict) -> str:
    """The benchmark as a Markdown table with its machine and model."""
    m, model, ref = result["machine"], result["model"], result.get("baseline")
    lines = [
        f"Model `{model['name']}` at {model['size'][0]}x{model['size'][1]}: "
        f"{model['gflops']:.1f} GFLOPs. Machine: {m['cpu']}, {m['cores']} cores, "
        f"{m['vector']} (native bf16: {_yes(m['native_bf16'])}, VNNI: {_yes(m['vnni'])}), "
        f"fp32 matmul peak {result['peak_gflops']:.0f} GFLOP/s. Median and p90 of "
        f"{result['runs']} calls of Segmenter.predict; precision is what the backend ran. "
        "GFLOP/s is the model's fp32 FLOPs over the time taken: bf16, int8 and fast "
        "convolution algorithms (Winograd) can pass the fp32 peak. 'as fp32': the share of "
        "pixels whose class is fp32's.",
    ]
    if ref is not None and "median_ms" in ref:
        lines.append(
            f"Baseline `{ref['name']}` on torch fp32 in the same run: median "
            f"{ref['median_ms']:.1f} ms, p90 {ref['p90_ms']:.1f} ms."
        )
    auto = result.get("auto")
    if auto:
        lines.append(f"Recorded for `--backend auto`: {auto['backend']} ({auto['precision']}).")
    header = ["backend", "precision", "median ms", "p90 ms", "images/s", "vs torch"]
    header += ["vs baseline"] if ref is not None else []
    header += ["GFLOP/s", "% of fp32 peak", "as fp32"]
    lines += ["", *table(header, [_cells(r, ref is not None) for r in result["rows"]])]
    if result.get("training"):
        rows = [
            (
                t["classes"],
                f"{t['images_per_s']:.2f}",
                f"{t['data_s']:.3f}",
                f"{t['compute_s']:.3f}",
            )
            for t in result["training"]
        ]
        header = ["training, classes", "images/s", "data s/step", "compute s/step"]
        lines += ["", *table(header, rows)]
    return "\n".join(lines) + "\n"


def _cells(r: dict, baseline: bool) -> list:
    if "skipped" in r:
        return [r["backend"], "", f"skipped: {r['skipped']}"]
    cells = [
        r["backend"],
        r["precision"],
        f"{r['median_ms']:.1f}",
        f"{r['p90_ms']:.1f}",
        f"{r['images_per_s']:.1f}",
        _fmt(r.get("speedup_vs_torch"), "{:.2f}x"),
    ]
    cells += [_fmt(r.get("speedup_vs_baseline"), "{:.2f}x")] if baseline else []
    cells += [
        _fmt(r.get("gflops_per_s"), "{:.0f}"),
        _fmt(r.get("percent_of_peak"), "{:.0f} %"),
        _fmt(r.get("agreement"), "{:.2%}"),
    ]
    return cells


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _fmt(value, pattern: str) -> str:
    return "" if value is None else pattern.format(value)
