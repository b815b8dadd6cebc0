"""Render a few synthetic rooms as one picture for the README: RGB, labels, depth.

    python scripts/synth_grid.py --out docs/synthetic_grid.png

Rooms are rendered at 192x256 by default: the sensor noise makes RGB PNGs large, and this
keeps the picture small enough to commit (about 0.5 MB).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image

from indoorseg.classes import BUILTIN_SPACES, colorize, load_scheme
from indoorseg.cli.common import parse_size
from indoorseg.data.synthetic import render_room

GAP = 4  # white pixels between tiles
MAX_DEPTH = 8.0  # metres at the end of the colour map, the same for every room
DEPTH_LEVELS = 128  # fewer colours than the map has: smooths the depth noise, smaller PNG


def grid(seed: int, indices: list[int], size: tuple[int, int]) -> np.ndarray:
    """Columns of rooms; rows: RGB, nyu40 labels (unlabelled black), depth. (H', W', 3) uint8."""
    scheme = load_scheme("nyu40")
    lut = scheme.lut(BUILTIN_SPACES["nyu40"])
    turbo = colormaps["turbo"]
    columns = []
    for index in indices:
        sample = render_room(seed, index, size)
        labels = colorize(lut[sample.label], scheme)
        level = np.round(np.clip(sample.depth / MAX_DEPTH, 0, 1) * DEPTH_LEVELS) / DEPTH_LEVELS
        depth = (turbo(level)[..., :3] * 255).astype(np.uint8)
        columns.append(_stack([sample.rgb, labels, depth], axis=0))
    return _stack(columns, axis=1)


def _stack(tiles: list[np.ndarray], axis: int) -> np.ndarray:
    shape = list(tiles[0].shape)
    shape[axis] = GAP
    gap = np.full(shape, 255, dtype=np.uint8)
    parts = [part for tile in tiles for part in (gap, tile)][1:]
    return np.concatenate(parts, axis=axis)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/synthetic_grid.png"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--indices", type=int, nargs="+", default=[13, 1, 2, 12, 16])
    parser.add_argument("--size", type=parse_size, default=(192, 256), help="HEIGHTxWIDTH")
    args = parser.parse_args()
    image = Image.fromarray(grid(args.seed, args.indices, args.size))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out, optimize=True)
    print(f"{args.out}: {image.width}x{image.height}, {args.out.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
