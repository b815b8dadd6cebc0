"""The paper's figures, and ours gathered over seeds into the tables of the report."""

from __future__ import annotations

import math
import statistics

# Kim & Choi (2019), Table 2: their 3-class model, by their reference code's protocol (per
# image, 'other' scored, on the top-left training-size crop), random 889/224/336 split.
PAPER_TABLE2 = {"pixel_accuracy": 0.805, "mean_iou": 0.519}
# The 40-class results of other papers that Table 2 sets beside it (backbone, pixel
# accuracy, mean IoU), scored the literature's way.
PAPER_QUOTED_40 = [
    ("ResNet-152", 0.690, 0.398),
    ("ResNet-101", 0.709, 0.418),
    ("VGG-16", None, 0.459),
    ("ResNet-152", 0.736, 0.465),
]
# Table 3: training time per epoch (889 images) on a GTX 1050 Ti, seconds.
PAPER_TABLE3 = {894: 63 * 60 + 11, 40: 16 * 60 + 52, 3: 2 * 60 + 24}
PAPER_DEVICE = "GTX 1050 Ti"
PAPER = {
    "table2": PAPER_TABLE2,
    "quoted_40_classes": PAPER_QUOTED_40,
    "table3_seconds": PAPER_TABLE3,
    "device": PAPER_DEVICE,
}

# figure name -> path into a run's scores
FIGURES = {
    "standard mIoU": ("standard", "mean_iou"),
    "standard pixel acc.": ("standard", "pixel_accuracy"),
    "background IoU": ("standard", "per_class_iou", "background"),
    "object IoU": ("standard", "per_class_iou", "object"),
    "standard mIoU, no region vote": ("standard_no_regions", "mean_iou"),
    "paper mIoU": ("paper", "mean_iou"),
    "paper pixel acc.": ("paper", "pixel_accuracy"),
    "paper mIoU, crop": ("paper_crop", "mean_iou"),
    "paper pixel acc., crop": ("paper_crop", "pixel_accuracy"),
}


def dig(record: dict, path: tuple[str, ...]):
    for key in path:
        record = record.get(key) if isinstance(record, dict) else None
    return record


def mean_std(values: list[float | None]) -> dict:
    """Mean and sample standard deviation of the values that exist (n of them)."""
    present = [v for v in values if v is not None and not math.isnan(v)]
    if not present:
        return {"mean": None, "std": None, "n": 0, "values": values}
    std = statistics.stdev(present) if len(present) > 1 else 0.0
    return {"mean": statistics.fmean(present), "std": std, "n": len(present), "values": values}


def by_model(runs: list[dict], where: str = "scores") -> dict[str, dict[str, dict]]:
    """``{"SCHEME on SPLITSET": {figure: mean_std}}`` over the seeds of each model."""
    groups: dict[str, list[dict]] = {}
    for run in runs:
        if where in run:
            key = f"{run['scheme']} on {run['split_set'] or 'default'}"
            groups.setdefault(key, []).append(run[where])
    return {
        key: {
            figure: mean_std([dig(scores, path) for scores in members])
            for figure, path in FIGURES.items()
            if any(dig(scores, path) is not None for scores in members)
        }
        for key, members in groups.items()
    }


def verdict(models: dict[str, dict[str, dict]], split_set: str = "default") -> dict:
    """Does the 3-class model beat the 40-class one collapsed to 3 (standard mIoU)?

    A difference counts when it exceeds twice the larger spread over seeds.
    """
    three = models.get(f"layout3 on {split_set}", {}).get("standard mIoU")
    forty = models.get(f"nyu40 on {split_set}", {}).get("standard mIoU")
    if not three or not forty or three["mean"] is None or forty["mean"] is None:
        return {"answer": "not measured"}
    diff = three["mean"] - forty["mean"]
    spread = max(three["std"], forty["std"])
    if three["n"] < 2 or abs(diff) <= 2 * spread:
        answer = "no clear difference"
    else:
        answer = "yes" if diff > 0 else "no: the 40-class model collapsed to 3 does better"
    return {"answer": answer, "difference": diff, "spread": spread, "seeds": three["n"]}
