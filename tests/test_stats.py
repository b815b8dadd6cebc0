import json

import pytest
from typer.testing import CliRunner

from indoorseg.cli import app
from indoorseg.data.prepared import DatasetError
from indoorseg.data.stats import folder_stats

from conftest import shared_nyu


def test_real_test_labels_layout3_fractions():
    labels = shared_nyu("labels40")
    stats = folder_stats("layout3", labels=labels, space_name="nyu40")
    fractions = stats.fractions()
    assert stats.images == 654
    assert fractions["other"] == pytest.approx(0.171, abs=0.0005)
    assert fractions["background"] == pytest.approx(0.314, abs=0.0005)
    assert fractions["object"] == pytest.approx(0.515, abs=0.0005)


def test_prepared_folder_stats_and_split(blocks):
    whole = folder_stats("layout3-ignore", root=blocks)
    assert whole.images == 8 and whole.ignored == 8 * 9
    assert sum(whole.counts.values()) + whole.ignored == whole.pixels == 8 * 64 * 96
    part = folder_stats("nyu40", root=blocks, split="val")
    assert part.images == 2 and part.counts["chair"] > 0 and part.counts["bed"] == 0


def test_stats_errors(tmp_path):
    with pytest.raises(DatasetError, match="no .png"):
        folder_stats("layout3", labels=tmp_path)
    with pytest.raises(DatasetError, match="not found"):
        folder_stats("layout3", root=tmp_path)


def test_stats_cli_json(blocks):
    result = CliRunner().invoke(
        app, ["data", "stats", str(blocks), "--scheme", "layout3", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["images"] == 8 and set(payload["fractions"]) == {"background", "object", "other"}
    bad = CliRunner().invoke(
        app, ["data", "stats", "--labels", "/nonexistent", "--scheme", "layout3"]
    )
    assert bad.exit_code == 2 and "not a folder" in bad.output
