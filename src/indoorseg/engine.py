"""Training loop: ``train_one_epoch`` and ``evaluate`` do one thing each; ``fit`` owns epochs,
checkpoints, logs and resuming.

Labels are integer train ids and the loss is ``cross_entropy(ignore_index=...)``: there is
no one-hot encoding, so a 894-class epoch costs the same data time as a 3-class one.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from indoorseg import __version__
from indoorseg.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    load_optimizer_state,
    optimizer_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from indoorseg.classes import Scheme, scheme_to_dict
from indoorseg.config import Config, ConfigError, dump_config
from indoorseg.data.dataset import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    EpochSampler,
    SegmentationDataset,
    TrainTransform,
)
from indoorseg.files import atomic_write_text
from indoorseg.metrics import ConfusionMatrix, summarize
from indoorseg.models import ModelSpec, build_model, parse_name
from indoorseg.runlog import RunLog
from indoorseg.runtime import Runtime, make_runtime, predict_logits


@dataclass
class EpochStats:
    loss: float
    images: int
    steps: int
    data_time: float
    compute_time: float
    interrupted: bool = False


class StopFlag:
    """First Ctrl-C asks the loop to stop after the current step; a second one kills."""

    def __init__(self) -> None:
        self.set = False
        self._previous = None

    def __enter__(self) -> StopFlag:
        def handler(signum, frame):
            if self.set:
                raise KeyboardInterrupt
            self.set = True

        try:
            self._previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not in the main thread: no handler, Ctrl-C raises as usual
            self._previous = None
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler,
    scaler: torch.amp.GradScaler,
    runtime: Runtime,
    ignore_index: int,
    stop: StopFlag | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> EpochStats:
    """One pass over ``loader``; times waiting for data apart from computing."""
    model.train()
    total_loss, images, steps, data_time, compute_time = 0.0, 0, 0, 0.0, 0.0
    tick = time.perf_counter()
    for x, y in loader:  # x: (B, 3, h, w) float, y: (B, h, w) int64
        start = time.perf_counter()
        data_time += start - tick
        x, y = runtime.images(x), y.to(runtime.device, non_blocking=True)
        with runtime.autocast():
            logits = model(x)  # (B, C, h, w)
        loss = F.cross_entropy(logits.float(), y, ignore_index=ignore_index)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        loss_value = loss.item()  # also waits for the device, so compute time is honest
        total_loss += loss_value * len(x)
        images += len(x)
        steps += 1
        tick = time.perf_counter()
        compute_time += tick - start
        if on_step:
            on_step(steps, loss_value)
        if stop is not None and stop.set:
            break
    interrupted = stop is not None and stop.set
    return EpochStats(
        total_loss / max(images, 1), images, steps, data_time, compute_time, interrupted
    )


@torch.no_grad()
def predictions(
    model: nn.Module, loader: DataLoader, runtime: Runtime, crop: tuple[int, int] | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(label, predicted ids)`` per batch of whole images, on the CPU.

    Args:
        crop: score only the top-left ``(h, w)`` of each image (the paper's test script).

    Shape: label, pred (B, H, W) int64.
    """
    model.eval()
    for x, y in loader:
        if crop is not None:
            x, y = x[..., : crop[0], : crop[1]], y[..., : crop[0], : crop[1]]
        yield y, predict_logits(model, x, runtime).argmax(1).cpu()


def evaluate(
    model: nn.Module,
    loader: DataLoader,
    num_classes: int,
    ignore_index: int,
    runtime: Runtime,
    on_step: Callable[[], None] | None = None,
) -> ConfusionMatrix:
    """Confusion matrix of whole-image predictions over ``loader``."""
    confusion = ConfusionMatrix(num_classes, ignore_index)
    for y, pred in predictions(model, loader, runtime):
        confusion.update(y, pred)
        if on_step:
            on_step()
    return confusion


def scored_classes(scheme) -> list[int]:
    """Classes scored by the standard protocol: all but the void class."""
    return [
        i for i in range(scheme.num_classes) if not (scheme.void == "class" and i == scheme.void_id)
    ]


def build_optimizer(model: nn.Module, config: Config) -> torch.optim.Optimizer:
    o = config.optim
    params = [p for p in model.parameters() if p.requires_grad]
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    raise ConfigError(f"optim.name must be adam, adamw or sgd, got {o.name!r}")


