"""Checkpoints: round trips of tensors, optimizer, RNG and metadata; errors; atomic writes."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from indoorseg import checkpoint as ckpt_mod
from indoorseg.checkpoint import (
    CHECKPOINT_META,
    Checkpoint,
    CheckpointError,
    checkpoint_meta,
    load_checkpoint,
    load_optimizer_state,
    optimizer_state,
    read_meta,
    read_model,
    resolve,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from indoorseg.classes import load_scheme, scheme_from_dict
from indoorseg.config import load_config
from indoorseg.deploy import Segmenter
from indoorseg.models import ModelSpec, build_model


@pytest.fixture
def restore_global_rng():
    """Leave the global RNGs as the test found them."""
    saved = torch.get_rng_state(), np.random.get_state(), random.getstate()
    yield
    torch.set_rng_state(saved[0])
    np.random.set_state(saved[1])
    random.setstate(saved[2])


def tiny_checkpoint(value: float = 1.0, **meta) -> Checkpoint:
    model = {"weight": torch.full((2, 3), value), "bias": torch.arange(2.0)}
    return Checkpoint(meta={"epoch": 1, **meta}, model=model)


def adam_steps(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> None:
    x = torch.linspace(-1, 1, 12).reshape(4, 3)
    for _ in range(steps):
        optimizer.zero_grad()
        model(x).square().mean().backward()
        optimizer.step()


# --- round trips ------------------------------------------------------------------------


def test_model_tensors_round_trip(tmp_path):
    model = {
        "conv.weight": torch.randn(4, 3, 3, 3),
        "bn.num_batches_tracked": torch.tensor(7),
        "half": torch.randn(5).to(torch.bfloat16),
        "view": torch.arange(12.0).reshape(3, 4).t(),  # not contiguous
    }
    path = save_checkpoint(tmp_path / "run" / "last.safetensors", Checkpoint({}, model))
    loaded = load_checkpoint(path)
    assert set(loaded.model) == set(model)
    for key, value in model.items():
        assert loaded.model[key].dtype == value.dtype, key
        assert torch.equal(loaded.model[key], value), key
    assert loaded.optim == {} and loaded.rng == {}


def test_optimizer_state_round_trip_continues_identically(tmp_path):
    torch.manual_seed(0)
    original = nn.Linear(3, 2)
    optimizer = torch.optim.Adam(original.parameters(), lr=0.01, betas=(0.8, 0.95))
    adam_steps(original, optimizer, 2)
    tensors, meta = optimizer_state(optimizer)
    assert tensors, "Adam keeps its moments as tensors"
    path = save_checkpoint(
        tmp_path / "last.safetensors",
        Checkpoint({"optimizer": meta}, original.state_dict(), optim=tensors),
    )

    loaded = load_checkpoint(path)
    resumed = nn.Linear(3, 2)
    resumed.load_state_dict(loaded.model)
    # other hyper-parameters on purpose: they must come from the checkpoint
    fresh = torch.optim.Adam(resumed.parameters(), lr=0.5)
    load_optimizer_state(fresh, loaded.optim, loaded.meta["optimizer"])
    assert fresh.param_groups[0]["lr"] == 0.01
    assert tuple(fresh.param_groups[0]["betas"]) == (0.8, 0.95)

    adam_steps(original, optimizer, 1)
    adam_steps(resumed, fresh, 1)
    for a, b in zip(original.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_rng_states_round_trip(tmp_path, restore_global_rng):
    torch.manual_seed(3)
    np.random.seed(4)
    random.seed(5)
    # odd numbers of normal draws leave a cached Gaussian in numpy and Python
    np.random.standard_normal()
    random.gauss(0, 1)
    tensors, meta = rng_state()
    path = save_checkpoint(
        tmp_path / "last.safetensors", Checkpoint({"rng": meta}, {"w": torch.zeros(1)}, rng=tensors)
    )

    def draws():
        return (
            torch.rand(4),
            np.random.standard_normal(3),
            np.random.randint(0, 1000, 3),
            [random.gauss(0, 1) for _ in range(3)],
        )

    expected = draws()
    draws()  # move every generator on
    loaded = load_checkpoint(path)
    set_rng_state(loaded.rng, loaded.meta["rng"])
    got = draws()
    assert torch.equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[2], expected[2])
    assert got[3] == expected[3]


def test_metadata_round_trips_and_has_a_json_sidecar(tmp_path):
    meta = {
        "model": {"name": "deeplabv3plus_resnet18", "num_classes": 3, "output_stride": 16},
        "metrics": {"mean_iou": 0.5, "per_class_iou": {"wall": None}},
        "epoch": 4,
    }
    path = save_checkpoint(tmp_path / "best.safetensors", Checkpoint(meta, {"w": torch.ones(2)}))
    expected = {"format": CHECKPOINT_META.name, "version": CHECKPOINT_META.version, **meta}
    assert read_meta(path) == expected
    assert load_checkpoint(path).meta == expected
    sidecar = tmp_path / "best.json"
    assert sidecar.is_file()
    assert json.loads(sidecar.read_text()) == expected


def test_a_custom_void_class_keeps_its_name_and_colour(tmp_path):
    classes = [
        {"name": "seat", "members": ["chair", "sofa"], "color": [1, 2, 3]},
        {"name": "rest", "members": "rest", "color": [4, 5, 6]},
    ]
    raw = {"name": "seats", "space": "nyu40", "void": "class", "classes": classes}
    scheme = scheme_from_dict({**raw, "void_name": "unknown", "void_color": [90, 60, 30]})
    spec = ModelSpec("deeplabv3plus_mobilenet_v2", scheme.num_classes)
    meta = checkpoint_meta(load_config(None, []), spec, scheme, epoch=1, step=0, metrics={})
    ckpt = Checkpoint(meta, build_model(spec).state_dict())
    path = save_checkpoint(tmp_path / "seats.safetensors", ckpt)
    read = read_model(path).scheme
    assert read.class_names == ["seat", "rest", "unknown"]
    assert read.colors == [(1, 2, 3), (4, 5, 6), (90, 60, 30)]
    assert read.void_id == 2
    segmenter = Segmenter.load(path, backend="torch")
    assert segmenter.class_names == ["seat", "rest", "unknown"]
    assert segmenter.colors[-1] == (90, 60, 30)


def model_file(path: Path, **normalization) -> Path:
    """A checkpoint of a layout3 model whose stored normalisation has ``normalization``
    in place of ImageNet's (its weights are not read here)."""
    spec = ModelSpec("deeplabv3plus_mobilenet_v2", 3)
    meta = checkpoint_meta(load_config(None, []), spec, load_scheme("layout3"), epoch=1)
    meta["normalization"].update(normalization)
    return save_checkpoint(path, Checkpoint(meta, {"w": torch.zeros(1)}))


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("std", [0.229, 0, 0.225]),
        ("std", [0.229, -0.224, 0.225]),
        ("std", [0.229, NAN, 0.225]),
        ("std", [0.229, 0.224, INF]),
        ("std", [0.229, 0.224]),
        ("std", "0.229"),
        ("mean", [0.485, 0.456, 0.406, 0.5]),
        ("mean", [0.485, None, 0.406]),
        ("mean", [0.485, -INF, 0.406]),
    ],
)
def test_an_impossible_normalisation_is_refused_naming_the_file_and_field(tmp_path, field, values):
    path = model_file(tmp_path / "odd.safetensors", **{field: values})
    with pytest.raises(CheckpointError) as info:
        read_model(path)
    need = "3 positive finite numbers" if field == "std" else "3 finite numbers"
    assert str(info.value) == f"{path}: normalization.{field} must be {need}, got {values!r}"


