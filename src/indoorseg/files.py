"""Writing files and folders so that a reader never sees a half-written one; file checksums."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from indoorseg.errors import IndoorsegError


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it is renamed to
    ``path`` (with the usual file mode), on any error it is removed. Temporary names end
    in ``.tmp``, so writers that pick a format from the suffix must be told it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a text file through a temporary file in the same folder, then rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path`` to fill; on success it takes the place of
    ``path`` (a folder already there is replaced whole), on any error it is removed.

    The old folder is renamed aside, the new one renamed in, and the old one deleted: a
    reader sees the old contents or the new ones, never a mixture (for the instant between
    the two renames, nothing). If the second rename fails, the old folder is put back.

    Raises:
        FileExistsError: ``path`` is a file, not a folder.
    """
    path = Path(path).absolute()
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path}: is a file, not a folder; refusing to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.partial-{os.getpid()}-"))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700
        _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_partials(path: Path) -> list[Path]:
    """Remove the ``.NAME.partial-PID-*`` folders beside ``path`` left by a process that is
    gone (killed, or its machine restarted); a live writer's folder is kept."""
    removed = []
    for stale in path.parent.glob(f".{glob.escape(path.name)}.partial-*"):
        pid = stale.name[len(path.name) + len(".partial-") + 1 :].split("-", 1)[0]
        if stale.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        pass
    return True


def _swap_in(new: Path, path: Path) -> None:
    """Rename ``new`` to ``path``, replacing a folder there; the old one comes back on error."""
    if not path.exists():
        os.replace(new, path)
        return
    aside = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-"))
    os.replace(path, aside / path.name)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(aside / path.name, path)
        aside.rmdir()
        raise
    shutil.rmtree(aside, ignore_errors=True)


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (a 2.8 GB file never sits in memory)."""
    hasher = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(chunk_size):
            hasher.update(chunk)
    return hasher.hexdigest()


@dataclass(frozen=True)
class JsonFormat:
    """A kind of versioned JSON document, ``{"format": name, "version": version, ...}``: the
    one way such files (checkpoint metadata, ``dataset.json``, a model's ONNX metadata) are
    stamped, written and checked. ``error``: the exception a bad document raises."""

    name: str
    version: int
    error: type[IndoorsegError]

    def stamp(self, payload: dict) -> dict:
        """``payload`` with the format and version first."""
        return {"format": self.name, "version": self.version, **payload}

    def write(self, path: str | Path, payload: dict) -> None:
        """Write the stamped payload as a JSON file, atomically."""
        atomic_write_text(path, json.dumps(self.stamp(payload), indent=1))

    def loads(self, text: str, where: str | Path) -> dict:
        """The document in ``text`` (from ``where``, for messages), checked: a JSON object
        of this format and version."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise self.error(f"{where}: not valid JSON ({err})") from None
        if not isinstance(raw, dict):
            raise self.error(f"{where}: expected a JSON object, got {type(raw).__name__}")
        if raw.get("format") != self.name:
            raise self.error(f"{where}: not an {self.name} document (format {raw.get('format')!r})")
        if raw.get("version") != self.version:
            raise self.error(
                f"{where}: {self.name} version {raw.get('version')}, this indoorseg reads "
                f"version {self.version}"
            )
        return raw

    def read(self, path: str | Path) -> dict:
        """The checked document of a JSON file."""
        path = Path(path)
        if not path.is_file():
            raise self.error(f"{path}: not found")
        return self.loads(path.read_text(), path)
