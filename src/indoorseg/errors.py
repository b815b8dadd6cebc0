"""The toolkit's errors: one line naming the file, parameter or value at fault.

Messages speak the library's language: parameter names (``run_dir``), config keys
(``model.encoder_weights``) and values, never command-line flags. What would mend the call
travels beside the message as ``fix``, so that each front end can say it in its own words:
Python users read ``use resume=True or another run_dir``, the CLI turns the same ``fix``
into ``use --resume runs/x or another --out``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


class IndoorsegError(Exception):
    """Base of the toolkit's errors.

    Args:
        message: what is wrong, naming the file, parameter or value.
        fix: what would mend it, as parameter names (or dotted config keys) and values;
            ``None`` as a value means "another value than this one", ``...`` "a value of
            yours". Alternatives, in order.
    """

    def __init__(self, message: str, fix: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = dict(fix or {})

    def __str__(self) -> str:
        return self.message + describe_fix(self.fix, python_words)


def python_words(name: str, value: object) -> str:
    """How a Python caller would write one fix: ``resume=True``, ``another run_dir``."""
    if value is None:
        return f"another {name}"
    if value is ...:
        return f"{name}=..."
    return f"{name}={value}" if "." in name else f"{name}={value!r}"


def describe_fix(fix: dict[str, object], words: Callable[[str, object], str]) -> str:
    """``"; use A or B"`` for a fix, each alternative said by ``words(name, value)``."""
    if not fix:
        return ""
    return "; use " + " or ".join(words(name, value) for name, value in fix.items())


class UsageError(IndoorsegError, ValueError):
    """Arguments that are invalid, or valid alone but not together."""


class ConfigError(IndoorsegError, ValueError):
    """A recipe, an override or a training setting is invalid."""


class SchemeError(IndoorsegError, ValueError):
    """A class scheme or label space is malformed or does not fit the data."""


class ModelError(IndoorsegError, ValueError):
    """Unknown model name or unusable encoder weights; the message says what is valid."""


class DatasetError(IndoorsegError, ValueError):
    """A dataset file or folder is missing or malformed; the message names it."""


class CheckpointError(IndoorsegError, ValueError):
    """A checkpoint file is missing, malformed or of another format version."""


class InputError(IndoorsegError, ValueError):
    """An image, video or model file given for prediction cannot be used; the message says why."""


class ExportError(IndoorsegError, RuntimeError):
    """An exported model fails its check against the original (parity, or accuracy after int8)."""


class DownloadError(IndoorsegError, RuntimeError):
    """A download failed; the message names the file or URL and what is wrong."""


class TrainingDiverged(IndoorsegError):
    """The training loss went NaN or infinite; the run's last checkpoint (if any) is the
    last good state."""

    def __init__(self, run_dir, epoch: int, step: int, loss: float, last: Path) -> None:
        kept = f"{last} is the last good state" if last.exists() else "no checkpoint was kept"
        super().__init__(
            f"{run_dir}: training diverged in epoch {epoch + 1} at step {step} "
            f"(loss {loss}); {kept}; a lower optim.lr usually helps"
        )
        self.run_dir, self.epoch, self.step = run_dir, epoch, step


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training after a step; ``run_dir`` holds a checkpoint to resume from."""

    def __init__(self, run_dir, epoch: int, step: int) -> None:
        super().__init__(f"{run_dir}: stopped in epoch {epoch + 1} after step {step}")
        self.run_dir, self.epoch, self.step = run_dir, epoch, step
