"""``indoorseg evaluate``: score any model on a split, either protocol, maybe collapsed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from indoorseg.cli.common import (
    RegionsOption,
    ScalesOption,
    app,
    fail,
    friendly,
    out,
    reporter,
)


@app.command("evaluate")
@friendly
def evaluate(
    model: Annotated[Path, typer.Argument(help="Run folder, checkpoint or exported .onnx.")],
    data: Annotated[Path, typer.Option(help="Prepared dataset folder.")],
    split: Annotated[str, typer.Option(help="Split to score.")] = "test",
    split_set: Annotated[str | None, typer.Option(help="Split set (official, paper...).")] = None,
    protocol: Annotated[
        str, typer.Option(help="standard (the literature's) or paper.")
    ] = "standard",
    collapse_to: Annotated[
        str | None, typer.Option(help="Score in a coarser scheme, e.g. layout3.")
    ] = None,
    top_left_crop: Annotated[
        bool, typer.Option(help="paper: score the top-left training crop only.")
    ] = False,
    regions: RegionsOption = None,
    scales: ScalesOption = "1",
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results here.")
    ] = None,
    backend: Annotated[
        str,
        typer.Option(help="auto (torch for checkpoints, onnxruntime for .onnx), or a backend."),
    ] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda")] = "auto",
):
    """Score a trained model: metrics.json, metrics.md and confusion.png."""
    from indoorseg.distributed import world
    from indoorseg.evaluation import evaluate_model
    from indoorseg.files import atomic_write_text
    from indoorseg.inference import parse_scales
    from indoorseg.scorecard import markdown_table

    if json_path is not None and json_path.is_dir():
        fail(f"{json_path}: is a folder; --json needs a file name")
    scoring = dict(split_set=split_set, protocol=protocol, collapse_to=collapse_to)
    scoring |= dict(top_left_crop=top_left_crop, regions=regions, scales=parse_scales(scales))
    result = evaluate_model(
        model, data, split, backend=backend, device=device, reporter=reporter(), **scoring
    )
    if not world().main:  # under torchrun, one process writes and speaks
        return
    if json_path:
        atomic_write_text(json_path, json.dumps(result, indent=1))
    out.print(markdown_table(result))
    out.print(f"written to {result['out_dir']}")
