"""What reading the data costs a grid: its size, where each node reads it from, how fast, and
what the reads are billed (the storage and network side of ``k400ray tune --dry-run``).

Two ways a trial's decode tasks get their videos:

- **staged** (``data.local_cache`` in the spec, and nodes with instance-store disks): every node
  that decodes copies the prepared data once when it starts (``k400ray stage``), then reads its
  own NVMe. The shared file system is read once per node start; the trial's read bandwidth is
  the sum of its decoding nodes' local disks.
- **shared** (no local copy): every epoch of every trial reads its split from the shared file
  system (EFS elastic throughput: billed per GB read, at most ``client_gb_per_s`` per node and
  ``file_system_gb_per_s`` for the file system, shared by the trials that run at once).

Clips decoded on decode nodes travel to the trial's GPU node over its network interface: the
network bound. The data's size comes from, in order: ``cost.dataset_gb``; the index's own byte
counts (per split); the prepare manifest's list of files; the encoding record's bytes per video.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from k400ray.data.encoding import X264_DEFAULTS, Encoding
from k400ray.tune import throughput as tp
from k400ray.tune.cluster_shape import ClusterShape, efs_price, nodes_per_trial
from k400ray.tune.spec import SearchSpec, SpecError

K400_RAW_GB = 350.0  # the CVDF copy at source resolution, train + val
GB = 1e9


@dataclass(frozen=True)
class DataSize:
    """Bytes of the copy's videos: whole splits (what staging copies) and per video (what a
    clip's decode reads)."""

    train_gb: float
    val_gb: float
    train_videos: int  # the videos those GB hold
    val_videos: int
    source: str  # where the figure comes from, printed

    @property
    def total_gb(self) -> float:
        return self.train_gb + self.val_gb

    @property
    def train_video_bytes(self) -> float:
        return self.train_gb * GB / max(1, self.train_videos)

    @property
    def val_video_bytes(self) -> float:
        return self.val_gb * GB / max(1, self.val_videos)


def _split_bytes(index_dir: str, split: str) -> float | None:
    """Bytes of the split's indexed videos (the index records each file's size), or None."""
    try:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from k400ray.data.index import shard_paths

        return float(sum(pc.sum(pq.read_table(p, columns=["bytes"])["bytes"]).as_py() or 0
                         for p in shard_paths(index_dir, split)))
    except (FileNotFoundError, OSError, KeyError, ValueError):
        return None