def build_scheduler(optimizer, config: Config, steps_per_epoch: int):
    if config.optim.scheduler == "none":
        return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if config.optim.scheduler == "poly":
        total = max(1, config.optim.epochs * steps_per_epoch)
        return torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=total, power=0.9)
    raise ConfigError(f"optim.scheduler must be none or poly, got {config.optim.scheduler!r}")


def check_config(config: Config) -> None:
    """Fail on what would only break later, before any data is read or model built."""
    parse_name(config.model.name)
    if len(config.data.crop) != 2 or any(c <= 0 or c % 16 for c in config.data.crop):
        raise ConfigError(
            f"data.crop must be [height, width], multiples of 16; got {config.data.crop}"
        )
    if len(config.data.scale) != 2 or not 0 < config.data.scale[0] <= config.data.scale[1]:
        raise ConfigError(
            f"data.scale must be [min, max] with 0 < min <= max; got {config.data.scale}"
        )
    if config.data.batch_size < 2:
        raise ConfigError("data.batch_size must be at least 2 (batch norm needs 2 samples)")


def make_loaders(config: Config, data_root: Path, runtime: Runtime):
    """Training loader (seeded sampler, paired augmentation) and whole-image validation loader."""
    d = config.data
    transform = TrainTransform(tuple(d.crop), tuple(d.scale), d.flip)
    train_set = SegmentationDataset(
        data_root, d.scheme, d.train_split, d.split_set, transform, seed=config.train.seed
    )
    val_set = SegmentationDataset(data_root, train_set.scheme, d.val_split, d.split_set)
    if len(train_set) < d.batch_size:
        raise ConfigError(
            f"{data_root}: split {d.train_split!r} has {len(train_set)} images, fewer than "
            f"the batch size {d.batch_size}"
        )
    sampler = EpochSampler(len(train_set), seed=config.train.seed)
    common = dict(
        num_workers=d.workers,
        pin_memory=runtime.device.type == "cuda",
        # The loader's own generator: worker seeds must not draw from the global RNG.
        generator=torch.Generator().manual_seed(config.train.seed),
    )
    train_loader = DataLoader(
        train_set, batch_size=d.batch_size, sampler=sampler, drop_last=True, **common
    )
    # Whole images one at a time: a folder may hold images of different sizes.
    val_loader = DataLoader(val_set, batch_size=1, shuffle=False, **common)
    return train_set, val_set, train_loader, val_loader, sampler


def checkpoint_meta(config: Config, spec: ModelSpec, scheme, **extra) -> dict:
    return {
        "indoorseg_version": __version__,
        "model": spec.to_dict(),
        "scheme": scheme_to_dict(scheme),
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "config": config.to_dict(),
        **extra,
    }


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

    def save(self, path: Path, epoch: int, step: int, metrics: dict | None = None) -> None:
        optim_tensors, optim_meta = optimizer_state(self.optimizer)
        rng_tensors, rng_meta = rng_state()
        meta = checkpoint_meta(
            self.config, self.spec, self.scheme,
            epoch=epoch, step=step, metrics=metrics or {}, best=self.best,
            optimizer=optim_meta, scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict(), rng=rng_meta,
        )  # fmt: skip
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
            return ckpt.meta["epoch"], ckpt.meta["step"]
        except (KeyError, RuntimeError, ValueError) as err:
            raise CheckpointError(f"{path}: cannot resume from it ({err})") from None


def build_state(config: Config, scheme: Scheme, runtime: Runtime, steps_per_epoch: int):
    spec = ModelSpec(config.model.name, scheme.num_classes, config.model.output_stride)
    model = runtime.prepare(build_model(spec, config.model.encoder_weights))
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch)
    return TrainState(config, spec, scheme, model, optimizer, scheduler, runtime.grad_scaler())


def validate(state: TrainState, loader: DataLoader, runtime: Runtime, reporter) -> dict:
    """Standard-protocol metrics on the validation loader."""
    scheme = state.scheme
    with reporter.task("validate", len(loader)) as advance:
        confusion = evaluate(
            state.model, loader, scheme.num_classes, scheme.ignore_index, runtime,
            on_step=lambda: advance(),
        )  # fmt: skip
    return summarize(confusion.numpy(), scheme.class_names, scored=scored_classes(scheme))


