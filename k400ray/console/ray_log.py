"""Ray's own output (Tune's boxed status tables, raylet warnings, worker logs) into a log file
while a grid runs, so that the terminal shows only k400ray's view of it.

Ray writes from C++ and from threads that captured ``sys.stderr`` at import time, so the
process's file descriptors 1 and 2 are pointed at the log (not only ``sys.stdout``); the caller
gets a stream on the original stdout to show its own view on.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, TextIO


def default_log_path(storage_path: str, experiment: str) -> Path:
    """``<storage_path>/<experiment>.ray.log`` for local storage; ``./<experiment>.ray.log``
    when the storage is remote (s3://...): a log file is read where the command ran."""
    base = Path(".") if "://" in storage_path else Path(storage_path)
    return (base / f"{experiment}.ray.log").resolve()


def _on_fd(stream, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (AttributeError, OSError, ValueError):
        return False  # a captured stream (tests, CliRunner): not a descriptor


@contextmanager
def ray_output_to(log_path: Path, *, title: str = "") -> Iterator[TextIO]:
    """Inside: fd 1, fd 2, ``sys.stdout`` and ``sys.stderr`` append to ``log_path``. Yields the
    stream the user sees (the original stdout). Restored on the way out, errors included, so a
    one-line error printed after it reaches the terminal."""
    created = [d for d in (log_path.parent, *log_path.parent.parents) if not d.exists()]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    existed = log_path.exists()
    user = sys.stdout
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    log = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - closed below
    log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {title}\n")
    header_end = log.tell()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    shown = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8") if _on_fd(user, 1) else user
    old = sys.stdout, sys.stderr
    try:
        for fd in (1, 2):
            os.dup2(log.fileno(), fd)
        sys.stdout = sys.stderr = log
        yield shown
    finally:
        sys.stdout, sys.stderr = old
        log.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        if shown is not user:
            shown.flush()
            shown.close()
        nothing_logged = log.tell() == header_end
        log.close()
        if nothing_logged and not existed:  # refused before Ray started: leave no trace
            _remove(log_path, created)


def _remove(log_path: Path, created: list[Path]) -> None:
    """Remove the log file and the directories made for it (deepest first, only when empty)."""
    try:
        log_path.unlink()
        for d in created:
            d.rmdir()
    except OSError:
        pass
