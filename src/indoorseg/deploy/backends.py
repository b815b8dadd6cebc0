"""Backends: what runs a network on a normalised batch, from a checkpoint or an ONNX file.

Each backend is a callable ``(N, 3, H, W) float32 array -> (N, C, H, W) float32 logits``.
``torch`` runs a checkpoint in PyTorch (``torch-channels_last`` and ``torch-bf16`` are
its variants for ``benchmark``); ``onnxruntime`` and ``openvino`` run an ONNX file (a
checkpoint is exported to a temporary file first).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from indoorseg.classes import scheme_to_dict
from indoorseg.deploy.onnx_export import read_onnx_meta, write_onnx
from indoorseg.errors import InputError, UsageError
from indoorseg.inference import LoadedModel, load_model
from indoorseg.runtime import Runtime, make_runtime
from indoorseg.workers import available_cpus

BACKENDS = ("torch", "onnxruntime", "openvino")
TORCH_VARIANTS = ("torch", "torch-channels_last", "torch-bf16")


@dataclass(frozen=True)
class ModelInfo:
    """A model file and what it says about itself (model, scheme, normalization...)."""

    path: Path
    meta: dict


class Backend:
    name = "?"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class TorchBackend(Backend):
    def __init__(self, model: torch.nn.Module, runtime: Runtime, name: str = "torch") -> None:
        self.model, self.runtime, self.name = runtime.prepare(model).eval(), runtime, name

    @torch.inference_mode()
    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self.runtime.autocast():
            out = self.model(self.runtime.images(torch.from_numpy(x)))
        return out.float().cpu().numpy()


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None, device: str = "cpu") -> None:
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
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: x})[0]


class OpenVINOBackend(Backend):
    name = "openvino"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise UsageError(
                "the openvino backend needs the openvino package: pip install 'indoorseg[openvino]'"
            ) from None
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads or available_cpus(),
        }
        try:
            self.compiled = ov.Core().compile_model(str(path), "CPU", config)
        except Exception as err:  # openvino raises RuntimeError subclasses of its own
            raise InputError(f"{path}: OpenVINO cannot load it ({err})") from None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.compiled(x)[0])


def checkpoint_meta(loaded: LoadedModel) -> dict:
    """The ONNX metadata of a checkpoint's model: what a backend-free user needs."""
    record = loaded.record
    mean, std = record.normalization
    return {
        "format": 1,
        "model": record.spec.to_dict(),
        "scheme": scheme_to_dict(record.scheme),
        "normalization": {"mean": list(mean), "std": list(std)},
        "input_size": None,
        "precision": "fp32",
    }


def open_backend(
    path: Path, backend: str, device: str = "cpu", threads: int | None = None
) -> tuple[Backend, ModelInfo]:
    """Open ``path`` (run folder, checkpoint or ``.onnx``) on ``backend`` (or ``auto``)."""
    is_onnx = path.suffix == ".onnx"
    if not path.exists():
        raise InputError(f"{path}: no such model file or run folder")
    if backend == "auto":
        backend = fastest_measured(path) or ("onnxruntime" if is_onnx else "torch")
    if is_onnx:
        if backend.startswith("torch"):
            raise UsageError(f"{path}: an ONNX file runs on onnxruntime or openvino, not {backend}")
        info = ModelInfo(path, read_onnx_meta(path))
        return _onnx_backend(path, backend, device, threads), info
    if backend in TORCH_VARIANTS:
        return torch_backend(path, backend, device, threads)
    loaded = load_model(path, make_runtime("cpu"))
    info = ModelInfo(loaded.path, checkpoint_meta(loaded))
    with tempfile.TemporaryDirectory(prefix="indoorseg-onnx-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        write_onnx(loaded.model, onnx_path, info.meta)
        return _onnx_backend(onnx_path, backend, device, threads), info


def torch_backend(
    path: Path, variant: str = "torch", device: str = "cpu", threads: int | None = None
) -> tuple[Backend, ModelInfo]:
    """A checkpoint on PyTorch: plain, channels_last, or bf16 autocast."""
    if threads:
        torch.set_num_threads(threads)
    runtime = variant_runtime(variant, device)
    loaded = load_model(path, runtime)
    backend = TorchBackend(loaded.model, runtime, variant)
    return backend, ModelInfo(loaded.path, checkpoint_meta(loaded))


def variant_runtime(variant: str, device: str = "cpu") -> Runtime:
    """The runtime of a torch variant: plain float32, channels_last, or bf16 autocast."""
    if variant not in TORCH_VARIANTS:
        raise UsageError(
            f"torch variant must be one of {', '.join(TORCH_VARIANTS)}, got {variant!r}"
        )
    return make_runtime(
        device,
        amp="bf16" if variant == "torch-bf16" else "off",
        channels_last="on" if variant == "torch-channels_last" else "off",
    )


def _onnx_backend(path: Path, backend: str, device: str, threads: int | None) -> Backend:
    if backend == "onnxruntime":
        return OnnxRuntimeBackend(path, threads, device)
    if backend == "openvino":
        return OpenVINOBackend(path, threads)
    raise UsageError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def choices_file() -> Path:
    """Where ``benchmark`` records the fastest backend per model on this machine."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "indoorseg" / "fastest-backend.json"


def model_key(path: Path) -> str:
    """A model file's identity: its resolved path, size and modification time."""
    path = path.resolve()
    if path.is_dir():
        path = path / "best.safetensors"
    stat = path.stat() if path.exists() else None
    return f"{path}:{stat.st_size if stat else 0}:{int(stat.st_mtime) if stat else 0}"


def fastest_measured(path: Path) -> str | None:
    """The fastest same-precision backend ``benchmark`` measured for ``path`` here, if any."""
    try:
        choices = json.loads(choices_file().read_text())
    except (OSError, ValueError):
        return None
    choice = choices.get(model_key(path)) if isinstance(choices, dict) else None
    return choice if choice in BACKENDS or choice in TORCH_VARIANTS else None
