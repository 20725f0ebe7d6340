"""``k400ray bench data --raw-sizes``: what decoding a training clip costs at source resolution
against the same videos after ``k400ray prepare`` (short side 256).

The CVDF copy of Kinetics-400 is at source resolution; training decodes each sampled frame at
that size, then scales it to short side 256. The ratio of CPU time per training clip, raw over
prepared, is what a cluster that skipped ``prepare`` pays in decode cores
(``k400ray.tune.cost`` uses it for a dataset at 720p or 1080p).

Inputs: per size, a few short generated videos (x264 ``medium``: CABAC, B-frames, deblocking,
as YouTube-derived files; cached in the work folder), and their prepared copies made by
:func:`k400ray.data.prepare.prepare_video`, the encoder of ``k400ray prepare``. Both are decoded
by the bench's decode-limit processes (``load_clip``, the preset's train transforms), the same
rows cycled to ``clips`` per pass, and the CPU time of the process tree is read from ``/proc``
(wall time on a shared machine moves with other users' load; CPU time barely does). No Ray.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from k400ray.bench.clip_cpu import SourceResult, measure_sources, video_row
from k400ray.bench.common import Table
from k400ray.bench.data import Row

PREPARED = "prepared"


@dataclass
class ResolutionBench:
    short_side: int
    sizes: list[str]
    results: list[SourceResult]

    def get(self, preset: str, source: str) -> SourceResult:
        return next(r for r in self.results if r.preset == preset and r.source == source)

    def ratio(self, preset: str, size: str) -> float:
        """CPU per clip of the raw size over that of its prepared copy."""
        return self.get(preset, size).cpu_ms_per_clip / self.get(preset, f"{PREPARED} {size}").cpu_ms_per_clip

    def table(self) -> Table:
        rows = []
        for preset in dict.fromkeys(r.preset for r in self.results):
            for size in self.sizes:
                raw, prep = self.get(preset, size), self.get(preset, f"{PREPARED} {size}")
                rows.append([preset, size, round(raw.cpu_ms_per_clip, 1), round(raw.clips_per_core_s, 2),
                             round(prep.cpu_ms_per_clip, 1), round(prep.clips_per_core_s, 2),
                             round(self.ratio(preset, size), 2)])
        return Table(["preset", "raw size", "raw CPU ms/clip", "raw clips/s per core",
                      f"prepared (short side {self.short_side}) CPU ms/clip", "prepared clips/s per core",
                      "raw / prepared"], rows)


def generated_pair(work_dir: str | Path, size: tuple[int, int], *, videos: int, seconds: float, fps: int,
                   short_side: int) -> tuple[list[Row], list[Row]]:
    """Rows (absolute paths) of generated videos at ``size`` and of their prepared copies (the
    default encoding of ``k400ray prepare``)."""
    from k400ray.data.encoding import Encoding
    from k400ray.data.prepare import prepare_video
    from k400ray.data.synth import generate_synthetic

    frames = max(2, round(seconds * fps))
    base = Path(work_dir) / f"raw{videos}-{frames}f-{fps}fps-{size[0]}x{size[1]}-medium"
    raw, prepared = base / "data", base / f"prepared-{short_side}-{Encoding().name}"
    done = base / ".complete"
    if not done.is_file():
        generate_synthetic(raw, num_classes=2, videos_per_class=(math.ceil(videos / 2), 0), frames=frames, fps=fps,
                           size=size, preset="medium", overwrite=True)
        done.write_text("")
    paths = sorted(p for p in (raw / "train").rglob("*.mp4"))[:videos]
    pairs = []
    for path in paths:
        out = prepared / path.relative_to(raw)
        if not out.is_file():
            outcome = prepare_video(path, out, short_side)
            if outcome.status not in ("prepared", "copied"):
                raise RuntimeError(f"{path}: prepare failed: {outcome.reason}")
        pairs.append((path, out))
    return [video_row(p, i) for i, (p, _) in enumerate(pairs)], [video_row(q, i) for i, (_, q) in enumerate(pairs)]


def run_resolution_bench(
    sizes: list[tuple[int, int]],
    *,
    presets: list[str],
    work_dir: str | Path,
    short_side: int = 256,
    videos: int = 2,
    seconds: float = 3.0,
    fps: int = 30,
    clips: int = 16,
    repeats: int = 2,
    processes: int | None = None,
    log=print,
) -> ResolutionBench:
    """CPU per training clip on raw and prepared copies, per preset and size; sources interleave
    in every repeat so that load from other users hits them alike."""
    processes = processes or os.cpu_count() or 1
    sources: dict[str, list[Row]] = {}
    names = [f"{w}x{h}" for w, h in sizes]
    for name, size in zip(names, sizes):
        log(f"  inputs {name}: {videos} generated videos of {seconds:g} s and their prepared copies")
        raw, prepared = generated_pair(work_dir, size, videos=videos, seconds=seconds, fps=fps, short_side=short_side)
        sources[name], sources[f"{PREPARED} {name}"] = raw, prepared
    results = measure_sources(sources, presets=presets, clips=clips, repeats=repeats, processes=processes, log=log)
    return ResolutionBench(short_side, names, results)
