"""Re-encode a raw Kinetics-400 copy to a short side once, before indexing (``k400ray prepare``).

The CVDF copy is at source resolution (often 720p or 1080p). Training decodes every sampled
frame of that source and then scales it to short side 256, so decoding at source resolution
costs several times what decoding a 256-short-side copy does (``docs/benchmarks.md``, the
ratio ``bench data --raw-sizes`` measures), and decoding is what sizes the CPU side of the
cluster. Every K400 user re-encodes once (MMAction2's ``resize_videos.py``); this module does
it on Ray tasks, one CPU each, so the same command runs on a laptop or on the decode nodes.

What a prepared copy keeps: the layout (the same relative paths and file names, so the
annotations stay valid) and the annotation files themselves (``annotations/*``, list files),
copied as they are. Videos are re-encoded with H.264 (x264 ``veryfast``, CRF 23, yuv420p, one
thread per task) at the short side given, aspect kept, both sides even, with a keyframe every
few frames and x264's fast-decode tuning by default (:mod:`k400ray.data.encoding`: training
decodes a few sampled frames per video, and a decoder starts at the keyframe before each); frames
are re-timed at the source's average frame rate (sampling indexes frames, not timestamps); audio
is dropped (no model reads it). A video whose short side is already at most the target is copied
as it is when its keyframes are as dense as the chosen interval, else re-encoded at its own size.

Every file of the prepared copy (videos and annotation files) is listed with its size and SHA-256
in ``prepare-files.parquet`` (:data:`FILES_LIST`), so that a copy of the prepared root (a node's
local disk) can be verified file by file; the hashes are computed by the tasks that write the
videos, and for videos a previous run finished, by tasks that read them again.

Resumable: an output is written to a temporary name beside it and renamed when complete, so an
output that exists is complete and is skipped by the next run; temporaries left by a killed run
are removed when the next one starts. Videos that fail (cannot open, no video stream, nothing
decodes) are listed in ``prepare-manifest.json`` with their reason and are tried again by the
next run; a video whose tail does not decode keeps the frames that do, and is listed as partial.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

from k400ray.data.annotations import SPLITS, VIDEO_EXTENSIONS, discover
from k400ray.data.encoding import X264_DEFAULTS, Encoding, longest_keyframe_gap

PREPARE_MANIFEST = "prepare-manifest.json"
FILES_LIST = "prepare-files.parquet"  # path (relative, POSIX), bytes, sha256 of every file prepared
PART_SUFFIX = ".k400ray-part"  # temporaries: not a video extension, so `k400ray index` never sees one
CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".webm": "webm", ".avi": "avi", ".mov": "mov"}
OWN_FILES = (PREPARE_MANIFEST, FILES_LIST)  # what prepare writes at the root besides the copy


class PrepareError(ValueError):
    """The raw copy or the output folder cannot be used; the message is one line naming it."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one video: ``prepared``, ``copied``, ``partial``, ``skipped`` or ``failed``."""

    path: str  # relative to the roots
    status: str
    reason: str = ""


