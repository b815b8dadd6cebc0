"""``reproduce``: the paper's Tables 2 and 3, the fair comparison, floors and real images,
as one report (``report.md``, ``results.json``, PNG plots) in one folder.

Every run inside is an ordinary run folder under ``OUT/runs``: an interrupted reproduction
resumes, and a finished one is read back instead of trained again.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from indoorseg.data.dataset import SegmentationDataset
from indoorseg.data.prepared import read_info
from indoorseg.data.synthetic import synthesize
from indoorseg.data.synthetic.folder import check_rooms, split_ids
from indoorseg.epoch_time import CLASS_COUNTS, PIPELINES, time_steps
from indoorseg.errors import DatasetError, UsageError
from indoorseg.files import atomic_write_text
from indoorseg.inference import Segmenter
from indoorseg.progress import Reporter
from indoorseg.reproduce import plots
from indoorseg.reproduce.budgets import SCHEMES, Budget, get_budget
from indoorseg.reproduce.floors import floors_for
from indoorseg.reproduce.report import markdown
from indoorseg.reproduce.results import PAPER, by_model, verdict
from indoorseg.reproduce.runs import SCORED_SCHEME, plan, run_config, train_and_score
from indoorseg.runtime import describe_machine, make_runtime


def reproduce(
    out: str | Path,
    budget: str = "quick",
    data: str | Path | None = None,
    real: str | Path | None = None,
    overrides: list[str] | None = None,
    reporter: Reporter | None = None,
) -> dict:
    """Train and score every run of ``budget``, time epochs, and write the report to ``out``.

    ``data``: a prepared folder (default, smoke and quick budgets: synthetic rooms made in
    ``out/data``); ``real``: a prepared folder of real labelled images (``data import``) to
    score the models and floors on too; ``overrides``: ``section.key=value`` for every run.
    Returns everything the report shows, also written to ``out/results.json``.
    """
    reporter = reporter or Reporter(enabled=False)
    spec, out, overrides = get_budget(budget), Path(out), list(overrides or [])
    data, description = dataset_for(spec, data, out, reporter)
    real = Path(real) if real is not None else None
    runs = train_and_score(spec, data, out / "runs", overrides, real, reporter)
    device = run_config(spec, plan(spec)[0], overrides).train.device
    rows, settings = epoch_times(spec, data, out, device, reporter)
    models = by_model(runs)
    results = {
        "budget": asdict(spec),
        "machine": describe_machine(device),
        "data": {"path": str(data), "description": description},
        "real": {"path": str(real), "description": describe(real)} if real else None,
        "recipe": recipe_text(spec, overrides),
        "schemes": list(SCHEMES),
        "runs": runs,
        "models": models,
        "real_models": by_model(runs, "real") if real else {},
        "verdicts": {s or "default": verdict(models, s or "default") for s in spec.split_sets},
        "floors": floors(spec, data, real),
        "epoch_time": rows,
        "epoch_time_settings": settings,
        "paper": PAPER,
    }
    results["plots"] = make_plots(results, spec, data, real, out, device)
    atomic_write_text(out / "results.json", json.dumps(results, indent=1, default=str))
    atomic_write_text(out / "report.md", markdown(results))
    return results


def dataset_for(budget: Budget, data, out: Path, reporter: Reporter) -> tuple[Path, str]:
    """The prepared folder to work on, and a line describing it."""
    if data is None:
        if budget.rooms is None:
            raise UsageError(
                f"the {budget.name} budget needs a dataset (a prepared NYU Depth v2 folder)",
                {"data": ...},
            )
        data = out / "data"
        try:
            check_rooms(data, 0, budget.size, split_ids(budget.rooms, 0.1, 0.1))
        except DatasetError as err:  # rooms of another generator: so are the runs on them
            raise DatasetError(
                f"{err.message}, nor the runs trained on them", {"out": None}
            ) from None
        with reporter.task("synthesize rooms", budget.rooms) as advance:
            synthesize(
                data, budget.rooms, budget.size, seed=0, progress=lambda done, total: advance()
            )
    return Path(data), describe(Path(data))


def describe(root: Path) -> str:
    info = read_info(root)
    counts = "; ".join(
        f"{split_set}: " + "/".join(f"{n} {split}" for split, n in parts.items())
        for split_set, parts in info.counts.items()
    )
    size = "x".join(map(str, info.image_size)) if info.image_size else "mixed sizes"
    return f"`{info.name}` ({info.label_space} labels, {size}; {counts})"


def recipe_text(budget: Budget, overrides: list[str]) -> str:
    """The recipe and every value changed in it (the last one of a key)."""
    changes = dict(item.split("=", 1) for item in [*budget.overrides, *overrides])
    settings = " ".join(f"`{key}={value}`" for key, value in changes.items())
    return f"the `{budget.recipe}` recipe" + (f" with {settings}" if settings else "")


def floors(budget: Budget, data: Path, real: Path | None) -> dict:
    """The floors of each split set's training labels, on its test split (and real images)."""
    result = {}
    for split_set in budget.split_sets:
        train = SegmentationDataset(data, SCORED_SCHEME, "train", split_set)
        scored = {
            f"the test split ({train.split_set})": SegmentationDataset(
                data, SCORED_SCHEME, "test", split_set
            )
        }
        if real is not None:
            scored["the real images"] = SegmentationDataset(real, SCORED_SCHEME, "test")
        result.update(floors_for(train, scored))
    return result


