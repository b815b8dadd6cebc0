"""Several processes as one run (torchrun, gloo on the CPU): the sampler's shares, exact
evaluation, training that matches one process, and resuming across the two."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from indoorseg import distributed
from indoorseg.cli import app
from indoorseg.data.dataset import EpochSampler
from indoorseg.data.prepared import read_info, write_info
from indoorseg.distributed import gather_in_order, shard, world
from indoorseg.models import ModelSpec, build_model

from conftest import write_blocks_dataset

runner = CliRunner()
MODEL = "deeplabv3plus_mobilenet_v2"
TINY = [
    "--set",
    f"model.name={MODEL}",
    "--set",
    "model.input_scale=1.0",
    "--set",
    "data.crop=[64,64]",
    "--set",
    "data.workers=0",
    "--set",
    "data.batch_size=8",
    "--set",
    "train.val_every=1",
]


def test_processes_share_each_global_batch_and_resume_at_the_same_sample():
    one = EpochSampler(20, seed=3, batch=4)
    ranks = [EpochSampler(20, seed=3, batch=2, rank=r, world=2) for r in (0, 1)]
    for sampler in (one, *ranks):
        sampler.set_epoch(5, start=8)  # two global batches of 4 done
    whole, parts = list(one), [list(r) for r in ranks]
    assert len(whole) == 12 and all(len(p) == 6 for p in parts)
    for k in range(3):  # global batch k is rank 0's k-th batch, then rank 1's
        assert whole[4 * k : 4 * k + 4] == parts[0][2 * k : 2 * k + 2] + parts[1][2 * k : 2 * k + 2]


def shares(n: int, size: int, monkeypatch) -> list[list[int]]:
    """What ``shard(n)`` gives each of ``size`` processes, as torchrun would describe them."""
    parts = []
    for rank in range(size):
        monkeypatch.setenv("WORLD_SIZE", str(size))
        monkeypatch.setenv("RANK", str(rank))
        parts.append(shard(n))
    return parts


@pytest.mark.parametrize(("n", "size"), [(5, 2), (7, 2), (7, 3), (2, 3)])
def test_shards_take_every_image_once_and_gather_back_in_order(n, size, monkeypatch):
    parts = shares(n, size, monkeypatch)
    assert sorted(i for part in parts for i in part) == list(range(n))
    # each process gathers every share (here simulated) and puts the images back in order
    monkeypatch.setattr(distributed, "_joined", world)
    images = [[f"image {i}" for i in part] for part in parts]

    def all_gather_object(gathered: list, mine) -> None:
        gathered[:] = images

    monkeypatch.setattr(distributed.dist, "all_gather_object", all_gather_object)
    for mine in images:
        assert gather_in_order(mine) == [f"image {i}" for i in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node 2 -m indoorseg ARGS`` on this machine."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "-m",
        "indoorseg",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The same 2-epoch recipe trained in one process and in two (global batch 4)."""
    root = tmp_path_factory.mktemp("ddp")
    blocks = write_blocks_dataset(root / "blocks", n=20)
    info = read_info(blocks)  # and a split set of 17 images: no even share between two
    train = info.splits["default"]["train"]
    info.splits["odd"] = {"train": train[:17], "val": train[17:], "test": train[17:]}
    write_info(blocks, info)
    # plain SGD: its steps follow the gradients (Adam's first steps are about their signs,
    # which tiny differences flip)
    args = [
        "train",
        "--config",
        "realtime",
        "--data",
        str(blocks),
        *TINY,
        "--set",
        "optim.epochs=2",
        "--set",
        "optim.name=sgd",
        "--set",
        "optim.lr=0.01",
    ]
    result = runner.invoke(app, [*args, "--out", str(root / "one")])
    assert result.exit_code == 0, result.output
    torchrun(*args, "--out", str(root / "two"))
    return {"blocks": blocks, "one": root / "one", "two": root / "two", "root": root}


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def weights(tensors: dict) -> dict:
    """The model's learned parameters in a checkpoint (not optimizer, RNG, batch norm
    statistics, which the first process alone keeps, or counters)."""
    learned = [k for k in tensors if k.startswith("model.") and "running_" not in k]
    return {k: tensors[k].float() for k in learned if "num_batches" not in k}


def norm(tensors: dict) -> float:
    return sum(float(v.norm() ** 2) for v in tensors.values()) ** 0.5


def test_two_processes_train_like_one_with_the_same_global_batch(runs):
    one, two = records(runs["one"]), records(runs["two"])
    assert [r["epoch"] for r in two] == [1, 2] and [r["images"] for r in two] == [16, 16]
    # batch norm sees 4 images per process instead of 8: close, not equal
    for a, b in zip(one, two, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.05)
    wa, wb = (weights(load_file(r / "last.safetensors")) for r in (runs["one"], runs["two"]))
    assert wa.keys() == wb.keys()  # saved without DDP's "module." prefix
    torch.manual_seed(0)  # the runs' seed: their common starting point
    start = {f"model.{k}": v for k, v in build_model(ModelSpec(MODEL, 3)).state_dict().items()}
    moved_one = norm({k: wa[k] - start[k] for k in wa})
    moved_two = norm({k: wb[k] - start[k] for k in wb})
    # gradients are averaged over the processes, not summed: steps of the same size
    assert moved_two == pytest.approx(moved_one, rel=0.25)


@pytest.mark.parametrize("protocol", ["standard", "paper"])
def test_two_processes_evaluate_exactly_like_one(runs, protocol):
    args = ["evaluate", str(runs["one"]), "--data", str(runs["blocks"]), "--protocol", protocol]
    args += ["--split", "train", "--split-set", "odd"]
    single = runs["root"] / f"single-{protocol}.json"
    result = runner.invoke(app, [*args, "--json", str(single)])
    assert result.exit_code == 0, result.output
    double = runs["root"] / f"double-{protocol}.json"
    torchrun(*args, "--json", str(double))
    a, b = (json.loads(p.read_text()) for p in (single, double))
    assert a["metrics"] == b["metrics"] and a["images"] == b["images"] == 17
    if protocol == "standard":
        assert a["confusion_matrix"] == b["confusion_matrix"]


def test_a_run_resumes_across_one_and_two_processes(runs, tmp_path):
    args = ["train", "--config", "realtime", "--data", str(runs["blocks"]), *TINY]
    torchrun(*args, "--set", "optim.epochs=1", "--out", str(tmp_path / "a"))
    config = tmp_path / "a" / "config.yaml"  # stretch the finished run to 2 epochs
    config.write_text(config.read_text().replace("epochs: 1", "epochs: 2"))
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "a")])  # one process
    assert result.exit_code == 0, result.output
    assert [r["epoch"] for r in records(tmp_path / "a")] == [1, 2]
    config.write_text(config.read_text().replace("epochs: 2", "epochs: 3"))
    torchrun("train", "--resume", str(tmp_path / "a"))  # and two again
    assert [r["epoch"] for r in records(tmp_path / "a")] == [1, 2, 3]
    assert torch.isfinite(
        load_file(tmp_path / "a" / "last.safetensors")["model.segmentation_head.0.weight"]
    ).all()
