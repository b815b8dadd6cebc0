"""``indoorseg data``: download, prepare, synthesize and inspect datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from indoorseg.cli.common import app, err, friendly, out, parse_size, reporter
from indoorseg.errors import UsageError

data_app = typer.Typer(help="Get, prepare, synthesize and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def check_dataset_name(name: str, valid: tuple[str, ...] = ("nyuv2",)) -> None:
    if name not in valid:
        raise UsageError(f"unknown dataset {name!r}; valid: {', '.join(valid)}")


@data_app.command("download")
@friendly
def download(
    dataset: Annotated[str, typer.Argument(help="nyuv2")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the downloaded files.")],
    mat_url: Annotated[str | None, typer.Option(help="Override the .mat URL (mirrors).")] = None,
    meta_url: Annotated[str | None, typer.Option(help="Override the metadata base URL.")] = None,
):
    """Download the NYU Depth v2 labelled .mat and its metadata (resumable, verified)."""
    from indoorseg.data.download import download_nyuv2, nyuv2_files

    check_dataset_name(dataset)
    kwargs = {k: v for k, v in (("mat_url", mat_url), ("meta_base_url", meta_url)) if v}
    with reporter().transfers() as progress:
        paths = download_nyuv2(out_dir, nyuv2_files(**kwargs), progress=progress)
    for path in paths:
        out.print(str(path))


@data_app.command("prepare")
@friendly
def prepare(
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
    with reporter().task("prepare nyuv2", None) as advance:
        result = prepare_nyuv2(
            mat,
            meta,
            out_dir,
            val_size=val_size,
            seed=seed,
            force=force,
            progress=lambda done, total: advance(),
        )
    out.print(str(result) if result else f"{out_dir}: already prepared (use --force to rewrite)")


@data_app.command("synth")
@friendly(templates={"out": "another --out"})
def synth(
    out_dir: Annotated[Path, typer.Option("--out", help="Prepared dataset folder to write.")],
    n: Annotated[int, typer.Option("--n", help="Number of rooms.")] = 200,
    size: Annotated[str, typer.Option(help="HEIGHTxWIDTH")] = "240x320",
    seed: Annotated[int, typer.Option(help="Seed; image i is the same whatever --n is.")] = 0,
    force: Annotated[bool, typer.Option(help="Rewrite an existing folder.")] = False,
    workers: Annotated[
        int | None, typer.Option(help="Processes rendering rooms (default: one per core).")
    ] = None,
):
    """Render procedural indoor rooms (nyu40 labels, depth) as a prepared folder."""
    from indoorseg.data.synthetic import synthesize

    with reporter().task("synthesize rooms", n) as advance:
        result = synthesize(
            out_dir,
            n,
            parse_size(size),
            seed=seed,
            force=force,
            progress=lambda done, total: advance(),
            workers=workers,
        )
    if result:
        from indoorseg.data.prepared import read_info

        counts = read_info(result).counts["default"]
        empty = [split for split, count in counts.items() if count == 0]
        if empty:
            err.print(
                f"note: {' and '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty "
                f"at --n {n} ({counts}): training cannot validate and evaluate has no "
                "test images; use --n 10 or more"
            )
    out.print(str(result) if result else f"{out_dir}: already exists (use --force to rewrite)")


@data_app.command("import")
@friendly(templates={"out": "another --out"})
def import_(
    rgb: Annotated[list[Path], typer.Option(help="Folder of images; repeat for several.")],
    labels: Annotated[Path, typer.Option(help="Folder of label PNGs, NAME.png per image.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Prepared dataset folder to write.")],
    space: Annotated[str, typer.Option(help="Label space of the label ids.")] = "nyu40",
    depth: Annotated[Path | None, typer.Option(help="Folder of depth PNGs (mm).")] = None,
    split: Annotated[str, typer.Option(help="Name of the one split.")] = "test",
    force: Annotated[bool, typer.Option(help="Rewrite an existing folder.")] = False,
):
    """Turn plain folders of images and label PNGs (matched by name) into a prepared folder."""
    from indoorseg.data.plain_folders import import_folders

    with reporter().task("import images", None) as advance:
        result = import_folders(
            rgb,
            labels,
            out_dir,
            space=space,
            depth_dir=depth,
            split=split,
            force=force,
            progress=lambda done, total: advance(),
        )
    out.print(str(result) if result else f"{out_dir}: already exists (use --force to rewrite)")


@data_app.command("stats")
@friendly
def stats(
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

    result = folder_stats(
        scheme, root=root, labels=labels, space_name=space, split=split, split_set=split_set
    )
    if as_json:
        print(json.dumps(result.to_dict(), indent=1))
        return
    table = Table(title=f"{result.scheme}: {result.images} images, {result.pixels:,} pixels")
    for column, justify in (("class", "left"), ("pixels", "right"), ("fraction", "right")):
        table.add_column(column, justify=justify)
    for name, fraction in result.fractions().items():
        count = result.counts.get(name, result.ignored)
        table.add_row(name, f"{count:,}", f"{100 * fraction:.1f} %")
    out.print(table)
