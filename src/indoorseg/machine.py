"""What the machine can do: its CPU's instruction set, a measured peak, a model's FLOPs.

Never assume bf16 or int8 helps: a CPU without native bf16 (``avx512_bf16``/``amx_bf16``)
emulates it, several times slower than fp32, and int8 gains most where the CPU has VNNI.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from indoorseg.workers import available_cpus

FLAGS_OF_INTEREST = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_bf16",
    "amx_int8",
    "neon",
    "asimd",
)


def cpu_info() -> tuple[str, set[str]]:
    """The CPU's model name and feature flags (Linux ``/proc/cpuinfo``; elsewhere the
    platform's processor name and no flags)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith(("flags", "Features")) and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:  # not Linux
        pass
    return name, flags


def cpu_flags() -> set[str]:
    """The CPU's feature flags (empty where they cannot be read)."""
    return cpu_info()[1]


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (elsewhere it is emulated, several times
    slower than fp32)."""
    return instruction_set()["native_bf16"]


def instruction_set(flags: set[str] | None = None) -> dict:
    """The widest vector extension, and whether bf16 and int8 dot products are native."""
    flags = cpu_flags() if flags is None else flags
    widest = next((f for f in ("avx512f", "avx2", "asimd", "neon") if f in flags), "unknown")
    return {
        "vector": widest,
        "native_bf16": bool({"avx512_bf16", "amx_bf16"} & flags),
        "vnni": bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags),
        "flags": sorted(f for f in FLAGS_OF_INTEREST if f in flags),
    }


def matmul_peak_gflops(n: int = 1024, repeats: int = 7) -> float:
    """The best fp32 GFLOP/s of an n x n matmul on all threads: the machine's practical peak."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def model_gflops(model: nn.Module, size: tuple[int, int]) -> float:
    """GFLOPs of one forward pass on a (1, 3, H, W) image (a multiply-add counts 2)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(torch.zeros(1, 3, *size))
    return counter.get_total_flops() / 1e9


def machine_summary() -> dict:
    """CPU model, cores in use and instruction set, for a benchmark's header."""
    return {
        "cpu": cpu_info()[0],
        "cores": available_cpus(),
        "torch": torch.__version__,
        **instruction_set(),
    }


def median_p90(times_ms: list[float]) -> tuple[float, float]:
    """Median and 90th percentile (nearest rank) of a list of timings."""
    ordered = sorted(times_ms)
    rank = max(0, math.ceil(0.9 * len(ordered)) - 1)
    return statistics.median(ordered), ordered[rank]
