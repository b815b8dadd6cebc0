"""Region voting and several scales: probabilities averaged over regions of the image and
over network runs at several sizes, in evaluation and in ``predict``. The networks here
are stubs whose answers are known (speckled, or set by the image size)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from indoorseg.backends import TorchBackend, load_model
from indoorseg.checkpoint import Checkpoint, checkpoint_meta, save_checkpoint
from indoorseg.classes import load_scheme
from indoorseg.cli import app
from indoorseg.config import load_config
from indoorseg.data.synthetic.render import render_room
from indoorseg.deploy import Segmenter
from indoorseg.errors import UsageError
from indoorseg.evaluation import Scoring, evaluate_model
from indoorseg.images import IMAGENET
from indoorseg.inference import ModelCard, parse_scales
from indoorseg.models import ModelSpec, build_model
from indoorseg.regions import region_vote, regions
from indoorseg.runtime import make_runtime


def stub_segmenter(module: nn.Module, **options) -> Segmenter:
    """A Segmenter over a stub network, with ImageNet normalisation."""
    card = ModelCard(Path("stub"), {"name": "stub"}, load_scheme("layout3"), IMAGENET)
    return Segmenter(TorchBackend(module.eval(), make_runtime("cpu")), card, **options)


def two_halves(h=120, w=160, seed=0) -> np.ndarray:
    """A dark left half and a bright right half, with a little sensor noise."""
    rng = np.random.default_rng(seed)
    image = np.full((h, w, 3), 50, np.int16)
    image[:, w // 2 :] = 200
    return np.clip(image + rng.integers(-2, 3, image.shape), 0, 255).astype(np.uint8)


def speckled(truth: np.ndarray, wrong: float, seed=0) -> np.ndarray:
    """Two-class probabilities that favour ``truth`` except on a random ``wrong`` share."""
    flip = np.random.default_rng(seed).random(truth.shape) < wrong
    answer = np.where(flip, 1 - truth, truth)
    probs = np.where(answer == 1, 0.7, 0.3).astype(np.float32)
    return np.stack([1 - probs, probs])


def test_votes_within_a_region_undo_speckles():
    image = two_halves()
    truth = np.zeros(image.shape[:2], np.int64)
    truth[:, image.shape[1] // 2 :] = 1
    probs = speckled(truth, wrong=0.3)
    assert (probs.argmax(0) == truth).mean() < 0.75
    voted = region_vote(probs, image)
    assert voted.shape == probs.shape and voted.dtype == np.float32
    np.testing.assert_allclose(voted.sum(0), 1, atol=1e-5)
    assert (voted.argmax(0) == truth).mean() > 0.99  # but for a few pixels in tiny regions


def test_a_region_keeps_the_mean_of_its_pixels():
    image = np.full((40, 40, 3), 128, np.uint8)  # one flat region
    probs = speckled(np.zeros((40, 40), np.int64), wrong=0.25, seed=3)
    voted = region_vote(probs, image)
    np.testing.assert_allclose(
        voted, probs.mean((1, 2), keepdims=True) * np.ones_like(probs), atol=1e-5
    )


def test_region_sizes_follow_the_image_size():
    # the same room at two sizes falls into about as many regions (unscaled: 10x fewer)
    for index in range(2):
        small, large = (render_room(0, index, size).rgb for size in ((240, 320), (480, 640)))
        n_small, n_large = (len(np.unique(regions(im, 400))) for im in (small, large))
        assert 0.67 < n_small / n_large < 1.5


def test_an_image_voted_again_is_not_segmented_again(monkeypatch):
    import indoorseg.regions as module

    calls = []
    real = module.felzenszwalb
    monkeypatch.setattr(module, "felzenszwalb", lambda im, **kw: calls.append(1) or real(im, **kw))
    image = two_halves(seed=7)
    probs = speckled((np.arange(160) >= 80)[None].repeat(120, 0).astype(int), 0.3)
    first = region_vote(probs, image)
    assert len(calls) == 4  # one segmentation per scale
    np.testing.assert_array_equal(region_vote(probs[::-1].copy(), image)[::-1], first)
    assert len(calls) == 4  # the same bytes: remembered
    other = image.copy()
    other[0, 0] ^= 1
    region_vote(probs, other)
    assert len(calls) == 8  # one byte differs: segmented anew


def test_size_mismatch_is_refused():
    with pytest.raises(ValueError, match="differ in size"):
        region_vote(np.zeros((2, 10, 10), np.float32), np.zeros((10, 12, 3), np.uint8))


class BrightIsObject(nn.Module):
    """Says "object" where the image is bright, with fixed noise that flips many pixels."""

    def forward(self, x):
        torch.manual_seed(0)
        score = x.mean(1, keepdim=True) + 1.5 * torch.randn_like(x[:, :1])
        return torch.cat([-score, score, torch.full_like(score, -9)], 1)


def test_predictions_vote_when_asked():
    image = two_halves()
    truth = np.zeros(image.shape[:2], np.uint8)
    truth[:, image.shape[1] // 2 :] = 1
    plain = stub_segmenter(BrightIsObject()).predict(image)
    voted = stub_segmenter(BrightIsObject(), regions=True).predict(image)
    assert (plain == truth).mean() < 0.9
    assert (voted == truth).mean() > 0.99


def test_segmenter_votes_over_regions_at_one_scale():
    image = two_halves(64, 96)
    # the expectation, by hand: the stub's softmax on the normalised image, then voted
    mean, std = (np.array(v).reshape(3, 1, 1) for v in IMAGENET)
    x = torch.from_numpy(((image.transpose(2, 0, 1) / 255 - mean) / std).astype(np.float32))
    plain = torch.softmax(BrightIsObject()(x[None]), 1)[0].numpy()
    expected = region_vote(plain, image)
    truth = np.zeros(image.shape[:2], np.int64)
    truth[:, 48:] = 1
    assert (plain.argmax(0) == truth).mean() < 0.9 < (expected.argmax(0) == truth).mean()

    seg = stub_segmenter(BrightIsObject(), regions=True)
    labels, probs = seg.predict(image, probabilities=True)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert (labels == expected.argmax(0)).all()


def flat_checkpoint(path, scheme_name="layout3", gain=0.0):
    """A model whose last layer is zero but for a bias: the same probabilities everywhere
    (with ``gain``, its random last layer that much stronger: answers that vary over it)."""
    torch.manual_seed(1)
    scheme = load_scheme(scheme_name)
    spec = ModelSpec("deeplabv3plus_mobilenet_v2", scheme.num_classes)
    model = build_model(spec)
    with torch.no_grad():
        model.segmentation_head[0].weight.mul_(gain)
        model.segmentation_head[0].bias.copy_(torch.tensor([0.5, 0.2, -1.0]))
    meta = checkpoint_meta(load_config(None, []), spec, scheme, epoch=1, step=0, metrics={})
    save_checkpoint(path, Checkpoint(meta, model.state_dict()))
    return path


def test_evaluation_with_regions_is_named_and_recorded(blocks, tmp_path):
    ckpt = flat_checkpoint(tmp_path / "flat.safetensors")
    plain = evaluate_model(ckpt, blocks, device="cpu", out_dir=tmp_path / "plain")
    voted = evaluate_model(ckpt, blocks, device="cpu", regions=True)
    assert voted["regions"] is True and plain["regions"] is False
    assert voted["out_dir"].endswith("test-standard-regions")
    assert "voted over image regions" in (tmp_path / voted["out_dir"] / "metrics.md").read_text()
    # flat probabilities stay flat: the same answer everywhere, so the same scores
    assert voted["metrics"]["mean_iou"] == pytest.approx(plain["metrics"]["mean_iou"])


def test_segmenter_and_predict_with_regions(tmp_path):
    ckpt = flat_checkpoint(tmp_path / "flat.safetensors")
    image = two_halves()
    seg = Segmenter.load(ckpt, backend="torch", regions=True)
    labels, probs = seg.predict(image, probabilities=True)
    assert (labels == probs.argmax(0)).all() and (labels == 0).all()
    np.testing.assert_allclose(probs.sum(0), 1, atol=1e-5)
    Image.fromarray(image).save(tmp_path / "room.png")
    out = tmp_path / "out"
    args = ["predict", str(ckpt), str(tmp_path / "room.png"), "--out", str(out), "--regions"]
    result = CliRunner().invoke(app, [*args, "--backend", "torch"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "room.json").read_text())["regions"] is True


# --- several scales ----------------------------------------------------------------------


def test_scales_are_parsed_and_bad_ones_refused():
    assert parse_scales("1,0.5") == (1.0, 0.5) and parse_scales("2") == (2.0,)
    for bad in ("", "a", "0", "-1,1", "5", "nan", "1,,0.5"):
        with pytest.raises(UsageError, match="scales"):
            parse_scales(bad)
    with pytest.raises(UsageError, match="scales"):
        Scoring(scales=(1.0, 0.0))
    assert Scoring(scales=(1.0, 0.5), regions=True).name(None, "layout3") == (
        "test-standard-scales1+0.5-regions"
    )


class SizeAware(nn.Module):
    """Answers class 1 with a logit margin of (image height / 32): 2 at 64 rows, 1 at 32."""

    def forward(self, x):
        n, _, h, w = x.shape
        return torch.cat([torch.zeros(n, 1, h, w), torch.full((n, 1, h, w), h / 32)], 1)


def test_each_scale_runs_the_network_at_its_size_and_the_answers_are_averaged():
    image = np.zeros((64, 96, 3), np.uint8)
    one = stub_segmenter(SizeAware()).probabilities(image)
    two = stub_segmenter(SizeAware(), scales=(1.0, 0.5)).probabilities(image)
    assert one.shape == two.shape == (2, 64, 96)
    sigmoid = torch.sigmoid(torch.tensor([2.0, 1.0])).numpy()
    np.testing.assert_allclose(one[1], np.full((64, 96), sigmoid[0]), rtol=1e-6)
    np.testing.assert_allclose(two[1], np.full((64, 96), sigmoid.mean()), rtol=1e-6)


def by_hand(model: nn.Module, image: np.ndarray, scale: float) -> torch.Tensor:
    """Softmax of ``model`` on ``image`` resized by ``scale``, normalised with ImageNet's
    mean and std in numpy, padded to a multiple of 32 by repeating the last row and
    column, the answer cut and resized back: an independent reference."""
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x = torch.from_numpy(((image / 255.0 - mean) / std).astype(np.float32)).permute(2, 0, 1)
    h, w = image.shape[:2]
    size = (round(h * scale), round(w * scale))
    if scale != 1:
        x = torch.nn.functional.interpolate(x[None], size, mode="bilinear", antialias=True)[0]
    rows, cols = np.arange(-(-size[0] // 32) * 32), np.arange(-(-size[1] // 32) * 32)
    x = x[:, np.minimum(rows, size[0] - 1)][:, :, np.minimum(cols, size[1] - 1)]
    with torch.no_grad():
        logits = model(x[None])[..., : size[0], : size[1]]
    logits = torch.nn.functional.interpolate(logits, (h, w), mode="bilinear")
    return torch.softmax(logits, 1)[0]


def test_segmenter_and_evaluation_agree_on_several_scales(tmp_path):
    ckpt = flat_checkpoint(tmp_path / "varied.safetensors", gain=300.0)
    image = render_room(0, 0, (96, 128)).rgb
    seg = Segmenter.load(ckpt, backend="torch", scales=(1.0, 0.5))
    labels, probs = seg.predict(image, probabilities=True)
    np.testing.assert_allclose(probs.sum(0), 1, atol=1e-5)
    model, _ = load_model(ckpt, make_runtime("cpu"))
    ours = (by_hand(model, image, 1.0) + by_hand(model, image, 0.5)) / 2
    np.testing.assert_allclose(probs, ours.numpy(), atol=1e-4)
    assert (labels == probs.argmax(0)).all() and probs.std((1, 2)).min() > 1e-3


def test_predict_refuses_bad_scales_before_reading_inputs(tmp_path):
    ckpt = flat_checkpoint(tmp_path / "flat.safetensors")
    args = ["predict", str(ckpt), str(tmp_path / "missing.png"), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(app, [*args, "--scales", "1,0"])
    assert result.exit_code == 2 and "scales must be numbers in (0, 4]" in result.output
    assert not (tmp_path / "o").exists()


def test_a_model_runs_as_its_recipe_says_unless_told_otherwise(blocks, tmp_path):
    torch.manual_seed(1)
    scheme = load_scheme("layout3")
    spec = ModelSpec("deeplabv3plus_mobilenet_v2", scheme.num_classes)
    config = load_config(None, ["model.inference_side=64", "model.inference_regions=true"])
    meta = checkpoint_meta(config, spec, scheme, epoch=1, step=0, metrics={})
    ckpt = save_checkpoint(
        tmp_path / "m.safetensors", Checkpoint(meta, build_model(spec).state_dict())
    )
    seg = Segmenter.load(ckpt, backend="torch")
    assert seg.max_side == 64 and seg.regions is True
    assert seg.network_input(np.zeros((120, 160, 3), np.uint8))[1] == (48, 64)
    plain = Segmenter.load(ckpt, backend="torch", regions=False, max_side=None)
    assert plain.max_side is None and plain.regions is False
    scored = evaluate_model(ckpt, blocks, device="cpu", workers=0)
    assert scored["regions"] is True and scored["out_dir"].endswith("test-standard-regions")
    untold = flat_checkpoint(tmp_path / "flat.safetensors")  # a recipe that says nothing
    assert Segmenter.load(untold, backend="torch").max_side == 1280
