"""Benchmark inputs: a generated Kinetics-like video set, and an index of exactly N rows.

Generated videos come from :mod:`k400ray.data.synth` at Kinetics' shape (10 s, 340x256, 30 fps,
H.264 yuv420p) and are cached under the work folder keyed by their parameters, since rendering
takes seconds per video. x264 ``medium`` is used rather than synth's default ``ultrafast``: it
turns on CABAC, B-frames and the deblocking filter, as in the YouTube-derived Kinetics files,
and decoding those costs about 1.5x more per frame. The synthetic pictures are simpler than real
ones, so files are smaller (~20 KB vs ~0.5 MB per 10 s) and entropy decoding a bit cheaper.

A measured pass must be long compared with Ray Data's fixed cost per execution (scheduling the
index read and the shuffle, a few tenths of a second) or the comparison measures start-up, not
throughput; on a real 240k-video epoch that cost is nothing. So every method reads an index of
exactly ``rows`` rows, the source rows cycled (a video may appear several times under distinct
``video_id``s), written with the real index schema so that ``clip_dataset`` reads it unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from k400ray.data.index import INDEX_SCHEMA, MANIFEST, load_manifest, shard_paths

BENCH_SPLIT = "bench"


def default_work_dir() -> Path:
    return Path(tempfile.gettempdir()) / "k400ray-bench"


def generated_index(
    work_dir: str | Path,
    *,
    videos: int,
    seconds: float = 10.0,
    fps: int = 30,
    size: tuple[int, int] = (340, 256),
    x264_preset: str = "medium",
) -> Path:
    """Index of ``videos`` generated videos (made and indexed once, reused while the parameters
    match). Indexing runs Ray tasks: call ``init_ray`` first."""
    from k400ray.data.index import build_index
    from k400ray.data.synth import generate_synthetic

    frames = max(2, round(seconds * fps))
    key = f"videos{videos}-{frames}f-{fps}fps-{size[0]}x{size[1]}-{x264_preset}"
    base = Path(work_dir) / key
    index_dir = base / "index"
    if (index_dir / MANIFEST).is_file():
        return index_dir
    # Two classes of time-reversed twins: content does not matter here, only size and codec.
    generate_synthetic(
        base / "data", num_classes=2, videos_per_class=(math.ceil(videos / 2), 0), frames=frames, fps=fps,
        size=size, preset=x264_preset, overwrite=True,
    )
    build_index(base / "data", index_dir, progress=False)
    return index_dir


def index_rows(index_dir: str | Path, split: str) -> list[dict]:
    """Every row of ``split`` as dicts, in index order."""
    return pa.concat_tables([pq.read_table(p) for p in shard_paths(index_dir, split)]).to_pylist()


def sized_index(index_dir: str | Path, split: str, rows: int, work_dir: str | Path) -> Path:
    """An index whose split ``bench`` holds exactly ``rows`` rows: the rows of ``split`` cycled
    (or cut), each copy with its own ``video_id``. Same data root, same schema."""
    source = index_rows(index_dir, split)
    if not source:
        raise ValueError(f"{index_dir}: split {split!r} has no rows")
    manifest = load_manifest(index_dir)
    stamp = (Path(index_dir) / MANIFEST).stat().st_mtime_ns  # a rebuilt source index gets a new copy
    digest = hashlib.sha1(f"{Path(index_dir).resolve()}|{stamp}|{split}|{rows}".encode()).hexdigest()[:12]
    out = Path(work_dir) / f"sized-{digest}"
    if (out / MANIFEST).is_file():
        return out
    picked = []
    for i in range(rows):
        row = dict(source[i % len(source)])
        row["video_id"] = f"{row['video_id']}~{i // len(source)}"
        row["split"] = BENCH_SPLIT
        picked.append(row)
    (out / BENCH_SPLIT).mkdir(parents=True, exist_ok=True)
    rel = f"{BENCH_SPLIT}/part-00000.parquet"
    pq.write_table(pa.Table.from_pylist(picked, schema=INDEX_SCHEMA), out / rel)
    sized = {
        **{k: v for k, v in manifest.items() if k not in ("splits", "excluded")},
        "splits": {BENCH_SPLIT: {"videos": rows, "shards": [rel], "missing": 0, "corrupt": 0, "rejected": 0}},
        "excluded": [],
        "bench_source": {"index": str(Path(index_dir).resolve()), "split": split, "distinct_videos": len(source)},
    }
    (out / MANIFEST).write_text(json.dumps(sized, indent=2) + "\n", encoding="utf-8")
    return out


def replicated_tree(index_dir: str | Path, split: str, files: int, work_dir: str | Path) -> Path:
    """A ``{split}/{class}/`` tree of ``files`` hard links to the videos of ``split`` (cycled), for
    timing the indexer on more files than were generated: ``build_index`` probes 16 videos per
    task, so it needs several times 16 x cores files to use every core."""
    rows = index_rows(index_dir, split)
    root = Path(load_manifest(index_dir)["data_root"])
    stamp = (Path(index_dir) / MANIFEST).stat().st_mtime_ns
    digest = hashlib.sha1(f"{Path(index_dir).resolve()}|{stamp}|{split}|{files}".encode()).hexdigest()[:12]
    out = Path(work_dir) / f"tree-{digest}"
    done = out / ".complete"
    if done.is_file():
        return out
    shutil.rmtree(out, ignore_errors=True)
    for i in range(files):
        row = rows[i % len(rows)]
        src = root / row["path"]
        dst = out / split / row["label_name"] / f"{Path(row['path']).stem}-{i // len(rows)}{src.suffix}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:  # another file system: a copy does the same job
            shutil.copy(src, dst)
    done.write_text("")
    return out
