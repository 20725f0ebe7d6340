"""CPU time per training clip on several sets of videos, measured side by side: what ``bench data
--raw-sizes`` (raw vs prepared) and ``bench data --encodings`` (one prepared copy per encoding)
compare.

Every set is decoded by the same decode-limit processes (:class:`~k400ray.bench.data.DecodeLimit`:
``decode_row`` / ``load_clip``, decord with one thread, the preset's train transforms), its rows
cycled to ``clips`` per pass. The CPU time of the process tree comes from ``/proc``: on a machine
shared with other users wall time moves with their load, CPU time barely does. Passes interleave
the sets in rotating order in every repeat, so whatever else runs hits them alike; the median of
the repeats is reported. No Ray.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from k400ray.bench.common import cpu_seconds_between, median, tree_cpu_snapshot
from k400ray.bench.data import DecodeLimit, Row


@dataclass
class SourceResult:
    """The passes of one preset on one set of videos."""

    preset: str
    source: str  # the set's name: "1920x1080", "prepared 1920x1080", "340x256 keyint16-fastdecode", ...
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


def video_row(path: Path, i: int) -> Row:
    """An index-like row (absolute path) for one video, from its probe."""
    from k400ray.data.probe import probe_video

    probe = probe_video(path)
    return {"video_id": f"v{i}", "path": str(path), "label": 0, "num_frames": probe.num_frames, "width": probe.width,
            "height": probe.height, "decoder": probe.decoder}


def measure_sources(sources: dict[str, list[Row]], *, presets: list[str], clips: int, repeats: int, processes: int,
                    log=print) -> list[SourceResult]:
    """CPU per training clip of every preset on every set of rows: one warm-up pass per set
    (spawn, import, first-call costs), then ``repeats`` passes of ``clips`` clips per set."""
    from k400ray.presets import get_preset

    limit = DecodeLimit(processes, "")  # rows hold absolute paths
    results = []
    try:
        for preset_name in presets:
            spec = get_preset(preset_name).clip_spec("train")
            mine = {src: SourceResult(preset_name, src, clips) for src in sources}
            order = list(sources)
            for src in order:
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
    return results


def _cycled(rows: list[Row], n: int) -> list[Row]:
    return [dict(rows[i % len(rows)], video_id=f"{rows[i % len(rows)]['video_id']}~{i}") for i in range(n)]
