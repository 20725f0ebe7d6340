"""``k400ray bench decode``: training clips decoded per second by each decode backend (the CPU
decoders, or NVDEC on the GPU) and the CPU each spends per clip.

Why its own command: ``bench data`` measures the decode limit against Ray Data and a DataLoader
and reads a Parquet index; a GPU node may have none of Ray, pyarrow, decord or PyAV. This one
needs torch and, for ``nvdec``, PyNvVideoCodec: it reads a JSON list of videos (written from an
index by ``--save-list`` on a machine that has one) and runs ``pipeline.decode_row``, the one
decode of a row, with the chosen backend in P spawned processes, rows handed out in chunks.

Per preset and backend: clips/s, clips that did not decode (on a GPU node without decord or
PyAV a video NVDEC rejects has no fallback), CPU time per clip of the whole process tree
(``/proc``: the decode processes, the driver's threads included) and the cores that costs at a
GPU's training rate (``--train-rates-from`` a ``bench train`` record of the same GPU). A backend
this process cannot use is reported with the reason, never measured under its name.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from k400ray.bench.common import Stopwatch, Table, cpu_seconds_between, tree_cpu_snapshot

# The columns of an index row that decoding reads (``pipeline.decode_row``), and the id.
LIST_COLUMNS = ("video_id", "path", "num_frames", "width", "height", "decoder")
# The goal: decoding for one GPU at its training rate takes at most this many cores.
CORES_PER_GPU_GOAL = 4.0


def save_video_list(index_dir: str | Path, split: str, out: str | Path, *, limit: int | None = None) -> Path:
    """The split's index rows (``LIST_COLUMNS``) and the data root as JSON: the input of ``bench
    decode --video-list`` on a machine without pyarrow. Paths stay relative to the data root,
    which is written relative to the list's folder when it lies under it (the pair travels as one)."""
    from k400ray.data.index import load_manifest
    from k400ray.data.pipeline import index_table

    out = Path(out)
    table = index_table(index_dir, split, limit=limit)
    rows = [{c: table.column(c)[i].as_py() for c in LIST_COLUMNS} for i in range(table.num_rows)]
    root = Path(load_manifest(index_dir)["data_root"]).resolve()
    try:
        root_text = str(root.relative_to(out.parent.resolve()))
    except ValueError:
        root_text = str(root)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"data_root": root_text, "rows": rows}, indent=1) + "\n", encoding="utf-8")
    return out


def save_textured_list(work_dir: str | Path, out: str | Path, *, videos: int, seconds: float, fps: int,
                       size: tuple[int, int] = (340, 256), short_side: int = 256) -> Path:
    """Realistic textured videos (``bench.textured_video``) re-encoded by ``k400ray prepare``'s
    encoder with its default encoding, copied into ``videos/`` beside the list ``out``: a prepared
    340x256 copy small enough to carry to a GPU node (about 0.5 MB per 10-s video)."""
    import shutil

    from k400ray.bench.clip_cpu import video_row
    from k400ray.bench.encodings import encoded_copies
    from k400ray.bench.textured_video import textured_videos
    from k400ray.data.encoding import Encoding

    out = Path(out)
    folder = out.parent / "videos"
    folder.mkdir(parents=True, exist_ok=True)
    raw = textured_videos(work_dir, size, videos=videos, seconds=seconds, fps=fps)
    rows = []
    for i, copy in enumerate(encoded_copies(raw, Encoding(), short_side)):
        dest = folder / copy.name
        shutil.copyfile(copy, dest)
        row = video_row(dest, i)
        rows.append({c: row[c] for c in LIST_COLUMNS} | {"path": dest.name})
    out.write_text(json.dumps({"data_root": "videos", "rows": rows}, indent=1) + "\n", encoding="utf-8")
    return out


