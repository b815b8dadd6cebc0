"""``report.md``: the tables beside the paper's figures, and what they mean."""

from __future__ import annotations

from indoorseg.epoch_time import PIPELINES
from indoorseg.markdown import table
from indoorseg.reproduce.results import (
    PAPER_DEVICE,
    PAPER_QUOTED_40,
    PAPER_TABLE2,
    PAPER_TABLE3,
    verdict,
)

PROTOCOLS_TEXT = """\
**standard** (the literature's): one confusion matrix over the whole test split, whole
images at full size, unlabelled pixels ignored; a model that answers *other* on a labelled
pixel is wrong there. Mean IoU over background and object.

**paper** (the reference code's): per image, pixel accuracy over all pixels and IoU
averaged over the classes present in *that image's ground truth*, unlabelled pixels scored
as the class *other*; both averaged over images, optionally on the top-left training-size
crop only. A class predicted where the image has none costs nothing, so its mean IoU is
not comparable with the literature's."""

EPOCH_TIME_TEXT = """\
Why the paper's epoch time grew with the class count: the reference code one-hot encodes
every label crop on the CPU, comparing it with each class colour in turn, and hands the
network a (classes x H x W) float target, so its data time grows with the class count.
indoorseg turns a label into train ids with one table lookup and gives `cross_entropy`
integer targets, whatever the class count; what remains is the network's own cost of a
wider last layer (and, on a CPU, of its 4x-upsampled logits)."""


def pct(value, std=None) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.1f}" + (f" ± {100 * std:.1f}" if std is not None else "")


def fig(stats: dict | None) -> str:
    """``mean ± std`` of a figure over seeds."""
    if not stats or stats["mean"] is None:
        return "n/a"
    return pct(stats["mean"], stats["std"] if stats["n"] > 1 else None)


def minutes(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60} s"


def header(results: dict) -> list[str]:
    b, m = results["budget"], results["machine"]
    device = m["gpu"] or f"{m['cpu']} ({m['cpu_cores']} cores, {m['vector_extension']})"
    return [
        f"# Reproducing Kim & Choi (2019): budget `{b['name']}`",
        "",
        f"Data: {results['data']['description']}. Runs: {len(results['runs'])} "
        f"({', '.join(results['schemes'])}; seeds {', '.join(map(str, b['seeds']))}; "
        f"split sets {', '.join(s or 'default' for s in b['split_sets'])}), each with "
        f"{results['recipe']}. Device: {device}, torch {m['torch']}.",
        "",
    ]


def summary(results: dict) -> list[str]:
    models, lines = results["models"], ["## In short", ""]
    for split_set in results["budget"]["split_sets"]:
        key = split_set or "default"
        three = models.get(f"layout3 on {key}", {})
        v = verdict(models, key)
        lines.append(
            f"- **Table 2** ({key} split): our 3-class model scores {fig(three.get('paper mIoU'))} "
            f"% mean IoU by the paper's protocol ({fig(three.get('paper mIoU, crop'))} % on "
            f"the crop) and {fig(three.get('standard mIoU'))} % by the standard one; the "
            f"paper reports {pct(PAPER_TABLE2['mean_iou'])} % by its own."
        )
        if v["answer"] != "not measured":
            lines.append(
                f"- **Does a 3-class model beat a 40-class model collapsed to 3?** "
                f"{v['answer']} ({key} split, standard mean IoU: difference "
                f"{100 * v['difference']:+.1f} points, seed spread {100 * v['spread']:.1f}, "
                f"{v['seeds']} seeds)."
            )
    rows = {(r["classes"], r["pipeline"]): r["epoch"]["total_s"] for r in results["epoch_time"]}
    if (894, "one-hot") in rows:
        lines.append(
            f"- **Table 3**: one-hot labels take {minutes(rows[(894, 'one-hot')])} per epoch at "
            f"894 classes against {minutes(rows[(3, 'one-hot')])} at 3; integer labels "
            f"{minutes(rows[(894, 'integer')])} against {minutes(rows[(3, 'integer')])}."
        )
    return [*lines, ""]


def table2(results: dict) -> list[str]:
    paper = (PAPER_TABLE2["pixel_accuracy"], PAPER_TABLE2["mean_iou"])
    rows = [
        (
            f"Kim & Choi, 3 classes ({PAPER_DEVICE})",
            "paper, crop",
            "random 889/224/336",
            1,
            *map(pct, paper),
        )
    ]
    protocols = (
        ("paper, crop", "paper pixel acc., crop", "paper mIoU, crop"),
        ("paper, whole images", "paper pixel acc.", "paper mIoU"),
        ("standard", "standard pixel acc.", "standard mIoU"),
    )
    for key, stats in results["models"].items():
        if key.startswith("layout3 on"):
            split, n = key.split(" on ")[1], stats["standard mIoU"]["n"]
            rows += [
                ("ours, 3 classes", protocol, split, n, fig(stats.get(acc)), fig(stats.get(iou)))
                for protocol, acc, iou in protocols
            ]
    for backbone, acc, iou in PAPER_QUOTED_40:
        rows.append(
            (
                f"40 classes, {backbone} (quoted by the paper)",
                "standard",
                "official",
                "-",
                pct(acc),
                pct(iou),
            )
        )
    header = ("model", "protocol", "split", "seeds", "pixel acc. %", "mean IoU %")
    return ["## Table 2: accuracy of the 3-class model", "", *table(header, rows), ""]


