"""The training loop: ``train_one_epoch`` and ``validate`` do one thing each; ``fit`` owns
epochs, checkpoints and logs.

Labels are integer train ids and the loss is ``cross_entropy(ignore_index=...)``: there is
no one-hot encoding, so a 894-class epoch costs the same data time as a 3-class one.
Everything is built beforehand (``indoorseg.training``); the loop only runs it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from indoorseg.backends import TorchBackend
from indoorseg.checkpoint import BEST, LAST, TrainState
from indoorseg.distributed import any_across, same_across, sum_across, world
from indoorseg.errors import TrainingDiverged, TrainingInterrupted
from indoorseg.evaluation import labelled_predictions, score_standard
from indoorseg.images import IMAGENET
from indoorseg.inference import ModelCard, Segmenter
from indoorseg.progress import Reporter
from indoorseg.runlog import RunLog
from indoorseg.runtime import Runtime, StopFlag


@dataclass
class EpochStats:
    loss: float
    images: int
    steps: int
    data_time: float
    compute_time: float
    interrupted: bool = False
    diverged: bool = False  # the loss went NaN or infinite: ``loss`` is that loss
    steps_before: int = 0  # of ``steps``, those done before a resume (already in ``step``)


@dataclass
class Loaders:
    """The data of a run: a training loader whose sampler and dataset are told the epoch
    (and where in it to start), and a validation loader of whole images."""

    train: DataLoader
    val: DataLoader

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.train.sampler.set_epoch(epoch, start=start_step * self.train.sampler.global_batch)
        self.train.dataset.set_epoch(epoch)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train.dataset) // self.train.sampler.global_batch


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
    interrupted = False
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
        images, steps = images + len(x), steps + 1
        tick = time.perf_counter()
        compute_time += tick - start
        if on_step:
            on_step(steps, loss_value)
        # every process stops at the same step, on Ctrl-C or on a loss gone NaN or infinite
        interrupted, diverged = any_across(
            stop is not None and stop.set, not math.isfinite(loss_value)
        )
        if diverged:
            return EpochStats(loss_value, images, steps, data_time, compute_time, diverged=True)
        if interrupted:
            break
    # the run's loss and images, over all processes
    total_loss, images = sum_across(
        torch.tensor([total_loss, images], dtype=torch.float64)
    ).tolist()
    return EpochStats(
        total_loss / max(images, 1), int(images), steps, data_time, compute_time, interrupted
    )


def validate(segmenter: Segmenter, loader: DataLoader, reporter: Reporter) -> dict:
    """Standard-protocol metrics of whole-image predictions on the validation loader (raw
    images, as ``evaluate`` scores them)."""
    with reporter.task("validate", len(loader)) as advance:
        pairs = labelled_predictions(segmenter, loader)
        scheme = segmenter.card.scheme
        return score_standard(pairs, scheme, on_step=lambda: advance(), across=True)["metrics"]


def training_segmenter(state: TrainState, runtime: Runtime) -> Segmenter:
    """The model being trained, seen as ``evaluate`` sees a saved one (whole images at their
    own size)."""
    card = ModelCard(
        path=Path(LAST),
        model=state.spec.to_dict(),
        scheme=state.scheme,
        normalization=IMAGENET,
        train_data=state.config.to_dict()["data"],
    )
    return Segmenter(TorchBackend(state.model, runtime), card, max_side=None)


def fit(
    state: TrainState,
    loaders: Loaders,
    runtime: Runtime,
    run_dir: Path,
    start: tuple[int, int] = (0, 0),
    reporter: Reporter | None = None,
) -> dict:
    """Train from ``start`` (epochs done, steps into the next) to the last epoch.

    Each epoch validates (every ``train.val_every`` epochs and at the end), saves ``last``
    (and ``best`` when validation improves) and appends to the logs. Ctrl-C stops after
    the current step, saves ``last`` and raises ``TrainingInterrupted``.

    Returns:
        The last epoch's record (losses, timings, validation metrics) and ``best``.
    """
    main = world().main  # the one process that writes
    reporter = reporter if reporter and main else Reporter(enabled=False)
    epochs, val_every = state.config.optim.epochs, state.config.train.val_every
    log = RunLog(run_dir, keep_until=start[0]) if main else None
    save = state.save if main else lambda *args: None
    step, record = start[1], {}
    with StopFlag() as stop:
        for epoch in range(start[0], epochs):
            wall = time.perf_counter()
            stats = run_epoch(state, loaders, runtime, (epoch, step), stop, reporter)
            if step and state.partial:  # the steps before an interruption count too
                stats, state.partial = with_earlier(stats, state.partial), None
            at = step + stats.steps - stats.steps_before  # steps into this epoch
            if stats.diverged:  # the weights are spoilt: the last checkpoint stays as it is
                raise TrainingDiverged(run_dir, epoch, at, stats.loss, run_dir / LAST)
            if stats.interrupted:
                save(run_dir / LAST, epoch, at, {"partial_epoch": dataclasses.asdict(stats)})
                raise TrainingInterrupted(run_dir, epoch, at)
            step, record, metrics = 0, epoch_record(epoch + 1, stats, state.optimizer), None
            if (epoch + 1) % val_every == 0 or epoch + 1 == epochs:
                metrics = validate_epoch(state, loaders.val, runtime, reporter, record)
                if metrics["mean_iou"] is not None and metrics["mean_iou"] > state.best["mean_iou"]:
                    state.best = {"mean_iou": metrics["mean_iou"], "epoch": epoch + 1}
                    save(run_dir / BEST, epoch + 1, 0, metrics)
            record["epoch_time_s"] = time.perf_counter() - wall
            save(run_dir / LAST, epoch + 1, 0, metrics)
            if log:
                log.append(record)
            reporter.epoch(record)
    if log:
        log.close()
    check_in_step(state.model)
    return {**record, "best": state.best}


def check_in_step(model: nn.Module) -> None:
    """Under torchrun, every process must end with the very same weights (DDP averages the
    gradients, so each takes the same steps); anything else is a bug, said loudly."""
    if not world().distributed:
        return
    checksum = float(sum(p.detach().double().sum() for p in model.parameters()))
    if not same_across(checksum):
        raise RuntimeError("the processes of this run ended with different weights")


def run_epoch(
    state: TrainState,
    loaders: Loaders,
    runtime: Runtime,
    at: tuple[int, int],
    stop: StopFlag,
    reporter: Reporter,
) -> EpochStats:
    """Epoch ``at[0]`` (0-based) from step ``at[1]``, with a progress bar."""
    epoch, step = at
    loaders.set_epoch(epoch, step)
    title = f"epoch {epoch + 1}/{state.config.optim.epochs}"
    with reporter.task(title, loaders.steps_per_epoch, step) as advance:
        return train_one_epoch(
            state.trainable,
            loaders.train,
            state.optimizer,
            state.scheduler,
            state.scaler,
            runtime,
            state.scheme.ignore_index,
            stop,
            on_step=lambda steps, loss: advance(loss=loss),
        )


def with_earlier(stats: EpochStats, earlier: dict) -> EpochStats:
    """An epoch's figures with those of its part before an interruption added."""
    images = earlier["images"] + stats.images
    loss = (earlier["loss"] * earlier["images"] + stats.loss * stats.images) / max(images, 1)
    return dataclasses.replace(
        stats,
        loss=loss,
        images=images,
        steps=earlier["steps"] + stats.steps,
        data_time=earlier["data_time"] + stats.data_time,
        compute_time=earlier["compute_time"] + stats.compute_time,
        steps_before=earlier["steps"],
    )


def validate_epoch(
    state: TrainState, loader: DataLoader, runtime: Runtime, reporter: Reporter, record: dict
) -> dict:
    """Validate, and add the scores and the time taken to the epoch's ``record``."""
    start = time.perf_counter()
    state.model.eval()
    metrics = validate(training_segmenter(state, runtime), loader, reporter)
    record.update(
        val_mean_iou=metrics["mean_iou"],
        val_pixel_accuracy=metrics["pixel_accuracy"],
        val_time_s=time.perf_counter() - start,
    )
    return metrics


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
