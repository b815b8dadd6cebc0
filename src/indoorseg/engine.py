"""Training loop: ``train_one_epoch`` and ``evaluate`` do one thing each; ``fit`` owns epochs,
checkpoints, logs and resuming.

Labels are integer train ids and the loss is ``cross_entropy(ignore_index=...)``: there is
no one-hot encoding, so a 894-class epoch costs the same data time as a 3-class one.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from indoorseg import __version__
from indoorseg.checkpoint import (
    Checkpoint,
    load_checkpoint,
    load_optimizer_state,
    optimizer_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from indoorseg.classes import scheme_to_dict
from indoorseg.config import Config, dump_config
from indoorseg.data.dataset import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    EpochSampler,
    SegmentationDataset,
    TrainTransform,
)
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
    runtime: Runtime,
    ignore_index: int,
    stop: StopFlag | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> EpochStats:
    """One pass over ``loader``; times waiting for data apart from computing."""
    model.train()
    scaler = runtime.grad_scaler()
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
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    num_classes: int,
    ignore_index: int,
    runtime: Runtime,
    on_step: Callable[[], None] | None = None,
) -> ConfusionMatrix:
    """Confusion matrix of whole-image predictions over ``loader``."""
    model.eval()
    confusion = ConfusionMatrix(num_classes, ignore_index)
    for x, y in loader:
        pred = predict_logits(model, x, runtime).argmax(1)
        confusion.update(y, pred.cpu())
        if on_step:
            on_step()
    return confusion


def build_optimizer(model: nn.Module, config: Config) -> torch.optim.Optimizer:
    o = config.optim
    params = [p for p in model.parameters() if p.requires_grad]
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    raise ValueError(f"optim.name must be adam, adamw or sgd, got {o.name!r}")


def build_scheduler(optimizer, config: Config, steps_per_epoch: int):
    if config.optim.scheduler == "none":
        return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if config.optim.scheduler == "poly":
        total = max(1, config.optim.epochs * steps_per_epoch)
        return torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=total, power=0.9)
    raise ValueError(f"optim.scheduler must be none or poly, got {config.optim.scheduler!r}")


def make_loaders(config: Config, data_root: Path, runtime: Runtime):
    """Training loader (seeded sampler, paired augmentation) and whole-image validation loader."""
    d = config.data
    transform = TrainTransform(tuple(d.crop), tuple(d.scale), d.flip)
    train_set = SegmentationDataset(
        data_root, d.scheme, d.train_split, d.split_set, transform, seed=config.train.seed
    )
    val_set = SegmentationDataset(data_root, train_set.scheme, d.val_split, d.split_set)
    if len(train_set) < d.batch_size:
        raise ValueError(
            f"{data_root}: split {d.train_split!r} has {len(train_set)} images, fewer than "
            f"the batch size {d.batch_size}"
        )
    sampler = EpochSampler(len(train_set), seed=config.train.seed)
    common = dict(
        num_workers=d.workers,
        pin_memory=runtime.device.type == "cuda",
        persistent_workers=False,
        # The loader's own generator: worker seeds must not draw from the global RNG.
        generator=torch.Generator().manual_seed(config.train.seed),
    )
    train_loader = DataLoader(
        train_set, batch_size=d.batch_size, sampler=sampler, drop_last=True, **common
    )
    val_loader = DataLoader(val_set, batch_size=max(1, d.batch_size // 4), shuffle=False, **common)
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


def fit(
    config: Config,
    data_root: str | Path,
    run_dir: str | Path,
    resume: bool = False,
    reporter=None,
) -> dict:
    """Train ``config`` on a prepared folder, writing checkpoints and logs to ``run_dir``.

    Args:
        resume: continue from ``run_dir/last.safetensors``: model, optimizer, scheduler,
            epoch and step, RNG states. The resumed run ends with the weights the
            uninterrupted one would have had.
        reporter: progress sink (``indoorseg.progress.Reporter``); ``None`` is silent.

    Returns:
        The last epoch's record (losses, timings, validation metrics) and ``best``.
    """
    from indoorseg.progress import Reporter

    reporter = reporter or Reporter(enabled=False)
    data_root, run_dir = Path(data_root), Path(run_dir)
    parse_name(config.model.name)  # fail on a bad name before any data is read
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.train.seed)
    if config.train.deterministic:
        torch.use_deterministic_algorithms(True)
    runtime = make_runtime(config.train.device, config.train.amp, config.train.channels_last)
    train_set, val_set, train_loader, val_loader, sampler = make_loaders(config, data_root, runtime)
    scheme = train_set.scheme
    spec = ModelSpec(config.model.name, scheme.num_classes, config.model.output_stride)
    model = runtime.prepare(build_model(spec, config.model.encoder_weights))
    optimizer = build_optimizer(model, config)
    steps_per_epoch = len(train_set) // config.data.batch_size
    scheduler = build_scheduler(optimizer, config, steps_per_epoch)

    start_epoch, start_step, best = 0, 0, {"mean_iou": -1.0, "epoch": None}
    if resume:
        ckpt = load_checkpoint(run_dir / "last.safetensors")
        model.load_state_dict(ckpt.model)
        load_optimizer_state(optimizer, ckpt.optim, ckpt.meta["optimizer"])
        scheduler.load_state_dict(ckpt.meta["scheduler"])
        set_rng_state(ckpt.rng, ckpt.meta["rng"])
        start_epoch, start_step = ckpt.meta["epoch"], ckpt.meta["step"]
        best = ckpt.meta.get("best", best)
        reporter.note(f"resuming {run_dir} at epoch {start_epoch + 1}, step {start_step}")
    (run_dir / "config.yaml").write_text(dump_config(config))
    log = RunLog(run_dir, resume_epoch=start_epoch if resume else None)
    reporter.note(
        f"{spec.name} on {scheme.name} ({scheme.num_classes} classes), {len(train_set)} train / "
        f"{len(val_set)} val images, {runtime.describe()}"
    )

    def save(name: str, epoch: int, step: int, metrics: dict | None = None) -> None:
        optim_tensors, optim_meta = optimizer_state(optimizer)
        rng_tensors, rng_meta = rng_state()
        meta = checkpoint_meta(
            config,
            spec,
            scheme,
            epoch=epoch,
            step=step,
            metrics=metrics or {},
            best=best,
            optimizer=optim_meta,
            scheduler=scheduler.state_dict(),
            rng=rng_meta,
        )
        save_checkpoint(
            run_dir / f"{name}.safetensors",
            Checkpoint(meta, model.state_dict(), optim_tensors, rng_tensors),
        )

    record: dict = {}
    with StopFlag() as stop:
        for epoch in range(start_epoch, config.optim.epochs):
            sampler.set_epoch(epoch, start=start_step * config.data.batch_size)
            train_set.set_epoch(epoch)
            wall = time.perf_counter()
            with reporter.task(
                f"epoch {epoch + 1}/{config.optim.epochs}", steps_per_epoch, start_step
            ) as advance:
                stats = train_one_epoch(
                    model,
                    train_loader,
                    optimizer,
                    scheduler,
                    runtime,
                    scheme.ignore_index,
                    stop,
                    on_step=lambda step, loss: advance(loss=loss),
                )
            if stats.interrupted:
                save("last", epoch, start_step + stats.steps)
                reporter.note(f"stopped: resume with --resume {run_dir}")
                raise KeyboardInterrupt
            start_step = 0
            record = {
                "epoch": epoch + 1,
                "train_loss": stats.loss,
                "lr": optimizer.param_groups[0]["lr"],
                "images": stats.images,
                "data_time_s": stats.data_time,
                "compute_time_s": stats.compute_time,
                "images_per_s": stats.images / max(stats.data_time + stats.compute_time, 1e-9),
            }
            metrics = None
            if (epoch + 1) % config.train.val_every == 0 or epoch + 1 == config.optim.epochs:
                val_start = time.perf_counter()
                with reporter.task("validate", len(val_loader)) as advance:
                    confusion = evaluate(
                        model,
                        val_loader,
                        scheme.num_classes,
                        scheme.ignore_index,
                        runtime,
                        on_step=lambda: advance(),
                    )
                metrics = summarize(
                    confusion.numpy(), scheme.class_names, scored=scored_classes(scheme)
                )
                record.update(
                    val_mean_iou=metrics["mean_iou"],
                    val_pixel_accuracy=metrics["pixel_accuracy"],
                    val_time_s=time.perf_counter() - val_start,
                )
                if metrics["mean_iou"] > best["mean_iou"]:
                    best = {"mean_iou": metrics["mean_iou"], "epoch": epoch + 1}
                    save("best", epoch + 1, 0, metrics)
            record["epoch_time_s"] = time.perf_counter() - wall
            save("last", epoch + 1, 0, metrics)
            log.append(record)
            reporter.epoch(record)
    log.close()
    return {**record, "best": best}


def scored_classes(scheme) -> list[int]:
    """Classes scored by the standard protocol: all but the void class."""
    return [
        i for i in range(scheme.num_classes) if not (scheme.void == "class" and i == scheme.void_id)
    ]
