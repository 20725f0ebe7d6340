"""Keep a decode process's freed memory for reuse instead of handing it back to the kernel.

Decoding one clip allocates and frees tens of MiB (decoded frames, the crop and resize
intermediates of the transforms, the clip itself). glibc's defaults give large blocks their own
``mmap`` (from 128 KiB, adapting up to 32 MiB) and hand the heap's free top back to the kernel,
so the next clip touches brand-new pages again, whose faults cost a decode process a good share
of its CPU on a small VM (docs/data.md and docs/benchmarks.md have the figures). Raising both
thresholds keeps those pages in the heap, where the next clip reuses them. A decode process then keeps its peak heap, which its next clip would touch again
anyway; bounded: blocks of 256 MiB or more (a whole decoded evaluation batch) still get their
own mmap, and free heap beyond 1 GiB is given back.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Blocks below this come from the heap; larger ones (a whole evaluation batch) still get their own mmap.
MMAP_THRESHOLD_BYTES = 256 << 20
# Free heap top kept before any is given back.
TRIM_THRESHOLD_BYTES = 1 << 30

_tuned: bool | None = None


def keep_freed_memory() -> bool:
    """Set the thresholds once per process; True when they are in effect.

    False where the C library is not glibc (musl, macOS): decoding works the same, only without
    this saving."""
    global _tuned
    if _tuned is None:
        _tuned = False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            return _tuned
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        _tuned = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
            mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
        )
    return _tuned
