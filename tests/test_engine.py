import json
import os
import signal
from contextlib import contextmanager

import pytest
import torch

from indoorseg.checkpoint import load_checkpoint, read_meta
from indoorseg.config import load_config
from indoorseg.training import train

TINY = [
    "model.name=deeplabv3plus_mobilenet_v2",
    "data.scheme=layout3",
    "data.crop=[48,48]",
    "data.scale=[0.8,1.2]",
    "data.batch_size=2",
    "data.workers=0",
    "optim.lr=1e-3",
    "optim.scheduler=poly",
    "optim.epochs=2",
    "train.val_every=1",
    "train.device=cpu",  # exact resume is a CPU guarantee
]


def tiny_config(*extra):
    return load_config(None, TINY + list(extra))


def weights(run_dir, name="last"):
    return load_checkpoint(run_dir / f"{name}.safetensors").model


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


class InterruptAt:
    """A reporter that presses Ctrl-C (a real SIGINT) after a given training step."""

    def __init__(self, epoch: int, step: int):
        self.at_epoch, self.at_step = epoch, step

    def note(self, text):
        pass

    def epoch(self, record):
        pass

    @contextmanager
    def task(self, description, total, done=0):
        count = [done]

        def advance(**fields):
            count[0] += 1
            if description.startswith(f"epoch {self.at_epoch}/") and count[0] == self.at_step:
                os.kill(os.getpid(), signal.SIGINT)

        yield advance


def test_fit_writes_logs_and_checkpoints(blocks, tmp_path):
    run = tmp_path / "run"
    result = train(tiny_config(), blocks, run)
    assert result["epoch"] == 2 and result["best"]["epoch"] in (1, 2)
    for name in (
        "last.safetensors",
        "last.json",
        "best.safetensors",
        "config.yaml",
        "metrics.jsonl",
        "metrics.csv",
    ):
        assert (run / name).is_file(), name
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    for column in ("data_time_s", "compute_time_s", "images_per_s", "val_mean_iou", "epoch_time_s"):
        assert column in header
    meta = read_meta(run / "last.safetensors")
    assert meta["epoch"] == 2 and meta["scheme"]["name"] == "layout3"
    assert meta["model"] == {
        "name": "deeplabv3plus_mobilenet_v2",
        "num_classes": 3,
        "output_stride": 16,
        "input_scale": 1.0,
    }


def test_resume_at_epoch_boundary_is_exact(blocks, tmp_path):
    # A constant learning rate, so that a 1-epoch first leg has the same schedule; the
    # mid-epoch test below covers the poly scheduler's state.
    train(tiny_config("optim.scheduler=none"), blocks, tmp_path / "straight")
    train(tiny_config("optim.scheduler=none", "optim.epochs=1"), blocks, tmp_path / "split")
    train(tiny_config("optim.scheduler=none"), blocks, tmp_path / "split", resume=True)
    assert_same_weights(weights(tmp_path / "straight"), weights(tmp_path / "split"))
    assert len((tmp_path / "split" / "metrics.jsonl").read_text().splitlines()) == 2


def test_ctrl_c_mid_epoch_leaves_an_exact_resume_point(blocks, tmp_path):
    train(tiny_config(), blocks, tmp_path / "straight")
    run = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(), blocks, run, reporter=InterruptAt(epoch=2, step=2))
    meta = read_meta(run / "last.safetensors")
    assert (meta["epoch"], meta["step"]) == (1, 2)  # in epoch 2 (0-based 1), after 2 steps
    train(tiny_config(), blocks, run, resume=True)
    assert_same_weights(weights(tmp_path / "straight"), weights(run))
    # the resumed epoch's record counts the steps before the interruption too
    logs = [
        (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        for name in ("straight", "interrupted")
    ]
    straight, resumed = ([json.loads(line) for line in log] for log in logs)
    assert [r["images"] for r in resumed] == [r["images"] for r in straight]
    assert resumed[1]["train_loss"] == pytest.approx(straight[1]["train_loss"], rel=1e-6)


def test_resume_early_in_a_run_continues_the_decaying_learning_rate(blocks, tmp_path):
    # Interrupted after the first of six steps, the poly schedule has most of its decay
    # ahead: a scheduler restarted from zero would step with other learning rates.
    train(tiny_config(), blocks, tmp_path / "straight")
    run = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(), blocks, run, reporter=InterruptAt(epoch=1, step=1))
    meta = read_meta(run / "last.safetensors")
    assert (meta["epoch"], meta["step"]) == (0, 1)
    train(tiny_config(), blocks, run, resume=True)
    assert_same_weights(weights(tmp_path / "straight"), weights(run))
    straight, resumed = (learning_rates(tmp_path / name) for name in ("straight", "interrupted"))
    assert resumed == straight and straight[0] > straight[1]


def learning_rates(run_dir):
    """The learning rate logged at the end of each epoch."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["lr"] for line in lines]


def test_tiny_model_overfits_four_synthetic_rooms(tmp_path):
    """The whole loop learns: 4 rooms, validated on the same 4, reach mIoU >= 0.9.

    (About 25 s on a 2-core CPU; the 60 s budget is a benchmark figure, not asserted.)
    """
    from indoorseg.data.synthetic import synthesize

    data = synthesize(tmp_path / "rooms", 4, (96, 128), seed=0, val_fraction=0, test_fraction=0)
    config = load_config(
        None,
        [
            "model.name=deeplabv3plus_resnet18",
            "data.scheme=layout3",
            "data.crop=[96,128]",
            "data.flip=false",
            "data.batch_size=4",
            "data.workers=0",
            "data.val_split=train",
            "optim.lr=1e-3",
            "optim.epochs=60",
            "train.val_every=20",
            "train.device=cpu",
        ],
    )
    result = train(config, data, tmp_path / "run")
    assert result["val_mean_iou"] >= 0.9
    records = [line for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 60
