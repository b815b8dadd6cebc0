"""The main job on the embedded default data: synthesize rooms, train, evaluate both ways."""

from __future__ import annotations

import json
from pathlib import Path

from indoorseg.checkpoint import LAST, read_progress
from indoorseg.config import load_recipe
from indoorseg.data.synthetic import synthesize
from indoorseg.evaluation import evaluate_checkpoint
from indoorseg.files import atomic_write_text
from indoorseg.progress import Reporter
from indoorseg.reports import demo_summary_markdown
from indoorseg.runlog import read_records
from indoorseg.training import train

RECIPE = "synthetic-demo"
PROTOCOLS = {  # summary name -> evaluate_checkpoint arguments
    "standard": {},
    "paper": {"protocol": "paper"},
    "paper_top_left_crop": {"protocol": "paper", "top_left_crop": True},
}


def run_demo(
    out_dir: str | Path, n: int = 320, epochs: int | None = None, reporter: Reporter | None = None
) -> str:
    """Write ``out_dir/{data,run}`` and ``out_dir/summary.{json,md}``; return the Markdown.

    A finished run is reused, an unfinished one resumed (delete ``out_dir/run`` to train
    again).
    """
    reporter = reporter or Reporter(enabled=False)
    out_dir = Path(out_dir)
    data, run = out_dir / "data", out_dir / "run"
    with reporter.task("synthesize rooms", n) as advance:
        synthesize(data, n, (240, 320), seed=0, progress=lambda done, total: advance())
    config = load_recipe(RECIPE, [f"optim.epochs={epochs}"] if epochs else [])
    if not (run / LAST).is_file():
        train(config, data, run, reporter=reporter)
    elif read_progress(run / LAST).epoch < config.optim.epochs:
        reporter.note(f"resuming the unfinished demo run in {run}")
        train(config, data, run, resume=True, reporter=reporter)
    else:
        reporter.note(f"reusing the finished demo run in {run}")
    results = {
        name: evaluate_checkpoint(run, data, "test", reporter=reporter, **kwargs)
        for name, kwargs in PROTOCOLS.items()
    }
    records = read_records(run)
    summary = {
        "recipe": RECIPE,
        "data": str(data),
        "run": str(run),
        "epochs": len(records),
        "train_time_s": sum(r["epoch_time_s"] for r in records),
        "last_epoch": records[-1],
        "best": read_progress(run / LAST).best,
        "test": {k: v["metrics"] for k, v in results.items()},
    }
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1))
    text = demo_summary_markdown(summary, results["standard"]["images"])
    atomic_write_text(out_dir / "summary.md", text)
    return text
