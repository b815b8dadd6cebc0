"""A run folder's records besides its checkpoints: the resolved recipe (``config.yaml``),
what the run was started with (``run.json``: dataset path, recipe, overrides) and per-epoch
logs (JSONL for machines, CSV for spreadsheets, TensorBoard if installed).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from indoorseg.config import Config, dump_config, load_config
from indoorseg.errors import ConfigError
from indoorseg.files import atomic_write_text

CONFIG_FILE, INFO_FILE, RECORDS_FILE = "config.yaml", "run.json", "metrics.jsonl"


def write_config(run_dir: Path, config: Config) -> None:
    atomic_write_text(Path(run_dir) / CONFIG_FILE, dump_config(config))


def read_config(run_dir: Path) -> Config:
    return load_config(Path(run_dir) / CONFIG_FILE)


def write_run_info(run_dir: Path, info: dict) -> None:
    atomic_write_text(Path(run_dir) / INFO_FILE, json.dumps(info, indent=1))


def read_run_info(run_dir: Path) -> dict:
    """``run.json`` of a run folder (``{}`` when there is none)."""
    path = Path(run_dir) / INFO_FILE
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(info, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return info


def read_records(run_dir: Path) -> list[dict]:
    """The per-epoch records of a run, oldest first (``[]`` before the first epoch)."""
    path = Path(run_dir) / RECORDS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


class RunLog:
    """Appends one record per epoch to ``metrics.jsonl`` and ``metrics.csv``.

    Args:
        keep_until: epochs already done (when resuming): their records are kept, those of
            later epochs dropped, so the logs of a resumed run read as those of an
            uninterrupted one.
    """

    def __init__(self, run_dir: Path, keep_until: int = 0) -> None:
        self.jsonl = run_dir / RECORDS_FILE
        self.csv = run_dir / "metrics.csv"
        self.records = [r for r in read_records(run_dir) if r["epoch"] <= keep_until]
        self.jsonl.write_text("".join(json.dumps(r) + "\n" for r in self.records))
        self._write_csv()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(run_dir / "tensorboard"))
        except Exception:  # tensorboard is optional
            self.tensorboard = None

    def _write_csv(self) -> None:
        keys: list[str] = []
        for record in self.records:
            keys += [k for k in record if k not in keys]
        with self.csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.records)

    def append(self, record: dict) -> None:
        self.records.append(record)
        with self.jsonl.open("a") as f:
            f.write(json.dumps(record) + "\n")
        self._write_csv()  # rewritten whole: its header may grow (validation every few epochs)
        if self.tensorboard is not None:
            for key, value in record.items():
                if isinstance(value, int | float) and key != "epoch":
                    self.tensorboard.add_scalar(key, value, record["epoch"])
            self.tensorboard.flush()

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
