"""What every benchmark shares: the machine it ran on, medians, peak memory, the cost of a clip,
and the record format.

Memory is measured from ``/proc`` (no psutil dependency): a background thread sums the PSS
(proportional set size) of a process and all its descendants. PSS rather than RSS because the
decode workers share pages (the torch libraries, Ray's object store): summing their RSS would
count those pages once per process and overstate the footprint several times over.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from k400ray.text_table import text_table


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def train_clip_gmacs(preset, num_classes: int) -> float:
    """Forward multiply-adds (1e9) of one training clip of ``preset``, as the benchmarks quote them
    (``bench data`` and ``bench train`` both do)."""
    from k400ray.models.summary import arch_gmacs

    _, c, t, s, _ = preset.clip_spec("train").output_shape
    return arch_gmacs(preset.arch, num_classes, (1, c, t, s, s))


def cpu_model() -> str:
    """The CPU model name as ``lscpu`` reports it (``/proc/cpuinfo``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def machine_line() -> str:
    """One line naming the machine, e.g. ``AMD EPYC, 2 cores, 23.4 GiB RAM, no GPU``."""
    gpu = gpu_name()
    return f"{cpu_model()}, {os.cpu_count()} cores, {memory_gib():.1f} GiB RAM, {gpu or 'no GPU'}"


def command_line() -> str:
    """The command as the user typed it (``k400ray bench ...``), for the results record."""
    args = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else ["k400ray"]
    return shlex.join(args)


# --- memory ----------------------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name field may hold spaces
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Ray's raylet and worker processes, DataLoader workers...)."""
    children = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def pss_bytes(pid: int) -> int:
    """PSS of one process (RSS where ``smaps_rollup`` is unavailable); 0 for a process that is gone."""
    for name, key in (("smaps_rollup", "Pss:"), ("status", "VmRSS:")):
        try:
            for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        except OSError:
            continue
    return 0


class PeakMemory:
    """Context manager sampling, every ``interval`` s, the PSS of this process and of its whole
    process tree; ``.own`` and ``.tree`` are the peaks in bytes, ``.start_own`` / ``.start_tree``
    the values on entry."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.own = self.tree = self.start_own = self.start_tree = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        pid = os.getpid()
        own = pss_bytes(pid)
        tree = own + sum(pss_bytes(p) for p in process_tree(pid) if p != pid)
        self.own, self.tree = max(self.own, own), max(self.tree, tree)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> PeakMemory:
        self.sample()
        self.start_own, self.start_tree = self.own, self.tree
        self._thread = threading.Thread(target=self._run, name="k400ray-bench-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of one process and of its exited, reaped children; 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # fields[0] is field 3 (state) of proc(5): utime, stime, cutime, cstime are fields 14-17.
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def tree_cpu_snapshot(pid: int | None = None) -> dict[int, float]:
    """CPU seconds so far of ``pid`` (default: this process) and of every descendant (Ray's raylet,
    object store and workers included), by pid."""
    return {p: cpu_seconds(p) for p in process_tree(pid or os.getpid())}


def cpu_seconds_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the process tree used between two snapshots: what a pass cost in CPU, whatever
    else the machine was running (load from other users barely moves it, unlike wall time).
    NaN when a process of the tree ended in between (a Ray worker killed for memory, say):
    its last CPU seconds cannot be known, so the figure would be wrong."""
    if any(p not in after for p in before):
        return float("nan")
    return sum(t - before.get(p, 0.0) for p, t in after.items())


def gib(n_bytes: float) -> float:
    return n_bytes / 2**30


# --- timing ----------------------------------------------------------------------------------


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.seconds = float("nan")
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


# --- records ---------------------------------------------------------------------------------


@dataclass
class Table:
    """A plain aligned text table (printed) that also renders as Markdown (the results record)."""

    columns: list[str]
    rows: list[list[object]]

    def _cells(self) -> list[list[str]]:
        return [[_fmt(v) for v in row] for row in self.rows]

    def text(self) -> str:
        numeric = {i for i in range(len(self.columns))
                   if all(isinstance(r[i], (int, float)) or r[i] is None for r in self.rows)}
        return "\n".join(text_table(self.columns, self._cells(), numeric))

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "|".join("---" for _ in self.columns) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in self._cells()]
        return "\n".join(lines)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def record_date() -> str:
    """The date and minute a record is stamped with."""
    return _dt.datetime.now().strftime("%Y-%m-%d %H:%M")


def write_record(path: str | os.PathLike, title: str, tables: list[Table], notes: list[str]) -> None:
    """Append one Markdown record (command, machine, date, tables, notes) to ``path``."""
    parts = [
        f"### {title}",
        "",
        f"- command: `{command_line()}`",
        f"- machine: {machine_line()}",
        f"- date: {record_date()}",
        "",
    ]
    for table in tables:
        parts += [table.markdown(), ""]
    parts += [f"- {n}" for n in notes]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(parts).rstrip() + "\n\n")
