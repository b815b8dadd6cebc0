"""Setting up a training run from a config, or resuming one, then handing it to the loop.

``train`` builds everything a run needs (runtime, data loaders, model, optimizer,
scheduler), records the run in its folder and calls ``engine.fit``; ``resume_run`` continues a
run folder from its own records. The builders are here too, one job each.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from indoorseg.checkpoint import LAST, TrainState
from indoorseg.classes import Scheme
from indoorseg.config import Config, check_config
from indoorseg.data.dataset import EpochSampler, SegmentationDataset, TrainTransform
from indoorseg.data.prepared import read_info
from indoorseg.distributed import device_name, local_batch, shard, world
from indoorseg.distributed import start as start_processes
from indoorseg.engine import Loaders, fit
from indoorseg.errors import ConfigError
from indoorseg.models import ModelSpec, build_model
from indoorseg.progress import Reporter
from indoorseg.runlog import read_config, read_run_info, write_config, write_run_info
from indoorseg.runtime import Runtime, deterministic, make_runtime


def build_optimizer(model: nn.Module, config: Config) -> torch.optim.Optimizer:
    """The recipe's optimizer; the encoder's learning rate scaled by
    ``optim.encoder_lr_scale`` (0: the encoder is frozen, left out)."""
    o = config.optim
    params = parameter_groups(model, o.lr, o.encoder_lr_scale)
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    raise ConfigError(f"optim.name must be adam, adamw or sgd, got {o.name!r}")


def parameter_groups(model: nn.Module, lr: float, encoder_scale: float) -> list:
    """All trainable parameters at ``lr``, or the encoder's apart at ``lr * encoder_scale``
    (none of them when it is 0: they stop needing gradients)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if encoder_scale == 1:
        return params
    encoder = {id(p) for p in model.encoder.parameters()}
    rest = [p for p in params if id(p) not in encoder]
    if encoder_scale == 0:
        for p in model.encoder.parameters():
            p.requires_grad_(False)
        return rest
    mine = [p for p in params if id(p) in encoder]
    return [{"params": rest}, {"params": mine, "lr": lr * encoder_scale}]


def build_scheduler(optimizer, config: Config, steps_per_epoch: int):
    if config.optim.scheduler == "none":
        return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if config.optim.scheduler == "poly":
        total = max(1, config.optim.epochs * steps_per_epoch)
        return torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=total, power=0.9)
    raise ConfigError(f"optim.scheduler must be none or poly, got {config.optim.scheduler!r}")


def make_loaders(config: Config, data_root: Path, runtime: Runtime) -> Loaders:
    """Training loader (seeded sampler, paired augmentation) and whole-image validation loader."""
    d = config.data
    transform = TrainTransform(tuple(d.crop), tuple(d.scale), d.flip, d.color)
    train_set = SegmentationDataset(
        data_root, d.scheme, d.train_split, d.split_set, transform, seed=config.train.seed
    )
    val_set = SegmentationDataset(  # raw images: validation scores them as evaluate does
        data_root, train_set.scheme, d.val_split, d.split_set, normalization=None
    )
    if len(train_set) < d.batch_size:
        raise ConfigError(
            f"{data_root}: split {d.train_split!r} has {len(train_set)} images, fewer than "
            f"data.batch_size {d.batch_size}"
        )
    here, batch = world(), local_batch(d.batch_size)  # batch_size is the global batch
    common = dict(
        num_workers=d.workers,
        pin_memory=runtime.device.type == "cuda",
        # The loader's own generator: worker seeds must not draw from the global RNG.
        generator=torch.Generator().manual_seed(config.train.seed),
    )
    sampler = EpochSampler(
        len(train_set), seed=config.train.seed, batch=batch, rank=here.rank, world=here.size
    )
    train_loader = DataLoader(
        train_set, batch_size=batch, sampler=sampler, drop_last=True, **common
    )
    # Whole images one at a time (a folder may hold images of different sizes); each
    # process validates its share and the confusion matrices are summed.
    val_share = Subset(val_set, shard(len(val_set)))
    return Loaders(train_loader, DataLoader(val_share, batch_size=1, shuffle=False, **common))


def build_state(config: Config, scheme: Scheme, runtime: Runtime, steps_per_epoch: int):
    """Model, optimizer, scheduler and grad scaler of a new run."""
    spec = ModelSpec(
        config.model.name, scheme.num_classes, config.model.output_stride, config.model.input_scale
    )
    model = runtime.prepare(build_model(spec, config.model.encoder_weights))
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch)
    return TrainState(config, spec, scheme, model, optimizer, scheduler, runtime.grad_scaler())


