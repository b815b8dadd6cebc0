"""Adapting a trained model to unlabelled real photos: ``adapt``.

Self-training with confident pseudo-labels. The trained model, as ``predict`` runs it
(its recipe's size), voted over image regions, labels every photo; of each class, only
the most confident pixels are kept (the rest, and what it calls void, are ignored), so
that a class the model is unsure of everywhere still keeps its best pixels. The model then
goes on training on crops of the photos with those labels, mixed half and half with its
own labelled training data, so that it learns the photos' look without forgetting what the
labels taught it. Batch norm, in training mode, takes the statistics of the mixed batches.

The adapted run is an ordinary run folder (same checkpoints, logs, ``evaluate`` and
``predict``); it records where it came from and how in ``run.json`` (``adapted``), keeps
the pseudo-labels it trained on in ``pseudo/`` for a person to look at, and an interrupted
adaptation goes on where it stopped when ``adapt`` is called again with the same settings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset

from indoorseg.checkpoint import LAST, read_model, read_progress
from indoorseg.config import Config, check_config
from indoorseg.data.dataset import EpochSampler, SegmentationDataset, TrainTransform, to_tensor
from indoorseg.data.prepared import read_label_png, save_uint16_png
from indoorseg.distributed import shard
from indoorseg.engine import Loaders, fit
from indoorseg.errors import ConfigError, InputError, UsageError
from indoorseg.files import atomic_folder
from indoorseg.images import IMAGE_SUFFIXES, read_image
from indoorseg.inference import Segmenter
from indoorseg.progress import Reporter
from indoorseg.runlog import read_config, read_run_info, write_config, write_run_info
from indoorseg.runtime import deterministic, make_runtime
from indoorseg.training import build_state, rooms_of, unfinished_removed

PSEUDO = "pseudo"  # the run folder's pseudo-labels: rgb/NAME.png and label/NAME.png


@dataclass(frozen=True)
class AdaptSettings:
    """How a model adapts.

    Attributes:
        epochs: passes over the mixed data (photos repeated to half of it).
        lr: Adam's learning rate, constant.
        keep: share of each class's pixels kept as pseudo-labels, the most confident.
        side: photos are resized so that their longer side is this many pixels (the
            rooms' scale: a model trained on 240x320 rooms sees them as it saw the rooms).
        seed: the sampler's and augmentations' seed.
    """

    epochs: int = 2
    lr: float = 1e-4
    keep: float = 0.5
    side: int = 320
    seed: int = 0

    def check(self) -> AdaptSettings:
        if self.epochs < 1 or self.lr <= 0 or self.side < 32:
            raise UsageError(f"epochs, lr and side must be positive (side >= 32): {self}")
        if not 0 < self.keep <= 1:
            raise UsageError(f"keep must be in (0, 1], got {self.keep}")
        return self


def photo_files(folder: str | Path) -> list[Path]:
    """The image files of a folder and its sub-folders (by suffix; other files, such as a
    README, are not photos), sorted; a folder of none is an error. Each is read when
    pseudo-labelled, and one that cannot be is an error naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of photos")
    images = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not images:
        raise InputError(f"{folder}: no photos in it ({', '.join(IMAGE_SUFFIXES)})")
    return images


def photo_name(path: Path, folder: Path) -> str:
    """A photo's name in the run folder: its path inside ``folder``, ``/`` as ``__``."""
    return "__".join(path.relative_to(folder).with_suffix("").parts)


def resized(image: np.ndarray, side: int) -> np.ndarray:
    """An RGB image scaled so that its longer side is ``side`` (antialiased)."""
    h, w = image.shape[:2]
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))


def pseudo_label(teacher: Segmenter, image: np.ndarray, side: int) -> tuple[np.ndarray, ...]:
    """The photo at ``side``, the teacher's classes there and their confidence.

    Shape: image (H, W, 3) uint8 -> (h, w, 3) uint8, (h, w) int64, (h, w) float32.
    """
    probs = torch.from_numpy(teacher.probabilities(image))[None]
    small = resized(image, side)
    probs = torch.nn.functional.interpolate(probs, size=small.shape[:2], mode="bilinear")[0]
    confidence, labels = probs.max(0)
    return small, labels.numpy(), confidence.numpy()


