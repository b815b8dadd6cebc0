"""Segmentation metrics: pure functions on counts, and the two evaluation protocols.

``standard`` (the literature's): one confusion matrix over the whole split at full
resolution, ignored pixels dropped. ``paper`` (the Semantic-Segmentation-Suite reference
code that Kim & Choi used): per image, IoU averaged over the classes present in that
image's ground truth, and pixel accuracy; both averaged over images.
"""

from __future__ import annotations

import numpy as np
import torch


class ConfusionMatrix:
    """Pixel counts ``mat[true, pred]`` over many batches, filled with one ``bincount``.

    Args:
        num_classes: number of classes.
        ignore_index: ground-truth label to skip (and any label >= num_classes).
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.mat = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, target: torch.Tensor, pred: torch.Tensor) -> None:
        """Shape: target, pred (N, H, W) or (H, W) integer."""
        n = self.num_classes
        target, pred = target.flatten().long(), pred.flatten().long()
        if pred.numel() and (pred.min() < 0 or pred.max() >= n):
            raise ValueError(
                f"predicted ids must lie in [0, {n}); got {int(pred.min())}..{int(pred.max())}"
            )
        keep = (target >= 0) & (target < n) & (target != self.ignore_index)
        index = target[keep] * n + pred[keep]
        counts = torch.bincount(index, minlength=n * n).reshape(n, n)
        self.mat += counts.to(self.mat.device)

    def reset(self) -> None:
        self.mat.zero_()

    def numpy(self) -> np.ndarray:
        return self.mat.cpu().numpy()


def iou_per_class(mat: np.ndarray) -> np.ndarray:
    """IoU of each class; NaN for a class absent from ground truth and prediction."""
    mat = np.asarray(mat, dtype=np.float64)
    tp = np.diag(mat)
    union = mat.sum(0) + mat.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def accuracy_per_class(mat: np.ndarray) -> np.ndarray:
    """Recall of each class; NaN for a class absent from ground truth."""
    mat = np.asarray(mat, dtype=np.float64)
    support = mat.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(mat) / support, np.nan)


def pixel_accuracy(mat: np.ndarray) -> float:
    mat = np.asarray(mat, dtype=np.float64)
    total = mat.sum()
    return float(np.trace(mat) / total) if total else float("nan")


def mean_iou(mat: np.ndarray) -> float:
    """Mean over classes present in ground truth or prediction."""
    ious = iou_per_class(mat)
    return float(np.nanmean(ious)) if np.isfinite(ious).any() else float("nan")


def frequency_weighted_iou(mat: np.ndarray) -> float:
    mat = np.asarray(mat, dtype=np.float64)
    freq = mat.sum(1) / max(mat.sum(), 1)
    ious = np.nan_to_num(iou_per_class(mat))
    return float((freq * ious).sum())


def restrict(mat: np.ndarray, scored: list[int]) -> np.ndarray:
    """Keep the ground truth of ``scored`` classes only; predictions of the others become
    one extra column, so they still count as errors (a 3-class model that answers "other"
    on a labelled pixel is wrong there).

    Shape: (C, C) -> (K + 1, K + 1) with K = len(scored); the last row is zero.
    """
    mat = np.asarray(mat)
    k = len(scored)
    others = [i for i in range(mat.shape[0]) if i not in scored]
    out = np.zeros((k + 1, k + 1), dtype=mat.dtype)
    out[:k, :k] = mat[np.ix_(scored, scored)]
    out[:k, k] = mat[np.ix_(scored, others)].sum(1)
    return out


def summarize(mat: np.ndarray, class_names: list[str], scored: list[int] | None = None) -> dict:
    """Every standard metric of a confusion matrix, per-class IoU by name (None if absent).

    Args:
        scored: classes to score (default all); ground truth of the others is ignored and
            predictions of them count as errors (see ``restrict``).
    """
    scored = list(range(len(class_names))) if scored is None else list(scored)
    full = restrict(mat, scored)
    k = len(scored)
    ious = iou_per_class(full)[:k]
    accs = accuracy_per_class(full)[:k]
    total = full.sum()
    support = full.sum(1)[:k]
    freq = support / max(total, 1)
    return {
        "pixel_accuracy": float(np.trace(full) / total) if total else float("nan"),
        "mean_class_accuracy": float(np.nanmean(accs)) if np.isfinite(accs).any() else None,
        "mean_iou": float(np.nanmean(ious)) if np.isfinite(ious).any() else None,
        "frequency_weighted_iou": float((freq * np.nan_to_num(ious)).sum()),
        "per_class_iou": {
            class_names[c]: (None if np.isnan(v) else float(v))
            for c, v in zip(scored, ious, strict=True)
        },
        "pixels": int(total),
    }


def paper_image_scores(target: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """The reference code's per-image scores: (pixel accuracy, mean IoU over GT classes).

    Every pixel counts, including unlabelled ones (scored as a class of their own). IoU is
    averaged over the classes present in this image's ground truth only, so a class the
    model hallucinates where it is absent costs nothing; this is why the paper's mIoU is
    not comparable with the literature's.

    Shape: target, pred (H, W) integer.
    """
    target, pred = np.asarray(target).ravel(), np.asarray(pred).ravel()
    accuracy = float((target == pred).mean())
    ious = []
    for c in np.unique(target):
        t, p = target == c, pred == c
        ious.append(np.logical_and(t, p).sum() / np.logical_or(t, p).sum())
    return accuracy, float(np.mean(ious))


class PaperScores:
    """Running mean of ``paper_image_scores`` over images."""

    def __init__(self) -> None:
        self.accuracies: list[float] = []
        self.ious: list[float] = []

    def update(self, target: np.ndarray, pred: np.ndarray) -> None:
        accuracy, iou = paper_image_scores(target, pred)
        self.accuracies.append(accuracy)
        self.ious.append(iou)

    def summary(self) -> dict:
        return {
            "pixel_accuracy": float(np.mean(self.accuracies)),
            "mean_iou": float(np.mean(self.ious)),
            "images": len(self.ious),
        }
