"""``indoorseg predict``, ``export`` and ``benchmark``: a trained model used anywhere, fast."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from indoorseg.cli.common import (
    BackendOption,
    RegionsOption,
    ScalesOption,
    app,
    err,
    fail,
    friendly,
    out,
    parse_size,
    reporter,
)


@app.command("predict")
@friendly
def predict(
    model: Annotated[Path, typer.Argument(help="Run folder, checkpoint or exported .onnx.")],
    inputs: Annotated[list[str], typer.Argument(help="Images, folders, globs or videos.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the masks.")],
    backend: BackendOption = "auto",
    device: Annotated[str, typer.Option(help="cpu or cuda (torch, onnxruntime).")] = "cpu",
    regions: RegionsOption = None,
    scales: ScalesOption = "1",
):
    """Label PNG, colour mask, overlay and JSON summary per image; an overlay video per video."""
    from indoorseg.deploy.predict import predict_sources
    from indoorseg.deploy.sources import expand_inputs
    from indoorseg.inference import Segmenter, parse_scales

    chosen = parse_scales(scales)  # before reading any input
    sources, problems = expand_inputs(inputs)
    seg = Segmenter.load(model, backend=backend, device=device, regions=regions, scales=chosen)
    rep = reporter()
    with rep.task(f"predicting ({seg.backend_name})", None) as advance:
        summary = predict_sources(seg, sources, out_dir, lambda name, done, total: advance())
    for line in problems + list(summary.failed.values()):  # each names its file
        err.print(f"[red]skipped[/red] {line}", highlight=False)
    done, given = len(summary.written), len(sources) + len(problems)
    out.print(f"{done} of {given} inputs predicted with {seg.backend_name} into {out_dir}")
    if problems or summary.failed:
        raise typer.Exit(1)


@app.command("export")
@friendly(templates={"allow_drop": "--allow-drop", "max_drop": "--max-drop POINTS"})
def export(
    model: Annotated[Path, typer.Argument(help="Run folder or checkpoint.")],
    out_path: Annotated[Path, typer.Option("--out", help="The .onnx file to write.")],
    dynamic: Annotated[bool, typer.Option(help="Any input size (else fixed --size).")] = False,
    size: Annotated[str, typer.Option(help="Input size HxW (multiples of 32).")] = "480x640",
    int8: Annotated[bool, typer.Option(help="Static int8 quantization.")] = False,
    calib: Annotated[
        Path | None, typer.Option(help="Calibration images: prepared or plain folder.")
    ] = None,
    eval_data: Annotated[
        Path | None, typer.Option(help="Prepared folder to compare fp32 and int8 mean IoU.")
    ] = None,
    eval_split: Annotated[str, typer.Option(help="Split of --eval-data.")] = "test",
    max_drop: Annotated[float, typer.Option(help="Most mean IoU points int8 may lose.")] = 1.0,
    allow_drop: Annotated[bool, typer.Option(help="Keep an int8 model that loses more.")] = False,
    check: Annotated[
        Path | None, typer.Option(help="Real images for the parity check (default --calib).")
    ] = None,
):
    """Write an ONNX file with its classes and normalisation inside, checked against PyTorch."""
    from indoorseg.deploy.export import export as run_export

    result = run_export(
        model,
        out_path,
        dynamic=dynamic,
        size=parse_size(size),
        check=check,
        int8=int8,
        calib=calib,
        eval_data=eval_data,
        eval_split=eval_split,
        max_drop=max_drop,
        allow_drop=allow_drop,
        say=err.print,
    )
    for note in result.notes:
        err.print(note)
    out.print(json.dumps(result.to_dict(), indent=1))


@app.command("backends")
@friendly
def backends():
    """List the backends a model can run on, and whether each can run here."""
    from rich.table import Table

    from indoorseg.backends import BACKENDS, Options

    table = Table(title="backends")
    for column in ("name", "runs", "what", "here"):
        table.add_column(column)
    for kind in BACKENDS.values():
        runs = ".onnx files and checkpoints" if kind.runs_onnx else "checkpoints"
        table.add_row(kind.name, runs, kind.help, kind.missing(Options()) or "yes")
    out.print(table)


@app.command("benchmark")
@friendly
def benchmark(
    model: Annotated[
        str, typer.Option(help="Model name (random weights), run folder, checkpoint or .onnx.")
    ] = "deeplabv3plus_mobilenet_v2",
    size: Annotated[str, typer.Option(help="Image size HxW.")] = "480x640",
    runs: Annotated[int, typer.Option(help="Timed calls per backend.")] = 5,
    backend: Annotated[
        list[str] | None, typer.Option(help="Only these backends (repeatable).")
    ] = None,
    calib: Annotated[Path | None, typer.Option(help="int8 calibration images.")] = None,
    baseline: Annotated[
        str | None,
        typer.Option(help="Also time this model (name, run or checkpoint) on torch fp32."),
    ] = None,
    train: Annotated[
        bool, typer.Option(help="Also training images/s at 3, 40, 894 classes.")
    ] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the results here.")
    ] = None,
    md_path: Annotated[Path | None, typer.Option("--md", help="Write the table here.")] = None,
):
    """Latency and images/s per backend, against the model's FLOPs and the machine's peak."""
    from indoorseg.deploy.benchmark import ALL, markdown
    from indoorseg.deploy.benchmark import benchmark as run_benchmark
    from indoorseg.epoch_time import training_speed
    from indoorseg.files import atomic_write_text

    if runs < 1:
        fail(f"--runs must be at least 1, got {runs}")
    backends = tuple(backend or ALL)
    result = run_benchmark(
        model,
        parse_size(size),
        runs,
        backends=backends,
        calib=calib,
        baseline=baseline,
        say=err.print,
    )
    if train:
        result["training"] = training_speed(result["model"]["name"], say=err.print)
    table = markdown(result)
    out.print(table, highlight=False, markup=False)
    if json_path:
        atomic_write_text(json_path, json.dumps(result, indent=1) + "\n")
    if md_path:
        atomic_write_text(md_path, table)
