"""Model registry and encoder weight loading, on 2x3x64x64 inputs and random weights."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from indoorseg.models import (
    ENCODERS,
    ModelError,
    ModelSpec,
    build_model,
    model_names,
    parse_name,
    read_state_dict,
)


@pytest.fixture(scope="module")
def resnet50_state() -> dict[str, torch.Tensor]:
    """A randomly initialised torchvision ResNet-50, classifier head included."""
    torch.manual_seed(12345)  # a seed no model build below starts from
    return torchvision.models.resnet50(weights=None).state_dict()


@pytest.fixture(scope="module")
def resnet18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(54321)
    return torchvision.models.resnet18(weights=None).state_dict()


def assert_encoder_equals(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    own = model.encoder.state_dict()
    assert own, "the encoder has no tensors"
    for key, value in own.items():
        assert torch.equal(value, state[key]), key


# --- registry ---------------------------------------------------------------------------


def test_registry_names():
    assert model_names() == [
        "deeplabv3plus_resnet18",
        "deeplabv3plus_resnet50",
        "deeplabv3plus_resnet101",
        "deeplabv3plus_mobilenet_v2",
        "deeplabv3plus_efficientnet_b0",
        "lraspp_mobilenet_v3_large",
    ]
    assert parse_name("deeplabv3plus_efficientnet_b0") == ("deeplabv3plus", "efficientnet_b0")
    assert parse_name("deeplabv3plus_mobilenet_v2") == ("deeplabv3plus", "mobilenet_v2")


@pytest.mark.parametrize("name", model_names())
def test_every_model_builds_runs_and_backpropagates(name):
    torch.manual_seed(0)
    model = build_model(ModelSpec(name, num_classes=5), encoder_weights=None)
    model.train()
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert out.shape == (2, 5, 64, 64)
    out.square().mean().backward()
    first = next(model.encoder.parameters())
    assert first.grad is not None and first.grad.abs().sum() > 0
    last = list(model.segmentation_head.parameters())[-1]
    assert last.grad is not None and last.grad.abs().sum() > 0


def test_output_stride_8_keeps_the_output_size():
    model = build_model(ModelSpec("deeplabv3plus_mobilenet_v2", 3, output_stride=8)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_unknown_model_lists_valid_names_and_suggests():
    with pytest.raises(ModelError) as info:
        build_model(ModelSpec("deeplabv3plus_resnet5", 5))
    message = str(info.value)
    for name in model_names():
        assert name in message
    assert "Did you mean deeplabv3plus_resnet50" in message


def test_bad_output_stride_is_refused():
    with pytest.raises(ModelError, match="output_stride"):
        build_model(ModelSpec("deeplabv3plus_resnet18", 5, output_stride=32))


def test_spec_round_trips_through_a_dict():
    spec = ModelSpec("deeplabv3plus_resnet18", 7, 8)
    assert ModelSpec.from_dict(spec.to_dict()) == spec


# --- encoder weights from a local file --------------------------------------------------


def test_torchvision_resnet50_file_loads_into_every_encoder_tensor(tmp_path, resnet50_state):
    path = tmp_path / "resnet50.pth"
    torch.save(resnet50_state, path)
    model = build_model(ModelSpec("deeplabv3plus_resnet50", 5), encoder_weights=path)
    assert_encoder_equals(model, resnet50_state)


def test_safetensors_file_loads(tmp_path, resnet50_state):
    path = tmp_path / "resnet50.safetensors"
    save_file({k: v.contiguous() for k, v in resnet50_state.items()}, str(path))
    model = build_model(ModelSpec("deeplabv3plus_resnet50", 5), encoder_weights=str(path))
    assert_encoder_equals(model, resnet50_state)


def test_module_prefix_and_state_dict_wrapper_are_accepted(tmp_path, resnet50_state):
    # as saved from DistributedDataParallel, inside a {"state_dict": ...} wrapper
    path = tmp_path / "ddp.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in resnet50_state.items()}}, path)
    model = build_model(ModelSpec("deeplabv3plus_resnet50", 5), encoder_weights=path)
    assert_encoder_equals(model, resnet50_state)


def test_missing_tensor_names_the_file(tmp_path, resnet18_state):
    state = dict(resnet18_state)
    del state["layer4.1.bn2.running_var"]
    path = tmp_path / "incomplete.pth"
    torch.save(state, path)
    with pytest.raises(ModelError, match="1 encoder tensors missing") as info:
        build_model(ModelSpec("deeplabv3plus_resnet18", 5), encoder_weights=path)
    assert str(path) in str(info.value)
    assert "layer4.1.bn2.running_var" in str(info.value)


def test_wrong_shape_names_the_file_and_the_tensor(tmp_path, resnet18_state):
    state = dict(resnet18_state)
    state["conv1.weight"] = torch.zeros(64, 3, 3, 3)  # 7x7 expected
    path = tmp_path / "wrong.pth"
    torch.save(state, path)
    with pytest.raises(ModelError, match=r"conv1\.weight is \(64, 3, 3, 3\)") as info:
        build_model(ModelSpec("deeplabv3plus_resnet18", 5), encoder_weights=path)
    assert str(path) in str(info.value)


def test_weights_for_another_encoder_are_refused(tmp_path, resnet18_state):
    path = tmp_path / "resnet18.pth"
    torch.save(resnet18_state, path)
    with pytest.raises(ModelError, match="resnet18.pth"):
        build_model(ModelSpec("deeplabv3plus_resnet50", 5), encoder_weights=path)


def test_missing_weights_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        build_model(ModelSpec("deeplabv3plus_resnet18", 5), encoder_weights=tmp_path / "no.pth")


def test_corrupt_safetensors_file_is_a_model_error(tmp_path):
    path = tmp_path / "corrupt.safetensors"
    path.write_bytes(b"\xff" * 64)
    with pytest.raises(ModelError, match="corrupt.safetensors"):
        read_state_dict(path)


# --- no unpickling of code --------------------------------------------------------------


class Payload:
    """Unpickling this calls ``open(marker, "w")``, which creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_code_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "x": Payload(marker)}, path)
    assert not marker.exists()
    with pytest.raises(ModelError, match="evil.pth: holds Python objects") as refused:
        read_state_dict(path)
    assert "weights_only" not in str(refused.value)  # never torch's advice to unpickle
    assert not marker.exists()
    # the payload is real: an unsafe load would have run it
    loaded = torch.load(path, weights_only=False)
    loaded["x"].close()
    assert marker.exists()


