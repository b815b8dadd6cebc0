"""Backends: what runs a network, one registry of them, and the model files they open.

A model file is a checkpoint (a run folder's best, or a ``.safetensors`` file) or an
exported ``.onnx``; ``open_model_file`` reads what it says about itself (``ModelFile.meta``:
model, scheme, normalisation, input size, precision, training data). A backend runs the
network: ``(N, 3, H, W) float32 normalised images -> (N, C, H, W) float32 logits``, and says
the precision that really runs. Every backend is registered once in ``BACKENDS`` with its
name, what it opens, how it opens and whether it can run on this machine:

=====================  ===========================================================
``torch``              a checkpoint in PyTorch (bf16 autocast and channels_last on CUDA)
``torch-channels_last``  the same in channels_last memory format
``torch-bf16``         bf16 autocast (only where the CPU or GPU has native bf16)
``onnxruntime``        ONNX Runtime (a checkpoint is exported in memory first)
``openvino``           OpenVINO held to true f32 (its CPU plugin would pick bf16 on CPUs
                       with native bf16 or AMX)
``openvino-bf16``      OpenVINO in bf16 (only where the CPU has native bf16)
=====================  ===========================================================

An int8 ``.onnx`` file runs in int8 on ``onnxruntime`` and the OpenVINO backends.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from indoorseg.checkpoint import ModelRecord, read_model
from indoorseg.classes import scheme_to_dict
from indoorseg.errors import CheckpointError, InputError, UsageError
from indoorseg.machine import native_bf16
from indoorseg.models import build_model
from indoorseg.onnx_file import read_onnx_meta, write_onnx
from indoorseg.runtime import Runtime, make_runtime
from indoorseg.workers import available_cpus


@dataclass(frozen=True)
class ModelFile:
    """A model file and what it says about itself.

    Attributes:
        path: the checkpoint or ``.onnx`` file (a run folder resolved to its checkpoint).
        meta: ``model``, ``scheme``, ``normalization``, ``input_size``, ``precision`` and
            ``train_data`` (the training config's data section; ``{}`` when unknown).
        record: a checkpoint's contents (weights included); None for an ONNX file.
    """

    path: Path
    meta: dict
    record: ModelRecord | None = None

    @property
    def is_onnx(self) -> bool:
        return self.record is None


def open_model_file(path: str | Path) -> ModelFile:
    """A run folder (its best checkpoint), a checkpoint or an exported ``.onnx`` file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such model file or run folder")
    if path.suffix == ".onnx":
        meta = read_onnx_meta(path)
        return ModelFile(path, {"train_data": {}, "input_size": None, **meta})
    record = read_model(path)
    return ModelFile(record.path, record_meta(record), record)


def record_meta(record: ModelRecord) -> dict:
    """The metadata of a checkpoint's model, as an exported ONNX file carries it."""
    mean, std = record.normalization
    return {
        "model": record.spec.to_dict(),
        "scheme": scheme_to_dict(record.scheme),
        "normalization": {"mean": list(mean), "std": list(std)},
        "input_size": None,
        "precision": "fp32",
        "train_data": dict(record.train_data),
        "inference": dict(record.inference),
    }


def load_model(path: str | Path, runtime: Runtime) -> tuple[nn.Module, ModelRecord]:
    """A checkpoint's network rebuilt (weights only, no pickle), in eval mode on the
    runtime's device, with the checkpoint's record."""
    record = read_model(path)
    return network(record, runtime), record


def network(record: ModelRecord, runtime: Runtime) -> nn.Module:
    model = build_model(record.spec)
    misfit = weights_misfit(model.state_dict(), record.weights)
    if misfit:
        raise CheckpointError(
            f"{record.path}: its weights do not fit {record.spec.name} ({misfit})"
        )
    model.load_state_dict(record.weights, strict=True)
    return runtime.prepare(model).eval()


def weights_misfit(expected: dict, found: dict) -> str:
    """What keeps ``found`` tensors from loading into a model with ``expected`` ones, in a
    few words (torch's own message lists every tensor), or "" when they fit."""
    missing = [k for k in expected if k not in found]
    extra = [k for k in found if k not in expected]
    shapes = [k for k in expected if k in found and found[k].shape != expected[k].shape]
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensors missing, e.g. {missing[0]}")
    if extra:
        parts.append(f"{len(extra)} unexpected, e.g. {extra[0]}")
    if shapes:
        k = shapes[0]
        found_shape, wanted = tuple(found[k].shape), tuple(expected[k].shape)
        parts.append(f"{len(shapes)} of another shape, e.g. {k} {found_shape} instead of {wanted}")
    return "; ".join(parts)


# --- the backends -------------------------------------------------------------------------


class Backend:
    """Runs a network. ``precision``: what really runs (``fp32``, ``bf16``, ``int8``...)."""

    name = "?"
    precision = "fp32"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: (N, 3, H, W) float32 on the CPU -> (N, C, H, W) float32 logits, on the
        backend's device."""
        raise NotImplementedError


class TorchBackend(Backend):
    """A PyTorch module on a runtime (device, autocast, memory format); the module must be
    in eval mode when called."""

    def __init__(self, model: nn.Module, runtime: Runtime, name: str = "torch") -> None:
        self.model, self.runtime, self.name = model, runtime, name
        self.precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(
            runtime.amp_dtype, "fp32"
        )

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with self.runtime.autocast():
            return self.model(self.runtime.images(x)).float()


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, path: Path, precision: str = "fp32", threads=None, device="cpu") -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or available_cpus()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as err:  # onnxruntime raises its own exception types
            raise InputError(f"{path}: ONNX Runtime cannot load it ({err})") from None
        self.input, self.precision = self.session.get_inputs()[0].name, precision

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {self.input: x.numpy()})[0])


