"""Each epoch's report, sent back to the process that started the fit (``k400ray train`` prints
a line per epoch).

Ray Train calls its callbacks on the Train controller, an actor of its own (another process,
maybe another node), so a print there never reaches the user; a ``ray.util.queue.Queue`` (a
small actor with no CPU) carries rank 0's metrics to the driver, where a thread hands them on.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from ray.train import UserCallback

from k400ray.contracts import EPOCH

logger = logging.getLogger(__name__)


class EpochFeed(UserCallback):
    """Puts rank 0's metrics of every report on ``queue`` (best effort: never stops training)."""

    def __init__(self, queue) -> None:
        self.queue = queue

    def after_report(self, run_context, metrics, checkpoint) -> None:
        if not metrics:
            return
        try:
            self.queue.put_nowait(dict(metrics[0]))
        except Exception:  # noqa: BLE001 - progress display only
            logger.warning("could not send epoch %s to the driver", metrics[0].get(EPOCH), exc_info=True)


@contextmanager
def epoch_reports(handle: Callable[[dict], None]) -> Iterator[list]:
    """Yields the Train callbacks to pass to the fit; ``handle`` gets each report's metrics on a
    driver thread while the fit runs, and every report left once it returned."""
    from ray.util.queue import Empty, Queue

    queue = Queue(actor_options={"num_cpus": 0})
    done = threading.Event()

    def drain(block: bool) -> None:
        while True:
            try:
                metrics = queue.get(block=block, timeout=1.0) if block else queue.get_nowait()
            except Empty:
                return
            handle(metrics)

    def pump() -> None:
        while not done.is_set():
            drain(block=True)

    thread = threading.Thread(target=pump, name="k400ray-epochs", daemon=True)
    thread.start()
    try:
        yield [EpochFeed(queue)]
    finally:
        done.set()
        thread.join(timeout=10)
        drain(block=False)
        queue.shutdown()
