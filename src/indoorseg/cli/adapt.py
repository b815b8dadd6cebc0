"""``indoorseg adapt``: a trained model adapted to the user's own unlabelled photos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from indoorseg.cli.common import app, friendly, out, reporter


@app.command("adapt")
@friendly(templates={"out": "another --out"})
def adapt(
    run: Annotated[Path, typer.Argument(help="Run folder of the trained model.")],
    photos: Annotated[Path, typer.Option(help="Folder of unlabelled photos (sub-folders too).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder of the adapted model.")],
    epochs: Annotated[int, typer.Option(help="Passes over rooms and photos.")] = 2,
    lr: Annotated[float, typer.Option(help="Learning rate (Adam, constant).")] = 1e-4,
    keep: Annotated[float, typer.Option(help="Share of each class's pixels kept.")] = 0.5,
    side: Annotated[int, typer.Option(help="Photos' longer side when trained on.")] = 320,
    seed: Annotated[int, typer.Option(help="Seed of the sampler and augmentations.")] = 0,
):
    """Self-train a model on photos it labels itself; again with the same --out, go on."""
    from indoorseg.adaptation import AdaptSettings
    from indoorseg.adaptation import adapt as run_adapt

    settings = AdaptSettings(epochs=epochs, lr=lr, keep=keep, side=side, seed=seed)
    summary = run_adapt(run, photos, out_dir, settings, reporter=reporter())
    out.print(json.dumps(summary, indent=1))