def keep_confident(labels: list, confidence: list, keep: float, scheme, ignore: int) -> list:
    """Each class's ``keep`` most confident pixels over all photos stay; the rest and the
    void class become ``ignore``."""
    every = np.concatenate([c.ravel() for c in confidence])
    classes = np.concatenate([label.ravel() for label in labels])
    cut = {c: np.quantile(every[classes == c], 1 - keep) for c in np.unique(classes)}
    kept = []
    for label, conf in zip(labels, confidence, strict=True):
        threshold = np.vectorize(cut.get)(label)
        label = np.where(conf >= threshold, label, ignore)
        if scheme.void == "class":
            label[label == scheme.void_id] = ignore
        kept.append(label.astype(np.uint16))
    return kept


def write_pseudo_labels(
    teacher: Segmenter, photos: list[Path], names: list[str], out: Path, settings, reporter
) -> None:
    """``out/pseudo``: each photo at ``side`` and its kept pseudo-labels (train ids)."""
    scheme, smalls, labels, confidence = teacher.card.scheme, [], [], []
    with reporter.task("pseudo-labels", len(photos)) as advance:
        for path in photos:
            small, label, conf = pseudo_label(teacher, read_image(path), settings.side)
            smalls.append(small), labels.append(label), confidence.append(conf)
            advance()
    kept = keep_confident(labels, confidence, settings.keep, scheme, scheme.ignore_index)
    with atomic_folder(out / PSEUDO) as tmp:
        (tmp / "rgb").mkdir(), (tmp / "label").mkdir()
        for name, small, label in zip(names, smalls, kept, strict=True):
            Image.fromarray(small).save(tmp / "rgb" / f"{name}.png")
            save_uint16_png(tmp / "label" / f"{name}.png", label)


class PseudoLabelled(Dataset):
    """The photos and their pseudo-labels (train ids), augmented like the training rooms
    (deterministic per seed, epoch and index); ``repeat`` times over."""

    def __init__(self, root: Path, transform, ignore: int, seed: int, repeat: int = 1):
        self.names = sorted(p.stem for p in (root / "rgb").glob("*.png"))
        self.root, self.transform, self.ignore = root, transform, ignore
        self.seed, self.repeat, self.epoch = seed, repeat, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.names) * self.repeat

    def __getitem__(self, index: int):
        name = self.names[index % len(self.names)]
        image = read_image(self.root / "rgb" / f"{name}.png")
        label = read_label_png(self.root / "label" / f"{name}.png").astype(np.int64)
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        image, label = self.transform(image, label, self.ignore, rng)
        return to_tensor(image), torch.from_numpy(np.ascontiguousarray(label))


class Mixed(Dataset):
    """The rooms and the photos in one index: items of ``first`` then of ``second``."""

    def __init__(self, first: Dataset, second: Dataset) -> None:
        self.first, self.second = first, second
        self.scheme = first.scheme

    def set_epoch(self, epoch: int) -> None:
        self.first.set_epoch(epoch), self.second.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.first) + len(self.second)

    def __getitem__(self, index: int):
        if index < len(self.first):
            return self.first[index]
        return self.second[index - len(self.first)]


def adapt(
    run: str | Path,
    photos: str | Path,
    out: str | Path,
    settings: AdaptSettings = AdaptSettings(),
    reporter: Reporter | None = None,
) -> dict:
    """Adapt the model of run folder ``run`` to the photos of folder ``photos`` (and its
    sub-folders; no labels read), into the run folder ``out``; see the module.

    Called again on an ``out`` of the same run, photos and settings, it goes on where it
    stopped (or does nothing when it is done); on an ``out`` of other ones it refuses.

    Returns:
        The last epoch's record (losses, timings, validation on the run's own
        validation split) and ``best``.
    """
    settings, run, out = settings.check(), Path(run), Path(out)
    reporter = reporter or Reporter(enabled=False)
    files = photo_files(photos)
    data_root = read_run_info(run).get("data")
    if data_root is None:
        raise ConfigError(f"{run}: no run.json saying which data it was trained on")
    config = adapted_config(read_config(run), settings)
    record = {
        "from": str(run.resolve()),
        "photos": str(Path(photos).resolve()),
        "settings": dataclasses.asdict(settings),
    }
    resume = claim(out, record, config)
    if resume and read_progress(out / LAST).epoch >= settings.epochs:
        reporter.note(f"{out}: adapted already")
        return {"adapted": record, "reused": True}
    with deterministic(config.train.deterministic), unfinished_removed(out, resume):
        if not (out / PSEUDO).is_dir():
            teacher = Segmenter.load(run, "torch", regions=True)
            names = [photo_name(path, Path(photos)) for path in files]
            write_pseudo_labels(teacher, files, names, out, settings, reporter)
        write_config(out, config)
        info = {"data": str(Path(data_root).resolve()), **rooms_of(Path(data_root))}
        write_run_info(out, {**info, "adapted": record})
        return train_adapted(config, Path(data_root), run, out, resume, reporter)