def prepare_manifest(spec: SearchSpec) -> dict | None:
    """``prepare-manifest.json`` of the data the index points at (the spec's ``data_root``, else the
    index manifest's), when this machine can read it."""
    from k400ray.data.index import load_manifest

    try:
        root = spec.data.data_root or load_manifest(spec.data.train_index)["data_root"]
        return json.loads((Path(root) / "prepare-manifest.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, OSError, KeyError, ValueError):
        return None


def prepared_encoding(spec: SearchSpec, path: str | Path = "spec") -> tuple[str, str]:
    """(name of the encoding record the decode rates come from, where that choice comes from):
    ``cost.encoding``, else the prepare manifest's encoding, else ``k400ray prepare``'s default."""
    table = tp.records()["decode_by_encoding"]
    if spec.cost.encoding is not None:
        if spec.cost.encoding not in table["encodings"]:
            raise SpecError(f"{path}: cost.encoding: unknown encoding {spec.cost.encoding!r} "
                            f"(measured: {', '.join(table['encodings'])})")
        return spec.cost.encoding, "cost.encoding"
    encoding = (prepare_manifest(spec) or {}).get("encoding")
    if encoding:
        name = Encoding(int(encoding.get("keyframe_interval", X264_DEFAULTS.keyframe_interval)),
                        bool(encoding.get("fast_decode"))).name
        if name in table["encodings"]:
            return name, "the prepare manifest of the indexed copy"
        return table["default"], f"the prepare manifest's encoding, {name}, was not measured: priced as prepare's default"
    return table["default"], "k400ray prepare's default: no prepare manifest on this machine"


def data_size(spec: SearchSpec, train_videos: int, val_videos: int, encoding: str) -> DataSize:
    """The copy's size (``train_videos`` / ``val_videos``: the splits' whole video counts); see the
    module docstring for the order of sources."""
    share = train_videos / max(1, train_videos + val_videos)

    def split(total_gb: float, source: str) -> DataSize:
        return DataSize(total_gb * share, total_gb * (1 - share), train_videos, val_videos, source)

    if spec.cost.dataset_gb is not None:
        return split(spec.cost.dataset_gb, "cost.dataset_gb")
    train = _split_bytes(spec.data.train_index, "train")
    val = _split_bytes(spec.val_index, "val")
    if train is not None and val is not None:
        return DataSize(train / GB, val / GB, train_videos, val_videos,
                        f"the indexed videos' bytes ({spec.data.train_index})")
    if spec.cost.resolution != "prepared":
        return split(K400_RAW_GB, "Kinetics-400 at source resolution")
    files = (prepare_manifest(spec) or {}).get("files") or {}
    if files.get("bytes"):
        return split(files["bytes"] / GB, "the prepare manifest's list of files")
    per_video = tp.encoding_record(encoding)["bytes_per_video"]
    return split((train_videos + val_videos) * per_video / GB,
                 f"{per_video / 1e3:,.0f} kB per video, {encoding} in the bench record, x the videos")


def reads_staged(spec: SearchSpec, shape: ClusterShape) -> bool:
    """Nodes read their own staged copy: the spec names one and the GPU nodes have local disks."""
    inst = shape.gpu_instance
    return bool(spec.data.local_cache) and inst is not None and inst.local_disk_gb > 0


@dataclass(frozen=True)
class IoBound:
    """Videos/s one trial can read and clips/s its GPU node can receive, and how."""

    storage_videos_per_s: float
    network_clips_per_s: float  # inf: every clip is decoded on the GPU node itself
    storage_how: str


def io_bound(spec: SearchSpec, shape: ClusterShape, *, gpus: int, decode_node_share: float, concurrent: int,
             off_node_fraction: float, video_bytes: float, clip_bytes: float) -> IoBound:
    """``decode_node_share``: decode nodes decoding for this trial; ``off_node_fraction``: the share
    of its decode cores that are not on its GPU nodes; ``video_bytes``: one video read;
    ``clip_bytes``: one decoded clip (uint8) sent to the GPU node."""
    nodes = nodes_per_trial(shape, gpus)
    efs = tp.records("prices.json")["efs"]
    if reads_staged(spec, shape):
        decode_disk = shape.decode_instance.local_disk_gb_per_s if shape.decode_instance else 0.0
        gb_per_s = nodes * shape.gpu_instance.local_disk_gb_per_s + decode_node_share * decode_disk
        how = f"staged copies on local NVMe ({gb_per_s:.1f} GB/s)"
    else:
        per_client = efs["client_gb_per_s"] * (nodes + decode_node_share)
        gb_per_s = min(per_client, efs["file_system_gb_per_s"] / max(1, concurrent))
        how = f"shared EFS ({gb_per_s:.1f} GB/s)"
    inst = shape.gpu_instance
    network = math.inf
    if off_node_fraction > 0 and inst is not None and inst.network_gbps:
        network = nodes * inst.network_gbps / 8 * GB / clip_bytes / off_node_fraction
    return IoBound(gb_per_s * GB / video_bytes, network, how)


@dataclass(frozen=True)
class StorageReads:
    gb: float  # read from the shared file system (billed)
    how: str


def storage_reads(spec: SearchSpec, shape: ClusterShape, size: DataSize, *, node_starts: float,
                  video_reads: list[tuple[int, int]]) -> StorageReads:
    """GB the grid reads from the shared file system. Staged: the whole copy once per node start
    (``node_starts``: GPU and decode nodes). Shared: per trial, its (train, val) video reads over
    all its epochs and evaluations (``video_reads``)."""
    if reads_staged(spec, shape):
        return StorageReads(size.total_gb * node_starts,
                            f"{size.total_gb:,.1f} GB staged to each of {node_starts:g} node start(s)")
    gb = sum(train * size.train_video_bytes + val * size.val_video_bytes for train, val in video_reads) / GB
    return StorageReads(gb, f"{size.total_gb:,.1f} GB: every epoch and evaluation of every trial reads it")


def staging_hours(spec: SearchSpec, shape: ClusterShape, size: DataSize) -> float:
    """Hours one node spends copying the data before it decodes (EFS at one client's limit)."""
    if not reads_staged(spec, shape):
        return 0.0
    return size.total_gb / tp.records("prices.json")["efs"]["client_gb_per_s"] / 3600


def storage_dollars(spec: SearchSpec, reads: StorageReads) -> float:
    return reads.gb * efs_price(spec)
