"""The report's PNG plots: training curves, epoch time against class count, sample grids."""

from __future__ import annotations

from pathlib import Path

from indoorseg.classes import overlay
from indoorseg.data.dataset import SegmentationDataset
from indoorseg.files import atomic_path
from indoorseg.inference import Segmenter
from indoorseg.reproduce.results import PAPER_DEVICE, PAPER_TABLE3

SCHEME_COLOURS = {"layout3": "tab:blue", "layout3-ignore": "tab:green", "nyu40": "tab:orange"}
STYLES = ["-", "--", ":", "-."]


def save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path


def training_curves(runs: list[dict], path: Path) -> Path:
    """Training loss and validation mIoU per epoch, a line per run."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(11, 4))
    loss_ax, iou_ax = fig.subplots(1, 2)
    for run in runs:
        epochs = run["epochs"]
        colour = SCHEME_COLOURS.get(run["scheme"], "tab:gray")
        style = STYLES[run["seed"] % len(STYLES)]
        label = run["name"]
        loss_ax.plot(
            [r["epoch"] for r in epochs],
            [r["train_loss"] for r in epochs],
            style,
            color=colour,
            label=label,
        )
        val = [(r["epoch"], r["val_mean_iou"]) for r in epochs if "val_mean_iou" in r]
        if val:
            iou_ax.plot(*zip(*val, strict=True), style, color=colour, marker="o", label=label)
    loss_ax.set(title="training loss", xlabel="epoch", ylabel="cross-entropy")
    iou_ax.set(title="validation mean IoU (standard, own classes)", xlabel="epoch", ylim=(0, 1))
    iou_ax.legend(fontsize=7)
    for ax in (loss_ax, iou_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    return save(fig, path)


def epoch_time(rows: list[dict], path: Path, device: str) -> Path:
    """Minutes per epoch of 889 images against the class count, both label pipelines, with
    the data-loading share dashed, beside the paper's figures."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    for pipeline, colour in (("one-hot", "tab:red"), ("integer", "tab:blue")):
        mine = sorted((r for r in rows if r["pipeline"] == pipeline), key=lambda r: r["classes"])
        classes = [r["classes"] for r in mine]
        ax.plot(
            classes,
            [r["epoch"]["total_s"] / 60 for r in mine],
            "-o",
            color=colour,
            label=f"{pipeline} labels: total ({device})",
        )
        ax.plot(
            classes,
            [max(r["epoch"]["data_s"] / 60, 1e-3) for r in mine],
            "--",
            color=colour,
            label=f"{pipeline} labels: data loading",
        )
    paper = sorted(PAPER_TABLE3.items())
    ax.plot(
        [c for c, _ in paper],
        [s / 60 for _, s in paper],
        "s",
        color="black",
        label=f"Kim & Choi, Table 3 ({PAPER_DEVICE})",
    )
    ax.set(xscale="log", yscale="log", xlabel="classes", ylabel="minutes per epoch of 889 images")
    ax.set_xticks([3, 40, 894], ["3", "40", "894"])
    ax.set_title("time per training epoch against the class count", fontsize=10)
    ax.legend(fontsize=7)
    return save(fig, path)


def sample_grid(
    segmenter: Segmenter, sets: dict[str, SegmentationDataset], count: int, path: Path
) -> Path:
    """Rows of RGB | ground truth | prediction | prediction voted over image regions, for
    the first ``count`` images of each set."""
    from matplotlib.figure import Figure

    from indoorseg.regions import region_vote

    rows = [(name, ds, i) for name, ds in sets.items() for i in range(min(count, len(ds)))]
    fig = Figure(figsize=(13, 2.6 * len(rows)))
    axes = fig.subplots(len(rows), 4, squeeze=False)
    scheme = segmenter.card.scheme
    for (name, ds, index), row in zip(rows, axes, strict=True):
        image, label = ds.load(index)
        probs = segmenter.probabilities(image)
        voted = region_vote(probs, image).argmax(0)
        panels = (
            image,
            overlay(image, label, ds.scheme),
            overlay(image, probs.argmax(0), scheme),
            overlay(image, voted, scheme),
        )
        titles = (
            f"{name} {ds.ids[index]}",
            "ground truth",
            f"prediction ({scheme.name})",
            "voted over image regions",
        )
        for ax, panel, title in zip(row, panels, titles, strict=True):
            ax.imshow(panel)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    return save(fig, path)
