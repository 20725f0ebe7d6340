"""The Ray Data clip pipeline: Parquet index shards -> decode on CPU actors -> fixed-shape uint8 clips.

It streams: index rows are read, cut into blocks, and each block is decoded by a task only when
the consumer is ready for it, so decoded clips are never materialised. A training decode task
takes ``TRAIN_ROWS_PER_DECODE_TASK`` rows and hands each decoded batch on as soon as it is done:
Ray Data leaves a core idle ~0.2 s between one task and the next (its scheduling loop polls
every 0.1 s, then leases a worker), which costs 10% on a 2-s task of one TSN batch and 35% on
one I3D batch of 8, and ~3-5% on a 64-clip task (issue #7, docs/benchmarks.md). With
``shuffle`` all index rows (a few hundred bytes each) are permuted in one
task at every execution, i.e. every epoch: a global shuffle without Ray's all-to-all. A video that fails to decode
does not raise: its row comes out with ``valid=False`` and an all-zero clip, so every
consumer can count it (``skipped_videos``) and evaluation still sees each video exactly once.

Batch columns: ``clips`` uint8 ``(B, V, C, T, S, S)``, ``label`` int64, ``video_id`` str,
``valid`` bool.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from k400ray.data.allocator import keep_freed_memory
from k400ray.data.clip import ClipSpec, load_clip
from k400ray.data.decode import DecodeError
from k400ray.data.index import load_manifest, shard_paths

INDEX_COLUMNS = ["video_id", "path", "label", "num_frames", "width", "height", "decoder"]
# Clips one training decode task decodes (rounded up to whole batches): 3-5 s on one core.
TRAIN_ROWS_PER_DECODE_TASK = 64
# A Ray resource that nodes advertise for the cores they give to decoding (cluster.yaml). Decode
# tasks that hold it hold no ``CPU``, so they can never take the CPUs that a trial's placement
# group needs for its workers, e.g. while Ray Train restarts a failed worker group.
DECODE_RESOURCE = "decode_cpu"
# Largest evaluation batch, in bytes of decoded clips: an I3D accurate-mode video (10 clips x 3
# crops x 32 frames of 256 px) is 189 MB, so four of them made 755 MB blocks in the object store.
EVAL_BLOCK_BYTES = 256 * 2**20


def decode_task_resources(cluster_resources: dict, decode_cpus: float) -> dict:
    """Ray resources of one decode task: ``decode_cpu`` (and no CPU) where the cluster advertises
    it, otherwise ``decode_cpus`` CPUs, which the trial's ``decode_tasks`` should then cap."""
    if cluster_resources.get(DECODE_RESOURCE, 0) > 0:
        return {"num_cpus": 0, "resources": {DECODE_RESOURCE: decode_cpus}}
    return {"num_cpus": decode_cpus}


