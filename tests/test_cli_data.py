"""The data commands end to end through the CLI: download from a local HTTP server (serving
the real metadata, so the pinned checksums are checked for real), prepare, stats, synth."""

from __future__ import annotations

import functools
import json
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from indoorseg.cli import app
from indoorseg.data.nyuv2_meta import read_nyu_meta
from indoorseg.data.prepared import read_info

from conftest import shared_nyu
from fake_nyu import write_fake_nyu_mat

runner = CliRunner()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local mirror of the NYU files: the real metadata and a fake 1449-image .mat."""
    monkeypatch.setenv("no_proxy", "*")
    meta = shared_nyu("meta")
    root = tmp_path / "mirror"
    root.mkdir()
    for name in ("splits.mat", "classMapping40.mat", "class13Mapping.mat"):
        shutil.copy(meta / name, root / name)
    names = read_nyu_meta(meta).raw_names
    write_fake_nyu_mat(root / "nyu_depth_v2_labeled.mat", n=1449, height=6, width=8, names=names)
    handler = functools.partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", root
    server.shutdown()
    thread.join()


def test_download_prepare_stats(mirror, tmp_path):
    url, root = mirror
    downloads = tmp_path / "downloads"
    result = runner.invoke(
        app,
        [
            "data",
            "download",
            "nyuv2",
            "--out",
            str(downloads),
            "--mat-url",
            url + "nyu_depth_v2_labeled.mat",
            "--meta-url",
            url,
        ],
    )
    assert result.exit_code == 0, result.output
    for name in ("nyu_depth_v2_labeled.mat", "splits.mat", "classMapping40.mat"):
        assert (downloads / name).read_bytes() == (root / name).read_bytes()
    assert (downloads / "nyu_depth_v2_labeled.mat.sha256").is_file()

    prepared = tmp_path / "nyuv2"
    args = [
        "data",
        "prepare",
        "nyuv2",
        "--mat",
        str(downloads / "nyu_depth_v2_labeled.mat"),
        "--meta",
        str(downloads),
        "--out",
        str(prepared),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    info = read_info(prepared)
    assert info.counts["official"] == {"train": 695, "val": 100, "test": 654}
    assert info.counts["paper"] == {"train": 889, "val": 224, "test": 336}
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "already prepared" in again.output

    stats = runner.invoke(
        app, ["data", "stats", str(prepared), "--scheme", "nyu40", "--json", "--split", "test"]
    )
    assert stats.exit_code == 0, stats.output
    payload = json.loads(stats.stdout)
    assert payload["images"] == 654 and payload["pixels"] == 654 * 6 * 8


def test_download_refuses_a_corrupted_metadata_file(mirror, tmp_path):
    url, root = mirror
    (root / "splits.mat").write_bytes(b"tampered" + (root / "splits.mat").read_bytes()[8:])
    result = runner.invoke(
        app,
        [
            "data",
            "download",
            "nyuv2",
            "--out",
            str(tmp_path / "d"),
            "--mat-url",
            url + "nyu_depth_v2_labeled.mat",
            "--meta-url",
            url,
        ],
    )
    assert result.exit_code == 2
    assert "splits.mat" in result.output and "sha256" in result.output
    assert not (tmp_path / "d" / "splits.mat").exists()


def test_prepare_errors_name_the_file(tmp_path):
    bad = tmp_path / "nyu_depth_v2_labeled.mat"
    bad.write_text("not hdf5")
    meta = shared_nyu("meta")
    result = runner.invoke(
        app,
        [
            "data",
            "prepare",
            "nyuv2",
            "--mat",
            str(bad),
            "--meta",
            str(meta),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 2 and "nyu_depth_v2_labeled.mat" in result.output
    assert "HDF5" in result.output
    assert not (tmp_path / "out").exists()
    wrong = runner.invoke(
        app,
        [
            "data",
            "prepare",
            "nyu",
            "--mat",
            str(bad),
            "--meta",
            str(tmp_path),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert wrong.exit_code == 2 and "unknown dataset 'nyu'" in wrong.output


def test_synth_through_the_cli(tmp_path):
    out = tmp_path / "rooms"
    args = ["data", "synth", "--n", "3", "--size", "48x64", "--seed", "5", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    info = read_info(out)
    assert info.label_space == "nyu40" and info.image_size == [48, 64]
    assert sum(len(v) for v in info.splits["default"].values()) == 3
    bad = runner.invoke(app, ["data", "synth", "--size", "48by64", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "48by64" in bad.output