def test_dict_with_a_non_tensor_is_refused(tmp_path):
    path = tmp_path / "strings.pth"
    torch.save({"conv1.weight": torch.zeros(1), "note": "not a tensor"}, path)
    with pytest.raises(ModelError, match="expected a dict of tensors"):
        read_state_dict(path)


# --- ImageNet weights offline -----------------------------------------------------------


def test_imagenet_offline_fails_fast_and_says_how_to_pass_a_file(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ModelError, match="cannot be reached") as info:
        build_model(ModelSpec("deeplabv3plus_resnet50", 5), encoder_weights="imagenet")
    assert time.perf_counter() - start < 5
    assert "encoder_weights" in str(info.value)
    assert "resnet50" in str(info.value)


def test_imagenet_with_unreachable_hub_fails_at_once(monkeypatch):
    # A closed port on this machine stands for a hub that cannot be reached: the probe
    # must answer before the hub client's half-minute of retries starts.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    start = time.perf_counter()
    with pytest.raises(ModelError, match="cannot be reached") as info:
        build_model(ModelSpec("deeplabv3plus_resnet18", 3), encoder_weights="imagenet")
    assert time.perf_counter() - start < 10
    assert "model.encoder_weights=" in str(info.value)


@pytest.mark.parametrize(
    "name, source",
    [
        ("deeplabv3plus_resnet18", "timm:resnet18"),
        ("deeplabv3plus_mobilenet_v2", "torchvision:mobilenet_v2"),
        ("deeplabv3plus_efficientnet_b0", "timm:efficientnet_b0"),
    ],
)
def test_each_encoder_loads_its_documented_naming(tmp_path, name, source):
    import timm
    import torchvision

    library, arch = source.split(":")
    if library == "timm":
        network = timm.create_model(arch, pretrained=False)
    else:
        network = getattr(torchvision.models, arch)(weights=None)
    path = tmp_path / f"{arch}.pth"
    torch.save(network.state_dict(), path)
    model = build_model(ModelSpec(name, 3), encoder_weights=path)
    source_state = network.state_dict()
    prefix = ENCODERS[name.removeprefix("deeplabv3plus_")][2]  # "model." inside timm encoders
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, source_state[key.removeprefix(prefix)]), key
