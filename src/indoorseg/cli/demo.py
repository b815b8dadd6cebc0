"""``indoorseg demo``: the main job on synthetic rooms, no download needed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from indoorseg.cli.common import app, friendly, out, reporter


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

    out.print(run_demo(out_dir, n=n, epochs=epochs, reporter=reporter()))
