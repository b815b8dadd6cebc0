"""Scoring a trained model on a split: the standard protocol, the paper's, and collapsing.

``standard``: whole images at full resolution, one confusion matrix over the split,
unlabelled pixels ignored (the void class, if the model has one, is not scored, and
predicting it on a labelled pixel is an error).

``paper``: the reference code's figures: per image, accuracy over all pixels and IoU
averaged over the classes in that image's ground truth, unlabelled scored as "other";
optionally on the top-left training-size crop only.

``collapse_to``: predictions of a finer scheme mapped into a coarser one (nyu40 ->
layout3) before scoring, so a 40-class model and a 3-class model meet on equal terms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from indoorseg.checkpoint import CheckpointError, load_checkpoint, resolve
from indoorseg.classes import Scheme, collapse_table, load_scheme, scheme_from_dict
from indoorseg.data.dataset import SegmentationDataset
from indoorseg.data.prepared import read_info
from indoorseg.engine import predictions, scored_classes
from indoorseg.files import atomic_path, atomic_write_text
from indoorseg.metrics import ConfusionMatrix, PaperScores, summarize
from indoorseg.models import ModelSpec, build_model
from indoorseg.runtime import Runtime, make_runtime

PROTOCOLS = ("standard", "paper")


@dataclass
class LoadedModel:
    """A model rebuilt from a checkpoint, with what it was trained on."""

    model: nn.Module
    spec: ModelSpec
    scheme: Scheme
    meta: dict
    path: Path
    train_data: dict  # the data section of the training config (crop, split_set...)
    normalization: tuple[list[float], list[float]]  # (mean, std)


def load_model(path: str | Path, runtime: Runtime, which: str = "best") -> LoadedModel:
    """Rebuild a model from a checkpoint file or run folder (weights only, no pickle)."""
    path = resolve(path, which)
    ckpt = load_checkpoint(path)
    try:
        spec = ModelSpec.from_dict(ckpt.meta["model"])
        scheme = scheme_from_dict(ckpt.meta["scheme"], f"{path} scheme")
        model = build_model(spec)
        model.load_state_dict(ckpt.model, strict=True)
        train_data = ckpt.meta["config"]["data"]
        norm = ckpt.meta["normalization"]
        normalization = (norm["mean"], norm["std"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{path}: incomplete or inconsistent checkpoint ({err})") from None
    model = runtime.prepare(model).eval()
    return LoadedModel(model, spec, scheme, ckpt.meta, path, train_data, normalization)


def evaluate_checkpoint(
    checkpoint: str | Path,
    data_root: str | Path,
    split: str = "test",
    split_set: str | None = None,
    protocol: str = "standard",
    collapse_to: str | None = None,
    top_left_crop: bool = False,
    device: str = "auto",
    out_dir: str | Path | None = None,
    reporter=None,
) -> dict:
    """Score a checkpoint on one split; writes ``metrics.json``, ``metrics.md`` and (standard)
    ``confusion.png`` to ``out_dir`` (default ``RUN/eval/SPLIT-PROTOCOL[-crop][-to-SCHEME]``).

    Args:
        split_set: default: the split set the model was trained on (so that a model trained
            on the paper split is not scored on its own training images), else the
            dataset's default.
    """
    from indoorseg.progress import Reporter

    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if top_left_crop and protocol != "paper":
        raise ValueError("the top-left crop belongs to the paper protocol; add --protocol paper")
    reporter = reporter or Reporter(enabled=False)
    runtime = make_runtime(device, "auto", "auto")
    loaded = load_model(checkpoint, runtime)
    split_set = split_set or loaded.train_data.get("split_set")
    space = read_info(data_root).space()
    scheme = load_scheme(collapse_to, space) if collapse_to else loaded.scheme
    dataset = SegmentationDataset(
        data_root, scheme, split, split_set, normalization=loaded.normalization
    )
    table = None
    if collapse_to:
        table = collapse_table(loaded.scheme, scheme, space).astype(np.int64)
        # A fine class that falls on the coarse ignore label (layout3 "other" scored in
        # layout3-ignore) becomes one extra "unscored" id: a wrong answer, never a skipped one.
        table[table == scheme.ignore_index] = scheme.num_classes
        table = torch.from_numpy(table)
    loader = DataLoader(dataset, batch_size=1, num_workers=2)  # whole images of any size
    crop = tuple(loaded.train_data["crop"]) if top_left_crop else None

    # One id past the scheme's classes stands for "unscored": collapsed predictions of no
    # coarse class, and in the paper protocol the unlabelled class of a scheme that ignores it.
    confusion = ConfusionMatrix(scheme.num_classes + 1, scheme.ignore_index)
    paper = PaperScores()
    with reporter.task(f"evaluate {split} ({protocol})", len(loader)) as advance:
        for y, pred in predictions(loaded.model, loader, runtime, crop):
            if table is not None:
                pred = table[pred]
            if protocol == "standard":
                confusion.update(y, pred)
            else:
                # Unlabelled is a class of its own here; a scheme that ignores it gets an
                # extra id the model never predicts, as a model without "other" would fare.
                y = torch.where(y == scheme.ignore_index, scheme.num_classes, y)
                for target, p in zip(y.numpy(), pred.numpy(), strict=True):
                    paper.update(target, p)
            advance()

    result = {
        "protocol": protocol,
        "split": split,
        "split_set": split_set or dataset.info.default_split_set,
        "images": len(dataset),
        "checkpoint": str(loaded.path),
        "model": loaded.spec.name,
        "trained_scheme": loaded.scheme.name,
        "scheme": scheme.name,
        "collapsed": table is not None,
        "top_left_crop": list(crop) if crop else None,
        "dataset": str(data_root),
    }
    if protocol == "standard":
        mat = confusion.numpy()
        names = scheme.class_names + ["(unscored)"]
        result["metrics"] = summarize(mat, names, scored_classes(scheme))
        if not mat[:, -1].any():  # nothing unscored was predicted: keep the matrix square
            mat, names = mat[:-1, :-1], names[:-1]
        result["confusion_matrix"] = mat.tolist()
        result["class_names"] = names
    else:
        result["metrics"] = paper.summary()
    name = f"{split}-{protocol}" + ("-crop" if crop else "")
    name += f"-to-{scheme.name}" if table is not None else ""
    run_dir = loaded.path.parent
    out = Path(out_dir) if out_dir else run_dir / "eval" / name
    write_report(result, out)
    result["out_dir"] = str(out)
    return result


def markdown_table(result: dict) -> str:
    """A person-readable summary of one evaluation."""
    m = result["metrics"]
    lines = [
        f"# {result['model']} ({result['trained_scheme']}) on {result['split']}, "
        f"{result['protocol']} protocol",
        "",
        f"Scheme scored: {result['scheme']}"
        + (" (predictions collapsed)" if result["collapsed"] else "")
        + f"; {result['images']} images"
        + (f"; top-left crop {result['top_left_crop']}" if result["top_left_crop"] else ""),
        "",
        "| metric | value |",
        "| --- | --- |",
    ]
    for key in ("pixel_accuracy", "mean_class_accuracy", "mean_iou", "frequency_weighted_iou"):
        if m.get(key) is not None:
            lines.append(f"| {key.replace('_', ' ')} | {100 * m[key]:.2f} % |")
    if "per_class_iou" in m:
        lines += ["", "| class | IoU |", "| --- | --- |"]
        for name, value in m["per_class_iou"].items():
            lines.append(f"| {name} | {'n/a' if value is None else f'{100 * value:.2f} %'} |")
    return "\n".join(lines) + "\n"


def write_report(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=1))
    atomic_write_text(out / "metrics.md", markdown_table(result))
    if "confusion_matrix" in result:
        unscored = [n for n in result["class_names"] if n not in result["metrics"]["per_class_iou"]]
        title = f"{result['model']} on {result['split']}"
        if unscored:
            title += f"\n(true {', '.join(unscored)}: shown, not scored)"
        mat = np.asarray(result["confusion_matrix"])
        plot_confusion(mat, result["class_names"], out / "confusion.png", title)


def plot_confusion(mat: np.ndarray, names: list[str], path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix as a PNG (annotated when small)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(names)
    rows = mat.sum(1, keepdims=True)
    norm = np.divide(mat, rows, out=np.zeros_like(mat, dtype=float), where=rows > 0)
    size = min(4 + 0.3 * n, 30)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if n <= 60:
        ax.set_xticks(range(n), names, rotation=90 if n > 6 else 0)
        ax.set_yticks(range(n), names)
    if n <= 12:
        for i in range(n):
            for j in range(n):
                color = "white" if norm[i, j] > 0.5 else "black"
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", color=color)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
