"""Measure a recipe on real photos over paired training seeds: `make demo`'s layout3 model
(the `quick` budget's recipe on the same 320 rooms), trained once per seed with the given
overrides, optionally adapted to unlabelled photos, and scored on a prepared folder of
real labelled images (standard protocol, layout3) as `predict` answers by default and with
both test-time steps (two sizes, region vote).

    python scripts/real_study.py --out runs/study/base --real runs/demo/real --seeds 0-4
    python scripts/real_study.py --out runs/study/adapt --real runs/demo/real --seeds 0-4 \\
        --reuse-runs runs/study/base --adapt ../shared/photos
    python scripts/real_study.py --compare runs/study/base runs/study/adapt

Everything finished is reused. Each study writes OUT/results.json; --compare prints the
mean of the paired differences (same seeds) with its standard error.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from indoorseg.adaptation import AdaptSettings, adapt
from indoorseg.data.synthetic import synthesize
from indoorseg.evaluation import evaluate_model
from indoorseg.progress import Reporter
from indoorseg.reproduce.budgets import get_budget
from indoorseg.reproduce.runs import RunSpec, ensure_trained, run_config

SCORINGS = {"plain": {}, "both steps": {"scales": (1.0, 0.5), "regions": True}}


def seeds(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def trained(args, seed: int, reporter: Reporter) -> Path:
    """The seed's run: in another study's folder (``--reuse-runs``), or trained here."""
    if args.reuse_runs:
        return Path(args.reuse_runs) / f"seed{seed}"
    budget = get_budget("quick")
    rooms = Path(args.rooms)
    synthesize(rooms, budget.rooms, budget.size, seed=0)
    config = run_config(budget, RunSpec("layout3", seed, None), list(args.set or []))
    run = Path(args.out) / f"seed{seed}"
    ensure_trained(config, rooms, run, reporter)
    return run


def study(args) -> None:
    reporter, results = Reporter(), {}
    out = Path(args.out)
    for seed in seeds(args.seeds):
        run = trained(args, seed, reporter)
        if args.adapt:
            photos = Path(args.adapt)
            settings = AdaptSettings(seed=seed, **json.loads(args.adapt_settings or "{}"))
            adapt(run, photos, out / f"seed{seed}-adapted", settings, reporter=reporter)
            run = out / f"seed{seed}-adapted"
        scores = {}
        for name, kwargs in SCORINGS.items():
            result = evaluate_model(run, args.real, device="cpu", workers=0, **kwargs)
            scores[name] = 100 * result["metrics"]["mean_iou"]
        results[str(seed)] = scores
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.1f}" for k, v in scores.items()))
    out.mkdir(parents=True, exist_ok=True)
    record = {"args": {k: v for k, v in vars(args).items() if k != "compare"}, "seeds": results}
    (out / "results.json").write_text(json.dumps(record, indent=1))
    for name in SCORINGS:
        print(f"{name}: {summary([s[name] for s in results.values()])}")


def summary(values: list[float]) -> str:
    """``mean ± standard error (n)`` of a list of figures."""
    if len(values) < 2:
        return f"{values[0]:.1f} (n=1)"
    se = statistics.stdev(values) / math.sqrt(len(values))
    return f"{statistics.fmean(values):.1f} ± {se:.1f} (n={len(values)})"


def compare(base: Path, other: Path) -> None:
    a = json.loads((base / "results.json").read_text())["seeds"]
    b = json.loads((other / "results.json").read_text())["seeds"]
    paired = sorted(set(a) & set(b), key=int)
    print(f"{other} against {base}, seeds {', '.join(paired)}:")
    for name in SCORINGS:
        diffs = [b[s][name] - a[s][name] for s in paired]
        print(
            f"  {name}: {summary([a[s][name] for s in paired])} -> "
            f"{summary([b[s][name] for s in paired])}; paired difference {summary(diffs)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="Study folder (runs and results.json).")
    parser.add_argument("--real", help="Prepared folder of real labelled images.")
    parser.add_argument("--seeds", default="0-4", help="Training seeds, e.g. 0-4.")
    parser.add_argument("--rooms", default="runs/study/rooms", help="The 320 rooms' folder.")
    parser.add_argument("--set", action="append", help="key=value for the recipe.")
    parser.add_argument("--reuse-runs", help="Take the trained runs of this study folder.")
    parser.add_argument("--adapt", help="Adapt each model to this folder of photos.")
    parser.add_argument("--adapt-settings", help='JSON, e.g. {"keep": 0.3}.')
    parser.add_argument("--compare", nargs=2, type=Path, help="Two study folders.")
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
    else:
        study(args)


if __name__ == "__main__":
    main()
