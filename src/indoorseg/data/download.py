"""Resumable, verified downloads of the NYU Depth v2 files, over the standard library only.

Each file is written to ``NAME.part`` and renamed to ``NAME`` only once its size and
sha256 are verified, so a file with the final name is always whole. An interrupted
download resumes from the ``.part`` with an HTTP Range request; the sha256 is computed
while the bytes arrive, so the 2.8 GB ``.mat`` file is never read into memory.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from indoorseg.errors import DownloadError
from indoorseg.files import sha256_file
from indoorseg.progress import TransferCallback

NYU_MAT_URL = "http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/nyu_depth_v2_labeled.mat"
NYU_META_BASE_URL = "https://raw.githubusercontent.com/ankurhanda/nyuv2-meta-data/master/"
NYU_META_SHA256 = {
    "splits.mat": "6e081404491a8bfba2f066beaa9713ef6046f9007aa5f799f2a350506a580cee",
    "classMapping40.mat": "ff177194cce9a2163517f1e1e6f1c64c50987162f542dedddc04bbf6ebe6d851",
    "class13Mapping.mat": "4e79ab24c345896c19abc62476b2c3520f3e2db00f71f868c5027208af48a3de",
}
USER_AGENT = "indoorseg-download/1"
RETRY_DELAY_S = 1.0  # pause before retry k is k * RETRY_DELAY_S


@dataclass(frozen=True)
class RemoteFile:
    """A file to fetch.

    Attributes:
        name: file name on disk.
        url: where to fetch it (http, https or file).
        sha256: pinned checksum, or None: then it is computed and recorded in ``NAME.sha256``.
    """

    name: str
    url: str
    sha256: str | None


class _CutShort(OSError):
    """The server closed the connection before the announced length."""


@dataclass
class _Part:
    """The ``.part`` file and the running sha256 of the bytes it holds."""

    path: Path
    size: int = 0
    hasher: hashlib._Hash = field(default_factory=hashlib.sha256)

    @classmethod
    def open(cls, path: Path, chunk_size: int) -> _Part:
        """Adopt an existing part, hashing the bytes it already holds."""
        part = cls(path)
        if path.exists():
            with path.open("rb") as fh:
                while chunk := fh.read(chunk_size):
                    part.append(chunk)
        return part

    def append(self, chunk: bytes) -> None:
        self.hasher.update(chunk)
        self.size += len(chunk)

    def restart(self) -> None:
        self.path.write_bytes(b"")
        self.size, self.hasher = 0, hashlib.sha256()


def nyuv2_files(
    mat_url: str = NYU_MAT_URL, meta_base_url: str = NYU_META_BASE_URL
) -> list[RemoteFile]:
    """The labelled ``.mat`` (checksum recorded on download) and the three pinned metadata files."""
    base = meta_base_url.rstrip("/") + "/"
    mat = RemoteFile("nyu_depth_v2_labeled.mat", mat_url, None)
    return [mat] + [RemoteFile(name, base + name, sha) for name, sha in NYU_META_SHA256.items()]


def _sidecar(final: Path) -> Path:
    return final.with_name(final.name + ".sha256")


def _expected_sha256(remote: RemoteFile, final: Path) -> str | None:
    """The pinned checksum, else the one recorded in the sidecar by an earlier download."""
    if remote.sha256:
        return remote.sha256.lower()
    sidecar = _sidecar(final)
    if sidecar.is_file():
        words = sidecar.read_text().split()
        return words[0].lower() if words else None
    return None


def download(
    remote: RemoteFile,
    out_dir: str | Path,
    progress: TransferCallback | None = None,
    chunk_size: int = 1 << 20,
    timeout: float = 60.0,
    retries: int = 3,
) -> Path:
    """Download ``remote`` to ``out_dir/name``, resuming and verifying.

    Data goes to ``name.part``; an existing part is resumed with ``Range: bytes=N-``
    (206 appends, 200 restarts from zero, 416 means the part is already whole). A
    connection cut mid-transfer is retried up to ``retries`` times, resuming each time.
    The size is checked against Content-Length / Content-Range and the sha256 against the
    pinned value; only then is the part renamed to the final name. An unpinned file gets
    its computed checksum recorded in ``name.sha256``. A final file whose checksum (pinned
    or recorded) matches is kept without any network access.

    Returns:
        The path of the verified file.

    Raises:
        DownloadError: bad URL scheme, HTTP error status, retries exhausted, or a size or
            checksum mismatch (the part is then deleted).
    """
    out_dir = Path(out_dir)
    final = out_dir / remote.name
    scheme = urllib.parse.urlsplit(remote.url).scheme
    if scheme not in ("http", "https", "file"):
        raise DownloadError(f"{remote.name}: unsupported URL scheme {scheme!r} in {remote.url}")
    expected = _expected_sha256(remote, final)
    if final.is_file() and expected and sha256_file(final, chunk_size) == expected:
        if progress:
            progress(remote.name, final.stat().st_size, final.stat().st_size)
        return final
    out_dir.mkdir(parents=True, exist_ok=True)
    part = _Part.open(out_dir / (remote.name + ".part"), chunk_size)
    total = _fetch(remote, part, progress, chunk_size, timeout, retries)
    digest = _verified_digest(remote, part, total)
    if not remote.sha256:
        _sidecar(final).write_text(f"{digest}  {remote.name}\n")
    os.replace(part.path, final)
    return final


def _fetch(
    remote: RemoteFile,
    part: _Part,
    progress: TransferCallback | None,
    chunk_size: int,
    timeout: float,
    retries: int,
) -> int | None:
    """Transfer into the part, resuming after a cut up to ``retries`` times; the full size."""
    attempt = 0
    while True:
        try:
            return _transfer(remote, part, progress, chunk_size, timeout)
        except (OSError, http.client.HTTPException) as exc:
            if attempt == retries:
                raise DownloadError(
                    f"{remote.name}: {remote.url} failed after {retries + 1} attempt(s), "
                    f"{part.size} bytes kept in {part.path} for a later resume: {exc!r}"
                ) from exc
            attempt += 1
            time.sleep(RETRY_DELAY_S * attempt)


def _verified_digest(remote: RemoteFile, part: _Part, total: int | None) -> str:
    """The part's sha256 once its size and pinned checksum agree; else it is deleted."""
    digest = part.hasher.hexdigest()
    problem = None
    if total is not None and part.size != total:
        problem = f"size mismatch: expected {total} bytes, got {part.size}"
    elif remote.sha256 and digest != remote.sha256.lower():
        problem = f"sha256 mismatch: expected {remote.sha256.lower()}, got {digest}"
    if problem:
        part.path.unlink(missing_ok=True)
        raise DownloadError(f"{remote.name} from {remote.url}: {problem}")
    return digest


