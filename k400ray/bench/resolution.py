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
from dataclasses import dataclass, field
from pathlib import Path

from k400ray.bench.common import Table, cpu_seconds_between, median, tree_cpu_snapshot
from k400ray.bench.data import DecodeLimit, Row

PREPARED = "prepared"


@dataclass
class ResolutionResult:
    preset: str
    source: str  # "1920x1080", ..., or "prepared 1920x1080"
    clips: int
    cpu_s: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def cpu_ms_per_clip(self) -> float:
        return 1000 * median([c for c in self.cpu_s if c == c]) / self.clips

    @property
    def clips_per_core_s(self) -> float:
        """Clips one core decodes per second: 1000 / CPU ms per clip."""
        return 1000 / self.cpu_ms_per_clip


@dataclass
class ResolutionBench:
    short_side: int
    sizes: list[str]
    results: list[ResolutionResult]

    def get(self, preset: str, source: str) -> ResolutionResult:
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
    """Rows (absolute paths) of generated videos at ``size`` and of their prepared copies."""
    from k400ray.data.prepare import prepare_video
    from k400ray.data.synth import generate_synthetic

    frames = max(2, round(seconds * fps))
    base = Path(work_dir) / f"raw{videos}-{frames}f-{fps}fps-{size[0]}x{size[1]}-medium"
    raw, prepared = base / "data", base / f"prepared-{short_side}"
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
    return [_row(p, i) for i, (p, _) in enumerate(pairs)], [_row(q, i) for i, (_, q) in enumerate(pairs)]


def _row(path: Path, i: int) -> Row:
    from k400ray.data.probe import probe_video

    probe = probe_video(path)
    return {"video_id": f"v{i}", "path": str(path), "label": 0, "num_frames": probe.num_frames, "width": probe.width,
            "height": probe.height, "decoder": probe.decoder}


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
    from k400ray.presets import get_preset

    processes = processes or os.cpu_count() or 1
    sources: dict[str, list[Row]] = {}
    names = [f"{w}x{h}" for w, h in sizes]
    for name, size in zip(names, sizes):
        log(f"  inputs {name}: {videos} generated videos of {seconds:g} s and their prepared copies")
        raw, prepared = generated_pair(work_dir, size, videos=videos, seconds=seconds, fps=fps, short_side=short_side)
        sources[name], sources[f"{PREPARED} {name}"] = raw, prepared
    limit = DecodeLimit(processes, "")  # rows hold absolute paths
    results = []
    try:
        for preset_name in presets:
            spec = get_preset(preset_name).clip_spec("train")
            mine = {src: ResolutionResult(preset_name, src, clips) for src in sources}
            order = list(sources)
            for src in order:  # warm-up: spawn, import, first-call costs
                limit.run(_cycled(sources[src], processes), spec)
            for rep in range(repeats):
                for src in order[rep % len(order):] + order[: rep % len(order)]:
                    rows = _cycled(sources[src], clips)
                    before = tree_cpu_snapshot()
                    got, seconds_taken, _ = limit.run(rows, spec)
                    if got != clips:
                        raise RuntimeError(f"{src}: decoded {got} of {clips} clips")
                    mine[src].cpu_s.append(cpu_seconds_between(before, tree_cpu_snapshot()))
                    mine[src].seconds.append(seconds_taken)
                    log(f"  {preset_name} {src}: pass {rep + 1}/{repeats} "
                        f"{1000 * mine[src].cpu_s[-1] / clips:.1f} CPU ms/clip")
            results.extend(mine.values())
    finally:
        limit.close()
    return ResolutionBench(short_side, names, results)


def _cycled(rows: list[Row], n: int) -> list[Row]:
    return [dict(rows[i % len(rows)], video_id=f"{rows[i % len(rows)]['video_id']}~{i}") for i in range(n)]
