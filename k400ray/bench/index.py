"""``k400ray bench index``: how fast videos are probed, and how much memory indexing 240k rows takes.

- **Probe rate**: ``probe_video`` in a tight loop, one spawned process per core, on small chunks
  of the videos (the limit), next to ``build_index`` on the same folder (Ray tasks, the real
  command). Reported per core, since indexing scales with cores: on a cluster, videos / (rate
  per core x cores) is the indexing time.
- **Memory at Kinetics scale**: the real ``build_index`` (discovery list, shard plan, Ray task
  window, shard writer, manifest) on ``rows`` synthetic rows. Creating 240k files only to have
  them listed would measure the file system, so discovery returns synthetic entries and the
  probe task returns a fixed Kinetics-like result: everything else is the code that runs on
  real data. Peak PSS of the driver (and of the whole process tree, Ray's workers included)
  is sampled while it runs.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from k400ray.bench.common import PeakMemory, Stopwatch, Table, gib, median

K400_TRAIN_VIDEOS = 240_000  # ~ the Kinetics-400 train split
K400_CLASSES = 400


def _probe_share(paths: list[str]) -> int:
    from k400ray.data.probe import ProbeError, probe_video

    ok = 0
    for p in paths:
        try:
            probe_video(p)
            ok += 1
        except ProbeError:
            pass
    return ok


def probe_limit(paths: list[str], processes: int, repeats: int) -> list[float]:
    """Seconds per pass of P spawned processes probing the files in small chunks (after one
    warm-up pass); chunks, not equal shares, for the reason given in ``bench.data.DecodeLimit``."""
    seconds = []
    size = max(1, len(paths) // (8 * processes))
    chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
    with mp.get_context("spawn").Pool(processes) as pool:
        sum(pool.imap_unordered(_probe_share, chunks))  # warm-up: imports, page cache
        for _ in range(repeats):
            with Stopwatch() as sw:
                sum(pool.imap_unordered(_probe_share, chunks))
            seconds.append(sw.seconds)
    return seconds


def ray_index_seconds(data_root: Path, repeats: int, work_dir: Path) -> list[float]:
    """Seconds per ``build_index`` of ``data_root`` (after one warm-up run); Ray must be up."""
    from k400ray.data.index import build_index

    out = work_dir / "probe-index"
    build_index(data_root, out, progress=False)
    seconds = []
    for _ in range(repeats):
        with Stopwatch() as sw:
            build_index(data_root, out, progress=False)
        seconds.append(sw.seconds)
    return seconds


# --- memory at scale -------------------------------------------------------------------------


def _kinetics_like_probe(root: str, paths: list[str]) -> list[dict]:
    """Stands in for ``index._probe_chunk``: a 10 s 340x256 30 fps clip for every path."""
    return [
        {"num_frames": 300, "header_frames": 300, "fps": 30.0, "width": 340, "height": 256, "duration_s": 10.0,
         "bytes": 600_000 + i, "decoder": "decord"}
        for i, _ in enumerate(paths)
    ]


def synthetic_discovery(rows: int, classes: int = K400_CLASSES):
    """A csv-layout discovery of ``rows`` train videos over ``classes`` labels, K400-like names."""
    from k400ray.data.annotations import Discovery, VideoEntry

    names = [f"synthetic action {c:03d}" for c in range(classes)]
    entries = []
    for i in range(rows):
        vid = f"{i:011d}_{i % 600:06d}_{i % 600 + 10:06d}"
        entries.append(VideoEntry("train", f"train/{vid}.mp4", names[i % classes], vid))
    entries.sort(key=lambda e: e.path)
    return Discovery(layout="csv", entries=entries, classes=names, excluded=[])


@dataclass
class IndexMemory:
    rows: int
    seconds: float
    baseline_gib: float
    peak_driver_gib: float
    peak_tree_gib: float
    shards: int
    index_mib: float


def index_memory(rows: int, work_dir: Path) -> IndexMemory:
    """Run the real ``build_index`` on ``rows`` synthetic rows and sample its memory; Ray must be up."""
    from k400ray.data import index as index_module

    out = work_dir / f"memory-index-{rows}"
    with tempfile.TemporaryDirectory(dir=work_dir) as empty_root:
        with PeakMemory(interval=0.1) as mem, Stopwatch() as sw:
            manifest = index_module.build_index(empty_root, out, progress=False,
                                                discovery=lambda root, layout: synthetic_discovery(rows),
                                                probe_chunk=_kinetics_like_probe)
    shards = sum(len(s["shards"]) for s in manifest["splits"].values())
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return IndexMemory(rows=rows, seconds=sw.seconds, baseline_gib=gib(mem.start_own), peak_driver_gib=gib(mem.own),
                       peak_tree_gib=gib(mem.tree), shards=shards, index_mib=size / 2**20)


@dataclass
class IndexBench:
    videos: int
    processes: int
    limit_seconds: list[float]
    ray_seconds: list[float]
    memory: IndexMemory | None

    @property
    def limit_rate(self) -> float:
        return median([self.videos / s for s in self.limit_seconds])

    @property
    def ray_rate(self) -> float:
        return median([self.videos / s for s in self.ray_seconds])

    def table(self) -> Table:
        rows = [
            ["probe limit (processes)", self.videos, self.processes, round(self.limit_rate, 2),
             round(self.limit_rate / self.processes, 2), 1.0],
            ["k400ray index (ray tasks)", self.videos, self.processes, round(self.ray_rate, 2),
             round(self.ray_rate / self.processes, 2), round(self.ray_rate / self.limit_rate, 3)],
        ]
        return Table(["method", "videos", "cores", "videos/s", "videos/s per core", "x limit"], rows)

    def memory_table(self) -> Table | None:
        m = self.memory
        if m is None:
            return None
        return Table(
            ["rows", "shards", "index MiB", "seconds", "driver before GiB", "driver peak GiB", "tree peak GiB"],
            [[m.rows, m.shards, round(m.index_mib, 2), round(m.seconds, 1), round(m.baseline_gib, 3),
              round(m.peak_driver_gib, 3), round(m.peak_tree_gib, 2)]],
        )


def run_index_bench(
    data_root: Path, *, processes: int | None = None, repeats: int = 3, rows: int = K400_TRAIN_VIDEOS, work_dir: Path,
    log=print,
) -> IndexBench:
    """Probe rate on the videos under ``data_root`` (indexed layout) and, with ``rows`` > 0, the
    memory of a ``rows``-row index build. Ray must be initialised."""
    from k400ray.data.annotations import discover

    processes = processes or os.cpu_count() or 1
    paths = [str(data_root / e.path) for e in discover(data_root).entries]
    if not paths:
        raise ValueError(f"{data_root}: no videos found")
    work_dir.mkdir(parents=True, exist_ok=True)
    limit = probe_limit(paths, processes, repeats)
    log(f"  probe limit: {median([len(paths) / s for s in limit]):.1f} videos/s")
    ray_s = ray_index_seconds(data_root, repeats, work_dir)
    log(f"  k400ray index: {median([len(paths) / s for s in ray_s]):.1f} videos/s")
    memory = index_memory(rows, work_dir) if rows > 0 else None
    if memory:
        log(f"  {rows} rows indexed in {memory.seconds:.1f} s")
    return IndexBench(videos=len(paths), processes=processes, limit_seconds=limit, ray_seconds=ray_s, memory=memory)
