"""Checkpoints: the one owner of their layout. Safetensors tensors plus JSON metadata,
safe to load, written atomically.

One file ``NAME.safetensors`` holds the model weights (``model.*``) and, for resuming,
the optimizer tensors (``optim.*``) and RNG states (``rng.*``); its header carries the
JSON metadata (format version, model spec, scheme, normalisation, resolved config,
metrics, epoch/step, optimizer hyper-parameters, scheduler state). A readable copy of the
metadata sits beside it as ``NAME.json``. Loading parses JSON and raw tensors only:
nothing is ever unpickled, so a checkpoint cannot run code.

Writers go through ``TrainState.save``; readers through ``read_model`` (to rebuild and
feed a model), ``read_progress`` (how far a run got) and ``TrainState.restore``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from indoorseg import __version__
from indoorseg.classes import Scheme, scheme_from_dict, scheme_to_dict
from indoorseg.config import Config
from indoorseg.errors import CheckpointError
from indoorseg.files import JsonFormat, atomic_path, atomic_write_text
from indoorseg.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Normalization,
    as_normalization,
    normalization_problem,
)
from indoorseg.models import ModelSpec

CHECKPOINT_META = JsonFormat("indoorseg-checkpoint", 1, CheckpointError)
META_KEY = "indoorseg"
LAST, BEST = "last.safetensors", "best.safetensors"  # the two checkpoints of a run folder


@dataclass
class Checkpoint:
    """What a checkpoint file holds, split into tensors and JSON metadata."""

    meta: dict
    model: dict[str, torch.Tensor]
    optim: dict[str, torch.Tensor] = field(default_factory=dict)
    rng: dict[str, torch.Tensor] = field(default_factory=dict)


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and JSON of the torch, CUDA, numpy and Python RNG states."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, state, gauss = random.getstate()
    meta = {
        "numpy": [kind, int(pos), int(has_gauss), float(cached)],
        "python": [version, list(state), gauss],
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    kind, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, state, gauss = meta["python"]
    random.setstate((version, tuple(state), gauss))


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into tensors (``state.ID.NAME``) and JSON."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{name}"] = value
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def load_optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    for pid, values in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    """Write ``path`` (``.safetensors``) and its ``.json`` copy of the metadata, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = CHECKPOINT_META.stamp(ckpt.meta)
    tensors = {}
    for prefix, group in (("model", ckpt.model), ("optim", ckpt.optim), ("rng", ckpt.rng)):
        for key, value in group.items():
            tensors[f"{prefix}.{key}"] = value.detach().to("cpu").contiguous().clone()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta)})
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=1))
    return path


def read_meta(path: str | Path) -> dict:
    """The JSON metadata of a checkpoint, without reading its tensors."""
    path = _check_path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: not a safetensors checkpoint ({err})") from None
    if META_KEY not in header:
        raise CheckpointError(f"{path}: no indoorseg metadata; not an indoorseg checkpoint")
    return CHECKPOINT_META.loads(header[META_KEY], f"{path} metadata")


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> Checkpoint:
    """Read a checkpoint: JSON metadata and raw tensors only (no unpickling)."""
    meta = read_meta(path)
    groups: dict[str, dict[str, torch.Tensor]] = {"model": {}, "optim": {}, "rng": {}}
    with safe_open(str(path), framework="pt", device=map_location) as f:
        for key in f.keys():  # noqa: SIM118 (safe_open is not a dict)
            prefix, name = key.split(".", 1)
            if prefix not in groups:
                raise CheckpointError(f"{path}: unexpected tensor {key}")
            groups[prefix][name] = f.get_tensor(key)
    return Checkpoint(meta=meta, **groups)


