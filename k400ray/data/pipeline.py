"""The Ray Data clip pipeline: Parquet index shards -> decode on CPU actors -> fixed-shape uint8 clips.

It streams: index rows are read, cut into blocks, and each block is decoded by a task only when
the consumer is ready for it, so decoded clips are never materialised. A training decode task
takes ``TRAIN_ROWS_PER_DECODE_TASK`` rows and hands each decoded batch on as soon as it is done:
Ray Data leaves a core idle between one task and the next (its scheduling loop polls, then
leases a worker), a gap short tasks pay most for (docs/benchmarks.md has the figures). A training
worker builds its epoch's dataset itself, from the seed and the epoch: a global permutation of
the index rows (a few hundred bytes each) of which it takes its share (``clip_dataset``). A video that fails to decode
does not raise: its row comes out with ``valid=False`` and an all-zero clip, so every
consumer can count it (``skipped_videos``) and evaluation still sees each video exactly once.

Where a node holds a staged copy of the data (``k400ray stage``, the spec's ``data.local_cache``),
its decode tasks read the videos from that copy; a row whose local file is missing or of another
size than the index recorded is read from the shared root instead (``data.stage``).

Batch columns: ``clips`` uint8 ``(B, V, C, T, S, S)``, ``label`` int64, ``video_id`` str,
``valid`` bool, ``local`` bool (the video was read from the node's staged copy).
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from k400ray.data.allocator import keep_freed_memory
from k400ray.data.clip import ClipSpec, load_clip
from k400ray.data.decode import CPU, DecodeError
# The index's and the staged copy's modules read Parquet (pyarrow): imported where they are used,
# so that ``decode_row`` runs where only torch is installed (a GPU node's ``bench decode``).

INDEX_COLUMNS = ["video_id", "path", "label", "num_frames", "width", "height", "decoder", "bytes"]
# The columns a row's decode reads (``decode_row``).
_DECODE_COLUMNS = ("path", "num_frames", "width", "height", "decoder")
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


def video_rng(seed: int, epoch: int, video_id: str) -> np.random.Generator:
    """The random draws of one video in one epoch of one seed (frame offsets, crop, flip,
    RandAugment): keyed by what the draw is about, not by which process or task makes it, so
    they are the same for any number of decode tasks or Train workers, and after a resume."""
    key = int.from_bytes(hashlib.blake2b(str(video_id).encode(), digest_size=8).digest(), "little")
    return np.random.default_rng([seed, epoch, key])


def decode_row(row: Mapping, data_root: str, spec: ClipSpec, rng: np.random.Generator,
               backend: str = CPU) -> np.ndarray | None:
    """One index row (``path``, ``num_frames``, ``width``, ``height``, ``decoder``) -> its clip,
    uint8 ``spec.output_shape``, or None when the file does not decode. The one decode of a row:
    ``decode_batch`` runs it on every row of a block, ``bench data`` on rows of its own.
    ``backend``: where its frames are decoded (``decode.read_frames``)."""
    try:
        return load_clip(
            os.path.join(data_root, str(row["path"])), num_frames=int(row["num_frames"]), width=int(row["width"]),
            height=int(row["height"]), spec=spec, rng=rng, decoder="pyav" if row["decoder"] == "pyav" else "auto",
            backend=backend,
        )
    except DecodeError:
        return None


def _local_copy_holds(local_root: str | None, rel: str, size) -> bool:
    """The node's staged copy has this row's video, whole (the size the index recorded)."""
    if local_root is None:
        return False
    try:
        return os.stat(os.path.join(local_root, rel)).st_size == int(size)
    except (OSError, TypeError, ValueError):
        return False


def decode_batch(batch: dict[str, np.ndarray], *, data_root: str, spec: ClipSpec, seed: int | None = None,
                 epoch: int = 0, local_cache: str | None = None, decode_backend: str = CPU) -> dict[str, np.ndarray]:
    """``map_batches`` body: index rows -> clips. Runs as plain Ray tasks, whose worker
    processes Ray reuses across tasks and epochs (actors would pay the torch import on every
    execution). With a ``seed`` every video's draws come from ``video_rng(seed, epoch, id)``;
    without one (benchmarks) from fresh OS entropy. ``local_cache``: the spec's
    ``data.local_cache``, resolved on the node this task runs on (``data.stage``);
    ``decode_backend``: ``nvdec`` decodes on the node's GPU where this task sees one (Ray leaves
    a GPU node's devices visible to tasks that hold none) and on the CPU elsewhere."""
    setup_decode_process()
    fresh = np.random.default_rng() if seed is None else None
    from k400ray.data.stage import staged_data_root

    local_root = staged_data_root(local_cache, data_root)
    n = len(batch["path"])
    clips = np.empty((n, *spec.output_shape), dtype=np.uint8)  # every row is written below
    valid = np.zeros(n, dtype=bool)
    local = np.zeros(n, dtype=bool)
    sizes = batch["bytes"] if "bytes" in batch else [None] * n
    for i in range(n):
        rng = fresh if seed is None else video_rng(seed, epoch, batch["video_id"][i])
        local[i] = _local_copy_holds(local_root, str(batch["path"][i]), sizes[i])
        root = local_root if local[i] else data_root
        clip = decode_row({c: batch[c][i] for c in _DECODE_COLUMNS}, root, spec, rng, backend=decode_backend)
        if clip is None:
            clips[i] = 0  # counted downstream through `valid`
        else:
            clips[i], valid[i] = clip, True
    return {
            "clips": clips,
            "label": batch["label"].astype(np.int64),
            "video_id": np.asarray(batch["video_id"]).astype(str),
            "valid": valid,
            "local": local,
        }


