"""How much work ``reproduce`` does: three budgets, from a CI check to the paper's settings.

A budget fixes the data (synthetic rooms, or a prepared NYU folder), the recipe every
compared model shares (only the class scheme differs between them), the seeds and split
sets, and the settings of the epoch-time measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

from indoorseg.errors import UsageError

# The three models of the fair comparison: the paper's (void as a class), the same classes
# with void ignored, and the 40 classes of the literature (collapsed to layout3 to score).
SCHEMES = ("layout3", "layout3-ignore", "nyu40")


@dataclass(frozen=True)
class Budget:
    """Attributes:
    rooms, size: synthetic rooms made when no dataset is given (None: one must be).
    recipe: the built-in recipe the runs start from; ``overrides`` apply to all of them.
    seeds, split_sets: one run per scheme, seed and split set (None: the dataset's default).
    timing: (model, batch size, crop, timed steps) of the epoch-time measurements.
    """

    name: str
    rooms: int | None
    size: tuple[int, int]
    recipe: str
    overrides: tuple[str, ...]
    seeds: tuple[int, ...]
    split_sets: tuple[str | None, ...] = (None,)
    timing: tuple[str, int, tuple[int, int], int] = ("deeplabv3plus_mobilenet_v2", 2, (64, 64), 1)
    samples: int = 4  # images of each dataset in the sample grid


SYNTHETIC_RECIPE = (
    "model.name=deeplabv3plus_mobilenet_v2",
    "model.encoder_weights=none",
    "data.split_set=null",
    "data.flip=true",
    "data.scale=[0.75,1.25]",
    "data.batch_size=8",
    "optim.lr=1e-3",
    "optim.scheduler=poly",
)

# What pays on real photos (15 NYU test images, five paired seeds; docs/synthetic-to-real.md):
# ImageNet features kept as they are (they install with the project), the network run at
# the rooms' size (320 on the longer side), and the region vote.
REAL_PHOTOS = (
    "model.encoder_weights=imagenet",
    "optim.encoder_lr_scale=0",
    "model.inference_side=320",
    "model.inference_regions=true",
)

BUDGETS = {
    "smoke": Budget(
        name="smoke",
        rooms=24,
        size=(64, 96),
        recipe="paper",
        overrides=SYNTHETIC_RECIPE
        + (
            "data.crop=[48,48]",
            "data.batch_size=4",
            "data.workers=0",
            "optim.epochs=2",
            "train.val_every=1",
            "train.device=cpu",
            "model.inference_side=96",  # as quick's real-photo settings, without a download
            "model.inference_regions=true",
        ),
        seeds=(0, 1),
        timing=("deeplabv3plus_mobilenet_v2", 2, (48, 48), 1),
        samples=2,
    ),
    "quick": Budget(
        name="quick",
        rooms=320,
        size=(240, 320),
        recipe="paper",
        # data.workers=0: on 2 cores a loader process slows the training step more than
        # loading in the training process does (20 s against 22.6 s an epoch, measured)
        overrides=SYNTHETIC_RECIPE
        + REAL_PHOTOS
        + ("data.crop=[128,128]", "data.workers=0", "optim.epochs=6", "train.val_every=3"),
        seeds=(0, 1),
        timing=("deeplabv3plus_mobilenet_v2", 4, (256, 256), 2),
    ),
    "paper": Budget(
        name="paper",
        rooms=None,
        size=(480, 640),
        recipe="paper",
        overrides=(),
        seeds=(0, 1, 2),
        split_sets=("paper", "official"),
        timing=("deeplabv3plus_resnet50", 8, (256, 256), 10),
        samples=6,
    ),
}


def get_budget(name: str) -> Budget:
    if name not in BUDGETS:
        raise UsageError(f"budget must be one of {', '.join(BUDGETS)}, got {name!r}")
    return BUDGETS[name]
