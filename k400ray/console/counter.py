"""A count with a bar for long commands (``k400ray index``): a rich progress bar on a terminal,
a plain line every few seconds (and at the end) anywhere else."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator, TextIO


@contextmanager
def count_progress(what: str, unit: str, stream: TextIO, *, live: bool | None = None,
                   every_s: float = 5.0) -> Iterator[Callable[[int, int], None]]:
    """Yields ``update(done, total)``. ``what``: ``indexing``; ``unit``: ``videos``."""
    from rich.console import Console

    console = Console(file=stream)
    if live if live is not None else console.is_terminal:
        from rich.progress import (
            BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                   TaskProgressColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(what, total=None)

            def update(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            yield update
        return

    start, last = time.perf_counter(), [float("-inf")]

    def update(done: int, total: int) -> None:
        now = time.perf_counter()
        if done < total and now - last[0] < every_s:
            return
        last[0] = now
        rate = done / max(now - start, 1e-9)
        share = f" ({100 * done / total:.0f}%)" if total else ""
        stream.write(f"{what}: {done}/{total} {unit}{share}, {rate:.1f} {unit}/s\n")
        stream.flush()

    yield update
