import json

from typer.testing import CliRunner

from indoorseg.cli import app

runner = CliRunner()
TINY = [
    "--set",
    "model.name=deeplabv3plus_mobilenet_v2",
    "--set",
    "data.crop=[48,48]",
    "--set",
    "data.batch_size=2",
    "--set",
    "data.workers=0",
    "--set",
    "optim.epochs=1",
    "--set",
    "optim.lr=1e-3",
    "--set",
    "train.device=cpu",
]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_help_lists_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("data", "train", "evaluate", "schemes", "backends"):
        assert command in result.output


def test_schemes_lists_builtins():
    result = invoke("schemes")
    assert result.exit_code == 0
    assert "layout3" in result.output and "nyu894" in result.output


def test_train_evaluate_resume_through_the_cli(blocks, tmp_path):
    run = tmp_path / "run"
    result = invoke("train", "--config", "synthetic-demo", "--data", blocks, "--out", run, *TINY)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["epoch"] == 1
    run_json = json.loads((run / "run.json").read_text())
    assert run_json["data"] == str(blocks.resolve())

    # The same folder again is refused; resume continues from the recorded config and data.
    again = invoke("train", "--config", "synthetic-demo", "--data", blocks, "--out", run, *TINY)
    assert again.exit_code == 2 and "--resume" in again.output
    resumed = invoke("train", "--resume", run)
    assert resumed.exit_code == 0, resumed.output  # config says 1 epoch: nothing left to do
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1

    out_json = tmp_path / "eval.json"
    result = invoke("evaluate", run, "--data", blocks, "--split", "test", "--json", out_json)
    assert result.exit_code == 0, result.output
    payload = json.loads(out_json.read_text())
    assert payload["protocol"] == "standard" and set(payload["metrics"]["per_class_iou"]) == {
        "background",
        "object",
    }
    assert (run / "eval" / "test-standard" / "confusion.png").stat().st_size > 1000
    assert "| mean iou |" in (run / "eval" / "test-standard" / "metrics.md").read_text()

    paper = invoke("evaluate", run, "--data", blocks, "--protocol", "paper", "--top-left-crop")
    assert paper.exit_code == 0, paper.output
    metrics = json.loads((run / "eval" / "test-paper-crop" / "metrics.json").read_text())
    assert metrics["top_left_crop"] == [48, 48] and 0 <= metrics["metrics"]["mean_iou"] <= 1

    wrong = invoke("evaluate", run, "--data", blocks, "--collapse-to", "nyu40")
    assert wrong.exit_code == 2 and "cannot collapse" in wrong.output


def test_train_errors_are_clear(blocks, tmp_path):
    result = invoke(
        "train",
        "--config",
        "synthetic-demo",
        "--data",
        blocks,
        "--out",
        tmp_path / "r",
        "--set",
        "optim.lrr=1",
    )
    assert result.exit_code == 2 and "Did you mean 'lr'" in result.output
    result = invoke("train", "--config", "nope", "--data", blocks, "--out", tmp_path / "r")
    assert result.exit_code == 2 and "unknown recipe" in result.output and "paper" in result.output
    result = invoke(
        "train",
        "--config",
        "synthetic-demo",
        "--data",
        tmp_path / "missing",
        "--out",
        tmp_path / "r",
    )
    assert result.exit_code == 2 and "missing" in result.output
    result = invoke(
        "train",
        "--config",
        "synthetic-demo",
        "--data",
        blocks,
        "--out",
        tmp_path / "r",
        "--set",
        "model.name=deeplabv3plus_resnet5",
    )
    assert result.exit_code == 2 and "deeplabv3plus_resnet50" in result.output
    result = invoke("evaluate", tmp_path, "--data", blocks)
    assert result.exit_code == 2 and "no best.safetensors" in result.output


def test_evaluate_refuses_a_tampered_checkpoint(blocks, tmp_path):
    run = tmp_path / "run"
    assert (
        invoke(
            "train", "--config", "synthetic-demo", "--data", blocks, "--out", run, *TINY
        ).exit_code
        == 0
    )
    (run / "best.safetensors").write_bytes(b"\x80\x04not a safetensors file")
    result = invoke("evaluate", run / "best.safetensors", "--data", blocks)
    assert result.exit_code == 2 and "best.safetensors" in result.output