class LocalReads:
    """How many of the rows that pass through ``count`` were read from a node's staged copy
    (``local``), of all rows: what a trial reports as ``local_read_fraction``."""

    def __init__(self) -> None:
        self.local = 0
        self.rows = 0

    def count(self, batches):
        for batch in batches:
            local = np.asarray(batch["local"], dtype=bool) if "local" in batch else np.zeros(0, dtype=bool)
            self.local += int(local.sum())
            self.rows += len(batch["valid"])
            yield batch


def permute_rows(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``map_batches`` body over the whole index block: its rows in a random order, drawn from
    fresh OS entropy so every execution (epoch) gets a new order (unseeded benchmarks only)."""
    order = np.random.default_rng().permutation(len(next(iter(batch.values()))))
    return {k: np.asarray(v)[order] for k, v in batch.items()}


def epoch_order(num_rows: int, *, seed: int, epoch: int) -> np.ndarray:
    """The training order of an epoch: one permutation of the index rows per (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(num_rows)


def index_table(index_dir: str | Path, split: str, *, limit: int | None = None):
    """The split's index rows (the columns decoding needs), read once per process and index
    version: a training worker reads it every epoch."""
    from k400ray.data.index import shard_paths

    files = tuple((str(f), os.stat(f).st_mtime_ns) for f in shard_paths(index_dir, split))
    table = _read_index(files)
    return table if limit is None else table.slice(0, limit)


@functools.lru_cache(maxsize=8)
def _read_index(files: tuple[tuple[str, int], ...]):
    import pyarrow.parquet as pq

    return pq.read_table([f for f, _ in files], columns=INDEX_COLUMNS)


def rank_rows(table, *, rank: int, world: int, order: np.ndarray | None = None, equal: bool = False):
    """Rows ``order[rank::world]`` of ``table`` (``order`` default: the index order): disjoint parts
    that together hold every row once. ``equal`` keeps ``len // world`` rows on every rank (the
    remainder is left out of that epoch), so DDP ranks take equally many steps."""
    import pyarrow as pa

    order = np.arange(table.num_rows) if order is None else order
    mine = order[rank::world]
    if equal:
        mine = mine[: table.num_rows // world]
    # int64 even when empty: a rank with no row (fewer videos than workers) gets an empty
    # table, and an untyped empty list has no take kernel.
    return table.take(pa.array(mine, type=pa.int64()))


def clip_dataset(
    index_dir: str | Path,
    split: str,
    spec: ClipSpec,
    *,
    data_root: str | None = None,
    shuffle: bool = False,
    seed: int | None = None,
    epoch: int | None = None,
    decode_tasks: int | None = None,
    decode_cpus: float = 1.0,
    batch_size: int = 8,
    decode_rows: int | None = None,
    limit: int | None = None,
    shard: tuple[int, int] | None = None,
    local_cache: str | None = None,
    decode_backend: str = CPU,
):
    """A streaming ``ray.data.Dataset`` of decoded clips for ``split`` of the index.

    Three uses:

    - **training** (``seed`` and ``epoch`` given): the epoch's order is ``epoch_order(seed,
      epoch)`` over all index rows, this worker takes ``shard=(rank, world)`` of it (equal
      shares), and every video's draws come from ``video_rng(seed, epoch, video)``: the same
      seed gives the same videos in the same order with the same frames and crops, for any number
      of decode tasks and workers, and after a resume;
    - **evaluation** (``shard`` only): rows ``i % world == rank`` of the index, in its order:
      disjoint parts that hold every video exactly once (Ray's equal splits pad or drop);
    - **unseeded streaming** (neither): the index streamed from its Parquet shards, permuted in
      one task with fresh entropy at every execution when ``shuffle`` (benchmarks, ``k400ray eval``).

    ``data_root`` overrides the manifest's (the same index on another mount point);
    ``decode_tasks`` caps how many decode tasks run at once (None: as many as CPUs allow);
    ``decode_cpus`` is the logical CPUs (or ``decode_cpu`` resources, see
    ``decode_task_resources``) each decode task holds; ``decode_rows`` the index rows
    one decode task takes (default ``rows_per_decode_task``), output in blocks of ``batch_size``;
    ``local_cache`` the node-local staged copy (``data.stage``): the index is read from this
    node's copy when it has one, the videos from each decode task's node's copy;
    ``decode_backend`` where each decode task decodes (``decode_batch``).
    """
    import ray.data

    from k400ray.data.index import load_manifest, shard_paths
    from k400ray.data.stage import staged_index

    # Progress bars are drawn by the process that executes the dataset (a Train worker),
    # where nobody sees them; redrawing them costs CPU on every block.
    ray.data.DataContext.get_current().enable_progress_bars = False
    index_dir = staged_index(local_cache, str(index_dir)) or index_dir
    manifest = load_manifest(index_dir)
    root = data_root or manifest["data_root"]
    seeded = seed is not None and epoch is not None
    if seeded or shard is not None:
        rank, world = shard or (0, 1)
        table = index_table(index_dir, split, limit=limit)
        order = epoch_order(table.num_rows, seed=seed, epoch=epoch) if seeded else None
        ds = ray.data.from_arrow(rank_rows(table, rank=rank, world=world, order=order, equal=seeded))
    else:
        # Ray 2.60's DataSourceV2 Parquet reader starts fresh footer-reader actors at every
        # execution: seconds of process start-up where the classic reader needs none (docs/data.md).
        ray.data.DataContext.get_current().use_datasource_v2 = False
        # One read task and one permuting task: a global shuffle of index rows with no
        # all-to-all (Ray's `repartition(shuffle=True)` is a barrier of map and reduce tasks
        # before the first decode; docs/benchmarks.md has its cost).
        ds = ray.data.read_parquet(shard_paths(index_dir, split), override_num_blocks=1).select_columns(INDEX_COLUMNS)
        if limit is not None:
            ds = ds.limit(limit)
        if shuffle:
            ds = ds.map_batches(permute_rows, batch_size=None, batch_format="numpy")
    # Blocks of index rows (cheap, streamed out of the one big block), one per decode task.
    rows = decode_rows or rows_per_decode_task(batch_size, shuffle or seeded)
    ds = ds.repartition(target_num_rows_per_block=rows)
    # Each decoded batch leaves its task as a block of its own, at once (Ray Data otherwise
    # gathers a task's output up to 128 MiB, holding the first batch back until several are done).
    # 0.75 of a batch's bytes: one batch exceeds it, so it is emitted; Ray slices only blocks of
    # 1.5x the target or more, so a batch is never split. The setting is this dataset's own copy
    # of the DataContext.
    ds.context.target_max_block_size = max(1, int(0.75 * batch_size * int(np.prod(spec.output_shape))))
    if seeded:
        # Batches in the epoch's order whichever decode task finishes first: without this, Ray
        # Data hands on blocks as tasks complete, and 2 decode tasks reorder what 1 would not.
        ds.context.execution_options.preserve_order = True
    return ds.map_batches(
        decode_batch,
        fn_kwargs={"data_root": root, "spec": spec, "seed": seed if seeded else None, "epoch": epoch or 0,
                   "local_cache": local_cache, "decode_backend": decode_backend},
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.TaskPoolStrategy(size=decode_tasks),
        **decode_task_resources(ray.cluster_resources(), decode_cpus),
    )


def count_videos(index_dir: str | Path, split: str) -> int:
    from k400ray.data.index import load_manifest

    return int(load_manifest(index_dir)["splits"][split]["videos"])