def adapted_config(config: Config, settings: AdaptSettings) -> Config:
    """The run's recipe, trained on from its weights at a constant ``lr``, validated at
    the end."""
    config = dataclasses.replace(config)
    config.model = dataclasses.replace(config.model, encoder_weights="none")
    config.optim = dataclasses.replace(
        config.optim, lr=settings.lr, scheduler="none", epochs=settings.epochs
    )
    config.train = dataclasses.replace(config.train, seed=settings.seed, val_every=settings.epochs)
    check_config(config)
    return config


def claim(out: Path, record: dict, config: Config) -> bool:
    """Whether ``out`` holds this very adaptation, to go on with; an ``out`` that holds
    anything else is refused."""
    if not out.exists() or not any(out.iterdir()):
        return False
    found = read_run_info(out).get("adapted")
    if found != record or read_config(out) != config:
        raise UsageError(
            f"{out}: holds something else than this adaptation (of {record['from']} to "
            f"{record['photos']} with these settings); it is not reused",
            {"out": None},
        )
    return (out / LAST).is_file()


def train_adapted(config: Config, data_root: Path, run: Path, out: Path, resume, reporter):
    """Train from ``run``'s weights (or ``out``'s last checkpoint) on rooms and photos."""
    torch.manual_seed(config.train.seed)  # dropout draws from it; a resume restores it
    runtime = make_runtime(config.train.device, config.train.amp, config.train.channels_last)
    loaders = adapt_loaders(config, data_root, out, runtime)
    scheme = loaders.train.dataset.scheme
    state = build_state(config, scheme, runtime, loaders.steps_per_epoch)
    if resume:
        start = state.restore(out / LAST)
    else:
        state.model.load_state_dict(read_model(run).weights)
        start = (0, 0)
    photos = len(loaders.train.dataset.second)
    reporter.note(
        f"adapting {state.spec.name} on {scheme.name}: {photos} photo crops and "
        f"{len(loaders.train.dataset.first)} rooms an epoch, {runtime.describe()}"
    )
    return fit(state, loaders, runtime, out, start, reporter)


def adapt_loaders(config: Config, data_root: Path, out: Path, runtime) -> Loaders:
    """The run's training rooms and the pseudo-labelled photos, repeated to as many, in
    one shuffled training loader; the run's validation images."""
    d, seed = config.data, config.train.seed
    transform = TrainTransform(tuple(d.crop), tuple(d.scale), d.flip, d.color)
    rooms = SegmentationDataset(data_root, d.scheme, d.train_split, d.split_set, transform, seed)
    count = len(list((out / PSEUDO / "rgb").glob("*.png")))
    repeat = max(1, round(len(rooms) / count))
    photos = PseudoLabelled(out / PSEUDO, transform, rooms.scheme.ignore_index, seed, repeat)
    mixed = Mixed(rooms, photos)
    generator = torch.Generator().manual_seed(seed)
    sampler = EpochSampler(len(mixed), seed=seed, batch=d.batch_size)
    train = DataLoader(
        mixed,
        batch_size=d.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=d.workers,
        generator=generator,
    )
    val = SegmentationDataset(data_root, rooms.scheme, d.val_split, d.split_set, normalization=None)
    val_loader = DataLoader(Subset(val, shard(len(val))), batch_size=1, num_workers=d.workers)
    return Loaders(train, val_loader)
