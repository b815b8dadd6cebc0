"""The ``indoorseg`` command: each command is a few lines over a library function."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Semantic segmentation of indoor scenes: the room apart from its objects.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Get, prepare, synthesize and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def friendly(func):
    """Turn the toolkit's errors into one red line and exit code 2 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from indoorseg.checkpoint import CheckpointError
        from indoorseg.classes import SchemeError
        from indoorseg.config import ConfigError
        from indoorseg.data.download import DownloadError
        from indoorseg.data.prepared import DatasetError
        from indoorseg.models import ModelError

        try:
            return func(*args, **kwargs)
        except (
            CheckpointError,
            SchemeError,
            ConfigError,
            DownloadError,
            DatasetError,
            ModelError,
            ValueError,
            FileNotFoundError,
        ) as e:
            err.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def reporter():
    from indoorseg.progress import Reporter

    return Reporter(console=err)


def check_dataset_name(name: str, valid: tuple[str, ...] = ("nyuv2",)) -> None:
    if name not in valid:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(valid)}")


@data_app.command("download")
@friendly
def data_download(
    dataset: Annotated[str, typer.Argument(help="nyuv2")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the downloaded files.")],
    mat_url: Annotated[str | None, typer.Option(help="Override the .mat URL (mirrors).")] = None,
    meta_url: Annotated[str | None, typer.Option(help="Override the metadata base URL.")] = None,
):
    """Download the NYU Depth v2 labelled .mat and its metadata (resumable, verified)."""
    from indoorseg.data.download import download_nyuv2, nyuv2_files, rich_progress

    check_dataset_name(dataset)
    kwargs = {k: v for k, v in (("mat_url", mat_url), ("meta_base_url", meta_url)) if v}
    with rich_progress() as progress:
        paths = download_nyuv2(out_dir, nyuv2_files(**kwargs), progress=progress)
    for path in paths:
        out.print(str(path))


@data_app.command("prepare")
@friendly
def data_prepare(
    dataset: Annotated[str, typer.Argument(help="nyuv2")],
    mat: Annotated[Path, typer.Option(help="nyu_depth_v2_labeled.mat")],
    meta: Annotated[
        Path, typer.Option(help="Folder with splits.mat, classMapping40.mat, class13Mapping.mat")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Prepared dataset folder to write.")],
    val_size: Annotated[
        int, typer.Option(help="Validation images carved from the official train.")
    ] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the validation and paper splits.")] = 0,
    force: Annotated[bool, typer.Option(help="Rewrite an existing prepared folder.")] = False,
):
    """Turn the official .mat into a prepared folder (PNGs + dataset.json)."""
    from indoorseg.data.nyuv2 import prepare_nyuv2

    check_dataset_name(dataset)
    rep = reporter()
    with rep.task("prepare nyuv2", None) as advance:
        result = prepare_nyuv2(
            mat,
            meta,
            out_dir,
            val_size=val_size,
            seed=seed,
            force=force,
            progress=lambda done, total: advance(),
        )
    out.print(
        f"{out_dir}: already prepared (use --force to rewrite)" if result is None else str(result)
    )


@data_app.command("synth")
@friendly
def data_synth(
    out_dir: Annotated[Path, typer.Option("--out", help="Prepared dataset folder to write.")],
    n: Annotated[int, typer.Option("--n", help="Number of rooms.")] = 200,
    size: Annotated[str, typer.Option(help="HEIGHTxWIDTH")] = "240x320",
    seed: Annotated[int, typer.Option(help="Seed; image i is the same whatever --n is.")] = 0,
    force: Annotated[bool, typer.Option(help="Rewrite an existing folder.")] = False,
):
    """Render procedural indoor rooms (nyu40 labels, depth) as a prepared folder."""
    from indoorseg.data.synthetic import parse_size, synthesize

    rep = reporter()
    with rep.task("synthesize rooms", n) as advance:
        result = synthesize(
            out_dir,
            n,
            parse_size(size),
            seed=seed,
            force=force,
            progress=lambda done, total: advance(),
        )
    out.print(
        f"{out_dir}: already exists (use --force to rewrite)" if result is None else str(result)
    )


@data_app.command("stats")
@friendly
def data_stats(
    root: Annotated[Path | None, typer.Argument(help="Prepared dataset folder.")] = None,
    labels: Annotated[Path | None, typer.Option(help="Or: a plain folder of label PNGs.")] = None,
    space: Annotated[str, typer.Option(help="Label space of --labels PNGs.")] = "nyu40",
    scheme: Annotated[str, typer.Option(help="Class scheme name or YAML file.")] = "layout3",
    split: Annotated[str | None, typer.Option(help="Only this split of a prepared folder.")] = None,
    split_set: Annotated[str | None, typer.Option(help="Split set (official, paper...).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
):
    """Per-class pixel fractions under a class scheme."""
    from indoorseg.data.stats import folder_stats

    stats = folder_stats(
        scheme, root=root, labels=labels, space_name=space, split=split, split_set=split_set
    )
    if as_json:
        print(json.dumps(stats.to_dict(), indent=1))
        return
    table = Table(title=f"{stats.scheme}: {stats.images} images, {stats.pixels:,} pixels")
    table.add_column("class")
    table.add_column("pixels", justify="right")
    table.add_column("fraction", justify="right")
    for name, fraction in stats.fractions().items():
        count = stats.counts.get(name, stats.ignored)
        table.add_row(name, f"{count:,}", f"{100 * fraction:.1f} %")
    out.print(table)


@app.command("schemes")
@friendly
def schemes():
    """List the built-in class schemes."""
    from indoorseg.classes import builtin_scheme_names, read_scheme_dict, scheme_from_dict

    table = Table(title="class schemes")
    for col in ("name", "space", "void", "classes", "description"):
        table.add_column(col)
    for name in builtin_scheme_names():
        s = scheme_from_dict(*read_scheme_dict(name))
        count = str(s.num_classes) if s.classes else "from the dataset"  # nyu894
        table.add_row(name, s.space, s.void, count, s.description)
    out.print(table)


@app.command("train")
@friendly
def train(
    config: Annotated[Path | None, typer.Option(help="Recipe YAML (configs/*.yaml).")] = None,
    data: Annotated[Path | None, typer.Option(help="Prepared dataset folder.")] = None,
    run_dir: Annotated[Path | None, typer.Option("--out", help="Run folder to write.")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="key=value, e.g. optim.lr=3e-4")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue the run in this folder exactly.")
    ] = None,
):
    """Train a model on a class scheme; checkpoints and logs go to the run folder."""
    from indoorseg.training import run_training

    summary = run_training(config, data, run_dir, overrides or [], resume, reporter())
    out.print(json.dumps(summary, indent=1))


@app.command("evaluate")
@friendly
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run folder or checkpoint file.")],
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
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results here.")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda")] = "auto",
):
    """Score a trained model: metrics.json, metrics.md and confusion.png."""
    from indoorseg.evaluation import evaluate_checkpoint, markdown_table
    from indoorseg.files import atomic_write_text

    result = evaluate_checkpoint(
        run,
        data,
        split,
        split_set,
        protocol,
        collapse_to,
        top_left_crop,
        device=device,
        reporter=reporter(),
    )
    if json_path:
        atomic_write_text(json_path, json.dumps(result, indent=1))
    out.print(markdown_table(result))
    out.print(f"written to {result['out_dir']}")


@app.command("demo")
@friendly
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where the demo writes everything.")
    ] = Path("runs/demo"),
    n: Annotated[int, typer.Option("--n", help="Number of synthetic rooms.")] = 320,
    epochs: Annotated[int | None, typer.Option(help="Override the recipe's epochs.")] = None,
):
    """The main job: synthesize rooms, train the synthetic-demo recipe, evaluate both ways."""
    from indoorseg.demo import run_demo

    summary = run_demo(out_dir, n=n, epochs=epochs, reporter=reporter())
    out.print(summary)


if __name__ == "__main__":
    app()