def _check_path(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        for name in (BEST, LAST):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: no best.safetensors or last.safetensors in this run folder")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return path


def resolve(path: str | Path, which: str = "best") -> Path:
    """A checkpoint file from a file path or a run folder (``best``, else ``last``)."""
    path = Path(path)
    if path.is_dir() and (path / f"{which}.safetensors").is_file():
        return path / f"{which}.safetensors"
    return _check_path(path)


# --- what the metadata says -----------------------------------------------------------


def checkpoint_meta(config: Config, spec: ModelSpec, scheme: Scheme, **extra) -> dict:
    """The metadata every checkpoint carries, plus ``extra`` (epoch, metrics...)."""
    return {
        "indoorseg_version": __version__,
        "model": spec.to_dict(),
        "scheme": scheme_to_dict(scheme),
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "config": config.to_dict(),
        **extra,
    }


@dataclass(frozen=True)
class ModelRecord:
    """What a checkpoint holds about its model: enough to rebuild it and feed it.

    Attributes:
        train_data: the data section of the training config (crop, split_set...).
        normalization: (mean, std) per channel that the model was trained with.
    """

    path: Path
    spec: ModelSpec
    scheme: Scheme
    weights: dict[str, torch.Tensor]
    train_data: dict
    normalization: Normalization
    inference: dict = field(default_factory=dict)


def read_model(path: str | Path, which: str = "best") -> ModelRecord:
    """A checkpoint file, or a run folder's ``which`` checkpoint, read for inference."""
    path = resolve(path, which)
    ckpt = load_checkpoint(path)
    try:
        spec = ModelSpec.from_dict(ckpt.meta["model"])
        scheme = scheme_from_dict(ckpt.meta["scheme"], f"{path} scheme")
        norm = ckpt.meta["normalization"]
        train_data = dict(ckpt.meta["config"]["data"])
        model = ckpt.meta["config"].get("model", {})
        inference = {
            "side": int(model.get("inference_side", 0)),
            "regions": bool(model.get("inference_regions", False)),
        }
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: incomplete or inconsistent checkpoint ({err})") from None
    problem = normalization_problem(norm)
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    if spec.num_classes != scheme.num_classes:
        raise CheckpointError(
            f"{path}: its network has {spec.num_classes} outputs but its scheme "
            f"{scheme.name!r} has {scheme.num_classes} classes; it would be scored in the "
            "wrong classes"
        )
    return ModelRecord(
        path, spec, scheme, ckpt.model, train_data, as_normalization(norm), inference
    )


@dataclass(frozen=True)
class Progress:
    """How far the run of a checkpoint got: epochs completed, steps into the next one,
    and the best validation score so far (``{"mean_iou", "epoch"}``)."""

    epoch: int
    step: int
    best: dict


def read_progress(path: str | Path) -> Progress:
    """The progress recorded in a checkpoint (metadata only, no tensors read)."""
    meta = read_meta(path)
    try:
        return Progress(int(meta["epoch"]), int(meta["step"]), dict(meta.get("best") or {}))
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: no training progress recorded ({err})") from None


# --- a training run's state -------------------------------------------------------------


@dataclass
class TrainState:
    """Everything a resumed run must get back, and how to save and restore it."""

    config: Config
    spec: ModelSpec
    scheme: Scheme
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    best: dict = field(default_factory=lambda: {"mean_iou": -1.0, "epoch": None})
    wrapped: nn.Module | None = None  # DistributedDataParallel around ``model``, if any
    partial: dict | None = None  # what an interrupted epoch had done (loss, images, times)

    @property
    def trainable(self) -> nn.Module:
        """The module to train through (DDP synchronises gradients); ``model`` is saved."""
        return self.wrapped if self.wrapped is not None else self.model

    def save(self, path: Path, epoch: int, step: int, metrics: dict | None = None) -> None:
        """Write a checkpoint ``epoch`` epochs and ``step`` further steps into the run."""
        optim_tensors, optim_meta = optimizer_state(self.optimizer)
        rng_tensors, rng_meta = rng_state()
        meta = checkpoint_meta(
            self.config,
            self.spec,
            self.scheme,
            epoch=epoch,
            step=step,
            metrics=metrics or {},
            best=self.best,
            optimizer=optim_meta,
            scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict(),
            rng=rng_meta,
        )
        model_state = self.model.state_dict()
        save_checkpoint(path, Checkpoint(meta, model_state, optim_tensors, rng_tensors))

    def restore(self, path: Path) -> tuple[int, int]:
        """Load a ``last`` checkpoint; returns (epoch, step) to continue from."""
        ckpt = load_checkpoint(path)
        try:
            self.model.load_state_dict(ckpt.model)
            load_optimizer_state(self.optimizer, ckpt.optim, ckpt.meta["optimizer"])
            self.scheduler.load_state_dict(ckpt.meta["scheduler"])
            if ckpt.meta.get("scaler"):
                self.scaler.load_state_dict(ckpt.meta["scaler"])
            set_rng_state(ckpt.rng, ckpt.meta["rng"])
            self.best = ckpt.meta.get("best", self.best)
            self.partial = (ckpt.meta.get("metrics") or {}).get("partial_epoch")
            return ckpt.meta["epoch"], ckpt.meta["step"]
        except (KeyError, RuntimeError, ValueError) as err:
            raise CheckpointError(f"{path}: cannot resume from it ({err})") from None
