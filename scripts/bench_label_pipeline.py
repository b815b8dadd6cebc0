"""Why the paper's epoch time grew with the class count: the label pipeline, not the network.

The reference code (Semantic-Segmentation-Suite) one-hot encodes every label crop on the
CPU by comparing it with each class colour (``one_hot_it``). indoorseg indexes a lookup
table once and hands integer labels to ``cross_entropy``. This times both per 256x256 crop
for 3, 40 and 894 classes and prints a Markdown table (medians of --repeats runs).

    python scripts/bench_label_pipeline.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def one_hot_like_reference(label_rgb: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """What the reference code does per crop: one boolean plane per class colour, as float32."""
    planes = [np.all(np.equal(label_rgb, colour), axis=-1) for colour in colours]
    return np.stack(planes, axis=-1).astype(np.float32)


def integer_labels(raw: np.ndarray, lut: np.ndarray) -> torch.Tensor:
    """What indoorseg does: one table lookup, int64 for cross_entropy."""
    return torch.from_numpy(lut[raw].astype(np.int64))


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--crop", type=int, default=256)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(
        "| classes | one-hot (reference) ms/crop | lookup (indoorseg) ms/crop | ratio | MB/crop |"
    )
    print("| --- | --- | --- | --- | --- |")
    for classes in (3, 40, 894):
        raw = rng.integers(0, classes, (args.crop, args.crop)).astype(np.uint16)
        colours = rng.permutation(256**3)[:classes]
        colours = np.stack([colours // 65536, colours // 256 % 256, colours % 256], 1).astype(
            np.uint8
        )
        label_rgb = colours[raw]
        lut = np.arange(classes, dtype=np.uint16)
        slow = median_time(
            lambda c=colours, x=label_rgb: one_hot_like_reference(x, c), args.repeats
        )
        fast = median_time(lambda r=raw, t=lut: integer_labels(r, t), args.repeats)
        size = args.crop * args.crop * classes * 4 / 2**20
        print(
            f"| {classes} | {slow * 1e3:.1f} | {fast * 1e3:.2f} | {slow / fast:.0f}x | {size:.1f} |"
        )


if __name__ == "__main__":
    main()
