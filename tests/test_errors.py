"""Errors in the library's words, fixes in each front end's words; settings put back."""

import torch
from typer.testing import CliRunner

from indoorseg.cli import app
from indoorseg.errors import ConfigError, UsageError
from indoorseg.runtime import deterministic


def test_a_library_error_says_its_fix_with_parameters():
    err = ConfigError("runs/x: already holds a run", {"resume": True, "run_dir": None})
    assert str(err) == "runs/x: already holds a run; use resume=True or another run_dir"
    key = UsageError("no weights", {"model.encoder_weights": "/w.pth", "data_root": ...})
    assert str(key) == "no weights; use model.encoder_weights=/w.pth or data_root=..."
    assert isinstance(err, ValueError) and str(ConfigError("plain")) == "plain"


def test_the_cli_says_the_same_fix_with_its_flags(blocks, tmp_path):
    result = CliRunner().invoke(
        app, ["evaluate", str(tmp_path), "--data", str(blocks), "--top-left-crop"]
    )
    assert result.exit_code == 2
    assert "top_left_crop" in result.output and "use --protocol paper" in result.output
    assert "Traceback" not in result.output


def test_deterministic_algorithms_are_put_back():
    before = torch.are_deterministic_algorithms_enabled()
    with deterministic(True):
        assert torch.are_deterministic_algorithms_enabled()
    assert torch.are_deterministic_algorithms_enabled() == before
    with deterministic(False):
        assert torch.are_deterministic_algorithms_enabled() == before
