"""``k400ray bench data --encodings``: what the encoding of a prepared copy costs in decode CPU per
training clip and in bytes per video.

Training samples a few frames per video and the decoder starts at the keyframe before each, so
the keyframe interval and x264's fast-decode tuning set how much of a video every clip decodes,
and at what cost per frame (:mod:`k400ray.data.encoding`). Inputs: per source size, a few
realistic generated videos (:mod:`k400ray.bench.textured_video`: textured, moving, encoded as a
raw Kinetics file is), each re-encoded once per encoding by ``k400ray prepare``'s own encoder
(:func:`k400ray.data.prepare.prepare_video` at the short side given, re-encoding even a source
already at that size so that every row went through the same encoder); a source already at
the short side is also measured as it is, which is what ``prepare`` copied before it chose an
encoding. Every copy is decoded by the same decode-limit processes, the sets interleaved in every
repeat (:mod:`k400ray.bench.clip_cpu`). Ratios are against x264's defaults (keyframe interval
250): CPU "x lower" is the defaults' CPU per clip over the encoding's, bytes "x defaults" the
encoding's bytes per video over the defaults'.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from k400ray.bench.clip_cpu import SourceResult, measure_sources, video_row
from k400ray.bench.common import Table
from k400ray.data.encoding import X264_DEFAULTS, Encoding

DEFAULT_ENCODINGS = ("keyint250", "keyint250-fastdecode", "keyint64-fastdecode", "keyint32", "keyint32-fastdecode",
                     "keyint24-fastdecode", "keyint16", "keyint16-fastdecode", "keyint8-fastdecode")
BASELINE = X264_DEFAULTS.name
AS_IS = "source as is"
# The goal (docs/benchmarks.md): this much less decode CPU per training clip than x264's defaults ...
CPU_GOAL = {"tsn_r50_1x1x8": 2.0, "i3d_r50_32x2x1": 1.5}
BYTES_CAP = 1.6  # ... at no more than this many times their bytes per video


def _key(size: str, encoding: str) -> str:
    return f"{size} {encoding}"


@dataclass
class EncodingBench:
    short_side: int
    sizes: list[str]  # "340x256", "1920x1080"
    encodings: list[str]  # names, BASELINE among them
    bytes_per_video: dict[str, float]  # by _key(size, encoding); AS_IS too where measured
    results: list[SourceResult]

    def presets(self) -> list[str]:
        return list(dict.fromkeys(r.preset for r in self.results))

    def rows_of(self, size: str) -> list[str]:
        """The encodings measured on ``size``: the source as it is first where it was measured."""
        return [e for e in (AS_IS, *self.encodings) if _key(size, e) in self.bytes_per_video]

    def cpu_ms(self, preset: str, size: str, encoding: str) -> float:
        return next(r.cpu_ms_per_clip for r in self.results if r.preset == preset and r.source == _key(size, encoding))

    def cpu_gain(self, preset: str, size: str, encoding: str) -> float:
        """How many times less CPU per clip than x264's defaults."""
        return self.cpu_ms(preset, size, BASELINE) / self.cpu_ms(preset, size, encoding)

    def bytes_ratio(self, size: str, encoding: str) -> float:
        return self.bytes_per_video[_key(size, encoding)] / self.bytes_per_video[_key(size, BASELINE)]

    def meets_goal(self, size: str, encoding: str) -> bool | None:
        """The CPU goal of every goal preset at no more than BYTES_CAP the bytes; None when a goal
        preset was not measured."""
        if any(p not in self.presets() for p in CPU_GOAL):
            return None
        return (self.bytes_ratio(size, encoding) <= BYTES_CAP
                and all(self.cpu_gain(p, size, encoding) >= goal for p, goal in CPU_GOAL.items()))

    def table(self) -> Table:
        presets = self.presets()
        rows = []
        for size in self.sizes:
            for name in self.rows_of(size):
                enc = X264_DEFAULTS if name == AS_IS else Encoding.from_name(name)
                goal = "-" if name in (AS_IS, BASELINE) else self.meets_goal(size, name)
                row = [size, "source as is (x264 medium)" if name == AS_IS else name, enc.keyframe_interval,
                       enc.fast_decode, round(self.bytes_per_video[_key(size, name)] / 1000, 1),
                       round(self.bytes_ratio(size, name), 2)]
                for p in presets:
                    row += [round(self.cpu_ms(p, size, name), 1), round(self.cpu_gain(p, size, name), 2)]
                rows.append(row + [goal])
        columns = ["source", "encoding", "keyint", "fast decode", "kB/video", "bytes x defaults"]
        for p in presets:
            columns += [f"{p} CPU ms/clip", f"{p} x lower"]
        return Table(columns + ["goal"], rows)

    def goal_lines(self, default: str) -> list[str]:
        """Per source: which encodings meet the goal, and whether ``default`` (prepare's) does."""
        rule = (" and ".join(f"{p} >= {g:g}x" for p, g in CPU_GOAL.items())
                + f" lower CPU per clip than {BASELINE} at <= {BYTES_CAP:g}x its bytes")
        lines = []
        for size in self.sizes:
            if self.meets_goal(size, BASELINE) is None:
                lines.append(f"goal {size}: not checked (needs {', '.join(CPU_GOAL)})")
                continue
            met = [e for e in self.encodings if e != BASELINE and self.meets_goal(size, e)]
            lines.append(f"goal {size} ({rule}): " + (f"met by {', '.join(self._summary(size, e) for e in met)}"
                                                      if met else "MISSED by every encoding"))
            if default in self.encodings:
                verdict = "met" if self.meets_goal(size, default) else "MISSED"
                lines.append(f"prepare's default on {size}: {self._summary(size, default)}: goal {verdict}")
        return lines

    def _summary(self, size: str, encoding: str) -> str:
        gains = ", ".join(f"{p} {self.cpu_gain(p, size, encoding):.2f}x" for p in self.presets())
        return f"{encoding} ({gains} lower CPU, {self.bytes_ratio(size, encoding):.2f}x bytes)"

    def record(self, size: str, *, record: str, source: str, default: str) -> dict:
        """The ``decode_by_encoding`` entry of ``k400ray/tune/records/measured.json`` for one source."""
        encodings = {}
        for name in self.encodings:
            enc = Encoding.from_name(name)
            encodings[name] = {
                "keyframe_interval": enc.keyframe_interval, "fast_decode": enc.fast_decode,
                "bytes_per_video": round(self.bytes_per_video[_key(size, name)]),
                "cpu_ms_per_clip": {p: round(self.cpu_ms(p, size, name), 1) for p in self.presets()},
            }
        return {"record": record, "source": source, "encodings": encodings, "default": default}


