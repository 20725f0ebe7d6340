"""Copy a prepared copy and its index onto a node's own disk, once per node (``k400ray stage``).

Why: every epoch of every trial reads the whole train split. Read from a network file system
(EFS bills every GB it serves), that is most of what a grid costs; a GPU node's instance-store
NVMe (8 TB on a p4d.24xlarge) holds a prepared Kinetics-400 many times over and reads it for
free. So each node that decodes copies the data once, when it starts (``cluster.yaml`` runs
this before ``ray start``), and its decode tasks read that copy (``staged_data_root``).

A staged copy ``LOCAL`` (environment variables in the path are expanded on the node, so one
spec can name ``$TMPDIR/k400`` on a cluster whose local scratch is per job)::

    LOCAL/data/...     the prepared copy's files at their relative paths (videos, annotations)
    LOCAL/index/...    the index: manifest.json and every shard it lists
    LOCAL/stage.json   written last: which data root the copy mirrors; its presence means complete

Every video and annotation file is checked against ``prepare-files.parquet``, the size and
SHA-256 of every file ``k400ray prepare`` wrote: a file already on the local disk whose
checksum matches is kept (a resumed or repeated run copies nothing twice), any other is copied
again, and a copy whose checksum differs from the list is retried once, then reported. Index
files are checked against the source's own bytes. Files are written to a temporary name and
renamed when verified, so a run killed midway leaves only whole files (and temporaries that the
next run removes). Sources are read through pyarrow's file systems: the shared file system the
index points at, or ``--from`` an ``s3://`` URI (or another path) holding the same prepared copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from k400ray.data.index import MANIFEST
from k400ray.data.prepare import FILES_LIST

STAGE_MARKER = "stage.json"
DATA_DIR = "data"
INDEX_DIR = "index"
PART_SUFFIX = ".k400ray-stage-part"
CHUNK = 8 * 2**20


class StageError(ValueError):
    """The index, the source or the destination cannot be used; the message is one line naming it."""


class NoIndex(StageError):
    """No index at the path given (yet): a node set up before the data was prepared."""


@dataclass(frozen=True)
class Expected:
    path: str  # relative, POSIX
    bytes: int
    sha256: str | None  # None: take it from the source's own bytes (index files)


@dataclass
class StageResult:
    local: Path
    data_root: str  # the shared data root the copy mirrors (the index's)
    source: str
    files: int = 0  # the prepared copy's and the index's
    bytes: int = 0  # of the prepared copy's files
    copied: int = 0
    copied_bytes: int = 0
    kept: int = 0  # already on the local disk with the right checksum
    replaced: int = 0  # on the local disk, but damaged or stale: copied again
    failed: list[dict] = field(default_factory=list)
    seconds: float = 0.0


ProgressFn = Callable[[int, int, int], None]  # (files done, files in all, bytes copied)


def expand_local(path: str) -> Path:
    """``path`` with ``~`` and environment variables expanded on this node; StageError when a
    variable is not set here (the copy would land in a folder literally named ``$VAR``)."""
    expanded = os.path.expanduser(os.path.expandvars(path))
    if "$" in expanded:
        raise StageError(f"{path}: an environment variable in the path is not set on this node")
    return Path(expanded)


def _filesystem(uri: str):
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri if "://" in uri else str(Path(uri).resolve()))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid / OSError subclasses
        raise StageError(f"{uri}: cannot open ({str(exc).splitlines()[0][:200]})") from None


def _join(base: str, rel: str) -> str:
    return f"{base.rstrip('/')}/{rel}"


def _read_bytes(fs, path: str, what: str) -> bytes:
    try:
        with fs.open_input_stream(path) as stream:
            return stream.read()
    except (FileNotFoundError, OSError) as exc:
        raise StageError(f"{path}: {what} cannot be read ({str(exc).splitlines()[0][:160]})") from None


def _index_files(index: str) -> tuple[dict, list[Expected], object, str]:
    """(index manifest, its files, file system, path of the index on it)."""
    fs, base = _filesystem(index)
    try:
        raw = _read_bytes(fs, _join(base, MANIFEST), "the index manifest")
    except StageError as exc:
        raise NoIndex(str(exc)) from None
    try:
        manifest = json.loads(raw)
        shards = [s for info in manifest["splits"].values() for s in info["shards"]]
        manifest["data_root"]
    except (ValueError, KeyError, TypeError):
        raise StageError(f"{_join(index, MANIFEST)}: not an index manifest written by `k400ray index`") from None
    return manifest, [Expected(MANIFEST, len(raw), None)] + [Expected(s, -1, None) for s in shards], fs, base


def _prepared_files(source: str) -> tuple[list[Expected], object, str, str]:
    """The files of the prepared copy at ``source`` with their sizes and checksums, the file
    system, the path on it and a digest of the list (what the marker records)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, base = _filesystem(source)
    raw = None
    try:
        raw = _read_bytes(fs, _join(base, FILES_LIST), "the list of prepared files")
    except StageError:
        pass
    if raw is None:
        raise StageError(f"{_join(source, FILES_LIST)}: missing: stage copies what `k400ray prepare` made, whose "
                         "list of every file's size and checksum it checks (run prepare to make one)")
    try:
        table = pq.read_table(pa.BufferReader(raw), columns=["path", "bytes", "sha256"])
    except Exception:  # noqa: BLE001 - any pyarrow error: not our list
        raise StageError(f"{_join(source, FILES_LIST)}: not a list of prepared files (path, bytes, sha256)") from None
    files = [Expected(p, int(b), str(h).lower())
             for p, b, h in zip(*(table[c].to_pylist() for c in ("path", "bytes", "sha256")))]
    return files, fs, base, hashlib.sha256(raw).hexdigest()


