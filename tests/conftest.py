"""Shared fixtures: tiny prepared datasets written to tmp folders, and the shared NYU files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from indoorseg.checkpoint import Checkpoint, checkpoint_meta, load_checkpoint, save_checkpoint
from indoorseg.classes import BUILTIN_SPACES, load_scheme
from indoorseg.config import load_config
from indoorseg.data.prepared import PreparedInfo, write_info, write_sample
from indoorseg.models import ModelSpec, build_model

# ImageNet's statistics in RGB order, written out: the tests' reference, not the library's
RGB_MEAN = np.array([0.485, 0.456, 0.406])
RGB_STD = np.array([0.229, 0.224, 0.225])
SHARED_NYU = Path(__file__).resolve().parents[1].parent / "shared" / "nyuv2"


def shared_nyu(sub: str) -> Path:
    """A folder of ../shared/nyuv2, or skip the test saying why."""
    path = SHARED_NYU / sub
    if not path.exists():
        pytest.skip(f"real NYU Depth v2 files not found at {path} (../shared/nyuv2 is absent)")
    return path


def checkpoint_network(path: Path) -> torch.nn.Module:
    """The network of a checkpoint file, rebuilt from its spec and weights, in eval mode."""
    ckpt = load_checkpoint(path)
    model = build_model(ModelSpec.from_dict(ckpt.meta["model"]))
    model.load_state_dict(ckpt.model)
    return model.eval()


def varied_checkpoint(
    path: Path, strength: float, crop: tuple[int, int] | None = None, zero_bias: bool = False
) -> Path:
    """An untrained layout3 MobileNetV2 DeepLabv3+ whose last layer, ``strength`` times
    stronger (and without bias if asked), makes its classes vary over an image; trained (by
    its config) on ``crop`` crops, else the default recipe's."""
    torch.manual_seed(0)
    scheme = load_scheme("layout3")
    spec = ModelSpec("deeplabv3plus_mobilenet_v2", scheme.num_classes)
    model = build_model(spec)
    with torch.no_grad():
        model.segmentation_head[0].weight.mul_(strength)
        if zero_bias:
            model.segmentation_head[0].bias.zero_()
    config = load_config(None, [f"data.crop=[{crop[0]},{crop[1]}]"] if crop else [])
    meta = checkpoint_meta(config, spec, scheme, epoch=1, step=0, metrics={})
    save_checkpoint(path, Checkpoint(meta, model.state_dict()))
    return path


def reference_logits(model: torch.nn.Module, rgb: np.ndarray) -> torch.Tensor:
    """A network's logits on an RGB image normalised by hand, as every path must feed it.

    Shape: rgb (H, W, 3) uint8, H and W multiples of 32 -> (C, H, W) float32.
    """
    x = (rgb / 255.0 - RGB_MEAN) / RGB_STD
    with torch.no_grad():
        return model(torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float32)))[0]


def write_blocks_dataset(root: Path, n: int = 8, size: tuple[int, int] = (64, 96)) -> Path:
    """A tiny nyu40 dataset of flat-coloured blocks: ceiling, wall, floor bands and a chair."""
    rng = np.random.default_rng(0)
    h, w = size
    ids = [f"{i:03d}" for i in range(n)]
    for k, sample_id in enumerate(ids):
        label = np.zeros((h, w), np.uint16)
        label[: h // 4] = 22  # ceiling
        label[h // 4 : h // 2] = 1  # wall
        label[h // 2 :] = 2  # floor
        top, left = h // 3 + k % 4, w // 4 + 3 * k
        label[top : top + h // 3, left : left + w // 4] = 5  # chair
        label[:3, :3] = 0  # a little unlabelled
        rgb = rng.integers(0, 40, (h, w, 3)).astype(np.uint8)
        for value, color in (
            (22, (200, 200, 220)),
            (1, (150, 90, 60)),
            (2, (40, 120, 40)),
            (5, (20, 20, 200)),
        ):
            rgb[label == value] += np.array(color, np.uint8) // 2
        write_sample(root, sample_id, rgb, label, np.full((h, w), 2000, np.uint16))
    info = PreparedInfo(
        name="blocks",
        label_space="nyu40",
        class_names=list(BUILTIN_SPACES["nyu40"].names),
        splits={"default": {"train": ids[: n - 2], "val": ids[n - 2 :], "test": ids[n - 2 :]}},
        default_split_set="default",
        image_size=[h, w],
    )
    write_info(root, info)
    return root


@pytest.fixture
def blocks(tmp_path: Path) -> Path:
    return write_blocks_dataset(tmp_path / "blocks")
