import numpy as np
import pytest
import torch

from indoorseg.data.dataset import EpochSampler, SegmentationDataset, TrainTransform
from indoorseg.data.prepared import DatasetError


def test_whole_images_in_scheme_ids(blocks):
    ds = SegmentationDataset(blocks, "layout3", "val")
    image, label = ds[0]
    assert image.shape == (3, 64, 96) and image.dtype == torch.float32
    assert label.shape == (64, 96) and label.dtype == torch.int64
    assert set(label.unique().tolist()) == {0, 1, 2}  # background, object (chair), other
    assert label[0, 0] == 2 and label[-1, -1] == 0
    assert abs(float(image.mean())) < 3  # normalised, not 0..255


def test_ignore_policy_and_padding(blocks):
    transform = TrainTransform(crop=(80, 120), scale=(1.0, 1.0), flip=False)
    ds = SegmentationDataset(blocks, "layout3-ignore", "train", transform=transform)
    image, label = ds[0]
    assert image.shape == (3, 80, 120) and label.shape == (80, 120)
    # The crop is larger than the image: padding carries the ignore label.
    assert (label == 255).sum() >= 80 * 120 - 64 * 96
    assert set(label.unique().tolist()) <= {0, 1, 255}


def test_augmentation_is_paired_and_deterministic(blocks):
    transform = TrainTransform(crop=(48, 48), scale=(0.5, 2.0), flip=True)
    ds = SegmentationDataset(blocks, "nyu40", "train", transform=transform, seed=3)
    a = ds[1]
    b = ds[1]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    ds.set_epoch(1)
    c = ds[1]
    assert not (torch.equal(a[0], c[0]) and torch.equal(a[1], c[1]))
    # Paired: every chair pixel (nyu40 train id 4) is blue-ish in the image too.
    image, label = c
    chair = label == 4
    if chair.any():
        blue_minus_red = image[2][chair] - image[0][chair]
        assert float(blue_minus_red.mean()) > 0.5


def test_scale_keeps_labels_valid():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (30, 40, 3)).astype(np.uint8)
    label = rng.choice([0, 1, 2], size=(30, 40)).astype(np.uint8)
    out_image, out_label = TrainTransform((16, 16), (0.5, 2.0), True)(image, label, 255, rng)
    assert out_image.shape == (16, 16, 3) and set(np.unique(out_label)) <= {0, 1, 2, 255}


def test_sampler_resumes_mid_epoch():
    sampler = EpochSampler(10, seed=1)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_epoch(2, start=4)
    assert list(sampler) == full[4:] and len(sampler) == 6
    sampler.set_epoch(3)
    assert list(sampler) != full and sorted(sampler) == list(range(10))


def test_dataset_errors(blocks, tmp_path):
    with pytest.raises(DatasetError, match="no split 'dev'"):
        SegmentationDataset(blocks, "layout3", "dev")
    with pytest.raises(DatasetError, match="dataset.json"):
        SegmentationDataset(tmp_path, "layout3", "train")
    (blocks / "label" / "006.png").unlink()
    ds = SegmentationDataset(blocks, "layout3", "val")
    with pytest.raises(FileNotFoundError):
        ds[0]