def _check_index_matches(manifest: dict, index_fs, index_base: str, files: list[Expected], source: str) -> None:
    """Every indexed video is in the prepared copy's list with the size the index recorded: the
    source holds the copy the index was built from, not another preparation of it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sizes = {f.path: f.bytes for f in files}
    differ, total, example = 0, 0, ""
    for info in manifest["splits"].values():
        for shard in info["shards"]:
            raw = _read_bytes(index_fs, _join(index_base, shard), "an index shard")
            table = pq.read_table(pa.BufferReader(raw), columns=["path", "bytes"])
            for path, size in zip(table["path"].to_pylist(), table["bytes"].to_pylist()):
                total += 1
                if sizes.get(path) != size:
                    differ += 1
                    example = example or path
    if differ:
        raise StageError(f"{source}: does not hold the copy the index was built from: {differ} of {total} indexed "
                         f"videos are missing from its {FILES_LIST} or differ in size (e.g. {example})")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _source_sha256(fs, path: str) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with fs.open_input_stream(path) as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _copy(fs, src: str, dst: Path) -> tuple[int, str, Path]:
    """``src`` into a temporary beside ``dst``: (bytes, sha256 of what was written, temporary)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}{PART_SUFFIX}")
    digest, size = hashlib.sha256(), 0
    try:
        with fs.open_input_stream(src) as stream, tmp.open("wb") as out:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return size, digest.hexdigest(), tmp


def _sync_one(fs, src: str, dst: Path, want: Expected) -> tuple[str, int, str]:
    """(``kept`` | ``copied`` | ``replaced`` | ``failed``, bytes copied, reason) for one file."""
    try:
        size, sha = (want.bytes, want.sha256) if want.sha256 else _source_sha256(fs, src)
    except OSError as exc:
        return "failed", 0, f"source unreadable ({str(exc).splitlines()[0][:160]})"
    existed = dst.is_file()
    if existed and dst.stat().st_size == size and _sha256_file(dst) == sha:
        return "kept", 0, ""
    reason = ""
    for _attempt in range(2):
        try:
            got_size, got_sha, tmp = _copy(fs, src, dst)
        except OSError as exc:
            reason = f"copy failed ({str(exc).splitlines()[0][:160]})"
            continue
        if (got_size, got_sha) == (size, sha):
            os.replace(tmp, dst)
            return ("replaced" if existed else "copied"), got_size, ""
        tmp.unlink(missing_ok=True)
        reason = (f"the source's bytes differ from {FILES_LIST} ({got_size} bytes, sha256 {got_sha[:12]}..., listed "
                  f"{size} bytes, {sha[:12]}...): the shared copy changed or is damaged")
    return "failed", 0, reason


