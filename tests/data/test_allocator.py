"""keep_freed_memory: a decode process serves mid-sized blocks from its heap instead of fresh mmaps."""

import subprocess
import sys

import pytest

from k400ray.data.allocator import MMAP_THRESHOLD_BYTES

# Run in a fresh interpreter: the setting is per process and cannot be undone.
_PROBE = """
import ctypes, sys
import numpy as np
from k400ray.data.allocator import keep_freed_memory
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
tuned = keep_freed_memory() if sys.argv[1] == "tuned" else None
clip = np.ones(48 << 20, dtype=np.uint8)  # a decoded I3D batch is about this size
print(tuned, libc.mallinfo2().hblkhd >= 48 << 20)
"""


def _probe(mode: str) -> str:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_blocks_below_the_threshold_come_from_the_heap_once_tuned():
    assert 48 << 20 < MMAP_THRESHOLD_BYTES
    assert _probe("default") == "None True"  # glibc default: a 48 MiB block is its own mmap
    assert _probe("tuned") == "True False"  # tuned: it comes from the heap and is reused after free


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_tuning_is_idempotent():
    out = subprocess.run([sys.executable, "-c", "from k400ray.data.allocator import keep_freed_memory as k; print(k(), k())"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]
