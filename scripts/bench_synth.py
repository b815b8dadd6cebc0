"""How fast the synthetic rooms render: images per second in one process.

    python scripts/bench_synth.py --size 240x320 --n 50 --repeats 5

Prints the rate of each repeat and their median. Rendering only; writing PNGs (as
``indoorseg data synth`` does) adds a few milliseconds per image.
"""

from __future__ import annotations

import argparse
import statistics
import time

from indoorseg.cli.common import parse_size
from indoorseg.data.synthetic import render_room


def images_per_second(n: int, size: tuple[int, int], seed: int) -> float:
    start = time.perf_counter()
    for index in range(n):
        render_room(seed, index, size)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=(240, 320), help="HEIGHTxWIDTH")
    parser.add_argument("--n", type=int, default=50, help="images per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    render_room(args.seed, 0, args.size)  # warm-up: caches of rays and noise
    rates = []
    for repeat in range(args.repeats):
        # a new seed each repeat: different rooms, not the same ones from a warm cache
        rates.append(images_per_second(args.n, args.size, args.seed + repeat))
        print(f"repeat {repeat + 1}: {rates[-1]:.1f} images/s")
    height, width = args.size
    print(f"median: {statistics.median(rates):.1f} images/s at {height}x{width}")


if __name__ == "__main__":
    main()
