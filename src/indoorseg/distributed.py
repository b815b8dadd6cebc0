"""Several processes as one run: ``torchrun --nproc_per_node N -m indoorseg train|evaluate``.

torchrun sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; ``start`` joins the process
group (NCCL on CUDA, gloo on the CPU). Everything here is a no-op in a single process,
so the training and evaluation code reads the same either way: each process takes its
share of the images (``shard``), and scores are summed (``sum_across``) or gathered in
image order (``gather_in_order``) so that the result is the single-process one.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from indoorseg.errors import ConfigError


@dataclass(frozen=True)
class World:
    """This process's place among the run's processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes logs, checkpoints and reports."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world() -> World:
    """The world as torchrun describes it (one process when it does not)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))


def start(device: torch.device) -> World:
    """Join the process group of a torchrun launch (once); returns this process's World."""
    here = world()
    if here.distributed and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(here.local_rank)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_leave)
    return here


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def device_name(device: str) -> str:
    """Each process on a machine takes its own GPU (``LOCAL_RANK``)."""
    here = world()
    if here.distributed and device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{here.local_rank}"
    return device


def local_batch(batch_size: int) -> int:
    """The per-process share of ``data.batch_size`` (the global batch)."""
    size = world().size
    if batch_size % size:
        raise ConfigError(
            f"data.batch_size {batch_size} must divide among {size} processes",
            {"data.batch_size": size * max(1, batch_size // size)},
        )
    if batch_size // size < 2 and size > 1:
        raise ConfigError(
            f"data.batch_size {batch_size} gives each of {size} processes fewer "
            "than 2 images (batch norm needs 2)"
        )
    return batch_size // size


def shard(n: int) -> list[int]:
    """The indices of ``n`` items this process takes: every size-th from its rank."""
    here = world()
    return list(range(here.rank, n, here.size))


def _joined() -> World | None:
    """This process's World when it is one of several in a started process group."""
    here = world()
    return here if here.distributed and dist.is_initialized() else None


def sum_across(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of ``tensor`` over all processes (exact for integers)."""
    if _joined():
        tensor = tensor.clone()
        dist.all_reduce(tensor)
    return tensor


def any_across(*flags: bool) -> tuple[bool, ...]:
    """Each flag: whether any process has it set (all must stop at the same step); one
    collective call for all of them."""
    if not _joined():
        return flags
    counts = sum_across(torch.tensor([int(f) for f in flags]))
    return tuple(bool(c) for c in counts.tolist())


def same_across(value: float) -> bool:
    """Whether every process holds the same ``value`` (e.g. a checksum of the weights)."""
    here = _joined()
    if here is None:
        return True
    values: list = [None] * here.size
    dist.all_gather_object(values, value)
    return all(v == values[0] for v in values)


def gather_in_order(items: list) -> list:
    """Every process's items of a ``shard``, back in the order of the whole (on all)."""
    here = _joined()
    if here is None:
        return items
    parts: list[list] = [[] for _ in range(here.size)]
    dist.all_gather_object(parts, items)
    whole = []
    for i in range(sum(len(p) for p in parts)):
        whole.append(parts[i % here.size][i // here.size])
    return whole