def fit(
    config: Config,
    data_root: str | Path,
    run_dir: str | Path,
    resume: bool = False,
    reporter=None,
    run_info: dict | None = None,
) -> dict:
    """Train ``config`` on a prepared folder, writing checkpoints and logs to ``run_dir``.

    Args:
        resume: continue from ``run_dir/last.safetensors``: model, optimizer, scheduler,
            grad scaler, epoch and step, RNG states. The resumed run ends with the weights
            the uninterrupted one would have had (on the CPU, bit for bit).
        reporter: progress sink (``indoorseg.progress.Reporter``); ``None`` is silent.
        run_info: recorded in ``run_dir/run.json`` beside the dataset path (recipe...).

    Returns:
        The last epoch's record (losses, timings, validation metrics) and ``best``.
    """
    from indoorseg.progress import Reporter

    reporter = reporter or Reporter(enabled=False)
    data_root, run_dir = Path(data_root), Path(run_dir)
    check_config(config)
    torch.manual_seed(config.train.seed)
    if config.train.deterministic:
        torch.use_deterministic_algorithms(True)
    runtime = make_runtime(config.train.device, config.train.amp, config.train.channels_last)
    train_set, val_set, train_loader, val_loader, sampler = make_loaders(config, data_root, runtime)
    steps_per_epoch = len(train_set) // config.data.batch_size
    state = build_state(config, train_set.scheme, runtime, steps_per_epoch)
    start_epoch, start_step = 0, 0
    if resume:
        start_epoch, start_step = state.restore(run_dir / "last.safetensors")
        reporter.note(f"resuming {run_dir} at epoch {start_epoch + 1}, step {start_step}")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", dump_config(config))
    info = {"data": str(data_root.resolve()), **(run_info or {})}
    if not resume or not (run_dir / "run.json").is_file():
        atomic_write_text(run_dir / "run.json", json.dumps(info, indent=1))
    log = RunLog(run_dir, resume_epoch=start_epoch if resume else None)
    reporter.note(
        f"{state.spec.name} on {state.scheme.name} ({state.scheme.num_classes} classes), "
        f"{len(train_set)} train / {len(val_set)} val images, {runtime.describe()}"
    )
    record: dict = {}
    with StopFlag() as stop:
        for epoch in range(start_epoch, config.optim.epochs):
            sampler.set_epoch(epoch, start=start_step * config.data.batch_size)
            train_set.set_epoch(epoch)
            wall = time.perf_counter()
            title = f"epoch {epoch + 1}/{config.optim.epochs}"
            with reporter.task(title, steps_per_epoch, start_step) as advance:
                stats = train_one_epoch(
                    state.model, train_loader, state.optimizer, state.scheduler, state.scaler,
                    runtime, state.scheme.ignore_index, stop,
                    on_step=lambda step, loss: advance(loss=loss),
                )  # fmt: skip
            if stats.interrupted:
                state.save(run_dir / "last.safetensors", epoch, start_step + stats.steps)
                reporter.note(f"stopped: resume with --resume {run_dir}")
                raise KeyboardInterrupt
            start_step = 0
            record = epoch_record(epoch + 1, stats, state.optimizer)
            metrics = None
            if (epoch + 1) % config.train.val_every == 0 or epoch + 1 == config.optim.epochs:
                val_start = time.perf_counter()
                metrics = validate(state, val_loader, runtime, reporter)
                record.update(
                    val_mean_iou=metrics["mean_iou"],
                    val_pixel_accuracy=metrics["pixel_accuracy"],
                    val_time_s=time.perf_counter() - val_start,
                )
                if metrics["mean_iou"] is not None and metrics["mean_iou"] > state.best["mean_iou"]:
                    state.best = {"mean_iou": metrics["mean_iou"], "epoch": epoch + 1}
                    state.save(run_dir / "best.safetensors", epoch + 1, 0, metrics)
            record["epoch_time_s"] = time.perf_counter() - wall
            state.save(run_dir / "last.safetensors", epoch + 1, 0, metrics)
            log.append(record)
            reporter.epoch(record)
    log.close()
    return {**record, "best": state.best}


def epoch_record(epoch: int, stats: EpochStats, optimizer) -> dict:
    return {
        "epoch": epoch,
        "train_loss": stats.loss,
        "lr": optimizer.param_groups[0]["lr"],
        "images": stats.images,
        "data_time_s": stats.data_time,
        "compute_time_s": stats.compute_time,
        "images_per_s": stats.images / max(stats.data_time + stats.compute_time, 1e-9),
    }
