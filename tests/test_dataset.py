import numpy as np
import pytest
import torch

from indoorseg.classes import BUILTIN_SPACES
from indoorseg.data.dataset import EpochSampler, SegmentationDataset, TrainTransform
from indoorseg.data.prepared import DatasetError
from indoorseg.images import IMAGENET_MEAN, IMAGENET_STD


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
    with pytest.raises(DatasetError, match="label/006.png: not found"):
        ds[0]


# --- pairing and geometry of the training transform -------------------------------------
# Each test below fails on a realistic bug: a flip of the image alone, labels resized with
# bilinear interpolation, a rescale that swaps height and width.

# Colours far apart, one per label id, so an image pixel says which label it belongs to.
CODED = {0: (230, 30, 30), 2: (30, 230, 30), 40: (30, 30, 230)}


def coded_pair(h: int = 48, w: int = 80, block: int = 16, seed: int = 0):
    """A label of random ``block``-sized squares of ids 0, 2 and 40 (no id between them is
    used, so an interpolated label shows) and an image whose colour encodes the label."""
    rng = np.random.default_rng(seed)
    ids = np.array(sorted(CODED))
    blocks = ids[rng.integers(0, len(ids), (h // block, w // block))]
    label = np.kron(blocks, np.ones((block, block), np.int64)).astype(np.uint16)
    image = np.zeros((h, w, 3), np.uint8)
    for value, color in CODED.items():
        image[label == value] = color
    return image, label


def decode(image: np.ndarray) -> np.ndarray:
    """The label each pixel's colour stands for (nearest coded colour)."""
    ids = np.array(sorted(CODED))
    colors = np.array([CODED[i] for i in ids], np.float64)
    distance = ((image[..., None, :].astype(np.float64) - colors) ** 2).sum(-1)
    return ids[distance.argmin(-1)]


def test_flip_moves_image_and_label_together():
    image, label = coded_pair()
    transform = TrainTransform(crop=label.shape, scale=(1.0, 1.0), flip=True)
    flipped = 0
    for seed in range(16):
        out_image, out_label = transform(image, label, 255, np.random.default_rng(seed))
        if np.array_equal(out_label, label[:, ::-1]):
            flipped += 1
            np.testing.assert_array_equal(out_image, image[:, ::-1])
        else:
            np.testing.assert_array_equal(out_label, label)
            np.testing.assert_array_equal(out_image, image)
    assert 0 < flipped < 16  # both orientations were drawn


def test_rescaled_labels_keep_their_ids_and_stay_paired_with_the_image():
    image, label = coded_pair()
    transform = TrainTransform(crop=(64, 64), scale=(0.5, 2.0), flip=True)
    for seed in range(12):
        out_image, out_label = transform(image, label, 255, np.random.default_rng(seed))
        # nearest neighbour: no id that is not in the source (0 and 2 never blend into 1)
        assert set(np.unique(out_label)) <= {0, 2, 40, 255}, seed
        labelled = out_label != 255
        agreement = (decode(out_image)[labelled] == out_label[labelled]).mean()
        assert agreement > 0.9, (seed, agreement)


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_rescale_keeps_height_and_width(factor):
    image, label = coded_pair(h=48, w=80)  # not square: swapped axes would show
    size = (round(48 * factor), round(80 * factor))
    transform = TrainTransform(crop=size, scale=(factor, factor), flip=False)
    out_image, out_label = transform(image, label, 255, np.random.default_rng(0))
    # the crop is the whole rescaled image: exactly the label resized, nothing padded
    block = round(16 * factor)
    rng = np.random.default_rng(0)
    ids = np.array(sorted(CODED))
    blocks = ids[rng.integers(0, len(ids), (3, 5))]
    expected = np.kron(blocks, np.ones((block, block), np.int64))
    np.testing.assert_array_equal(out_label, expected)
    np.testing.assert_array_equal(decode(out_image), expected)


def write_coded_dataset(root, n: int = 4):
    """Prepared nyu40 folder of coded pairs: ids 0 (unlabelled), 2 (floor), 40 (otherprop)."""
    from indoorseg.data.prepared import PreparedInfo, write_info, write_sample

    ids = [f"{i:02d}" for i in range(n)]
    for i, sample_id in enumerate(ids):
        image, label = coded_pair(seed=i)
        write_sample(root, sample_id, image, label)
    write_info(
        root,
        PreparedInfo(
            name="coded",
            label_space="nyu40",
            class_names=list(BUILTIN_SPACES["nyu40"].names),
            splits={"default": {"train": ids, "val": ids, "test": ids}},
            default_split_set="default",
            image_size=[48, 80],
        ),
    )
    return root


def test_dataset_samples_stay_paired_through_scheme_and_augmentation(tmp_path):
    root = write_coded_dataset(tmp_path / "coded")
    transform = TrainTransform(crop=(48, 48), scale=(0.5, 2.0), flip=True)
    ds = SegmentationDataset(root, "layout3", "train", transform=transform, seed=1)
    # layout3 train ids of the coded label ids: unlabelled -> other, floor -> background,
    # otherprop -> object
    to_train = {0: 2, 2: 0, 40: 1}
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    for epoch in range(3):
        ds.set_epoch(epoch)
        for index in range(len(ds)):
            x, y = ds[index]
            pixels = ((x * std + mean) * 255).round().clamp(0, 255).byte().permute(1, 2, 0)
            decoded = decode(pixels.numpy())
            expected = np.vectorize(to_train.get)(decoded)
            labelled = (y != 255).numpy()
            agreement = (expected[labelled] == y.numpy()[labelled]).mean()
            assert agreement > 0.9, (epoch, index, agreement)
