"""Rooms made by another renderer are never reused silently: the rendered rooms are pinned
per generator version, and folders and runs of another version are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from indoorseg.cli import app
from indoorseg.config import load_recipe
from indoorseg.data.prepared import read_info
from indoorseg.data.synthetic.folder import GENERATOR, rooms_fingerprint, synthesize
from indoorseg.data.synthetic.furniture import FURNITURE, L, Piece, block, build, furniture
from indoorseg.data.synthetic.rooms import Addition, furnish
from indoorseg.data.synthetic.textures import Material
from indoorseg.errors import ConfigError, DatasetError
from indoorseg.reproduce import reproduce
from indoorseg.runlog import write_config, write_run_info
from indoorseg.training import check_same_rooms

# One line per version of the rooms, never edited: when the rooms change, raise GENERATOR in
# indoorseg/data/synthetic/folder.py and add its fingerprint here.
FINGERPRINTS = {
    "indoorseg.synthetic v2": "cd102c05ca48cdd09a4c57d4c288b9348309e942917945cb6285c0e141d2dcce",
}


def test_the_rooms_are_those_their_generator_version_names():
    assert GENERATOR in FINGERPRINTS, f"record the fingerprint of {GENERATOR} here"
    assert len(set(FINGERPRINTS.values())) == len(FINGERPRINTS)
    assert rooms_fingerprint() == FINGERPRINTS[GENERATOR], (
        f"the rendered rooms changed but GENERATOR is still {GENERATOR!r}: raise it (old "
        "folders and runs are then refused instead of reused) and record the new fingerprint"
    )


def made_by(root: Path, generator: str) -> Path:
    """Pretend the rooms at ``root`` were rendered by ``generator``."""
    path = root / "dataset.json"
    raw = json.loads(path.read_text())
    raw["extra"]["generator"] = generator
    path.write_text(json.dumps(raw))
    return root


def test_rooms_of_another_generator_or_other_settings_are_refused_then_forced(tmp_path):
    out = synthesize(tmp_path / "rooms", 4, (48, 64), seed=0, workers=1)
    assert read_info(out).extra["generator"] == GENERATOR
    assert synthesize(out, 4, (48, 64), seed=0) is None  # the same rooms: nothing to do
    with pytest.raises(DatasetError, match="another number of rooms"):
        synthesize(out, 5, (48, 64), seed=0)
    with pytest.raises(DatasetError, match="seed 0"):
        synthesize(out, 4, (48, 64), seed=1)
    made_by(out, "indoorseg.synthetic v1")
    with pytest.raises(
        DatasetError, match=f"made by indoorseg.synthetic v1, .* renders {GENERATOR}"
    ):
        synthesize(out, 4, (48, 64), seed=0)
    result = CliRunner().invoke(
        app, ["data", "synth", "--out", str(out), "--n", "4", "--size", "48x64"]
    )
    assert result.exit_code == 2 and "use --force or another --out" in result.output
    assert synthesize(out, 4, (48, 64), seed=0, force=True) == out
    assert read_info(out).extra["generator"] == GENERATOR


def stale_run(tmp_path: Path, rooms: Path, trained_on: str | None) -> Path:
    """A run folder whose run.json says which rooms it was trained on."""
    run = tmp_path / "run"
    run.mkdir()
    write_config(run, load_recipe("synthetic-demo", []))
    (run / "last.safetensors").write_bytes(b"")  # never read: refused before
    info = {"data": str(rooms)} | ({"rooms": trained_on} if trained_on else {})
    write_run_info(run, info)
    return run


@pytest.mark.parametrize("trained_on", ["indoorseg.synthetic v1", None])
def test_a_run_on_rooms_of_another_generator_is_not_resumed(tmp_path, trained_on):
    rooms = synthesize(tmp_path / "rooms", 4, (48, 64), seed=0, workers=1)
    run = stale_run(tmp_path, rooms, trained_on)
    with pytest.raises(ConfigError, match="not reused"):
        check_same_rooms(run, rooms)
    result = CliRunner().invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 2, result.output
    assert "trained on" in result.output and GENERATOR in result.output
    write_run_info(run, {"data": str(rooms), "rooms": GENERATOR})
    check_same_rooms(run, rooms)  # the same rooms: no objection


def test_reproduce_refuses_its_folder_made_with_another_generator(tmp_path):
    out = tmp_path / "repro"
    made_by(synthesize(out / "data", 24, (64, 96), seed=0, workers=1), "indoorseg.synthetic v1")
    with pytest.raises(DatasetError, match="nor the runs trained on them"):
        reproduce(out, "smoke")
    result = CliRunner().invoke(app, ["reproduce", "--budget", "smoke", "--out", str(out)])
    assert result.exit_code == 2 and f"delete {out}" in result.output.replace("\n", "")
    assert not (out / "runs").exists()


def crate(rng) -> Piece:
    """A furniture type of this test's own."""
    return block(rng.uniform(0.3, 0.5), 0.4, 0.4, L["box"], Material("plain", (0.5, 0.3, 0.1)))


def test_a_furniture_type_added_last_leaves_every_room_as_it_was(monkeypatch):
    monkeypatch.setitem(FURNITURE, "crate", crate)
    monkeypatch.setattr("indoorseg.data.synthetic.rooms.ADDITIONS", [Addition("crate")])
    added = 0
    for index in range(6):
        rng = [0, index]
        before = furnish(np.random.default_rng(rng))
        after = furnish(np.random.default_rng(rng), np.random.default_rng([*rng, 1]))
        assert after.boxes[: len(before.boxes)] == before.boxes
        assert (after.dims == before.dims).all() and after.room == before.room
        assert [power for _, power in after.lights] == [power for _, power in before.lights]
        new = after.boxes[len(before.boxes) :]
        assert all(box.material.color == (0.5, 0.3, 0.1) for box in new)
        added += len(new)
    assert added > 0
    with pytest.raises(ValueError, match="registered already"):
        furniture("chair", crate)
    with pytest.raises(ValueError, match="unknown furniture type 'sofa-bed'; known: table"):
        build("sofa-bed", np.random.default_rng(0))
