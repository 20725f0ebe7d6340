"""Build the pre-sharded Parquet clip index that training streams.

Every video is probed (frames that really decode, fps, size, decoder) in parallel Ray tasks,
so the same command indexes a laptop folder or 240k videos on a cluster. Rows are written in
a fixed order (split, path), shard by shard as results arrive, so memory stays flat and the
same input always gives the same index. The index is built in a temporary folder next to
``out_dir`` and swapped in at the end: an interrupted run never leaves half an index.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from k400ray.data.annotations import Discovery, VideoEntry, class_index, discover
from k400ray.runtime import busy_cpus

INDEX_SCHEMA = pa.schema([
    ("video_id", pa.string()),
    ("path", pa.string()),  # relative to the manifest's data_root
    ("label", pa.int32()),
    ("label_name", pa.string()),
    ("split", pa.string()),
    ("num_frames", pa.int32()),  # frames that decode, not the container header's guess
    ("header_frames", pa.int32()),
    ("fps", pa.float32()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("duration_s", pa.float32()),
    ("bytes", pa.int64()),
    ("decoder", pa.string()),
])
DEFAULT_ROWS_PER_SHARD = 2000
MANIFEST = "manifest.json"


def _probe_chunk(root: str, paths: list[str]) -> list[dict | str]:
    """Ray task body: probe results, or the reason a file is unusable."""
    from k400ray.data.probe import ProbeError, probe_video

    out: list[dict | str] = []
    for rel in paths:
        try:
            out.append(probe_video(os.path.join(root, rel)).as_dict())
        except ProbeError as exc:
            out.append(str(exc))
        except Exception as exc:  # never let one file kill the index
            out.append(f"probe failed: {type(exc).__name__}: {exc}")
    return out


def _shard_plan(entries: list[VideoEntry], shards: int | None, rows_per_shard: int) -> list[tuple[str, int]]:
    """(split, shard number) for each entry: contiguous, equal-sized runs per split."""
    per_split: dict[str, int] = defaultdict(int)
    for e in entries:
        per_split[e.split] += 1
    counts = {s: (shards or max(1, math.ceil(n / rows_per_shard))) for s, n in per_split.items()}
    seen: dict[str, int] = defaultdict(int)
    plan = []
    for e in entries:
        n, k = per_split[e.split], counts[e.split]
        plan.append((e.split, min(k - 1, seen[e.split] * k // n)))
        seen[e.split] += 1
    return plan


class _ShardWriter:
    """Collects rows for one (split, shard) at a time and writes it when the next one starts."""

    def __init__(self, out: Path) -> None:
        self.out, self.key, self.rows = out, None, []
        self.files: dict[str, list[str]] = defaultdict(list)
        self.videos: dict[str, int] = defaultdict(int)

    def add(self, key: tuple[str, int], row: dict | None) -> None:
        if key != self.key:
            self.flush()
            self.key = key
        if row is not None:
            self.rows.append(row)

    def flush(self) -> None:
        if self.key is None or not self.rows:
            self.rows = []
            return
        split, shard = self.key
        rel = f"{split}/part-{shard:05d}.parquet"
        (self.out / split).mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(self.rows, schema=INDEX_SCHEMA)
        pq.write_table(table, self.out / rel, compression="zstd")
        self.files[split].append(rel)
        self.videos[split] += len(self.rows)
        self.rows = []


def _progress(done: int, total: int, start: float, stream=sys.stderr) -> None:
    rate = done / max(time.perf_counter() - start, 1e-9)
    end = "\n" if done == total else ""
    stream.write(f"\rindexing: {done}/{total} videos, {rate:.1f} videos/s{end}")
    stream.flush()


def build_index(
    data_root: str | Path,
    out_dir: str | Path,
    *,
    layout: str = "auto",
    shards: int | None = None,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
    chunk_size: int = 16,
    progress: bool | Callable[[int, int], None] = True,
    discovery: Callable[[Path, str], Discovery] | None = None,
    probe_chunk: Callable[[str, list[str]], list] | None = None,
) -> dict:
    """Index ``data_root`` into ``out_dir`` and return the manifest. Needs Ray (``init_ray``) first.
    ``progress``: ``True`` writes a ``\\r`` line to stderr; a callable gets ``(done, total)`` videos
    (the CLI's progress bar); ``False``: silent. ``discovery`` (default :func:`discover`) and
    ``probe_chunk`` (default: decode each video, run as a Ray task) are parameters so that the
    index benchmark can feed a million made-up rows through the real sharding and writing."""
    report = progress if callable(progress) else (
        (lambda done, total: _progress(done, total, start)) if progress else None)
    import ray

    root = Path(data_root).resolve()
    out_dir = Path(out_dir)
    if out_dir.exists() and not (out_dir / MANIFEST).is_file() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir}: exists, is not empty and holds no {MANIFEST}; refusing to replace it")
    found: Discovery = (discovery or discover)(root, layout)  # raises AnnotationError on unusable annotations
    labels = class_index(found.classes)
    entries = found.entries
    plan = _shard_plan(entries, shards, rows_per_shard)

    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    writer = _ShardWriter(tmp)
    excluded = list(found.excluded)
    probe = ray.remote(num_cpus=1, max_retries=2)(probe_chunk or _probe_chunk)
    chunks = [list(range(i, min(i + chunk_size, len(entries)))) for i in range(0, len(entries), chunk_size)]
    # Chunks in flight: as many as CPUs can be kept busy (runtime.busy_cpus); more would only
    # start more processes, each importing PyAV and decord (2 s of CPU on the 2-core dev box).
    window = max(2, busy_cpus())
    pending: dict[int, ray.ObjectRef] = {}
    ready: dict[int, list] = {}
    submitted = consumed = done = 0
    start = time.perf_counter()
    try:
        while consumed < len(chunks):
            while submitted < len(chunks) and len(pending) + len(ready) < window:
                pending[submitted] = probe.remote(str(root), [entries[i].path for i in chunks[submitted]])
                submitted += 1
            finished, _ = ray.wait(list(pending.values()), num_returns=1)
            for chunk_id in [c for c, ref in pending.items() if ref in finished]:
                ready[chunk_id] = ray.get(pending.pop(chunk_id))
                done += len(chunks[chunk_id])
            if report is not None:
                report(done, len(entries))
            while consumed in ready:  # write strictly in entry order
                for i, result in zip(chunks[consumed], ready.pop(consumed)):
                    entry = entries[i]
                    if isinstance(result, str):
                        excluded.append({"split": entry.split, "path": entry.path, "reason": result})
                        writer.add(plan[i], None)
                    else:
                        row = {"video_id": entry.video_id, "path": entry.path, "label": labels[entry.label_name],
                               "label_name": entry.label_name, "split": entry.split, **result}
                        writer.add(plan[i], row)
                consumed += 1
        writer.flush()
        manifest = _manifest(root, found, writer, excluded, rows_per_shard)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if progress is True and not entries:
        sys.stderr.write("indexing: no videos found\n")
    return manifest


def _manifest(root: Path, found: Discovery, writer: _ShardWriter, excluded: list[dict], rows_per_shard: int) -> dict:
    splits = {}
    for split in sorted({e.split for e in found.entries} | {x["split"] for x in excluded}):
        mine = [x for x in excluded if x["split"] == split]
        missing = sum(x["reason"] == "missing file" for x in mine)
        rejected = sum(x["reason"].startswith(("duplicate", "label ", "path escapes", "malformed", "bad ")) for x in mine)
        splits[split] = {
            "videos": writer.videos.get(split, 0),
            "shards": writer.files.get(split, []),
            "missing": missing,
            "corrupt": len(mine) - missing - rejected,
            "rejected": rejected,
        }
    return {
        "format_version": 1,
        "data_root": str(root),
        "layout": found.layout,
        "rows_per_shard": rows_per_shard,
        "classes": found.classes,
        "num_classes": len(found.classes),
        "splits": splits,
        "excluded": sorted(excluded, key=lambda x: (x["split"], x["path"])),
    }


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by the finished ``tmp`` with renames, keeping the old index until the new one is whole."""
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def load_manifest(index_dir: str | Path) -> dict:
    path = Path(index_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no index here (run `k400ray index DATA_ROOT --out {index_dir}`)")
    return json.loads(path.read_text(encoding="utf-8"))


def shard_paths(index_dir: str | Path, split: str) -> list[str]:
    manifest = load_manifest(index_dir)
    if split not in manifest["splits"] or not manifest["splits"][split]["shards"]:
        raise ValueError(f"{Path(index_dir) / MANIFEST}: split {split!r} has no indexed videos")
    return [str(Path(index_dir) / rel) for rel in manifest["splits"][split]["shards"]]
