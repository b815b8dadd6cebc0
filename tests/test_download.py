"""Downloads from a local HTTP server on 127.0.0.1 that can cut, corrupt, fail, ignore Range."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from indoorseg.data import download as dl
from indoorseg.data.download import (
    DownloadError,
    RemoteFile,
    download,
    download_nyuv2,
    nyuv2_files,
)
from indoorseg.progress import Reporter

CHUNK = 8 * 1024


@dataclass
class Behaviour:
    """What the test server does; ``requests`` records (path, Range header) per request."""

    files: dict[str, bytes] = field(default_factory=dict)
    cut_after: int | None = None  # first request only: send this many body bytes, then close
    corrupt: bool = False  # flip the first byte of every body
    status: int | None = None  # answer every request with this error status
    ignore_range: bool = False  # always answer 200 with the whole file
    requests: list[tuple[str, str | None]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    behaviour: Behaviour

    def do_GET(self) -> None:
        b = self.behaviour
        b.requests.append((self.path, self.headers.get("Range")))
        data = b.files.get(self.path.lstrip("/"))
        if b.status or data is None:
            self.send_error(b.status or 404)
            return
        if b.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start, range_header = 0, self.headers.get("Range")
        if range_header and not b.ignore_range:
            start = int(range_header.removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if b.cut_after is not None and len(b.requests) == 1:
            body = body[: b.cut_after]  # then the connection closes: fewer bytes than announced
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(autouse=True)
def _no_proxy_no_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setattr(dl, "RETRY_DELAY_S", 0.0)


@pytest.fixture
def server() -> Iterator[tuple[str, Behaviour]]:
    """A threaded HTTP server on 127.0.0.1; yields its base URL and its switches."""
    behaviour = Behaviour()
    handler = type("Handler", (_Handler,), {"behaviour": behaviour})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", behaviour
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def payload(n: int = 300_000, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def serve(server: tuple[str, Behaviour], name: str, data: bytes, pinned: bool = True) -> RemoteFile:
    base, behaviour = server
    behaviour.files[name] = data
    return RemoteFile(name, base + name, sha(data) if pinned else None)


def test_plain_download_verifies_and_renames(server, tmp_path: Path) -> None:
    data = payload()
    calls: list[tuple[str, int, int | None]] = []
    path = download(serve(server, "a.bin", data), tmp_path, lambda *c: calls.append(c), CHUNK)
    assert path == tmp_path / "a.bin" and path.read_bytes() == data
    assert not (tmp_path / "a.bin.part").exists()
    assert server[1].requests == [("/a.bin", None)]
    assert calls[0] == ("a.bin", 0, len(data)) and calls[-1] == ("a.bin", len(data), len(data))


def test_cut_transfer_resumes_with_range(server, tmp_path: Path) -> None:
    data, cut = payload(), 100_000
    server[1].cut_after = cut
    path = download(serve(server, "a.bin", data), tmp_path, chunk_size=CHUNK, timeout=5)
    assert [r for _, r in server[1].requests] == [None, f"bytes={cut}-"]
    assert path.read_bytes() == data


def test_cut_transfer_without_retries_keeps_the_part(server, tmp_path: Path) -> None:
    data, cut = payload(), 100_000
    server[1].cut_after = cut
    with pytest.raises(DownloadError, match="1 attempt"):
        download(serve(server, "a.bin", data), tmp_path, chunk_size=CHUNK, timeout=5, retries=0)
    assert (tmp_path / "a.bin.part").read_bytes() == data[:cut]
    assert not (tmp_path / "a.bin").exists()


def test_existing_part_is_resumed(server, tmp_path: Path) -> None:
    data = payload()
    (tmp_path / "a.bin.part").write_bytes(data[:123_456])
    path = download(serve(server, "a.bin", data), tmp_path, chunk_size=CHUNK)
    assert server[1].requests == [("/a.bin", "bytes=123456-")]
    assert path.read_bytes() == data and not (tmp_path / "a.bin.part").exists()


def test_whole_part_answered_416_is_verified(server, tmp_path: Path) -> None:
    data = payload()
    (tmp_path / "a.bin.part").write_bytes(data)
    path = download(serve(server, "a.bin", data), tmp_path, chunk_size=CHUNK)
    assert server[1].requests == [("/a.bin", f"bytes={len(data)}-")]
    assert path.read_bytes() == data


def test_part_longer_than_the_file_is_deleted(server, tmp_path: Path) -> None:
    data = payload()
    (tmp_path / "a.bin.part").write_bytes(data + b"extra")
    with pytest.raises(DownloadError, match=f"size mismatch: expected {len(data)} bytes"):
        download(serve(server, "a.bin", data), tmp_path, chunk_size=CHUNK)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_server_ignoring_range_restarts_from_zero(server, tmp_path: Path) -> None:
    data = payload()
    server[1].ignore_range = True
    (tmp_path / "a.bin.part").write_bytes(b"\0" * 50_000)  # wrong bytes: must not survive
    path = download(serve(server, "a.bin", data), tmp_path, chunk_size=CHUNK)
    assert server[1].requests == [("/a.bin", "bytes=50000-")]
    assert path.read_bytes() == data


def test_checksum_mismatch_raises_and_leaves_nothing(server, tmp_path: Path) -> None:
    data = payload()
    server[1].corrupt = True
    with pytest.raises(DownloadError, match="sha256 mismatch") as info:
        download(serve(server, "a.bin", data), tmp_path, chunk_size=CHUNK)
    assert sha(data) in str(info.value) and "a.bin" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_http_404_names_the_url(server, tmp_path: Path) -> None:
    base, behaviour = server
    behaviour.status = 404
    url = base + "missing.bin"
    with pytest.raises(DownloadError, match="404") as info:
        download(RemoteFile("missing.bin", url, None), tmp_path)
    assert url in str(info.value) and len(behaviour.requests) == 1  # no retry of HTTP errors


def test_unsupported_scheme(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="scheme 'ftp'"):
        download(RemoteFile("a.bin", "ftp://example.org/a.bin", None), tmp_path)


def test_file_url(tmp_path: Path) -> None:
    data = payload(10_000)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    path = download(RemoteFile("a.bin", src.as_uri(), sha(data)), tmp_path / "out")
    assert path.read_bytes() == data


def test_verified_file_is_skipped_without_request(server, tmp_path: Path) -> None:
    data = payload()
    remote = serve(server, "a.bin", data)
    (tmp_path / "a.bin").write_bytes(data)
    assert download(remote, tmp_path).read_bytes() == data
    assert server[1].requests == []


def test_unpinned_file_records_checksum_then_skips(server, tmp_path: Path) -> None:
    data = payload()
    remote = serve(server, "big.mat", data, pinned=False)
    download(remote, tmp_path, chunk_size=CHUNK)
    assert (tmp_path / "big.mat.sha256").read_text().split() == [sha(data), "big.mat"]
    download(remote, tmp_path, chunk_size=CHUNK)
    assert len(server[1].requests) == 1


def test_download_nyuv2_fetches_all(server, tmp_path: Path) -> None:
    files = [serve(server, f"f{i}.mat", payload(50_000, seed=i), pinned=i > 0) for i in range(3)]
    console = Console(file=io.StringIO(), force_terminal=True)  # draws the bars
    with Reporter(console=console).transfers() as progress:
        paths = download_nyuv2(tmp_path, files, progress)
    assert paths == [tmp_path / f"f{i}.mat" for i in range(3)]
    assert [p.read_bytes() for p in paths] == [payload(50_000, seed=i) for i in range(3)]


def test_nyuv2_files_pins_the_metadata() -> None:
    files = {f.name: f for f in nyuv2_files(meta_base_url="http://127.0.0.1:1/meta")}
    assert files["nyu_depth_v2_labeled.mat"].sha256 is None
    assert files["nyu_depth_v2_labeled.mat"].url == dl.NYU_MAT_URL
    assert files["splits.mat"].url == "http://127.0.0.1:1/meta/splits.mat"
    assert {name: f.sha256 for name, f in files.items() if f.sha256} == {
        "classMapping40.mat": "ff177194cce9a2163517f1e1e6f1c64c50987162f542dedddc04bbf6ebe6d851",
        "class13Mapping.mat": "4e79ab24c345896c19abc62476b2c3520f3e2db00f71f868c5027208af48a3de",
        "splits.mat": "6e081404491a8bfba2f066beaa9713ef6046f9007aa5f799f2a350506a580cee",
    }
