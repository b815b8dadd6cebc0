"""The main job on the embedded default data: synthesize rooms, train, evaluate both ways."""

from __future__ import annotations

import json
from pathlib import Path

from indoorseg.checkpoint import read_meta
from indoorseg.config import load_config
from indoorseg.data.synthetic import synthesize
from indoorseg.engine import fit
from indoorseg.evaluation import evaluate_checkpoint
from indoorseg.files import atomic_write_text
from indoorseg.training import recipe_path

RECIPE = "synthetic-demo"


def run_demo(out_dir: str | Path, n: int = 320, epochs: int | None = None, reporter=None) -> str:
    """Write ``out_dir/{data,run}`` and ``out_dir/summary.{json,md}``; return the Markdown.

    A finished run is reused (delete ``out_dir/run`` to train again).
    """
    from indoorseg.progress import Reporter

    reporter = reporter or Reporter(enabled=False)
    out_dir = Path(out_dir)
    data, run = out_dir / "data", out_dir / "run"
    with reporter.task("synthesize rooms", n) as advance:
        synthesize(data, n, (240, 320), seed=0, progress=lambda done, total: advance())
    config = load_config(recipe_path(RECIPE), [f"optim.epochs={epochs}"] if epochs else [])
    last = run / "last.safetensors"
    if not last.is_file():
        fit(config, data, run, reporter=reporter)
    elif read_meta(last)["epoch"] < config.optim.epochs:  # epochs completed
        reporter.note(f"resuming the unfinished demo run in {run}")
        fit(config, data, run, resume=True, reporter=reporter)
    else:
        reporter.note(f"reusing the finished demo run in {run}")
    results = {
        "standard": evaluate_checkpoint(run, data, "test", reporter=reporter),
        "paper": evaluate_checkpoint(run, data, "test", protocol="paper", reporter=reporter),
        "paper_top_left_crop": evaluate_checkpoint(
            run,
            data,
            "test",
            protocol="paper",
            top_left_crop=True,
            reporter=reporter,
        ),
    }
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    summary = {
        "recipe": RECIPE,
        "data": str(data),
        "run": str(run),
        "epochs": len(records),
        "train_time_s": sum(r["epoch_time_s"] for r in records),
        "last_epoch": records[-1],
        "best": read_meta(last)["best"],
        "test": {k: v["metrics"] for k, v in results.items()},
    }
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1))
    text = summary_markdown(summary, results["standard"]["images"])
    atomic_write_text(out_dir / "summary.md", text)
    return text


def summary_markdown(summary: dict, images: int) -> str:
    std, paper, crop = (summary["test"][k] for k in ("standard", "paper", "paper_top_left_crop"))
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f} %"  # noqa: E731
    lines = [
        f"# indoorseg demo: {summary['recipe']} on synthetic rooms",
        "",
        f"{summary['epochs']} epochs in {summary['train_time_s'] / 60:.1f} min; "
        f"test split: {images} images. Run folder: `{summary['run']}`.",
        "",
        "| protocol | pixel accuracy | mean IoU |",
        "| --- | --- | --- |",
        *(
            f"| {name} | {pct(m['pixel_accuracy'])} | {pct(m['mean_iou'])} |"
            for name, m in (
                ("standard (whole images, unlabelled ignored)", std),
                ("paper (per image, 'other' scored)", paper),
                ("paper, top-left crop", crop),
            )
        ),
        "",
        "Per-class IoU (standard): "
        + ", ".join(f"{k} {pct(v)}" for k, v in std["per_class_iou"].items()),
    ]
    return "\n".join(lines) + "\n"
