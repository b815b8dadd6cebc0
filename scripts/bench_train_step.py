"""Training-step speed of the paper's network against the number of classes.

With integer labels and ``cross_entropy``, only the last 1x1 convolution and the loss see
the class count, so images/s should barely move from 3 to 894 classes. Prints a Markdown
table of medians over --steps timed steps (after --warmup), on the device given.

    python scripts/bench_train_step.py --device cuda --model deeplabv3plus_resnet50
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from indoorseg.models import ModelSpec, build_model
from indoorseg.runtime import make_runtime


def time_steps(model, optimizer, runtime, batch, crop, classes, steps, warmup) -> list[float]:
    x = torch.randn(batch, 3, crop, crop)
    y = torch.randint(0, classes, (batch, crop, crop))
    x, y = runtime.images(x), y.to(runtime.device)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        with runtime.autocast():
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, ignore_index=65535)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()  # waits for the device
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="deeplabv3plus_resnet50")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--classes", type=int, nargs="+", default=[3, 40, 894])
    args = parser.parse_args()
    runtime = make_runtime(args.device)
    print(f"{args.model}, batch {args.batch}, crop {args.crop}, {runtime.describe()}")
    print("| classes | ms/step (median) | images/s | epoch of 889 images |")
    print("| --- | --- | --- | --- |")
    for classes in args.classes:
        torch.manual_seed(0)
        model = runtime.prepare(build_model(ModelSpec(args.model, classes))).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        step = statistics.median(
            time_steps(
                model, optimizer, runtime, args.batch, args.crop, classes, args.steps, args.warmup
            )
        )
        per_s = args.batch / step
        print(f"| {classes} | {step * 1e3:.1f} | {per_s:.1f} | {889 / per_s / 60:.2f} min |")


if __name__ == "__main__":
    main()
