"""DeviceFeed on the CPU: no copy when every row decodes, decodable rows only otherwise, a stand-in
for a batch with no decodable row, views folded into the batch for evaluation."""

import time

import numpy as np
import torch

from k400ray.engine.augment import normalize
from k400ray.engine.input_path import DeviceFeed, select_rows


def _batch(valid, views=1, t=4, s=8):
    n = len(valid)
    rng = np.random.default_rng(n)
    return {
        "clips": rng.integers(0, 255, (n, views, 3, t, s, s), dtype=np.uint8),
        "label": np.arange(n) % 3,
        "video_id": np.array([f"v{i}" for i in range(n)]),
        "valid": np.asarray(valid),
    }


def test_all_valid_rows_are_not_copied():
    batch = _batch([True] * 4)
    host = select_rows(batch, train=True)
    assert host.rows == 4 and host.skipped == 0
    assert np.shares_memory(host.clips.numpy(), batch["clips"])  # the pipeline's array, as is


def test_only_decodable_rows_are_kept():
    batch = _batch([True, False, True, False])
    host = select_rows(batch, train=True)
    assert (host.rows, host.skipped) == (2, 2)
    assert host.video_ids.tolist() == ["v0", "v2"] and host.labels.tolist() == [0, 2]
    assert torch.equal(host.clips, torch.from_numpy(batch["clips"][[0, 2]]))


def test_a_batch_without_decodable_row_is_kept_as_a_stand_in():
    batch = _batch([False, False, False])
    batch["clips"][:] = 0
    [out] = list(DeviceFeed([batch], device=torch.device("cpu"), train=True))
    assert (out.rows, out.skipped) == (0, 3)
    assert out.clips.shape == (3, 3, 4, 8, 8)  # still a full batch: the step runs, weighted zero


def test_evaluation_folds_views_into_the_batch_and_normalises():
    batch = _batch([True, True], views=3)
    [out] = list(DeviceFeed([batch], device=torch.device("cpu"), train=False))
    assert out.views == 3 and out.clips.shape == (6, 3, 4, 8, 8) and out.clips.dtype == torch.float32
    expected = normalize(torch.from_numpy(batch["clips"]).flatten(0, 1))
    assert torch.equal(out.clips, expected)


def test_training_keeps_the_first_view():
    feed = DeviceFeed([_batch([True] * 2, views=2) for _ in range(3)], device=torch.device("cpu"), train=True)
    outs = list(feed)
    assert [o.clips.shape[0] for o in outs] == [2, 2, 2] and all(o.views == 1 for o in outs)


def test_the_wait_is_the_time_blocked_on_the_source_not_the_time_spent_on_a_batch():
    """A source that takes 0.1 s per batch, a consumer that spends 0.3 s on each: ``wait_s`` is
    the producer's 0.3 s in all, none of the consumer's 0.9 s."""
    produce_s, consume_s, n = 0.1, 0.3, 3

    def slow_source():
        for _ in range(n):
            time.sleep(produce_s)
            yield _batch([True] * 2)

    feed = DeviceFeed(slow_source(), device=torch.device("cpu"), train=True)
    for _ in feed:
        time.sleep(consume_s)
    assert n * produce_s <= feed.wait_s < n * produce_s + consume_s
