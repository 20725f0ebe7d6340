"""Model tests run torch on one intra-op thread.

The toy models issue thousands of tiny ops (on CPUs without AVX-512, bf16 depthwise convs fall
back to a per-group loop). With two OpenMP threads on a busy 2-core machine every op waits at a
barrier for a descheduled thread: one bf16 MobileNetV2 step went from 0.7 s to 48 s. One thread
keeps the tests fast and their run time steady.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