def _transfer(
    remote: RemoteFile,
    part: _Part,
    progress: TransferCallback | None,
    chunk_size: int,
    timeout: float,
) -> int | None:
    """One request that appends to (or restarts) the part; returns the announced full size."""
    headers = {"User-Agent": USER_AGENT}
    if part.size:
        headers["Range"] = f"bytes={part.size}-"
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(remote.url, headers=headers), timeout=timeout
        )
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and part.size:  # nothing past our bytes: the part is whole
            return _content_range(exc.headers.get("Content-Range", ""))[1]
        raise DownloadError(
            f"{remote.name}: {remote.url} answered HTTP {exc.code} {exc.reason}"
        ) from exc
    with response:
        length = response.headers.get("Content-Length")
        if (response.status or 200) == 206:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if start != part.size:
                raise DownloadError(
                    f"{remote.name}: {remote.url} resumed at byte {start}, asked for {part.size}"
                )
            if total is None and length is not None:
                total = start + int(length)
        else:  # 200, or a file: URL (no status): the whole file from byte 0
            part.restart()
            total = int(length) if length is not None else None
        if progress:
            progress(remote.name, part.size, total)
        with part.path.open("ab") as fh:
            while chunk := response.read(chunk_size):
                fh.write(chunk)
                part.append(chunk)
                if progress:
                    progress(remote.name, part.size, total)
    if total is not None and part.size < total:
        raise _CutShort(f"connection closed after {part.size} of {total} bytes")
    return total


def _content_range(value: str) -> tuple[int | None, int | None]:
    """``bytes 10-99/100`` -> (10, 100); ``bytes */100`` -> (None, 100); unknowns are None."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value)
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total != "*" else None)


def download_nyuv2(
    out_dir: str | Path,
    files: list[RemoteFile] | None = None,
    progress: TransferCallback | None = None,
) -> list[Path]:
    """Download every NYU Depth v2 file (``nyuv2_files()`` unless ``files`` is given)."""
    files = nyuv2_files() if files is None else files
    return [download(remote, out_dir, progress) for remote in files]
