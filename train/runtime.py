"""How a training process uses this machine: one rule shared by every trainer (LSRec, DPO, SASRec,
BigRec)."""

from __future__ import annotations

import ctypes
import os
import sys

# glibc's mallopt(3) parameters
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def prepare_process() -> None:
    """Every core for torch, unless the user (or torchrun) set OMP_NUM_THREADS; and freed memory
    kept for the next step."""
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(os.cpu_count() or 1)
    keep_freed_memory()


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks in the process instead of returning them to the system.

    A training step on the CPU allocates activations of tens of MB, above glibc's mmap threshold:
    each is mapped fresh and unmapped when freed, so every step faults in and zeroes its pages
    again. That was a third of a step's wall time on ML-100K (docs/BENCHMARKS.md, "Training speed").
    Served from the heap and never trimmed, the blocks are reused; peak memory stays the same.
    Returns whether it applied (glibc on Linux only; elsewhere nothing changes)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