def _remove_stale_parts(local: Path) -> int:
    stale = list(local.rglob(f"*{PART_SUFFIX}")) if local.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def read_marker(local: Path) -> dict | None:
    """The marker of a complete staged copy at ``local`` (expanded), or None."""
    try:
        return json.loads((local / STAGE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_marker(local: Path, marker: dict) -> None:
    tmp = local / f".{STAGE_MARKER}.{uuid.uuid4().hex[:8]}{PART_SUFFIX}"
    tmp.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, local / STAGE_MARKER)


def stage(index: str, local: str | Path, *, source: str | None = None, workers: int = 16,
          progress: ProgressFn | None = None) -> StageResult:
    """Copy the index at ``index`` and the prepared copy it was built from (its ``data_root``,
    or ``source`` holding the same copy) to ``local`` on this node; see the module docstring.
    Raises :class:`StageError` before copying anything when the inputs cannot be used."""
    start = time.perf_counter()
    local = expand_local(str(local))
    index = index if "://" in index else str(Path(index).resolve())
    manifest, index_files, index_fs, index_base = _index_files(index)
    data_root = str(manifest["data_root"])
    source = source or data_root
    files, data_fs, data_base, list_digest = _prepared_files(source)
    _check_index_matches(manifest, index_fs, index_base, files, source)
    try:
        local.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StageError(f"{local}: cannot create the local copy here ({exc.strerror})") from None
    _remove_stale_parts(local)
    marker = read_marker(local)
    if marker and (marker.get("data_root"), marker.get("files_list_sha256")) != (data_root, list_digest):
        # Another copy was staged here: decode tasks must not trust it while it changes.
        (local / STAGE_MARKER).unlink(missing_ok=True)
    jobs = [(data_fs, _join(data_base, f.path), local / DATA_DIR / f.path, f) for f in files]
    jobs += [(index_fs, _join(index_base, f.path), local / INDEX_DIR / f.path, f) for f in index_files]
    result = StageResult(local, data_root, source, files=len(jobs), bytes=sum(f.bytes for f in files))
    done = 0
    if progress:
        progress(0, len(jobs), 0)
    pool = ThreadPoolExecutor(max_workers=max(1, workers))  # hashing and file I/O release the GIL
    try:
        futures = {pool.submit(_sync_one, *job): job for job in jobs}
        for future in as_completed(futures):
            status, copied, reason = future.result()
            if status == "failed":
                result.failed.append({"path": str(futures[future][2].relative_to(local)), "reason": reason})
            elif status == "kept":
                result.kept += 1
            else:
                result.copied += 1
                result.copied_bytes += copied
                result.replaced += status == "replaced"
            done += 1
            if progress:
                progress(done, len(jobs), result.copied_bytes)
    finally:  # Ctrl+C (or any error): files not started are not started; those in flight finish whole
        pool.shutdown(wait=True, cancel_futures=True)
    result.failed.sort(key=lambda f: f["path"])
    result.seconds = time.perf_counter() - start
    _write_marker(local, {
        "data_root": data_root, "index": index, "source": source, "files": len(files), "bytes": result.bytes,
        "files_list_sha256": list_digest, "failed": result.failed,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    })
    return result


def _finished_copy(local_cache: str | None) -> tuple[Path, dict] | None:
    """(this node's staged copy, its marker) when ``local_cache`` (expanded here) holds a finished one."""
    if not local_cache:
        return None
    try:
        local = expand_local(local_cache)
    except StageError:
        return None
    marker = read_marker(local)
    return None if marker is None else (local, marker)


def staged_data_root(local_cache: str | None, data_root: str) -> str | None:
    """Where a decode task on this node reads the videos of ``data_root``: the data folder of the
    node's staged copy when ``local_cache`` holds a finished one of that root, else None (read the
    shared root). Cheap enough for every decode task: one small file read, so a node that
    finishes staging while a grid runs switches to its copy at the next task."""
    found = _finished_copy(local_cache)
    if found is None or found[1].get("data_root") != str(data_root):
        return None
    return str(found[0] / DATA_DIR)


def staged_index(local_cache: str | None, index_dir: str) -> str | None:
    """The node's staged copy of the index at ``index_dir`` (the same manifest), or None."""
    found = _finished_copy(local_cache)
    if found is None or found[1].get("index") != str(index_dir):
        return None
    try:
        if (found[0] / INDEX_DIR / MANIFEST).read_bytes() != (Path(index_dir) / MANIFEST).read_bytes():
            return None
    except OSError:
        return None
    return str(found[0] / INDEX_DIR)