class OpenVINOBackend(Backend):
    """OpenVINO's CPU plugin at an inference precision asked for (``f32`` or ``bf16``);
    ``precision`` is what the compiled model reports it runs at."""

    def __init__(self, path: Path, file_precision: str, hint: str, name: str, threads=None):
        import openvino as ov

        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads or available_cpus(),
            "INFERENCE_PRECISION_HINT": hint,
        }
        try:
            self.compiled = ov.Core().compile_model(str(path), "CPU", config)
        except Exception as err:  # openvino raises RuntimeError subclasses of its own
            raise InputError(f"{path}: OpenVINO cannot load it ({err})") from None
        running = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        running = getattr(running, "to_string", lambda: str(running))()
        running = {"f32": "fp32", "f16": "fp16"}.get(running, running)
        self.name = name
        self.precision = running if file_precision == "fp32" else f"{file_precision}+{running}"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.compiled(x.numpy())[0]))


# --- the registry -------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """How to open a backend: ``device`` (``cpu``, ``cuda``, ``auto``; torch and
    onnxruntime) and ``threads`` (None: every available core)."""

    device: str = "cpu"
    threads: int | None = None


@dataclass(frozen=True)
class BackendKind:
    """One registered backend.

    Attributes:
        runs_onnx: opens ONNX files (a checkpoint is exported to one in memory first); else
            it needs a checkpoint's PyTorch network.
        open: (model file, options) -> a backend.
        missing: why it cannot run here (a missing package, no native bf16), or None.
    """

    name: str
    help: str
    runs_onnx: bool
    open: Callable[[ModelFile, Options], Backend]
    missing: Callable[[Options], str | None] = lambda options: None


BACKENDS: dict[str, BackendKind] = {}


def register(kind: BackendKind) -> BackendKind:
    BACKENDS[kind.name] = kind
    return kind


def backend_names() -> list[str]:
    return list(BACKENDS)


def _torch(amp: str, channels_last: str, name: str) -> Callable[[ModelFile, Options], Backend]:
    def open_torch(model: ModelFile, options: Options) -> Backend:
        if options.threads:
            torch.set_num_threads(options.threads)
        runtime = make_runtime(options.device, amp, channels_last)
        return TorchBackend(network(model.record, runtime), runtime, name)

    return open_torch


def _no_bf16(options: Options) -> str | None:
    if options.device.startswith("cuda") or (
        options.device == "auto" and torch.cuda.is_available()
    ):
        return None if torch.cuda.is_bf16_supported() else "this GPU has no bf16"
    if not native_bf16():
        return "this CPU has no native bf16 (emulated bf16 is several times slower than fp32)"
    return None


def _no_openvino(options: Options) -> str | None:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return "the openvino package is not installed (pip install 'indoorseg[openvino]')"
    return None


def _openvino(hint: str, name: str) -> Callable[[ModelFile, Options], Backend]:
    def open_openvino(model: ModelFile, options: Options) -> Backend:
        precision = model.meta.get("precision", "fp32")
        return OpenVINOBackend(model.path, precision, hint, name, options.threads)

    return open_openvino


def _onnxruntime(model: ModelFile, options: Options) -> Backend:
    precision = model.meta.get("precision", "fp32")
    return OnnxRuntimeBackend(model.path, precision, options.threads, options.device)


for kind in (
    BackendKind(
        "torch", "PyTorch (bf16 and channels_last on CUDA)", False, _torch("auto", "auto", "torch")
    ),
    BackendKind(
        "torch-channels_last",
        "PyTorch, channels_last memory format",
        False,
        _torch("auto", "on", "torch-channels_last"),
    ),
    BackendKind(
        "torch-bf16",
        "PyTorch, bf16 autocast",
        False,
        _torch("bf16", "auto", "torch-bf16"),
        _no_bf16,
    ),
    BackendKind("onnxruntime", "ONNX Runtime", True, _onnxruntime),
    BackendKind(
        "openvino", "OpenVINO, held to fp32", True, _openvino("f32", "openvino"), _no_openvino
    ),
    BackendKind(
        "openvino-bf16",
        "OpenVINO in bf16",
        True,
        _openvino("bf16", "openvino-bf16"),
        lambda options: _no_openvino(options) or _no_bf16(options),
    ),
):
    register(kind)


def open_backend(
    model: ModelFile, name: str, options: Options = Options()
) -> tuple[Backend, ModelFile]:
    """Open a registered backend on a model file; a checkpoint given to a backend that runs
    ONNX is exported to a temporary file first. Returns the backend and the file it runs."""
    if name not in BACKENDS:
        raise UsageError(f"backend must be auto or one of {', '.join(BACKENDS)}, got {name!r}")
    kind = BACKENDS[name]
    reason = kind.missing(options)
    if reason:
        raise UsageError(f"the {name} backend cannot run here: {reason}")
    if model.is_onnx and not kind.runs_onnx:
        raise UsageError(f"{model.path}: an ONNX file runs on onnxruntime or openvino, not {name}")
    if model.is_onnx or not kind.runs_onnx:
        return kind.open(model, options), model
    runtime = make_runtime("cpu", "off", "off")
    with tempfile.TemporaryDirectory(prefix="indoorseg-onnx-") as tmp:
        path = write_onnx(network(model.record, runtime), Path(tmp) / "model.onnx", model.meta)
        return kind.open(ModelFile(path, model.meta), options), model


def choose_backend(model: ModelFile, name: str) -> str:
    """``auto``: the fastest backend ``benchmark`` measured and checked for this model file
    on this machine, else onnxruntime for ``.onnx`` files and torch for checkpoints."""
    if name != "auto":
        return name
    return fastest_measured(model.path) or ("onnxruntime" if model.is_onnx else "torch")


def choices_file() -> Path:
    """Where ``benchmark`` records the fastest checked backend per model on this machine."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "indoorseg" / "fastest-backend.json"


def model_key(path: Path) -> str:
    """A model file's identity: its resolved path, size and modification time."""
    path = path.resolve()
    stat = path.stat() if path.exists() else None
    return f"{path}:{stat.st_size if stat else 0}:{int(stat.st_mtime) if stat else 0}"


def fastest_measured(path: Path) -> str | None:
    """The backend ``benchmark`` recorded as fastest for ``path`` here, if it still runs."""
    try:
        choices = json.loads(choices_file().read_text())
    except (OSError, ValueError):
        return None
    choice = choices.get(model_key(path)) if isinstance(choices, dict) else None
    if isinstance(choice, dict):
        choice = choice.get("backend")
    if choice not in BACKENDS or BACKENDS[choice].missing(Options()):
        return None
    return choice