def eval_batch_videos(spec: ClipSpec, requested: int) -> int:
    """Videos per evaluation batch: ``requested``, fewer when their views exceed
    ``EVAL_BLOCK_BYTES`` (never under one)."""
    per_video = int(np.prod(spec.output_shape))
    return max(1, min(requested, EVAL_BLOCK_BYTES // per_video))


def rows_per_decode_task(batch_size: int, shuffle: bool) -> int:
    """Training: whole batches adding up to at least ``TRAIN_ROWS_PER_DECODE_TASK`` rows.
    Evaluation: one batch (few, heavy multi-view videos; small validation shards stay parallel)."""
    if not shuffle:
        return batch_size
    return batch_size * -(-TRAIN_ROWS_PER_DECODE_TASK // batch_size)


def setup_decode_process(keep_freed: bool = True) -> None:
    """What every decoding process does first (idempotent): one torch thread, since parallelism
    comes from many decode processes, and (``keep_freed``) freed memory kept for the next clip
    (``allocator.keep_freed_memory``: 15-30% less CPU per clip on the 2-core dev box)."""
    import torch

    torch.set_num_threads(1)
    if keep_freed:
        keep_freed_memory()


def decode_batch(batch: dict[str, np.ndarray], *, data_root: str, spec: ClipSpec) -> dict[str, np.ndarray]:
    """``map_batches`` body: index rows -> clips. Runs as plain Ray tasks, whose worker
    processes Ray reuses across tasks and epochs (actors would pay the torch import on every
    execution). Sampling draws from fresh OS entropy: every epoch sees new clips."""
    setup_decode_process()
    rng = np.random.default_rng()
    n = len(batch["path"])
    clips = np.empty((n, *spec.output_shape), dtype=np.uint8)  # every row is written below
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
            clips[i] = 0  # counted downstream through `valid`
    return {
            "clips": clips,
            "label": batch["label"].astype(np.int64),
            "video_id": np.asarray(batch["video_id"]).astype(str),
            "valid": valid,
        }


def permute_rows(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``map_batches`` body over the whole index block: its rows in a random order, drawn from
    fresh OS entropy so every execution (epoch) gets a new order."""
    order = np.random.default_rng().permutation(len(next(iter(batch.values()))))
    return {k: np.asarray(v)[order] for k, v in batch.items()}


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
    decode_rows: int | None = None,
    limit: int | None = None,
    shard: tuple[int, int] | None = None,
):
    """A streaming ``ray.data.Dataset`` of decoded clips for ``split`` of the index.

    ``data_root`` overrides the manifest's (the same index on another mount point);
    ``decode_tasks`` caps how many decode tasks run at once (None: as many as CPUs allow);
    ``decode_cpus`` is the logical CPUs (or ``decode_cpu`` resources, see
    ``decode_task_resources``) each decode task holds; ``decode_rows`` the index rows
    one decode task takes (default ``rows_per_decode_task``), output in blocks of
    ``batch_size``. ``shard=(rank, world)`` keeps
    rows ``i % world == rank`` of the (ordered) index: disjoint parts that together hold every
    video exactly once, which distributed evaluation needs (Ray's equal splits pad or drop).
    ``seed`` does not fix the row order: like clip sampling, it draws fresh entropy every
    epoch (a stateless decode task cannot know the epoch); it is kept for callers' symmetry.
    """
    import ray.data

    # Progress bars are drawn by the process that executes the dataset (a Train worker, a split
    # coordinator), where nobody sees them; redrawing them costs CPU on every block.
    ray.data.DataContext.get_current().enable_progress_bars = False
    manifest = load_manifest(index_dir)
    root = data_root or manifest["data_root"]
    files = shard_paths(index_dir, split)
    if shard is not None:
        import pyarrow.parquet as pq

        rank, world = shard
        table = pq.read_table(files, columns=INDEX_COLUMNS)
        if limit is not None:
            table = table.slice(0, limit)
        # int64 even when empty: a rank with no val video (fewer videos than workers) gets an
        # empty shard, and an untyped empty list has no take kernel.
        import pyarrow as pa

        table = table.take(pa.array(range(rank, table.num_rows, world), type=pa.int64()))
        ds = ray.data.from_arrow(table)
        limit = None
    else:
        # Ray 2.60's DataSourceV2 Parquet reader starts fresh footer-reader actors at every
        # execution (every epoch): ~10 s of process start-up on a 2-core node, vs 0.3 s for the
        # classic reader. The index is a few files of small rows: the classic reader suffices.
        ray.data.DataContext.get_current().use_datasource_v2 = False
        # Training reads the whole index in ONE task and permutes its rows there (fresh entropy
        # at every execution, i.e. every epoch): a global shuffle of index rows (240k rows are a
        # few MiB) with no all-to-all. Ray's `repartition(shuffle=True)` is a barrier of map and
        # reduce tasks before the first decode: measured 9-16 s per 256-clip pass and 43 s per
        # 240k-row epoch on 2 cores, vs 1-4 s and ~1 s this way (issue #7, docs/benchmarks.md).
        # Evaluation keeps one block per shard file and the index order.
        ds = ray.data.read_parquet(files, override_num_blocks=1 if shuffle else len(files)).select_columns(INDEX_COLUMNS)
    if limit is not None:
        ds = ds.limit(limit)
    if shuffle:
        ds = ds.map_batches(permute_rows, batch_size=None, batch_format="numpy")
    # Blocks of index rows (cheap, streamed out of the one big block), one per decode task.
    rows = decode_rows or rows_per_decode_task(batch_size, shuffle)
    ds = ds.repartition(target_num_rows_per_block=rows)
    # Each decoded batch leaves its task as a block of its own, at once (Ray Data otherwise
    # gathers a task's output up to 128 MiB, holding the first batch back until several are done).
    # 0.75 of a batch's bytes: one batch exceeds it, so it is emitted; Ray slices only blocks of
    # 1.5x the target or more, so a batch is never split. The setting is this dataset's own copy
    # of the DataContext.
    ds.context.target_max_block_size = max(1, int(0.75 * batch_size * int(np.prod(spec.output_shape))))
    return ds.map_batches(
        decode_batch,
        fn_kwargs={"data_root": root, "spec": spec},
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.TaskPoolStrategy(size=decode_tasks),
        **decode_task_resources(ray.cluster_resources(), decode_cpus),
    )


def count_videos(index_dir: str | Path, split: str) -> int:
    return int(load_manifest(index_dir)["splits"][split]["videos"])
