"""Progress display for long work (Rich bars); silent when disabled, e.g. in library use.

The one progress system of the toolkit: counted tasks (images, steps), byte transfers
(downloads) and one line per training epoch. Bars are drawn only on a terminal; logs and
pipes get the epoch lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

TransferCallback = Callable[[str, int, "int | None"], None]
"""Called as ``progress(name, bytes_done, total_bytes_or_None)``."""


class Reporter:
    """Shows bars for tasks and one line per epoch.

    Args:
        enabled: False makes every call a no-op.
        console: where to draw (stderr by default, so stdout stays parseable).
    """

    def __init__(self, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self.console = console or Console(stderr=True)

    def note(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, highlight=False)

    @contextmanager
    def task(self, description: str, total: int | None, done: int = 0) -> Iterator[Callable]:
        """Yield ``advance(**fields)``; a ``loss`` field is shown beside the bar."""
        if not self.enabled or not self.console.is_terminal:
            # Logs and pipes get the per-epoch lines only, not redrawn bars.
            yield lambda **fields: None
            return
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
        ]
        with Progress(*columns, console=self.console, transient=True) as progress:
            task_id = progress.add_task(description, total=total, completed=done, info="")

            def advance(**fields) -> None:
                info = " ".join(f"{k} {v:.4f}" for k, v in fields.items())
                progress.update(task_id, advance=1, info=info)

            yield advance

    @contextmanager
    def transfers(self) -> Iterator[TransferCallback]:
        """Yield ``progress(name, done, total)`` drawing one byte-counting bar per name."""
        if not self.enabled or not self.console.is_terminal:
            yield lambda name, done, total: None
            return
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
        columns += (TransferSpeedColumn(), TimeRemainingColumn())
        tasks: dict[str, TaskID] = {}
        with Progress(*columns, console=self.console) as bar:

            def update(name: str, done: int, total: int | None) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=total, completed=done)
                bar.update(tasks[name], completed=done, total=total)

            yield update

    def epoch(self, record: dict) -> None:
        if not self.enabled:
            return
        parts = [f"epoch {record['epoch']}", f"loss {record['train_loss']:.4f}"]
        if "val_mean_iou" in record:
            parts.append(f"val mIoU {record['val_mean_iou']:.4f}")
        parts.append(
            f"{record['epoch_time_s']:.1f} s (data {record['data_time_s']:.1f} s, "
            f"compute {record['compute_time_s']:.1f} s, {record['images_per_s']:.1f} img/s)"
        )
        self.console.print(" | ".join(parts), highlight=False)
