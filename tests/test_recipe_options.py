"""Recipe options for sim-to-real training: photometric changes of the rooms
(``data.color``) and the encoder's own learning rate (``optim.encoder_lr_scale``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from indoorseg.config import load_config
from indoorseg.data.dataset import TrainTransform, photometric
from indoorseg.errors import ConfigError
from indoorseg.models import ModelSpec, build_model
from indoorseg.training import build_optimizer


def test_photometric_changes_touch_the_image_only_and_draw_the_same_numbers():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    label = rng.integers(0, 3, (32, 48)).astype(np.int64)
    plain = TrainTransform((32, 48), (1, 1), flip=False)
    coloured = TrainTransform((32, 48), (1, 1), flip=False, color=0.5)
    a_image, a_label = plain(image, label, 255, np.random.default_rng(1))
    b_image, b_label = coloured(image, label, 255, np.random.default_rng(1))
    assert (a_image == image).all() and (b_label == a_label).all()
    assert np.abs(b_image.astype(int) - image).mean() > 5  # the look changed
    draws = [np.random.default_rng(s) for s in (2, 3)]
    for generator in draws:
        photometric(image, 0.5, generator)
    assert draws[0].random() != draws[1].random()  # different seeds, but
    counts = []
    for strength in (0.1, 0.9):  # whatever the strength, the same number of draws
        generator = np.random.default_rng(4)
        photometric(image, strength, generator)
        counts.append(generator.bit_generator.state["state"]["state"])
    assert counts[0] == counts[1]


def test_without_photometric_changes_augmentation_draws_as_before():
    image = np.zeros((40, 40, 3), np.uint8)
    label = np.zeros((40, 40), np.int64)
    states = []
    for transform in (TrainTransform((32, 32)), TrainTransform((32, 32), color=0.0)):
        generator = np.random.default_rng(7)
        transform(image, label, 255, generator)
        states.append(generator.bit_generator.state["state"]["state"])
    assert states[0] == states[1]


def groups(scale: float):
    config = load_config(None, ["optim.lr=1e-3", f"optim.encoder_lr_scale={scale}"])
    model = build_model(ModelSpec("deeplabv3plus_mobilenet_v2", 3))
    return model, build_optimizer(model, config)


def test_the_encoder_learns_at_its_own_rate_or_not_at_all():
    model, optimizer = groups(0.1)
    encoder = {id(p) for p in model.encoder.parameters()}
    rates = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert {round(rates[i], 12) for i in encoder} == {1e-4}
    assert {r for i, r in rates.items() if i not in encoder} == {1e-3}
    assert len(rates) == sum(1 for _ in model.parameters())
    model, optimizer = groups(0.0)
    trained = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert not trained & {id(p) for p in model.encoder.parameters()}
    assert not any(p.requires_grad for p in model.encoder.parameters())
    before = [p.clone() for p in model.encoder.parameters()]
    loss = model(torch.randn(2, 3, 64, 64)).mean()
    loss.backward()
    optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(before, model.encoder.parameters(), strict=True))
    with pytest.raises(ConfigError, match="encoder_lr_scale"):
        from indoorseg.config import check_config

        check_config(load_config(None, ["optim.encoder_lr_scale=-1"]))
