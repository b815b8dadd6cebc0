"""A scored model's files, for people and programs: ``metrics.json``, ``metrics.md`` and
``confusion.png``, written together into one folder.

Plots are drawn on a ``matplotlib.figure.Figure`` of their own, never through pyplot's
global state, so the toolkit leaves the caller's matplotlib backend alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from indoorseg.errors import UsageError
from indoorseg.files import atomic_folder, atomic_path
from indoorseg.markdown import table

REPORT_FILES = ("metrics.json", "metrics.md", "confusion.png")
METRIC_NAMES = ("pixel_accuracy", "mean_class_accuracy", "mean_iou", "frequency_weighted_iou")


def percent(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f} %"


def markdown_table(result: dict) -> str:
    """A person-readable summary of one evaluation."""
    m = result["metrics"]
    notes = [f"Scheme scored: {result['scheme']}"]
    notes[0] += " (predictions collapsed)" if result["collapsed"] else ""
    notes.append(f"{result['images']} images")
    if result["top_left_crop"]:
        notes.append(f"top-left crop {result['top_left_crop']}")
    if result.get("regions"):
        notes.append("probabilities voted over image regions")
    if result.get("scales", [1]) != [1]:
        notes.append(f"network run at scales {result['scales']}")
    if result.get("backend"):
        notes.append(f"backend {result['backend']} ({result.get('precision', 'fp32')})")
    title = f"# {result['model']} ({result['trained_scheme']}) on {result['split']}, "
    lines = [title + f"{result['protocol']} protocol", "", "; ".join(notes), ""]
    rows = [(k.replace("_", " "), percent(m[k], 2)) for k in METRIC_NAMES if m.get(k) is not None]
    lines += table(("metric", "value"), rows)
    if "per_class_iou" in m:
        rows = [(name, percent(v, 2)) for name, v in m["per_class_iou"].items()]
        lines += ["", *table(("class", "IoU"), rows)]
    return "\n".join(lines) + "\n"


def write_report(result: dict, out: str | Path) -> None:
    """``metrics.json``, ``metrics.md`` and (standard protocol) ``confusion.png`` in ``out``.

    The folder is replaced whole and at once, so it never mixes two scorings; a folder that
    holds other files than these is refused rather than replaced.
    """
    out = check_report_dir(out)
    with atomic_folder(out) as tmp:
        (tmp / "metrics.json").write_text(json.dumps(result, indent=1))
        (tmp / "metrics.md").write_text(markdown_table(result))
        if "confusion_matrix" in result:
            plot_confusion(
                np.asarray(result["confusion_matrix"]),
                result["class_names"],
                tmp / "confusion.png",
                confusion_title(result),
            )


def check_report_dir(out: str | Path) -> Path:
    """``out``, once it is clear that a report may take its place: it does not exist, or it
    is a folder of nothing but a report's files."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: is a file; a report needs a folder there")
    if out.is_dir() and any(p.name not in REPORT_FILES for p in out.iterdir()):
        raise UsageError(f"{out}: holds files other than a report; refusing to replace it")
    return out


def confusion_title(result: dict) -> str:
    unscored = [n for n in result["class_names"] if n not in result["metrics"]["per_class_iou"]]
    title = f"{result['model']} on {result['split']}"
    if unscored:
        title += f"\n(true {', '.join(unscored)}: shown, not scored)"
    return title


def plot_confusion(mat: np.ndarray, names: list[str], path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix as a PNG (annotated when small)."""
    from matplotlib.figure import Figure

    n = len(names)
    rows = mat.sum(1, keepdims=True)
    norm = np.divide(mat, rows, out=np.zeros_like(mat, dtype=float), where=rows > 0)
    size = min(4 + 0.3 * n, 30)
    fig = Figure(figsize=(size, size * 0.85))
    ax = fig.subplots()
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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
