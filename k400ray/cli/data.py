"""``synth``, ``index``, ``prepare``, ``stage``: making, indexing and placing a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from k400ray.cli.common import fail, parse_size
from k400ray.data.encoding import DEFAULT_FAST_DECODE, DEFAULT_KEYFRAME_INTERVAL


def synth(
    out_dir: Path = typer.Argument(..., help="where to write train/, val/ and annotations/"),
    classes: int = typer.Option(10, "--classes", min=2, help="number of classes (pairs differing only in motion direction)"),
    train_per_class: int = typer.Option(16, min=1, help="train videos per class"),
    val_per_class: int = typer.Option(4, min=1, help="val videos per class"),
    frames: int = typer.Option(48, min=1, help="frames per video"),
    fps: int = typer.Option(12, min=1, help="frames per second"),
    size: str = typer.Option("80x64", help="WIDTHxHEIGHT, e.g. 340x256 like Kinetics short-side-256 copies"),
    seed: int = typer.Option(0, help="same seed, same labels, motion and pixels"),
    corrupt: int = typer.Option(0, min=0, help="add N broken files (0 bytes, truncated, random bytes, audio only...)"),
    missing: int = typer.Option(0, min=0, help="add N CSV rows whose file does not exist"),
) -> None:
    """Write a synthetic Kinetics-400-shaped dataset (Academic Torrents layout, official CSVs)."""
    from k400ray.data.synth import generate_synthetic

    summary = generate_synthetic(
        out_dir, num_classes=classes, videos_per_class=(train_per_class, val_per_class), frames=frames,
        fps=fps, size=parse_size(size), seed=seed, corrupt=corrupt, missing=missing,
    )
    typer.echo(summary.describe() if hasattr(summary, "describe") else str(summary))


def index(
    data_root: Path = typer.Argument(..., help="dataset root (official CSVs + videos, list files, or class folders)"),
    out: Path = typer.Option(..., "--out", help="index directory to (re)write"),
    layout: str = typer.Option("auto", help="auto | csv | list | tree"),
    shards: Optional[int] = typer.Option(None, min=1, help="shards per split (default: ~2000 rows each)"),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: RAY_ADDRESS or a local Ray)"),
) -> None:
    """Probe every video in parallel Ray tasks and write the Parquet clip index + manifest.json."""
    from k400ray.data.annotations import AnnotationError
    from k400ray.data.index import build_index
    from k400ray.runtime import init_ray

    _check_dataset_args(data_root, layout, "data root")
    import sys

    from k400ray.console.counter import count_progress

    init_ray(address)
    try:  # a bar with a count on a terminal, a line every few seconds otherwise (stderr: stdout is the result)
        with count_progress("indexing", "videos", sys.stderr) as update:
            manifest = build_index(data_root, out, layout=layout, shards=shards, progress=update)
    except (AnnotationError, FileExistsError) as exc:
        fail(str(exc))
    typer.echo(f"index {out} ({manifest['layout']} layout, {manifest['num_classes']} classes)")
    for split, info in manifest["splits"].items():
        typer.echo(
            f"  {split}: {info['videos']} videos in {len(info['shards'])} shard(s); excluded: "
            f"{info['missing']} missing, {info['corrupt']} corrupt, {info['rejected']} rejected"
        )
    for item in manifest["excluded"][:20]:
        typer.echo(f"  excluded {item['path']}: {item['reason']}")
    if len(manifest["excluded"]) > 20:
        typer.echo(f"  ... {len(manifest['excluded']) - 20} more in {out / 'manifest.json'}")


def prepare(
    raw_root: Path = typer.Argument(..., help="raw dataset root (the layouts `k400ray index` reads)"),
    out: Path = typer.Option(..., "--out", help="where the re-encoded copy goes (same layout and annotations)"),
    short_side: int = typer.Option(256, "--short-side", min=16, help="short side of the re-encoded videos"),
    keyframe_interval: int = typer.Option(
        DEFAULT_KEYFRAME_INTERVAL, "--keyframe-interval", min=1,
        help="a keyframe at least every N frames (x264's own default is 250; docs/data.md says why the default)"),
    fast_decode: bool = typer.Option(DEFAULT_FAST_DECODE, "--fast-decode/--no-fast-decode",
                                     help="x264 tune=fastdecode (no CABAC, no deblocking): cheaper to decode, more bytes"),
    layout: str = typer.Option("auto", help="auto | csv | list | tree"),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: RAY_ADDRESS or a local Ray)"),
) -> None:
    """Re-encode every video to a short side on Ray tasks (resumable); failures go to prepare-manifest.json."""
    import sys

    from k400ray.data.annotations import AnnotationError
    from k400ray.data.encoding import Encoding
    from k400ray.data.prepare import FILES_LIST, PREPARE_MANIFEST, PrepareError, prepare_dataset
    from k400ray.runtime import init_ray

    _check_dataset_args(raw_root, layout, "raw root")
    from k400ray.console.counter import count_progress

    encoding = Encoding(keyframe_interval, fast_decode)
    init_ray(address)
    try:  # like `index`: a bar with a count on a terminal, a line every few seconds otherwise (stderr)
        with count_progress("preparing", "videos", sys.stderr) as update:
            manifest = prepare_dataset(raw_root, out, short_side=short_side, encoding=encoding, layout=layout,
                                       progress=lambda done, total, counts: update(done, total))
    except (AnnotationError, PrepareError) as exc:
        fail(str(exc))
    typer.echo(f"prepared {out} ({manifest['layout']} layout, short side {short_side}, {encoding.describe()}): "
               f"{manifest['videos']} videos, {manifest['prepared']} re-encoded, {manifest['copied']} copied "
               f"(already small, keyframes dense enough), {manifest['skipped']} already done, "
               f"{manifest['partial']} partial, {manifest['failed']} failed")
    for item in manifest["failed_videos"][:20]:
        typer.echo(f"  failed {item['path']}: {item['reason']}")
    if manifest["failed"] > 20:
        typer.echo(f"  ... {manifest['failed'] - 20} more in {out / PREPARE_MANIFEST}")
    typer.echo(f"files: {manifest['files']['count']} ({manifest['files']['bytes'] / 2**30:.2f} GiB) listed with "
               f"their SHA-256 in {out / FILES_LIST}")
    typer.echo(f"next: k400ray index {out} --out {out.parent / 'index'}")


def stage(
    index: str = typer.Argument(..., help="index to stage (a path, or s3://...): its manifest names the data root"),
    to: str = typer.Option(..., "--to", help="this node's local copy, e.g. /mnt/local/k400 ($VARS expanded here)"),
    source: Optional[str] = typer.Option(None, "--from",
                                         help="read the prepared copy from here instead of the index's data root "
                                              "(e.g. s3://BUCKET/k400/prepared: the same copy)"),
    workers: int = typer.Option(16, "--workers", min=1, help="files copied and checked at once"),
    if_present: bool = typer.Option(False, "--if-present",
                                    help="exit 0 when there is no index yet (a node set up before the data)"),
) -> None:
    """Copy the index and its prepared copy onto this node's disk, checking every file's checksum (resumable)."""
    import sys

    from k400ray.console.counter import count_progress
    from k400ray.data.stage import NoIndex, StageError, stage as stage_copy

    try:
        with count_progress("staging", "files", sys.stderr) as update:
            result = stage_copy(index, to, source=source, workers=workers,
                                progress=lambda done, total, _bytes: update(done, total))
    except StageError as exc:
        if if_present and isinstance(exc, NoIndex):
            typer.echo(f"nothing staged: no index at {index} yet (decode tasks read the shared copy)")
            return
        fail(str(exc))
    gb = 1e9
    typer.echo(f"staged {result.data_root} (from {result.source}) and {index} to {result.local}: {result.files} files, "
               f"{result.bytes / gb:.2f} GB; {result.copied} copied ({result.copied_bytes / gb:.2f} GB, "
               f"{result.replaced} of them replacing a damaged local file), {result.kept} already there "
               f"(checksum verified), {len(result.failed)} failed; {result.seconds:.1f} s")
    for item in result.failed[:20]:
        typer.echo(f"  failed {item['path']}: {item['reason']}")
    if result.failed:
        typer.echo("  decode tasks read these from the shared copy; run `k400ray stage` again once it is fixed")
        raise typer.Exit(1)


def _check_dataset_args(root: Path, layout: str, what: str) -> None:
    """The checks ``index`` and ``prepare`` share: a known layout and an existing root."""
    if layout not in ("auto", "csv", "list", "tree"):
        fail(f"--layout must be auto, csv, list or tree, got {layout!r}")
    if not root.is_dir():
        fail(f"{root}: {what} is not a directory")


def register(app: typer.Typer) -> None:
    """Add ``synth``, ``index``, ``prepare`` and ``stage`` to ``app``."""
    app.command("synth")(synth)
    app.command("index")(index)
    app.command("prepare")(prepare)
    app.command("stage")(stage)
