"""The training process's machine settings (train/runtime.py)."""

import subprocess
import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_activation_memory_is_reused_not_faulted_in_again():
    # In a fresh process: allocate and free a 64 MB block repeatedly. glibc maps and unmaps it each
    # time (a page fault per 4 KB page, every time) unless keep_freed_memory took effect.
    script = """
import resource, torch
from lsrec.train.runtime import keep_freed_memory
def faults_of_repeated_blocks():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        torch.ones(16 * 2**20)  # 64 MB, freed at once
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
plain = faults_of_repeated_blocks()
assert keep_freed_memory()
faults_of_repeated_blocks()  # the first block is faulted in once
kept = faults_of_repeated_blocks()
print(plain, kept)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    plain, kept = map(int, out.split())
    assert plain > 20 * 10_000  # each 64 MB block faulted in anew (16,384 pages)
    assert kept < plain / 20
