"""Per-epoch logs of a run: JSONL for machines, CSV for spreadsheets, TensorBoard if installed."""

from __future__ import annotations

import csv
import json
from pathlib import Path


class RunLog:
    """Appends one record per epoch to ``metrics.jsonl`` and ``metrics.csv``.

    On resume, records of epochs after the last completed one are dropped first, so the
    logs of a resumed run read as those of an uninterrupted one.
    """

    def __init__(self, run_dir: Path, resume_epoch: int | None = None) -> None:
        self.jsonl = run_dir / "metrics.jsonl"
        self.csv = run_dir / "metrics.csv"
        self.records: list[dict] = []
        if resume_epoch is not None and self.jsonl.is_file():
            lines = self.jsonl.read_text().splitlines()
            self.records = [
                r for r in map(json.loads, filter(None, lines)) if r["epoch"] <= resume_epoch
            ]
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