def train(
    config: Config,
    data_root: str | Path,
    run_dir: str | Path,
    resume: bool = False,
    reporter: Reporter | None = None,
    run_info: dict | None = None,
) -> dict:
    """Train ``config`` on a prepared folder, writing checkpoints and logs to ``run_dir``.

    Args:
        resume: continue from ``run_dir``'s last checkpoint: model, optimizer, scheduler,
            grad scaler, epoch and step, RNG states. The resumed run ends with the weights
            the uninterrupted one would have had (on the CPU, bit for bit).
        run_info: recorded in ``run_dir/run.json`` beside the dataset path (recipe...).

    Returns:
        The last epoch's record (losses, timings, validation metrics) and ``best``.
    """
    here = world()
    reporter = reporter if reporter and here.main else Reporter(enabled=False)
    run_dir = Path(run_dir)
    check_config(config)
    data_root = check_data_root(data_root)
    if not resume and (run_dir / LAST).exists():
        raise ConfigError(f"{run_dir}: already holds a run", {"resume": True, "run_dir": None})
    if resume:
        check_same_rooms(run_dir, data_root)
    torch.manual_seed(config.train.seed)
    with deterministic(config.train.deterministic), unfinished_removed(run_dir, resume, here.main):
        runtime = make_runtime(
            device_name(config.train.device), config.train.amp, config.train.channels_last
        )
        start_processes(runtime.device)
        loaders = make_loaders(config, data_root, runtime)
        scheme = loaders.train.dataset.scheme
        state = build_state(config, scheme, runtime, loaders.steps_per_epoch)
        start = state.restore(run_dir / LAST) if resume else (0, 0)
        distribute(state, runtime)
        if here.main:
            info = {"data": str(data_root.resolve()), **rooms_of(data_root), **(run_info or {})}
            record_run(run_dir, config, info, resume)
        reporter.note(
            (f"{here.size} processes, " if here.distributed else "")
            + f"{state.spec.name} on {scheme.name} ({scheme.num_classes} classes), "
            f"{len(loaders.train.dataset)} train / {len(loaders.val.dataset)} val images, "
            f"{runtime.describe()}"
            + (f"; resuming at epoch {start[0] + 1}, step {start[1]}" if resume else "")
        )
        return fit(state, loaders, runtime, run_dir, start, reporter)


def distribute(state: TrainState, runtime: Runtime) -> None:
    """Under torchrun: train through DistributedDataParallel (optionally with batch norm
    statistics synchronised); ``state.model`` stays the plain module that is saved."""
    if not world().distributed:
        return
    if state.config.train.sync_bn:
        if runtime.device.type != "cuda":
            raise ConfigError(
                "train.sync_bn needs CUDA (PyTorch synchronises batch norm on GPUs only)",
                {"train.sync_bn": False},
            )
        state.model = nn.SyncBatchNorm.convert_sync_batchnorm(state.model)  # same parameters
    ids = [runtime.device.index] if runtime.device.type == "cuda" else None
    state.wrapped = nn.parallel.DistributedDataParallel(state.model, device_ids=ids)


@contextmanager
def unfinished_removed(run_dir: Path, resume: bool, main: bool = True) -> Iterator[None]:
    """A new run that fails before its first checkpoint leaves nothing behind: the files it
    wrote go, and its folder too when the run made it. A run with a checkpoint is kept,
    resumable. Only the ``main`` process writes, so only it cleans."""
    made = not run_dir.exists()
    before = set() if made else set(run_dir.iterdir())
    try:
        yield
    except BaseException:
        if main and not resume and not (run_dir / LAST).exists() and run_dir.is_dir():
            for entry in set(run_dir.iterdir()) - before:  # what this run wrote
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            if made and not any(run_dir.iterdir()):
                run_dir.rmdir()
        raise


def record_run(run_dir: Path, config: Config, info: dict, resume: bool) -> None:
    """The resolved config, and (for a new run) what it was started with."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, config)
    if not resume or not read_run_info(run_dir):
        write_run_info(run_dir, info)


def resume_run(
    run_dir: str | Path, data_root: str | Path | None = None, reporter: Reporter | None = None
) -> dict:
    """Continue the run in ``run_dir`` exactly, from its own ``config.yaml`` and the dataset
    recorded in its ``run.json`` (or ``data_root``)."""
    run_dir = Path(run_dir)
    if not (run_dir / LAST).is_file():
        raise ConfigError(f"{run_dir}: no {LAST} to resume from")
    config = read_config(run_dir)
    data_root = data_root or read_run_info(run_dir).get("data")
    if data_root is None:
        raise ConfigError(f"{run_dir}: no run.json saying which dataset", {"data_root": ...})
    return train(config, data_root, run_dir, resume=True, reporter=reporter)


def rooms_of(data_root: Path) -> dict:
    """``{"rooms": GENERATOR}`` of a folder of synthetic rooms, recorded in ``run.json``;
    ``{}`` for other datasets."""
    made = read_info(data_root).extra.get("generator")
    return {"rooms": made} if made else {}


def check_same_rooms(run_dir: Path, data_root: str | Path) -> None:
    """Refuse to go on with a run on synthetic rooms of another generator than the ones it
    was trained on (a run that recorded none was trained before the rooms were versioned)."""
    made = rooms_of(Path(data_root)).get("rooms")
    trained = read_run_info(run_dir).get("rooms", "rooms of an unrecorded generator")
    if made is not None and trained != made:
        raise ConfigError(
            f"{run_dir}: trained on {trained}, but {data_root} holds rooms of {made}; the "
            "run is not reused: delete it to train it again",
            {"run_dir": None},
        )


def check_data_root(data_root: str | Path) -> Path:
    if not Path(data_root).is_dir():
        raise ConfigError(f"dataset folder not found: {data_root}")
    return Path(data_root)
