"""A synthetic dataset laid out exactly like the CVDF / Academic Torrents copy of Kinetics-400.

Why it exists: the whole pipeline (index, decode, Ray Data, train, tune) must run and be tested
without the real 450 GB, and the data must make the one claim of the result sheet we can check on
2 CPU cores: a temporal model (TSM, I3D) beats a per-frame-average model (TSN) when the label is
the direction of motion.

Layout (``docs/reference.md``, "Kinetics-400 on disk")::

    OUT_DIR/train/{youtube_id}_{start:06d}_{end:06d}.mp4     H.264, yuv420p, constant fps
    OUT_DIR/val/...
    OUT_DIR/annotations/train.csv, val.csv                  label,youtube_id,time_start,time_end,split

Classes come in pairs that differ only in the direction of motion ("sliding red square (top to
bottom)" / "... (bottom to top)"). The two videos of a pair are time reversals of each other
("twins": same background, object, size, noise, with frame t of one equal to frame T-1-t of the
other), so the *set* of frames of a pair is identical and a model that averages per-frame
evidence cannot beat chance on it, while the order of the frames gives the label away. Every
motion is a constant-speed walk of a phase on a circle (wrap-around position, log-periodic zoom)
from a uniformly random start, so even without the twins any single frame has the same
distribution in both classes. Different pairs differ in shape, colour and kind of motion, so TSN
still tells pairs apart: on paired classes it tops out at about 50%, a temporal model near 100%.

Every kind of motion is also symmetric under a left-right flip, because the train pipelines flip
clips with probability 0.5 (``TrainCrop.flip_ratio``): a "left to right" class would be turned
into its own partner half of the time and become unlearnable for every model. Motions are
vertical, vertical-with-random-horizontal-drift, two mirrored copies moving apart / together
about the vertical mid-line, and concentric outlines zooming outward / inward.

``corrupt`` and ``missing`` add the failure cases a real copy has (0-byte files, truncated files,
garbage, audio-only files, files whose header promises more frames than decode; CSV rows without
a file), listed in the CSVs like good videos.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from k400ray.data.synth_encode import encode
from k400ray.data.synth_faults import CORRUPT_KINDS, write_corrupt
from k400ray.data.synth_render import (  # noqa: F401 - class_names, max_pairs, the kinds: part of this module's API
    COLOUR_NAMES,
    MAX_PAIRS,
    MOTION_KINDS,
    SHAPE_KINDS,
    class_names,
    draw_params,
    max_copies,
    max_pairs,
    pair_spec,
    render,
    vocabulary,
)

SPLITS = ("train", "val")
CSV_HEADER = ("label", "youtube_id", "time_start", "time_end", "split")
_ID_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"))
_MAX_START_S = 600

# Sub-stream keys: every random draw comes from default_rng([seed, key, ...]) so that a video's
# content depends only on (seed, split, pair, index) and never on how many other videos exist.
_KEY_IDS, _KEY_TIMES, _KEY_VIDEO, _KEY_NOISE, _KEY_EXTRA, _KEY_CORRUPT, _KEY_MISSING = range(7)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorruptFile:
    path: Path
    kind: str  # one of CORRUPT_KINDS
    split: str
    label: str


@dataclass(frozen=True)
class SynthSummary:
    """What ``generate_synthetic`` wrote. Counts are per split (``"train"``, ``"val"``).

    ``classes`` is sorted (class index = position, as for K400); ``pairs`` lists the two names
    of every direction pair (an odd class count leaves the last class out of ``pairs``).
    Corrupt files and missing rows come on top of ``videos``.
    """

    out_dir: Path
    classes: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    videos: dict[str, int]
    corrupt: dict[str, int]
    missing: dict[str, int]
    corrupt_files: tuple[CorruptFile, ...]
    missing_files: tuple[Path, ...]

    def csv_path(self, split: str) -> Path:
        return self.out_dir / "annotations" / f"{split}.csv"

    def describe(self) -> str:
        """A few lines for the CLI."""
        lines = [
            f"synthetic Kinetics-shaped set in {self.out_dir}: "
            f"{len(self.classes)} classes, {len(self.pairs)} direction pairs"
        ]
        for split in SPLITS:
            lines.append(
                f"  {split}: {self.videos[split]} videos + {self.corrupt[split]} corrupt files, "
                f"{self.missing[split]} CSV rows without a file ({self.csv_path(split)})"
            )
        if self.corrupt_files:
            kinds = sorted({c.kind for c in self.corrupt_files})
            lines.append(f"  corrupt kinds: {', '.join(kinds)}")
        return "\n".join(lines)


@dataclass
class _Row:
    split: str
    label: str
    youtube_id: str
    start: int
    end: int

    @property
    def filename(self) -> str:
        return f"{self.youtube_id}_{self.start:06d}_{self.end:06d}.mp4"


def _youtube_ids(rng: np.random.Generator, count: int) -> list[str]:
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < count:
        candidate = "".join(_ID_ALPHABET[rng.integers(0, len(_ID_ALPHABET), size=11)])
        if candidate not in seen:
            seen.add(candidate)
            ids.append(candidate)
    return ids


def _prepare_out_dir(out: Path, overwrite: bool) -> None:
    ours = [out / s for s in SPLITS] + [out / "annotations"]
    busy = [d for d in ours if d.exists() and any(d.iterdir())]
    if busy and not overwrite:
        raise FileExistsError(f"{busy[0]} is not empty; pass overwrite=True to replace the synthetic set")
    for d in busy:
        shutil.rmtree(d)
    for d in ours:
        d.mkdir(parents=True, exist_ok=True)


def generate_synthetic(
    out_dir: str | Path,
    *,
    num_classes: int = 10,
    videos_per_class: tuple[int, int] = (16, 4),
    frames: int = 48,
    fps: int | Fraction = 12,
    size: tuple[int, int] = (80, 64),
    seed: int = 0,
    corrupt: int = 0,
    missing: int = 0,
    travel: tuple[float, float] = (1.5, 2.0),
    motions: Sequence[str] | None = None,
    shapes: Sequence[str] | None = None,
    colours: Sequence[str] | None = None,
    copies: int = 1,
    preset: str = "ultrafast",
    overwrite: bool = False,
) -> SynthSummary:
    """Write a Kinetics-400-shaped synthetic set under ``out_dir`` (see the module docstring).

    Args:
        num_classes: pairs are ``num_classes // 2``; an odd count adds one unpaired class.
        videos_per_class: good videos per class in (train, val).
        frames, fps: every video has exactly ``frames`` frames at constant ``fps``; the file name
            spans ``round(frames / fps)`` seconds like a real 10 s clip.
        size: (width, height), both even (yuv420p).
        seed: every random draw derives from it; same arguments, same bytes.
        corrupt: broken files added on top, cycling through ``CORRUPT_KINDS``, alternating splits.
        missing: CSV rows without a file, alternating splits.
        travel: range of the distance moved over the whole video, in periods of the motion:
            the frame height (sliding), half the width (mirroring), one octave of scale (zooming).
            TSM compares frames ``frames/8`` apart: travel/8 of a period (0.19-0.25), below the half
            period where the direction would become ambiguous, yet large enough for toy models to
            learn the direction in ~20 epochs (at 0.55-0.75 toy TSM plateaued near 70%).
        motions, shapes, colours: what the pairs are made of, in order (names in ``MOTION_KINDS``,
            ``SHAPE_KINDS``, ``COLOUR_NAMES``; None: all; motions and shapes in coprime numbers).
            The demo takes one motion, one shape and bright colours (``synth_render.vocabulary``).
        copies: objects per frame for the sliding and drifting motions, side by side
            ``width / copies`` apart, all moving alike (the mirroring and zooming figures already
            span the frame and stay single). More of the frame moves, so a toy model sees the
            direction in more places of every clip; at most as many as fit without touching
            (3 at the default 80x64).
        preset: x264 preset (speed only; every preset keeps yuv420p and constant fps).
        overwrite: replace an existing ``train/``, ``val/``, ``annotations/`` under ``out_dir``.
    """
    width, height = size
    if width % 2 or height % 2 or min(width, height) < 16:
        raise ValueError(f"size must be even and at least 16x16 (yuv420p), got {size}")
    if frames < 2:
        raise ValueError(f"frames must be >= 2 to show motion, got {frames}")
    if len(videos_per_class) != 2 or min(videos_per_class) < 0:
        raise ValueError(f"videos_per_class must be (train, val) counts, got {videos_per_class}")
    if min(corrupt, missing, seed) < 0:
        raise ValueError("corrupt, missing and seed must be >= 0")
    if not 0 < travel[0] <= travel[1] < 4:
        raise ValueError(f"travel must satisfy 0 < low <= high < 4 (periods), got {travel}")
    if not 1 <= copies <= max_copies(width, height):
        raise ValueError(f"copies must be in [1, {max_copies(width, height)}] at {width}x{height} "
                         f"(objects side by side must not touch), got {copies}")
    fps = Fraction(fps)
    vocab = vocabulary(motions, shapes, colours)
    names = class_names(num_classes, motions, shapes, colours)
    out = Path(out_dir)
    _prepare_out_dir(out, overwrite)

    duration = max(1, round(frames / fps))
    encode_kw = dict(width=width, height=height, fps=fps, preset=preset)
    num_pairs = num_classes // 2

    # (class index, split, key) for every good video; twins share the key of their pair draw.
    good: list[tuple[int, str, tuple[int, ...]]] = []
    for s, split in enumerate(SPLITS):
        for k in range(videos_per_class[s]):
            for c in range(num_classes):
                good.append((c, split, (seed, _KEY_VIDEO, s, c // 2, k)))
    corrupt_plan = [(i, CORRUPT_KINDS[i % len(CORRUPT_KINDS)], SPLITS[i % 2]) for i in range(corrupt)]
    label_rng = np.random.default_rng([seed, _KEY_CORRUPT])
    corrupt_labels = [int(c) for c in label_rng.integers(0, num_classes, size=corrupt)]
    missing_rng = np.random.default_rng([seed, _KEY_MISSING])
    missing_labels = [int(c) for c in missing_rng.integers(0, num_classes, size=missing)]

    total = len(good) + corrupt + missing
    ids = _youtube_ids(np.random.default_rng([seed, _KEY_IDS]), total)
    starts = np.random.default_rng([seed, _KEY_TIMES]).integers(0, _MAX_START_S, size=total)

    def row(n: int, split: str, label: str) -> _Row:
        start = int(starts[n])
        return _Row(split, label, ids[n], start, start + duration)

    rows: list[_Row] = []
    counts = {name: dict.fromkeys(SPLITS, 0) for name in ("videos", "corrupt", "missing")}

    def video_source(c: int, key: tuple[int, ...]) -> Callable[[], Iterator[np.ndarray]]:
        spec = pair_spec(c // 2, vocab)
        params = draw_params(np.random.default_rng(list(key)), spec, width, height, travel, copies=copies)
        times = np.arange(frames)
        if c % 2:  # the reversed twin of the pair draw
            times = times[::-1]
        return lambda: render(
            spec, params, times, frames=frames, width=width, height=height, noise_key=(*key, _KEY_NOISE)
        )

    for n, (c, split, key) in enumerate(good):
        r = row(n, split, names[c])
        encode(out / split / r.filename, video_source(c, key)(), **encode_kw)
        rows.append(r)
        counts["videos"][split] += 1

    corrupt_files = []
    for (i, kind, split), c in zip(corrupt_plan, corrupt_labels):
        r = row(len(good) + i, split, names[c])
        path = out / split / r.filename
        source = video_source(c, (seed, _KEY_CORRUPT, i))
        write_corrupt(path, kind, np.random.default_rng([seed, _KEY_CORRUPT, i, 1]), source, encode_kw)
        rows.append(r)
        corrupt_files.append(CorruptFile(path, kind, split, names[c]))
        counts["corrupt"][split] += 1

    missing_files = []
    for i, c in enumerate(missing_labels):
        split = SPLITS[i % 2]
        r = row(len(good) + corrupt + i, split, names[c])
        rows.append(r)
        missing_files.append(out / split / r.filename)
        counts["missing"][split] += 1

    for split in SPLITS:
        with open(out / "annotations" / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(CSV_HEADER)
            # Sorted by label like the official CSVs: broken and missing entries sit among good ones.
            for r in sorted((r for r in rows if r.split == split), key=lambda r: (r.label, r.youtube_id)):
                writer.writerow((r.label, r.youtube_id, r.start, r.end, r.split))

    return SynthSummary(
        out_dir=out,
        classes=tuple(sorted(names)),
        pairs=tuple((names[2 * p], names[2 * p + 1]) for p in range(num_pairs)),
        videos=counts["videos"],
        corrupt=counts["corrupt"],
        missing=counts["missing"],
        corrupt_files=tuple(corrupt_files),
        missing_files=tuple(missing_files),
    )