def target_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side at ``short_side`` and both sides even (yuv420p needs
    it), the aspect kept: what ``ffmpeg -vf scale=-2:256`` gives for a landscape video."""
    if width <= height:
        return short_side - short_side % 2, max(2, 2 * round(height * short_side / width / 2))
    return max(2, 2 * round(width * short_side / height / 2)), short_side - short_side % 2


def _part_path(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}{PART_SUFFIX}")


def _short(exc: BaseException) -> str:
    detail = getattr(exc, "strerror", None) or (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {detail}"[:200]


def _encode(src: Path, tmp: Path, size: tuple[int, int], rate: Fraction, container_format: str,
            encoding: Encoding) -> tuple[int, str]:
    """Decode ``src`` and encode its frames at ``size`` into ``tmp``; (frames written, reason the
    decode stopped early or "")."""
    import av

    codec = "libvpx-vp9" if container_format == "webm" else "libx264"
    written, stopped = 0, ""
    with av.open(str(src)) as inp, av.open(str(tmp), "w", format=container_format) as out:
        vin = inp.streams.video[0]
        vin.thread_type, vin.thread_count = "SLICE", 1
        vout = out.add_stream(codec, rate=rate)
        vout.width, vout.height, vout.pix_fmt = size[0], size[1], "yuv420p"
        vout.options = encoding.codec_options(codec)
        time_base = 1 / rate
        try:
            for frame in inp.decode(vin):
                scaled = frame.reformat(width=size[0], height=size[1], format="yuv420p", interpolation="AREA")
                scaled.pts, scaled.time_base = written, time_base
                for packet in vout.encode(scaled):
                    out.mux(packet)
                written += 1
        except av.FFmpegError as exc:  # a damaged tail: keep what decoded
            stopped = _short(exc)
        for packet in vout.encode():
            out.mux(packet)
    return written, stopped


def prepare_video(src: str | Path, dst: str | Path, short_side: int, encoding: Encoding = Encoding(), *,
                  always_encode: bool = False) -> Outcome:
    """Re-encode (or copy) one video to ``dst``, atomically; never raises for a bad video.

    A video at or below ``short_side`` is copied when its keyframes are dense enough for
    ``encoding`` (:func:`~k400ray.data.encoding.longest_keyframe_gap`), else re-encoded at its own
    size; ``always_encode`` re-encodes it anyway (the benchmark of encodings compares them all on
    one source)."""
    import av

    src, dst = Path(src), Path(dst)
    rel = dst.name
    if not src.is_file():
        return Outcome(rel, "failed", "missing file")
    if src.stat().st_size == 0:
        return Outcome(rel, "failed", "empty file (0 bytes)")
    container_format = CONTAINERS.get(dst.suffix.lower())
    if container_format is None:
        return Outcome(rel, "failed", f"unsupported extension {dst.suffix!r}")
    try:
        with av.open(str(src)) as inp:
            if not inp.streams.video:
                return Outcome(rel, "failed", "no video stream (audio only?)")
            vin = inp.streams.video[0]
            width, height = vin.codec_context.width, vin.codec_context.height
            rate = vin.average_rate or vin.guessed_rate or vin.base_rate or Fraction(25)
    except Exception as exc:
        return Outcome(rel, "failed", f"cannot open ({_short(exc)})")
    if width <= 0 or height <= 0:
        return Outcome(rel, "failed", "video stream has no size")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _part_path(dst)
    small = min(width, height) <= short_side
    try:
        if small and not always_encode and encoding.dense_enough(longest_keyframe_gap(src)):
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
            return Outcome(rel, "copied")
        size = (width - width % 2, height - height % 2) if small else target_size(width, height, short_side)
        written, stopped = _encode(src, tmp, size, Fraction(rate), container_format, encoding)
        if written == 0:
            tmp.unlink(missing_ok=True)
            return Outcome(rel, "failed", "no decodable video frames" + (f" ({stopped})" if stopped else ""))
        os.replace(tmp, dst)
        if stopped:
            return Outcome(rel, "partial", f"decoding stopped after {written} frames ({stopped}); kept those")
        return Outcome(rel, "prepared")
    except Exception as exc:  # an encoder or file-system error: this video only
        tmp.unlink(missing_ok=True)
        return Outcome(rel, "failed", f"re-encode failed ({_short(exc)})")


def file_record(path: str | Path) -> tuple[int, str]:
    """(bytes, lowercase hex SHA-256) of a whole file."""
    with open(path, "rb") as fh:
        return os.fstat(fh.fileno()).st_size, hashlib.file_digest(fh, "sha256").hexdigest()


def _prepare_chunk(raw_root: str, out_root: str, rels: list[str], short_side: int,
                   encoding: Encoding) -> list[tuple[str, str, int, str]]:
    """Ray task body: (status, reason, bytes, sha256) per video, in order. An output that exists
    was finished by an earlier run: it is only read again for its record (``skipped``)."""
    results = []
    for rel in rels:
        dst = os.path.join(out_root, rel)
        if os.path.isfile(dst):
            outcome = Outcome(rel, "skipped")
        else:
            outcome = prepare_video(os.path.join(raw_root, rel), dst, short_side, encoding)
        size, digest = file_record(dst) if outcome.status != "failed" else (0, "")
        results.append((outcome.status, outcome.reason, size, digest))
    return results


def _annotation_files(root: Path) -> list[Path]:
    """Everything that is not a video beside the split folders: ``annotations/*`` and the list
    files (any layout ``k400ray index`` reads), never our own manifest or hidden files."""
    found = []
    for folder in (root, root / "annotations"):
        if folder.is_dir():
            found += [p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")
                      and p.suffix.lower() not in VIDEO_EXTENSIONS and p.name not in OWN_FILES]
    return found


def _copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _part_path(dst)
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _remove_stale_parts(out: Path) -> int:
    """Temporaries of a killed run, where this module writes: the split folders, the root and
    ``annotations/`` (not a raw copy kept below the output, e.g. ``/mnt/k400/raw``)."""
    stale = [p for s in SPLITS if (out / s).is_dir() for p in (out / s).rglob(f"*{PART_SUFFIX}")]
    stale += [p for d in (out, out / "annotations") if d.is_dir() for p in d.glob(f"*{PART_SUFFIX}")]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def _check_roots(raw: Path, out: Path, short_side: int, encoding: Encoding) -> None:
    if not raw.is_dir():
        raise PrepareError(f"{raw}: raw root is not a directory")
    if short_side < 16:
        raise PrepareError(f"--short-side {short_side}: must be at least 16")
    raw_r, out_r = raw.resolve(), out.resolve()
    if out_r == raw_r or raw_r in out_r.parents:
        raise PrepareError(f"{out}: the output must be outside the raw root {raw}")
    if out_r in raw_r.parents and (raw_r.parent != out_r or raw_r.name in SPLITS + ("annotations",)):
        raise PrepareError(f"{raw}: a raw copy inside the output must be a folder of its own right below it "
                           f"(e.g. {out / 'raw'})")
    previous = out / PREPARE_MANIFEST
    if previous.is_file():
        try:
            before = json.loads(previous.read_text(encoding="utf-8"))
        except ValueError:
            raise PrepareError(f"{previous}: not valid JSON; remove it to start over") from None
        if before.get("short_side") != short_side:
            raise PrepareError(f"{out}: prepared at short side {before.get('short_side')}, not {short_side}; "
                               "use another --out")
        earlier = before.get("encoding", X264_DEFAULTS.record())
        if earlier != encoding.record():
            raise PrepareError(f"{out}: prepared with keyframe interval {earlier.get('keyframe_interval')}, fast decode "
                               f"{'on' if earlier.get('fast_decode') else 'off'}, not {encoding.describe()}; "
                               "pass the same --keyframe-interval and --fast-decode/--no-fast-decode, or use another --out")
    elif out.is_dir() and any(p.name != PREPARE_MANIFEST and p.resolve() != raw_r for p in out.iterdir()):
        if not any((out / s).is_dir() for s in SPLITS):
            raise PrepareError(f"{out}: exists, is not empty and holds no {PREPARE_MANIFEST}; refusing to write into it")


ProgressFn = Callable[[int, int, dict], None]


def prepare_dataset(
    raw_root: str | Path,
    out_root: str | Path,
    *,
    short_side: int = 256,
    encoding: Encoding = Encoding(),
    layout: str = "auto",
    chunk_size: int = 8,
    progress: ProgressFn | None = None,
) -> dict:
    """Prepare every video of ``raw_root`` into ``out_root``; returns the manifest it writes.
    Needs Ray (``init_ray``) first. Raises :class:`PrepareError` (or ``AnnotationError``)."""
    import ray

    raw, out = Path(raw_root), Path(out_root)
    _check_roots(raw, out, short_side, encoding)
    found = discover(raw, layout)  # AnnotationError on unusable annotations
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(out)
    # The settings first: a run killed before the end still refuses other settings later.
    if not (out / PREPARE_MANIFEST).is_file():
        _write_manifest(out, {"raw_root": str(raw.resolve()), "short_side": short_side,
                              "encoding": encoding.record(), "finished": None})
    files = {}
    for path in _annotation_files(raw):
        rel = path.relative_to(raw)
        _copy_atomic(path, out / rel)
        files[rel.as_posix()] = file_record(out / rel)
    rels = list(dict.fromkeys(e.path for e in found.entries))
    # Videos a previous run finished are only read again for their records, in larger chunks.
    todo = [r for r in rels if not (out / r).is_file()]
    done = [r for r in rels if (out / r).is_file()]
    chunks = [todo[i : i + chunk_size] for i in range(0, len(todo), chunk_size)]
    chunks += [done[i : i + 8 * chunk_size] for i in range(0, len(done), 8 * chunk_size)]
    counts = {"skipped": 0, "prepared": 0, "copied": 0, "partial": 0, "failed": 0}
    failed, partial = [], []
    task = ray.remote(num_cpus=1, max_retries=2)(_prepare_chunk)
    window = max(4, 2 * int(ray.cluster_resources().get("CPU", 1)))
    pending: dict[ray.ObjectRef, list[str]] = {}
    submitted = 0
    if progress:
        progress(0, len(rels), counts)
    while submitted < len(chunks) or pending:
        while submitted < len(chunks) and len(pending) < window:
            ref = task.remote(str(raw.resolve()), str(out.resolve()), chunks[submitted], short_side, encoding)
            pending[ref] = chunks[submitted]
            submitted += 1
        finished, _ = ray.wait(list(pending), num_returns=1)
        for ref in finished:
            chunk = pending.pop(ref)
            for rel, (status, reason, size, digest) in zip(chunk, ray.get(ref)):
                counts[status] += 1
                if status == "failed":
                    failed.append({"path": rel, "reason": reason})
                    continue
                if status == "partial":
                    partial.append({"path": rel, "reason": reason})
                files[Path(rel).as_posix()] = (size, digest)
        if progress:
            progress(sum(counts.values()), len(rels), counts)
    _write_files_list(out, files)
    manifest = {
        "raw_root": str(raw.resolve()), "short_side": short_side, "layout": found.layout,
        "videos": len(rels), "complete": len(rels) - len(failed), **counts,
        "failed_videos": sorted(failed, key=lambda x: x["path"]),
        "partial_videos": sorted(partial, key=lambda x: x["path"]),
        "not_found": found.excluded,  # rows of the annotations with no usable file in the raw copy
        "encoding": encoding.record(),
        "files": {"list": FILES_LIST, "count": len(files), "bytes": sum(size for size, _ in files.values())},
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    _write_manifest(out, manifest)
    return manifest


def _write_files_list(out: Path, files: dict[str, tuple[int, str]]) -> None:
    """``prepare-files.parquet``: one row per file, by path; written whole, then renamed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = sorted(files)
    table = pa.table({"path": pa.array(paths, pa.string()),
                      "bytes": pa.array([files[p][0] for p in paths], pa.int64()),
                      "sha256": pa.array([files[p][1] for p in paths], pa.string())})
    tmp = _part_path(out / FILES_LIST)
    pq.write_table(table, tmp)
    os.replace(tmp, out / FILES_LIST)


def _write_manifest(out: Path, manifest: dict) -> None:
    tmp = _part_path(out / PREPARE_MANIFEST)
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out / PREPARE_MANIFEST)
