"""Scoring a model on a split: the standard protocol, the paper's, and collapsing.

``standard``: whole images at full resolution, one confusion matrix over the split,
unlabelled pixels ignored (the void class, if the model has one, is not scored, and
predicting it on a labelled pixel is an error).

``paper``: the reference code's figures: per image, accuracy over all pixels and IoU
averaged over the classes in that image's ground truth, unlabelled scored as "other";
optionally on the top-left training-size crop only.

``collapse_to``: predictions of a finer scheme mapped into a coarser one (nyu40 ->
layout3) before scoring, so a 40-class model and a 3-class model meet on equal terms.

The scorers take ``(label, prediction)`` pairs, so validation during training and
``evaluate_checkpoint`` share them. Results of a checkpoint go to a folder keyed by what
was scored (``results_dir``): scoring a run on another dataset never overwrites anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from indoorseg.classes import LabelSpace, Scheme, collapse_table, load_scheme
from indoorseg.data.dataset import SegmentationDataset
from indoorseg.data.prepared import read_info
from indoorseg.distributed import device_name, gather_in_order, shard, start, sum_across, world
from indoorseg.errors import UsageError
from indoorseg.inference import ModelCard, Segmenter, check_scales
from indoorseg.metrics import ConfusionMatrix, PaperScores, summarize
from indoorseg.progress import Reporter
from indoorseg.runlog import read_run_info
from indoorseg.runtime import make_runtime
from indoorseg.scorecard import check_report_dir, write_report

Pairs = Iterable[tuple[torch.Tensor, torch.Tensor]]  # (label, predicted ids), (B, H, W) each
UNSCORED = "(unscored)"


def scored_classes(scheme: Scheme) -> list[int]:
    """Classes scored by the standard protocol: all but the void class."""
    return [
        i for i in range(scheme.num_classes) if not (scheme.void == "class" and i == scheme.void_id)
    ]


def collapse_lookup(fine: Scheme, coarse: Scheme, space: LabelSpace) -> torch.Tensor:
    """``table[fine id] -> coarse id`` over a label space both schemes compile from.

    A fine class that falls on the coarse ignore label (layout3 "other" scored in
    layout3-ignore) becomes the id one past the coarse classes, "unscored": a wrong
    answer, never a skipped one.
    """
    table = collapse_table(fine, coarse, space).astype(np.int64)
    table[table == coarse.ignore_index] = coarse.num_classes
    return torch.from_numpy(table)


def collapsed(pairs: Pairs, table: torch.Tensor | None) -> Iterator[tuple[torch.Tensor, ...]]:
    """The pairs with predictions mapped through ``table`` (unchanged when it is None)."""
    for label, pred in pairs:
        yield label, (pred if table is None else table[pred])


def score_standard(
    pairs: Pairs, scheme: Scheme, on_step: Callable | None = None, across: bool = False
) -> dict:
    """One confusion matrix over all pairs; metrics over the scored classes. ``across``:
    the pairs are this process's share of a distributed run; the matrices are summed.

    Predictions may hold the id ``scheme.num_classes`` ("unscored": a collapsed class of no
    coarse class); they count as errors. Returns ``metrics``, ``confusion_matrix`` (square,
    with the unscored column only when it was predicted) and ``class_names``.
    """
    confusion = ConfusionMatrix(scheme.num_classes + 1, scheme.ignore_index)
    for label, pred in pairs:
        confusion.update(label, pred)
        if on_step:
            on_step()
    if across:
        confusion.mat = sum_across(confusion.mat)
    mat, names = confusion.numpy(), [*scheme.class_names, UNSCORED]
    metrics = summarize(mat, names, scored_classes(scheme))
    if not mat[:, -1].any():  # nothing unscored was predicted: keep the matrix square
        mat, names = mat[:-1, :-1], names[:-1]
    return {"metrics": metrics, "confusion_matrix": mat.tolist(), "class_names": names}


def score_paper(
    pairs: Pairs, scheme: Scheme, on_step: Callable | None = None, across: bool = False
) -> dict:
    """The reference code's per-image scores, averaged over images; unlabelled is a class.

    A scheme that ignores unlabelled pixels gets for them the id one past its classes,
    which the model never predicts, as a model without "other" would fare. ``across``: the
    pairs are this process's ``shard``; the scores of all are averaged in image order.
    """
    paper = PaperScores()
    for label, pred in pairs:
        label = torch.where(label == scheme.ignore_index, scheme.num_classes, label)
        for target, p in zip(label.numpy(), pred.numpy(), strict=True):
            paper.update(target, p)
        if on_step:
            on_step()
    if across:
        paper.accuracies = gather_in_order(paper.accuracies)
        paper.ious = gather_in_order(paper.ious)
    return {"metrics": paper.summary()}


SCORERS = {"standard": score_standard, "paper": score_paper}
PROTOCOLS = tuple(SCORERS)


@dataclass(frozen=True)
class Scoring:
    """What to score: a split of a split set, under a protocol, maybe collapsed or cropped.

    Attributes:
        split_set: ``None``: the split set the model was trained on (so that a model
            trained on the paper split is not scored on its own training images), else
            the dataset's default.
        collapse_to: a coarser scheme to map the predictions into before scoring.
        top_left_crop: paper protocol only: score the top-left training-size crop.
        regions: vote the probabilities over regions of each image (``indoorseg.regions``).
        scales: run the network at these sizes relative to the image's and average.
    """

    split: str = "test"
    split_set: str | None = None
    protocol: str = "standard"
    collapse_to: str | None = None
    top_left_crop: bool = False
    regions: bool = False
    scales: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        check_scales(self.scales)
        if self.protocol not in PROTOCOLS:
            raise UsageError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.top_left_crop and self.protocol != "paper":
            raise UsageError(
                "top_left_crop scores the paper protocol's crop, not the standard protocol",
                {"protocol": "paper"},
            )

    def name(self, default_split_set: str | None, scheme: str) -> str:
        """``[SPLITSET.]SPLIT-PROTOCOL[-crop][-scales...][-regions][-to-SCHEME]``, ``SCHEME``
        being the name of the scheme scored; the split set only when it is not the one used
        by default; the scales (``-scales1+0.5``) only when they are not just 1."""
        explicit = self.split_set not in (None, default_split_set)
        name = f"{self.split_set}." if explicit else ""
        name += f"{self.split}-{self.protocol}" + ("-crop" if self.top_left_crop else "")
        if tuple(self.scales) != (1.0,):
            name += "-scales" + "+".join(f"{v:g}" for v in self.scales)
        name += "-regions" if self.regions else ""
        return name + (f"-to-{scheme}" if self.collapse_to else "")


def evaluate_model(
    model: str | Path,
    data_root: str | Path,
    split: str = "test",
    *,
    split_set: str | None = None,
    protocol: str = "standard",
    collapse_to: str | None = None,
    top_left_crop: bool = False,
    regions: bool | None = None,
    scales: tuple[float, ...] = (1.0,),
    backend: str = "auto",
    device: str = "auto",
    out_dir: str | Path | None = None,
    reporter: Reporter | None = None,
    workers: int = 2,
) -> dict:
    """Score any model ``predict`` takes (a run folder, a checkpoint, an exported ``.onnx``,
    int8 included) on a prepared folder; write the report to ``out_dir`` (default:
    ``results_dir``, keyed by what was scored).

    The scoring arguments are those of ``Scoring``; the model is run as ``predict`` runs it
    by default (its recipe's ``model.inference_side`` and, for ``regions=None``,
    ``model.inference_regions``; a model that names no side, on whole images at full
    resolution, however large), the labels always scored at full size. ``backend`` and
    ``device`` are those of
    ``Segmenter.load`` (``auto``: torch for checkpoints, on CUDA when there is one,
    onnxruntime for ``.onnx`` files); ``workers`` load the images. Returns what was scored,
    ``metrics`` (for the standard protocol the confusion matrix too) and ``out_dir``, which
    holds ``metrics.json``, ``metrics.md`` (and ``confusion.png``).
    """
    # checked before the model is opened; its vote, if not given, is the model's (below)
    scoring = Scoring(split, split_set, protocol, collapse_to, top_left_crop, bool(regions), scales)
    device = device_name(device)
    start(make_runtime(device).device)  # under torchrun, each process scores a share
    if backend == "auto":  # the reference of each kind of file, not benchmark's fastest
        backend = "onnxruntime" if Path(model).suffix == ".onnx" else "torch"
    segmenter = Segmenter.load(model, backend, device, regions=regions, scales=scales)
    if not segmenter.card.inference.get("side"):
        segmenter.max_side = None  # whole images at full resolution, however large
    scoring = dataclasses.replace(scoring, regions=segmenter.regions)
    out = Path(out_dir) if out_dir else default_out_dir(segmenter, data_root, scoring)
    check_report_dir(out)  # before minutes of predictions, not after
    result = score_segmenter(segmenter, data_root, scoring, reporter, workers)
    if world().main:
        write_report(result, out)
    return {**result, "out_dir": str(out)}


def default_out_dir(segmenter: Segmenter, data_root: str | Path, scoring: Scoring) -> Path:
    """``results_dir`` of this scoring: named after the scheme scored, and after the split
    set when it is not the one the model's split set (or the dataset's default) gives."""
    info = read_info(data_root)
    card = segmenter.card
    default = card.train_data.get("split_set") or info.default_split_set
    collapsed = scoring.collapse_to and load_scheme(scoring.collapse_to, info.space())
    name = scoring.name(default, collapsed.name if collapsed else card.scheme.name)
    if segmenter.backend_name != ("onnxruntime" if card.path.suffix == ".onnx" else "torch"):
        name += f"-{segmenter.backend_name}"  # not the reference backend: kept apart
    return results_dir(results_home(card.path), data_root, name)


def results_home(model_path: Path) -> Path:
    """Where a model's results go: its run folder for a checkpoint, ``eval/STEM`` beside an
    ``.onnx`` file."""
    if model_path.suffix == ".onnx":
        return model_path.parent / "eval" / model_path.stem
    return model_path.parent


def score_segmenter(
    segmenter: Segmenter,
    data_root: str | Path,
    scoring: Scoring,
    reporter: Reporter | None = None,
    workers: int = 2,
) -> dict:
    """Predict on every image of the split (this process's share under torchrun) and score
    the predictions."""
    reporter = reporter if reporter and world().main else Reporter(enabled=False)
    card, s = segmenter.card, scoring
    space = read_info(data_root).space()
    scheme = load_scheme(s.collapse_to, space) if s.collapse_to else card.scheme
    table = collapse_lookup(card.scheme, scheme, space) if s.collapse_to else None
    split_set = s.split_set or card.train_data.get("split_set")
    dataset = SegmentationDataset(data_root, scheme, s.split, split_set, normalization=None)
    share = Subset(dataset, shard(len(dataset)))  # all of it in a single process
    loader = DataLoader(share, batch_size=1, num_workers=workers)  # whole images, any size
    crop = training_crop(card) if s.top_left_crop else None
    pairs = collapsed(labelled_predictions(segmenter, loader, crop), table)
    with reporter.task(f"evaluate {s.split} ({s.protocol})", len(loader)) as advance:
        scores = SCORERS[s.protocol](pairs, scheme, on_step=lambda: advance(), across=True)
    return {
        "protocol": s.protocol,
        "split": s.split,
        "split_set": dataset.split_set,
        "images": len(dataset),
        "model_file": str(card.path),
        "model": card.model.get("name"),
        "backend": segmenter.backend_name,
        "precision": segmenter.precision,
        "trained_scheme": card.scheme.name,
        "scheme": scheme.name,
        "collapsed": table is not None,
        "top_left_crop": list(crop) if crop else None,
        "regions": s.regions,
        "scales": list(s.scales),
        "dataset": str(data_root),
        "dataset_id": dataset_id(data_root),
        **scores,
    }


def training_crop(card: ModelCard) -> tuple[int, int]:
    """The (h, w) crop a model was trained on (the paper protocol scores its top-left)."""
    crop = card.train_data.get("crop")
    if not crop:
        raise UsageError(
            f"{card.path}: the model file does not record its training crop",
            {"top_left_crop": False},
        )
    return int(crop[0]), int(crop[1])


def labelled_predictions(
    segmenter: Segmenter, loader: DataLoader, crop: tuple[int, int] | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(label, predicted ids)`` of each whole image of a loader of raw (uint8) images,
    one at a time, on the CPU; ``crop``: only the top-left (h, w) of each image (the paper's
    test script).

    Shape: loader items (1, H, W, 3) uint8, (1, H, W) -> label, pred (1, H, W) int64.
    """
    for image, label in loader:
        image = image[0].numpy()
        if crop is not None:
            image, label = image[: crop[0], : crop[1]], label[..., : crop[0], : crop[1]]
        pred = segmenter.predict(image)
        yield label, torch.from_numpy(pred.astype(np.int64))[None]


def dataset_id(data_root: str | Path) -> str:
    """16 hex digits of the sha256 of a prepared folder's ``dataset.json``: which images,
    splits and sources were scored (a result stored for another is not this one's)."""
    return hashlib.sha256((Path(data_root) / "dataset.json").read_bytes()).hexdigest()[:16]


def dataset_key(data_root: str | Path) -> str:
    """``NAME-HASH``: the dataset's name (as a safe file name) and 8 hex digits of its
    absolute path."""
    root = Path(data_root).resolve()
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:8]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", read_info(root).name).strip("._") or "dataset"
    return f"{name}-{digest}"


def results_dir(run_dir: Path, data_root: str | Path, name: str) -> Path:
    """Where the results of one scoring named ``name`` (``Scoring.name``) go.

    ``RUN/eval/NAME`` for the dataset the run was trained on (``run.json``),
    ``RUN/eval/DATASET-HASH/NAME`` for any other (``dataset_key``), so that scoring a run
    on a second dataset leaves the first one's results alone.
    """
    trained_on = read_run_info(run_dir).get("data")
    if trained_on is not None and Path(trained_on).resolve() == Path(data_root).resolve():
        return run_dir / "eval" / name
    return run_dir / "eval" / dataset_key(data_root) / name