def load_video_list(path: str | Path) -> tuple[str, list[dict]]:
    """(data root, rows) of a list ``save_video_list`` wrote; a relative root is taken from the
    list's folder. Raises ``ValueError`` naming the file when it is not such a list."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows, root = data["rows"], Path(data["data_root"])
        missing = next((c for r in rows for c in LIST_COLUMNS if c not in r), None)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a video list ({type(exc).__name__}: {exc})") from None
    if missing or not rows:
        raise ValueError(f"{path}: not a video list ({'no rows' if not rows else f'a row has no {missing!r}'})")
    return str(root if root.is_absolute() else (path.parent / root)), rows


def train_rates(record: str | Path) -> dict[str, float]:
    """Compute-only clips/s per preset in the last ``bench train`` record of a records file (the
    GPU's eager training rate at the recipe's batch)."""
    text = Path(record).read_text(encoding="utf-8")
    last = text.rsplit("### bench train", 1)[-1] if "### bench train" in text else ""
    rates = {}
    for m in re.finditer(r"^\| (\S+) \| compute only \| \d+ \| [^|]+ \| [^|]+ \| ([\d.]+) \|", last, re.M):
        rates[m.group(1)] = float(m.group(2))
    return rates


def _decode_chunk(args) -> tuple[int, int]:
    """In a decode process: (clips decoded, clips that did not) of a chunk of rows."""
    from k400ray.data.pipeline import decode_row, setup_decode_process

    rows, root, spec, backend = args
    setup_decode_process()
    done = sum(decode_row(r, root, spec, np.random.default_rng(), backend=backend) is not None for r in rows)
    return done, len(rows) - done


def _why_not(backend: str) -> str | None:
    """Why ``backend`` cannot run in this process (None: it can)."""
    if backend != "nvdec":
        return None
    from k400ray.data.nvdec import unavailable_reason

    return unavailable_reason()


@dataclass
class DecodeRun:
    preset: str
    backend: str
    processes: int
    clips: int
    failed: int
    seconds: float
    cpu_seconds: float
    unavailable: str | None = None
    train_rate: float | None = None  # the GPU's compute-only clips/s, when given

    @property
    def clips_per_s(self) -> float:
        return self.clips / self.seconds if self.seconds else float("nan")

    @property
    def cpu_ms_per_clip(self) -> float:
        return 1000 * self.cpu_seconds / self.clips if self.clips else float("nan")

    @property
    def cores_at_train_rate(self) -> float | None:
        return None if self.train_rate is None else self.cpu_ms_per_clip * self.train_rate / 1000


def run_decode_bench(root: str, rows: list[dict], *, presets: list[str], backends: list[str], clips: int,
                     processes: int, repeats: int, rates: dict[str, float] | None = None, log=print) -> list[DecodeRun]:
    """Each (preset, backend): one warm-up pass (processes start, CUDA and NVDEC sessions open),
    then ``repeats`` passes of ``clips`` rows; the pass with the median rate is reported."""
    from k400ray.presets import get_preset

    runs = []
    for backend in backends:
        # Checked here (the decode processes inherit this environment), before starting any.
        if (why := _why_not(backend)) is not None:
            for name in presets:
                runs.append(DecodeRun(name, backend, processes, 0, 0, float("nan"), float("nan"), unavailable=why))
                log(f"  {name} {backend}: not measured ({why})")
            continue
        with mp.get_context("spawn").Pool(processes) as pool:
            for name in presets:
                spec = get_preset(name).clip_spec("train")
                picked = [rows[i % len(rows)] for i in range(clips)]
                size = max(1, len(picked) // (8 * processes))
                chunks = [(picked[i: i + size], root, spec, backend) for i in range(0, len(picked), size)]
                pool.map(_decode_chunk, chunks[: processes])  # warm-up
                passes = []
                for rep in range(repeats):
                    before = tree_cpu_snapshot()
                    with Stopwatch() as sw:
                        counts = pool.map(_decode_chunk, chunks, chunksize=1)
                    cpu = cpu_seconds_between(before, tree_cpu_snapshot())
                    done, failed = sum(c[0] for c in counts), sum(c[1] for c in counts)
                    passes.append(DecodeRun(name, backend, processes, done, failed, sw.seconds, cpu,
                                            train_rate=(rates or {}).get(name)))
                    log(f"  {name} {backend}: pass {rep + 1}/{repeats}: {passes[-1].clips_per_s:.1f} clips/s, "
                        f"{passes[-1].cpu_ms_per_clip:.1f} CPU ms/clip, {failed} did not decode")
                runs.append(sorted(passes, key=lambda r: r.clips_per_s)[len(passes) // 2])
    return runs


def decode_table(runs: list[DecodeRun]) -> Table:
    return Table(
        ["preset", "backend", "processes", "clips", "did not decode", "clips/s", "CPU ms/clip", "GPU train clips/s",
         "decode cores at that rate"],
        [[r.preset, r.backend if r.unavailable is None else f"{r.backend} (not available)", r.processes, r.clips,
          r.failed, round(r.clips_per_s, 2), r.cpu_ms_per_clip, r.train_rate,
          None if r.cores_at_train_rate is None else round(r.cores_at_train_rate, 2)] for r in runs],
    )


def decode_notes(runs: list[DecodeRun]) -> list[str]:
    notes = []
    for r in runs:
        if r.unavailable is not None:
            notes.append(f"{r.preset} {r.backend}: not measured: {r.unavailable}")
        elif r.cores_at_train_rate is not None and r.preset.startswith("tsn"):
            verdict = "met" if r.cores_at_train_rate <= CORES_PER_GPU_GOAL else "MISSED"
            notes.append(f"target {r.preset} {r.backend}: {r.cores_at_train_rate:.2f} decode cores per GPU at "
                         f"{r.train_rate:.0f} clips/s (goal <= {CORES_PER_GPU_GOAL:g}: {verdict})")
    cpu = {r.preset: r for r in runs if r.backend == "cpu" and r.unavailable is None and r.clips}
    for r in runs:
        base = cpu.get(r.preset)
        if r.backend == "nvdec" and r.unavailable is None and r.clips and base is not None:
            notes.append(f"{r.preset}: nvdec {r.cpu_ms_per_clip:.1f} vs cpu {base.cpu_ms_per_clip:.1f} CPU ms/clip "
                         f"({base.cpu_ms_per_clip / r.cpu_ms_per_clip:.2f}x less CPU per clip)")
    return notes
