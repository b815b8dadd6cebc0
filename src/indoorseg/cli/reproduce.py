"""``indoorseg reproduce``: the paper's tables, the fair comparison and real-image scores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from indoorseg.cli.common import app, friendly, out, reporter


@app.command("reproduce")
@friendly(templates={"data": "--data DIR", "out": "another --out (or delete {out_dir})"})
def reproduce(
    out_dir: Annotated[Path, typer.Option("--out", help="Report folder (runs inside).")],
    budget: Annotated[str, typer.Option(help="smoke, quick (synthetic) or paper (NYU).")] = "quick",
    data: Annotated[
        Path | None, typer.Option(help="Prepared dataset (default: synthetic rooms).")
    ] = None,
    real: Annotated[
        Path | None, typer.Option(help="Prepared folder of real labelled images to score on.")
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="key=value for every run.")
    ] = None,
):
    """Train and score every model of a budget; write report.md, results.json and plots."""
    from indoorseg.reproduce import reproduce

    reproduce(out_dir, budget, data=data, real=real, overrides=overrides, reporter=reporter())
    out.print((out_dir / "report.md").read_text(), markup=False, highlight=False)
