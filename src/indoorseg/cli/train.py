"""``indoorseg train``: a recipe into a run folder, or a run folder resumed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from indoorseg.cli.common import app, friendly, out, reporter
from indoorseg.errors import UsageError


@app.command("train")
@friendly(templates={"resume": "--resume {run_dir}", "data_root": "--data DIR"})
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
    from indoorseg.config import load_recipe
    from indoorseg.distributed import world
    from indoorseg.training import resume_run, train

    if resume is not None:
        if config is not None or overrides or (run_dir is not None and run_dir != resume):
            raise UsageError("--resume continues a run as it was: drop --config, --set and --out")
        summary = resume_run(resume, data, reporter())
    else:
        if config is None or data is None or run_dir is None:
            raise UsageError("train needs --config, --data and --out (or --resume RUN_DIR)")
        info = {"recipe": str(config), "overrides": overrides or []}
        summary = train(
            load_recipe(config, overrides), data, run_dir, reporter=reporter(), run_info=info
        )
    if world().main:  # under torchrun, one process speaks
        out.print(json.dumps(summary, indent=1))