def encoded_copies(sources: list[Path], encoding: Encoding, short_side: int) -> list[Path]:
    """Each source re-encoded by ``k400ray prepare``'s encoder (made once, beside the sources)."""
    from k400ray.data.prepare import prepare_video

    copies = []
    for src in sources:
        out = src.parent / f"{encoding.name}-short{short_side}" / src.name
        if not out.is_file():
            outcome = prepare_video(src, out, short_side, encoding, always_encode=True)
            if outcome.status != "prepared":
                raise RuntimeError(f"{src}: prepare failed: {outcome.reason or outcome.status}")
        copies.append(out)
    return copies


def run_encoding_bench(
    sizes: list[tuple[int, int]],
    *,
    encodings: list[Encoding],
    presets: list[str],
    work_dir: str | Path,
    short_side: int = 256,
    videos: int = 2,
    seconds: float = 10.0,
    fps: int = 30,
    clips: int = 64,
    repeats: int = 3,
    processes: int | None = None,
    log=print,
) -> EncodingBench:
    """CPU per training clip and bytes per video of every encoding on every source size."""
    from k400ray.bench.textured_video import textured_videos

    if BASELINE not in [e.name for e in encodings]:
        encodings = [X264_DEFAULTS, *encodings]  # every ratio is against it
    processes = processes or os.cpu_count() or 1
    names = [f"{w}x{h}" for w, h in sizes]
    rows, sizes_of = {}, {}
    for name, size in zip(names, sizes):
        log(f"  inputs {name}: {videos} textured videos of {seconds:g} s at {fps} fps and their copies")
        raw = textured_videos(work_dir, size, videos=videos, seconds=seconds, fps=fps)
        sets = {AS_IS: raw} if min(size) <= short_side else {}
        sets.update({enc.name: encoded_copies(raw, enc, short_side) for enc in encodings})
        for enc_name, paths in sets.items():
            rows[_key(name, enc_name)] = [video_row(p, i) for i, p in enumerate(paths)]
            sizes_of[_key(name, enc_name)] = statistics.fmean(p.stat().st_size for p in paths)
    results = measure_sources(rows, presets=presets, clips=clips, repeats=repeats, processes=processes, log=log)
    return EncodingBench(short_side, names, [e.name for e in encodings], sizes_of, results)
