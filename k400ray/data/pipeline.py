"""The Ray Data clip pipeline: Parquet index shards -> decode on CPU actors -> fixed-shape uint8 clips.

It streams: index rows are read shard by shard and each row is decoded only when the
consumer is ready for it, so the dataset is never materialised. The shard order is reshuffled
at every execution (every epoch) by Ray Data's file shuffle. A video that fails to decode
does not raise: its row comes out with ``valid=False`` and an all-zero clip, so every
consumer can count it (``skipped_videos``) and evaluation still sees each video exactly once.

Batch columns: ``clips`` uint8 ``(B, V, C, T, S, S)``, ``label`` int64, ``video_id`` str,
``valid`` bool.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from k400ray.data.clip import ClipSpec, load_clip
from k400ray.data.decode import DecodeError
from k400ray.data.index import load_manifest, shard_paths

INDEX_COLUMNS = ["video_id", "path", "label", "num_frames", "width", "height", "decoder"]


def decode_batch(batch: dict[str, np.ndarray], *, data_root: str, spec: ClipSpec) -> dict[str, np.ndarray]:
    """``map_batches`` body: index rows -> clips. Runs as plain Ray tasks, whose worker
    processes Ray reuses across tasks and epochs (actors would pay the torch import on every
    execution). Sampling draws from fresh OS entropy: every epoch sees new clips."""
    rng = np.random.default_rng()
    n = len(batch["path"])
    clips = np.zeros((n, *spec.output_shape), dtype=np.uint8)
    valid = np.zeros(n, dtype=bool)
    for i in range(n):
        try:
            clips[i] = load_clip(
                os.path.join(data_root, str(batch["path"][i])),
                num_frames=int(batch["num_frames"][i]), width=int(batch["width"][i]),
                height=int(batch["height"][i]), spec=spec, rng=rng,
                decoder="pyav" if batch["decoder"][i] == "pyav" else "auto",
            )
            valid[i] = True
        except DecodeError:
            pass  # counted downstream through `valid`
    return {
            "clips": clips,
            "label": batch["label"].astype(np.int64),
            "video_id": np.asarray(batch["video_id"]).astype(str),
            "valid": valid,
        }


def clip_dataset(
    index_dir: str | Path,
    split: str,
    spec: ClipSpec,
    *,
    data_root: str | None = None,
    shuffle: bool = False,
    seed: int | None = None,
    decode_tasks: int | None = None,
    decode_cpus: float = 1.0,
    batch_size: int = 8,
    limit: int | None = None,
):
    """A streaming ``ray.data.Dataset`` of decoded clips for ``split`` of the index.

    ``data_root`` overrides the manifest's (the same index on another mount point);
    ``decode_tasks`` caps how many decode tasks run at once (None: as many as CPUs allow);
    ``decode_cpus`` is the logical CPUs each decode task holds.
    """
    import ray.data
    from ray.data.datasource.file_based_datasource import FileShuffleConfig

    manifest = load_manifest(index_dir)
    root = data_root or manifest["data_root"]
    files = shard_paths(index_dir, split)
    ds = ray.data.read_parquet(
        files, shuffle=FileShuffleConfig(seed=seed, reseed_after_execution=True) if shuffle else None,
    ).select_columns(INDEX_COLUMNS)
    if shuffle:
        ds = ds.randomize_block_order()
    if limit is not None:
        ds = ds.limit(limit)
    return ds.map_batches(
        decode_batch,
        fn_kwargs={"data_root": root, "spec": spec},
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=decode_tasks,
        num_cpus=decode_cpus,
    )


def count_videos(index_dir: str | Path, split: str) -> int:
    return int(load_manifest(index_dir)["splits"][split]["videos"])
