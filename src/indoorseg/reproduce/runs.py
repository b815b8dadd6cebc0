"""The runs of a reproduction: one per scheme, seed and split set, trained (or resumed, or
reused when finished) and scored in layout3 under both protocols.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from indoorseg.checkpoint import BEST, LAST, read_progress
from indoorseg.config import Config, load_recipe
from indoorseg.errors import ConfigError
from indoorseg.evaluation import Scoring, dataset_id, evaluate_model, results_dir
from indoorseg.progress import Reporter
from indoorseg.reproduce.budgets import SCHEMES, Budget
from indoorseg.runlog import read_config, read_records
from indoorseg.training import check_same_rooms, train

SCORED_SCHEME = "layout3"  # every model is scored in the paper's classes
SCORINGS = {  # name -> Scoring arguments (collapse_to is added for the other schemes)
    # the network as it answers, on the rooms it was trained on: the paper's Table 2
    "standard": {"protocol": "standard", "regions": False},
    "paper": {"protocol": "paper", "regions": False},
    "paper_crop": {"protocol": "paper", "top_left_crop": True, "regions": False},
}
REAL_SCORINGS = {  # real photos: as predict answers by default (the recipe's inference
    # side and region vote: docs/synthetic-to-real.md), and without the vote
    "standard": {"protocol": "standard", "regions": None},
    "standard_no_regions": {"protocol": "standard", "regions": False},
    "paper": {"protocol": "paper", "regions": None},
}


@dataclass(frozen=True)
class RunSpec:
    """One trained model of the reproduction."""

    scheme: str
    seed: int
    split_set: str | None

    @property
    def name(self) -> str:
        return f"{self.scheme}-{self.split_set or 'default'}-seed{self.seed}"

    def to_dict(self) -> dict:
        return {"scheme": self.scheme, "seed": self.seed, "split_set": self.split_set}


def plan(budget: Budget) -> list[RunSpec]:
    return [
        RunSpec(scheme, seed, split_set)
        for split_set in budget.split_sets
        for seed in budget.seeds
        for scheme in SCHEMES
    ]


def run_config(budget: Budget, spec: RunSpec, overrides: list[str]) -> Config:
    """The budget's recipe for one run: only the scheme, seed and split set differ."""
    split_set = spec.split_set or "null"
    return load_recipe(
        budget.recipe,
        [
            *budget.overrides,
            f"data.scheme={spec.scheme}",
            f"data.split_set={split_set}",
            f"train.seed={spec.seed}",
            *overrides,
        ],
    )


def ensure_trained(config: Config, data: Path, run_dir: Path, reporter: Reporter) -> str:
    """Train the run, resume it, or reuse it when finished; says which it did.

    Raises:
        ConfigError: the folder holds a run of other settings (it is never reused).
    """
    if not (run_dir / LAST).is_file():
        train(config, data, run_dir, reporter=reporter)
        return "trained"
    check_same_rooms(run_dir, data)
    if read_config(run_dir) != config:
        raise ConfigError(
            f"{run_dir}: holds a run of other settings than this reproduction's; delete it "
            "to train it again",
            {"out": None},
        )
    if read_progress(run_dir / LAST).epoch < config.optim.epochs:
        reporter.note(f"resuming the unfinished run {run_dir}")
        train(config, data, run_dir, resume=True, reporter=reporter)
        return "resumed"
    return "reused"


def score(
    run_dir: Path,
    config: Config,
    data: Path,
    scorings: dict[str, dict],
    reporter: Reporter,
) -> dict[str, dict]:
    """``{name: result}`` of each scoring of the run's best checkpoint on ``data``; results
    stored since the checkpoint was written are read back instead of computed again."""
    collapse = {} if config.data.scheme == SCORED_SCHEME else {"collapse_to": SCORED_SCHEME}
    results = {}
    for name, kwargs in scorings.items():
        args = {**kwargs, **collapse}
        if args.get("regions") is None:  # the recipe's, named so that stored results match
            args["regions"] = config.model.inference_regions
        stored = stored_result(run_dir, config, data, args)
        results[name] = stored or evaluate_model(
            run_dir, data, "test", reporter=reporter, workers=config.data.workers, **args
        )
    return results


def stored_result(run_dir: Path, config: Config, data: Path, args: dict) -> dict | None:
    """The result ``evaluate_model`` wrote for these arguments, if it is newer than the best
    checkpoint and scored the dataset as it is now (the same ``dataset.json``)."""
    scoring = Scoring("test", **args)
    name = scoring.name(config.data.split_set, SCORED_SCHEME)
    path = results_dir(run_dir, data, name) / "metrics.json"
    if not path.is_file() or path.stat().st_mtime < (run_dir / BEST).stat().st_mtime:
        return None
    stored = json.loads(path.read_text())
    if stored.get("dataset_id") != dataset_id(data):
        return None
    return {**stored, "out_dir": str(path.parent)}


def train_and_score(
    budget: Budget,
    data: Path,
    runs_dir: Path,
    overrides: list[str],
    real: Path | None,
    reporter: Reporter,
) -> list[dict]:
    """Every run of the budget, trained and scored; one record per run."""
    records = []
    for spec in plan(budget):
        config = run_config(budget, spec, overrides)
        run_dir = runs_dir / spec.name
        reporter.note(f"run {spec.name}")
        done = ensure_trained(config, data, run_dir, reporter)
        record = {"name": spec.name, **spec.to_dict(), "run_dir": str(run_dir), "done": done}
        record["scores"] = summarize(score(run_dir, config, data, SCORINGS, reporter))
        if real is not None:
            record["real"] = summarize(score(run_dir, config, real, REAL_SCORINGS, reporter))
        record["epochs"] = read_records(run_dir)
        records.append(record)
    return records


def summarize(results: dict[str, dict]) -> dict[str, dict]:
    """The figures of each scoring: metrics, images and where the report is."""
    return {
        name: {**r["metrics"], "images": r["images"], "out_dir": r["out_dir"]}
        for name, r in results.items()
    }