COMPARED = (
    "standard mIoU",
    "background IoU",
    "object IoU",
    "standard pixel acc.",
    "paper mIoU",
    "paper pixel acc.",
)


def by_figure(models: dict, figures: tuple[str, ...]) -> list[str]:
    """A table of each model's figures (mean ± std over seeds)."""
    rows = [(key, *(fig(stats.get(f)) for f in figures)) for key, stats in models.items()]
    return table(("trained on", *figures), rows)


def comparison(results: dict) -> list[str]:
    return [
        "## The fair comparison: every model scored in layout3",
        "",
        "Same data, split, recipe and seeds; only the classes trained on differ. `nyu40` and "
        "`layout3-ignore` predictions are collapsed to layout3 before scoring. Mean ± standard "
        "deviation over seeds, in %.",
        "",
        *by_figure(results["models"], COMPARED),
        "",
    ]


def table3(results: dict) -> list[str]:
    t = results["epoch_time_settings"]
    lines = [
        "## Table 3: time per training epoch against the class count",
        "",
        f"{t['model']}, batch {t['batch_size']}, {t['crop'][0]}x{t['crop'][1]} crops, median "
        f"of {t['steps']} step(s) on {t['device']}, scaled to an epoch of 889 images (the paper's "
        "training split). Data is loading, augmenting and encoding the labels; compute is the "
        "training step.",
        "",
    ]
    epochs = {(r["classes"], r["pipeline"]): r["epoch"] for r in results["epoch_time"]}
    rows = []
    for classes in sorted({c for c, _ in epochs}):
        cells = [classes, minutes(PAPER_TABLE3[classes]) if classes in PAPER_TABLE3 else "-"]
        for pipeline in ("one-hot", "integer"):
            e = epochs[(classes, pipeline)]
            cells += [minutes(e["data_s"]), minutes(e["compute_s"]), minutes(e["total_s"])]
        rows.append(cells)
    header = ["classes", f"Kim & Choi ({PAPER_DEVICE})"]
    header += [
        f"{p}: {part}" for p in ("one-hot", "integer") for part in ("data", "compute", "epoch")
    ]
    widest = max(c for c, _ in epochs)
    share = {p: epochs[(widest, p)]["data_s"] / epochs[(widest, p)]["total_s"] for p in PIPELINES}
    lines += [*table(header, rows), ""]
    lines.append(
        f"At {widest} classes, data is {100 * share['one-hot']:.0f} % of a one-hot epoch here "
        f"and {100 * share['integer']:.0f} % of an integer-label one."
    )
    return [*lines, "", EPOCH_TIME_TEXT, ""]


def floors_table(results: dict) -> list[str]:
    lines = ["## Floors, and real images", ""]
    header = ("predictor", "standard mIoU", "standard pixel acc.", "paper mIoU", "paper pixel acc.")
    for where, floors in results["floors"].items():
        rows = []
        for name, s in floors.items():
            st, pa = s["standard"]["metrics"], s["paper"]["metrics"]
            cells = (st["mean_iou"], st["pixel_accuracy"], pa["mean_iou"], pa["pixel_accuracy"])
            rows.append((name, *map(pct, cells)))
        lines += [
            f"Trivial predictors from the training labels, on {where} (in %):",
            "",
            *table(header, rows),
            "",
        ]
    return lines


REAL = (
    "standard mIoU",
    "background IoU",
    "object IoU",
    "standard pixel acc.",
    "standard mIoU, no region vote",
    "paper mIoU",
)


def real_table(results: dict) -> list[str]:
    if not results.get("real_models"):
        return []
    return [
        f"The models on {results['real']['description']}, as `predict` answers by default "
        "(mean ± std over seeds, in %):",
        "",
        *by_figure(results["real_models"], REAL),
        "",
    ]


def markdown(results: dict) -> str:
    plots = results["plots"]
    lines = [
        *header(results),
        *summary(results),
        *table2(results),
        *comparison(results),
        *table3(results),
        *floors_table(results),
        *real_table(results),
        "## The two protocols",
        "",
        PROTOCOLS_TEXT,
        "",
        "## Plots",
        "",
        *(f"![{name}]({path})" for name, path in plots.items()),
        "",
        "Every figure is in `results.json`; each run's own reports are in its folder under "
        "`runs/`.",
    ]
    return "\n".join(lines) + "\n"
