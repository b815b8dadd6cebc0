"""Where and how the work runs: device, mixed precision, memory format, determinism, Ctrl-C.

The CUDA-only branches (autocast, channels_last, GradScaler) live here, so the training
and evaluation loops read the same on every device.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from indoorseg.workers import available_cpus


@dataclass(frozen=True)
class Runtime:
    """Device and precision choices for one run."""

    device: torch.device
    amp_dtype: torch.dtype | None = None  # None: full float32
    channels_last: bool = False

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A scaler that is active only for fp16 (bf16 needs none)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def prepare(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def describe(self) -> str:
        amp = {None: "float32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]
        return f"{self.device} {amp}{' channels_last' if self.channels_last else ''}"


def make_runtime(device: str = "auto", amp: str = "auto", channels_last: str = "auto") -> Runtime:
    """Pick the device (CUDA when present) and, on CUDA, mixed precision and channels_last."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available")
    on_cuda = dev.type == "cuda"
    amp_dtype = {
        "auto": torch.bfloat16 if on_cuda else None,
        "off": None,
        "bf16": torch.bfloat16,
        "fp16": torch.float16,
    }.get(amp, "bad")
    if amp_dtype == "bad":
        raise ValueError(f"amp must be auto, off, bf16 or fp16, got {amp!r}")
    if channels_last not in ("auto", "on", "off"):
        raise ValueError(f"channels_last must be auto, on or off, got {channels_last!r}")
    last = on_cuda if channels_last == "auto" else channels_last == "on"
    return Runtime(dev, amp_dtype, last)


@contextlib.contextmanager
def deterministic(enabled: bool = True) -> Iterator[None]:
    """Deterministic algorithms inside the block only; the previous setting comes back."""
    previous = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if enabled:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=warn_only)


class StopFlag:
    """First Ctrl-C asks the loop to stop after the current step; a second one kills."""

    def __init__(self) -> None:
        self.set = False
        self._previous = None

    def __enter__(self) -> StopFlag:
        def handler(signum, frame):
            if self.set:
                raise KeyboardInterrupt
            self.set = True

        try:
            self._previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not in the main thread: no handler, Ctrl-C raises as usual
            self._previous = None
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def describe_machine(device: str = "auto") -> dict:
    """What figures were measured on: the device, the CPU and its widest vector extension,
    the core count and the torch version."""
    from indoorseg.machine import cpu_info

    dev = make_runtime(device).device
    cpu, flags = cpu_info()
    vector = next((f for f in ("avx512_bf16", "avx512f", "avx2", "neon") if f in flags), None)
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else None
    return {
        "device": str(dev),
        "gpu": gpu,
        "cpu": cpu,
        "vector_extension": vector,
        "cpu_cores": available_cpus(),
        "torch": torch.__version__,
    }