def test_a_negative_mean_is_a_possible_normalisation(tmp_path):
    path = model_file(tmp_path / "ok.safetensors", mean=[-0.5, 0, 1], std=[2, 1e-3, 0.5])
    assert read_model(path).normalization == ((-0.5, 0.0, 1.0), (2.0, 1e-3, 0.5))


# --- read_meta errors -------------------------------------------------------------------


def test_missing_checkpoint(tmp_path):
    path = tmp_path / "nope.safetensors"
    with pytest.raises(CheckpointError, match="not found") as info:
        read_meta(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "content", [b"", b"abc", bytes(range(256)) * 4], ids=["empty", "short", "bytes"]
)
def test_not_a_safetensors_file(tmp_path, content):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint") as info:
        read_meta(path)
    assert str(path) in str(info.value)


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    path = tmp_path / "random.safetensors"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_safetensors_without_indoorseg_metadata(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="no indoorseg metadata") as info:
        read_meta(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            {"format": CHECKPOINT_META.name, "version": CHECKPOINT_META.version + 1},
            "version 2, this indoorseg reads version 1",
        ),
        ({"format": "other-tool", "version": CHECKPOINT_META.version}, "format 'other-tool'"),
        ({"version": CHECKPOINT_META.version}, "format None"),
    ],
)
def test_wrong_format_or_version(tmp_path, header, message):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"indoorseg": json.dumps(header)})
    with pytest.raises(CheckpointError, match=message) as info:
        read_meta(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_metadata_that_is_not_a_json_object(tmp_path, text):
    path = tmp_path / "broken.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"indoorseg": text})
    with pytest.raises(CheckpointError, match="metadata") as info:
        read_meta(path)
    assert str(path) in str(info.value)


def test_unexpected_tensor_group_is_refused(tmp_path):
    path = tmp_path / "odd.safetensors"
    header = json.dumps({"format": CHECKPOINT_META.name, "version": CHECKPOINT_META.version})
    save_file({"extra.w": torch.zeros(2)}, str(path), metadata={"indoorseg": header})
    assert read_meta(path)["version"] == CHECKPOINT_META.version
    with pytest.raises(CheckpointError, match="unexpected tensor extra.w"):
        load_checkpoint(path)


# --- atomic writes ----------------------------------------------------------------------


def test_failed_save_leaves_the_previous_checkpoint_and_no_temp_files(tmp_path, monkeypatch):
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, tiny_checkpoint(1.0, epoch=1))
    before = path.read_bytes(), (tmp_path / "last.json").read_bytes()
    written = []

    def failing_save_file(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x00partial")  # half a file, then the disk fills up
        written.append(filename)
        raise OSError("No space left on device")

    monkeypatch.setattr(ckpt_mod, "save_file", failing_save_file)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, tiny_checkpoint(2.0, epoch=2))
    assert written and Path(written[0]) != path  # it wrote elsewhere, not over the file
    assert (path.read_bytes(), (tmp_path / "last.json").read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.json", "last.safetensors"]
    monkeypatch.undo()
    loaded = load_checkpoint(path)
    assert loaded.meta["epoch"] == 1
    assert torch.equal(loaded.model["weight"], torch.full((2, 3), 1.0))


def test_save_replaces_an_existing_checkpoint(tmp_path):
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, tiny_checkpoint(1.0, epoch=1))
    save_checkpoint(path, tiny_checkpoint(2.0, epoch=2))
    loaded = load_checkpoint(path)
    assert loaded.meta["epoch"] == 2
    assert torch.equal(loaded.model["weight"], torch.full((2, 3), 2.0))
    assert json.loads((tmp_path / "last.json").read_text())["epoch"] == 2
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


# --- resolve ----------------------------------------------------------------------------


def test_resolve_picks_best_then_last(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(CheckpointError, match="no best.safetensors or last.safetensors"):
        resolve(run.parent)
    save_checkpoint(run / "last.safetensors", tiny_checkpoint(epoch=3))
    assert resolve(run) == run / "last.safetensors"
    save_checkpoint(run / "best.safetensors", tiny_checkpoint(epoch=2))
    assert resolve(run) == run / "best.safetensors"
    assert resolve(run, "last") == run / "last.safetensors"
    assert read_meta(run)["epoch"] == 2  # a run folder reads its best checkpoint
    file = run / "last.safetensors"
    assert resolve(file) == file


def test_resolve_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        resolve(tmp_path / "missing.safetensors")
