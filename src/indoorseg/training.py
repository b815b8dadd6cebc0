"""Setting up a training run from a recipe, or resuming one, then handing it to ``fit``."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from indoorseg.config import ConfigError, load_config
from indoorseg.engine import fit


def recipe_names() -> list[str]:
    files = resources.files("indoorseg.configs").iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".yaml"))


def recipe_path(name_or_path: str | Path) -> Path:
    """A recipe file: a path, or the name of a built-in recipe (``paper``, ``nyu40``...)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"recipe not found: {path}")
        return path
    if str(name_or_path) not in recipe_names():
        raise ConfigError(
            f"unknown recipe {str(name_or_path)!r}; built in: {', '.join(recipe_names())}"
        )
    return Path(str(resources.files("indoorseg.configs").joinpath(f"{name_or_path}.yaml")))


def run_training(
    config: str | Path | None,
    data: Path | None,
    run_dir: Path | None,
    overrides: list[str],
    resume: Path | None = None,
    reporter=None,
) -> dict:
    """Train from a recipe into ``run_dir``, or resume the run in ``resume``.

    A resumed run reads its resolved ``config.yaml`` and its dataset path from
    ``run.json``; overrides are refused there, since they would break exactness.
    """
    if resume is not None:
        if config is not None or overrides or (run_dir is not None and run_dir != resume):
            raise ConfigError("--resume continues a run as it was: drop --config, --set and --out")
        run_dir = resume
        if not (run_dir / "last.safetensors").is_file():
            raise ConfigError(f"{run_dir}: no last.safetensors to resume from")
        cfg = load_config(run_dir / "config.yaml")
        if data is None:
            if not (run_dir / "run.json").is_file():
                raise ConfigError(f"{run_dir}: no run.json saying which dataset; add --data DIR")
            data = Path(json.loads((run_dir / "run.json").read_text())["data"])
    else:
        if config is None or data is None or run_dir is None:
            raise ConfigError("train needs --config, --data and --out (or --resume RUN_DIR)")
        if (run_dir / "last.safetensors").exists():
            raise ConfigError(
                f"{run_dir}: already holds a run; use --resume {run_dir} or another --out"
            )
        cfg = load_config(recipe_path(config), overrides)
    if not Path(data).is_dir():
        raise ConfigError(f"dataset folder not found: {data}")
    info = {"recipe": str(config), "overrides": overrides} if resume is None else None
    return fit(cfg, data, run_dir, resume=resume is not None, reporter=reporter, run_info=info)
