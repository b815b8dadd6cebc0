"""``indoorseg demo``: the main job, ``reproduce --budget quick`` on synthetic rooms."""

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
    real: Annotated[
        Path | None, typer.Option(help="Prepared folder of real labelled images to score on.")
    ] = None,
):
    """The main job: reproduce --budget quick (synthetic rooms, no download)."""
    from indoorseg.reproduce import reproduce

    reproduce(out_dir, "quick", real=real, reporter=reporter())
    out.print((out_dir / "report.md").read_text(), markup=False, highlight=False)