def epoch_times(
    budget: Budget, data: Path, out: Path, device: str, reporter: Reporter
) -> tuple[list[dict], dict]:
    """Table 3 rows (read back from ``out/epoch_time.json`` when measured alike before)."""
    model, batch, crop, steps = budget.timing
    runtime = make_runtime(device)
    settings = {
        "model": model,
        "batch_size": batch,
        "crop": list(crop),
        "steps": steps,
        "device": runtime.describe(),
        "data": str(data),
    }
    cache = out / "epoch_time.json"
    if cache.is_file() and json.loads(cache.read_text())["settings"] == settings:
        return json.loads(cache.read_text())["rows"], settings
    rows = []
    with reporter.task("time epochs", len(CLASS_COUNTS) * len(PIPELINES)) as advance:
        for classes in CLASS_COUNTS:
            for pipeline in PIPELINES:
                timed = time_steps(data, model, classes, pipeline, runtime, batch, crop, steps)
                rows.append(timed.to_dict())
                advance()
    atomic_write_text(cache, json.dumps({"settings": settings, "rows": rows}, indent=1))
    return rows, settings


def make_plots(
    results: dict, budget: Budget, data: Path, real: Path | None, out: Path, device: str
) -> dict[str, str]:
    """The report's plots; name -> path relative to ``out``."""
    folder = out / "plots"
    first = next(r for r in results["runs"] if r["scheme"] == SCORED_SCHEME)
    segmenter = Segmenter.load(first["run_dir"], "torch", device, max_side=None)
    split_set = segmenter.card.train_data.get("split_set")
    sets = {"test": SegmentationDataset(data, SCORED_SCHEME, "test", split_set)}
    if real is not None:
        sets["real"] = SegmentationDataset(real, SCORED_SCHEME, "test")
    curves = plots.training_curves(results["runs"], folder / "training_curves.png")
    device_text = results["epoch_time_settings"]["device"]
    times = plots.epoch_time(results["epoch_time"], folder / "epoch_time.png", device_text)
    samples = plots.sample_grid(segmenter, sets, budget.samples, folder / "samples.png")
    paths = {
        "training curves": curves,
        "time per epoch": times,
        f"samples, {first['name']}": samples,
    }
    return {name: str(path.relative_to(out)) for name, path in paths.items()}
