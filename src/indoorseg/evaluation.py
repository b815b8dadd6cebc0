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

from indoorseg.checkpoint import load_checkpoint, resolve
from indoorseg.classes import Scheme, collapse_table, load_scheme, scheme_from_dict
from indoorseg.data.dataset import SegmentationDataset
from indoorseg.data.prepared import atomic_write_text
from indoorseg.engine import scored_classes
from indoorseg.metrics import ConfusionMatrix, PaperScores, summarize
from indoorseg.models import ModelSpec, build_model
from indoorseg.runtime import Runtime, make_runtime, predict_logits

PROTOCOLS = ("standard", "paper")


@dataclass
class LoadedModel:
    """A model rebuilt from a checkpoint, with what it was trained on."""

    model: nn.Module
    spec: ModelSpec
    scheme: Scheme
    meta: dict
    path: Path


def load_model(path: str | Path, runtime: Runtime, which: str = "best") -> LoadedModel:
    """Rebuild a model from a checkpoint file or run folder (weights only, no pickle)."""
    path = resolve(path, which)
    ckpt = load_checkpoint(path)
    spec = ModelSpec.from_dict(ckpt.meta["model"])
    scheme = scheme_from_dict(ckpt.meta["scheme"], f"{path} scheme")
    model = build_model(spec)
    model.load_state_dict(ckpt.model, strict=True)
    model = runtime.prepare(model).eval()
    return LoadedModel(model, spec, scheme, ckpt.meta, path)


def evaluate_checkpoint(
    checkpoint: str | Path,
    data_root: str | Path,
    split: str = "test",
    split_set: str | None = None,
    protocol: str = "standard",
    collapse_to: str | None = None,
    top_left_crop: bool = False,
    device: str = "auto",
    batch_size: int = 2,
    out_dir: str | Path | None = None,
    reporter=None,
) -> dict:
    """Score a checkpoint on one split; writes ``metrics.json``, ``metrics.md`` and (standard)
    ``confusion.png`` to ``out_dir`` (default ``RUN/eval/SPLIT-PROTOCOL[-to-SCHEME]``)."""
    from indoorseg.progress import Reporter

    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if top_left_crop and protocol != "paper":
        raise ValueError("the top-left crop belongs to the paper protocol; add --protocol paper")
    reporter = reporter or Reporter(enabled=False)
    runtime = make_runtime(device, "auto", "auto")
    loaded = load_model(checkpoint, runtime)
    probe = SegmentationDataset(data_root, loaded.scheme, split, split_set)  # checks the split
    space = probe.info.space()
    scheme = loaded.scheme
    table = None
    if collapse_to:
        scheme = load_scheme(collapse_to, space)
        table = torch.from_numpy(collapse_table(loaded.scheme, scheme, space).astype(np.int64))
    dataset = SegmentationDataset(data_root, scheme, split, split_set)
    loader = DataLoader(dataset, batch_size=1 if top_left_crop else batch_size, num_workers=2)
    crop = tuple(loaded.meta["config"]["data"]["crop"]) if top_left_crop else None

    confusion = ConfusionMatrix(scheme.num_classes, scheme.ignore_index)
    paper = PaperScores()
    with reporter.task(f"evaluate {split} ({protocol})", len(loader)) as advance:
        for x, y in loader:
            if crop is not None:  # the reference test script scored x[:h, :w] only
                x, y = x[..., : crop[0], : crop[1]], y[..., : crop[0], : crop[1]]
            pred = predict_logits(loaded.model, x, runtime).argmax(1).cpu()
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
        "split_set": split_set or probe.info.default_split_set,
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
        result["metrics"] = summarize(confusion.numpy(), scheme.class_names, scored_classes(scheme))
        result["confusion_matrix"] = confusion.numpy().tolist()
        result["class_names"] = scheme.class_names
    else:
        result["metrics"] = paper.summary()
    name = f"{split}-{protocol}" + (f"-to-{scheme.name}" if table is not None else "")
    out = (
        Path(out_dir)
        if out_dir
        else Path(checkpoint if Path(checkpoint).is_dir() else Path(checkpoint).parent)
        / "eval"
        / name
    )
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
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
