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
import math
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SPLITS = ("train", "val")
CSV_HEADER = ("label", "youtube_id", "time_start", "time_end", "split")
CORRUPT_KINDS = ("empty", "truncated", "random_bytes", "audio_only", "undecodable_tail")
"""Broken-file kinds in the order ``corrupt=N`` cycles through them.

- ``empty``: 0 bytes.
- ``truncated``: the first 30% of a good file; the index (``moov``, written last) is gone.
- ``random_bytes``: 1-9 KB of noise named .mp4 (real broken K400 files are often 0-9 KB).
- ``audio_only``: a valid mp4 with one AAC stream and no video.
- ``undecodable_tail``: a valid index (``moov`` first) declaring every frame, but the second half
  of the frame data zeroed: ``len(VideoReader)`` says ``frames`` while only about half decode.
"""

_ID_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"))
_CHUNK_PIXELS = 1 << 21  # frames rendered per numpy batch: keeps temporaries to ~10s of MB
_MAX_START_S = 600
_NOISE_FRAMES = 7  # prime, so the noise period never lines up with 8-segment sampling

# Sub-stream keys: every random draw comes from default_rng([seed, key, ...]) so that a video's
# content depends only on (seed, split, pair, index) and never on how many other videos exist.
_KEY_IDS, _KEY_TIMES, _KEY_VIDEO, _KEY_NOISE, _KEY_EXTRA, _KEY_CORRUPT, _KEY_MISSING = range(7)


# --------------------------------------------------------------------------------------------
# Vocabulary: shapes x colours x motions -> class names
# --------------------------------------------------------------------------------------------


def _polygon(normals: Sequence[tuple[float, float]]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Gauge of a convex polygon given its unit outward normals (apothem 1 -> gauge 1 on the edge).

    A gauge is positively homogeneous (g(k*x) = k*g(x)): its level sets are scaled copies of the
    shape, which is what the zoom motion draws, and with unit normals ``g - r`` is a signed
    distance in pixels, which is what the anti-aliasing needs.
    """

    def gauge(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        out = dx * normals[0][0] + dy * normals[0][1]
        for nx, ny in normals[1:]:
            np.maximum(out, dx * nx + dy * ny, out=out)
        return out

    return gauge


_S3 = math.sqrt(3) / 2
_R2 = math.sqrt(0.5)
_PLUS_ASPECT = 2.75  # arm length / arm half-width


def _plus_gauge(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    ax, ay = np.abs(dx), np.abs(dy)
    return np.minimum(np.maximum(ax, ay * _PLUS_ASPECT), np.maximum(ax * _PLUS_ASPECT, ay))


def _plus_sdf(dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Union of two bars; unlike ``_plus_gauge - r`` its gradient is 1, so edges anti-alias evenly."""
    ax, ay = np.abs(dx), np.abs(dy)
    w = r / _PLUS_ASPECT
    return np.minimum(np.maximum(ax - r, ay - w), np.maximum(ax - w, ay - r))


@dataclass(frozen=True)
class _Shape:
    name: str
    gauge: Callable[[np.ndarray, np.ndarray], np.ndarray]
    scale: float  # the shape of "radius" r is gauge <= scale * r (sizes chosen for similar areas)
    sdf: Callable[[np.ndarray, np.ndarray, float], np.ndarray] | None = None

    def signed_distance(self, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
        if self.sdf is not None:
            return self.sdf(dx, dy, r * self.scale)
        return self.gauge(dx, dy) - r * self.scale


# All shapes are symmetric under a left-right flip (see module docstring).
_SHAPES = (
    _Shape("square", _polygon([(1, 0), (-1, 0), (0, 1), (0, -1)]), 0.9),
    # A name with double quotes: real K400 labels carry quotes, the CSV writer must escape them.
    _Shape('"plus" sign', _plus_gauge, 1.15, _plus_sdf),
    _Shape("disk", lambda dx, dy: np.hypot(dx, dy), 1.0),
    _Shape("triangle", _polygon([(0, 1), (-_S3, -0.5), (_S3, -0.5)]), 0.75),
    _Shape("diamond", _polygon([(_R2, _R2), (-_R2, _R2), (_R2, -_R2), (-_R2, -_R2)]), 0.9),
)

# Saturated colours: each has a channel >= 200, the background stays <= ~100 (object always visible).
_COLOURS = (
    ("red", (220, 40, 40)),
    ("green", (40, 200, 60)),
    ("blue", (60, 100, 235)),
    ("yellow", (230, 220, 50)),
    ("magenta", (215, 50, 205)),
    ("cyan", (50, 215, 225)),
    ("orange", (245, 140, 30)),
    ("white", (235, 235, 235)),
    ("purple", (150, 70, 225)),
    ("pink", (245, 140, 180)),
    ("lime", (170, 240, 80)),
)


@dataclass(frozen=True)
class _Motion:
    kind: str
    verb: str
    directions: tuple[str, str]  # (phase increasing, phase decreasing)


_MOTIONS = (
    _Motion("vertical", "sliding", ("top to bottom", "bottom to top")),
    _Motion("slanted", "drifting", ("diagonally downward", "diagonally upward")),
    _Motion("mirror", "mirroring", ("moving apart", "moving together")),
    _Motion("zoom", "zooming", ("outward", "inward")),
)

MOTION_KINDS = tuple(m.kind for m in _MOTIONS)
MAX_PAIRS = len(_MOTIONS) * len(_SHAPES) * len(_COLOURS)


def _shape_key(shape: _Shape) -> str:
    """The shape's one-word name for arguments ("plus" for the '"plus" sign')."""
    return shape.name.replace('"', "").split()[0]


SHAPE_KINDS = tuple(_shape_key(s) for s in _SHAPES)
COLOUR_NAMES = tuple(name for name, _ in _COLOURS)


@dataclass(frozen=True)
class _Vocabulary:
    """The motions, shapes and colours that direction pairs are made of (by default all of them)."""

    motions: tuple[_Motion, ...] = _MOTIONS
    shapes: tuple[_Shape, ...] = _SHAPES
    colours: tuple[tuple[str, tuple[int, int, int]], ...] = _COLOURS

    @property
    def max_pairs(self) -> int:
        return len(self.motions) * len(self.shapes) * len(self.colours)


def _pick(kind: str, names: Sequence[str] | None, items: tuple, key: Callable) -> tuple:
    """``items`` whose ``key`` is in ``names``, in the order of ``names`` (all of them for None)."""
    if names is None:
        return items
    by_name = {key(item): item for item in items}
    if not names or len(set(names)) != len(names) or any(n not in by_name for n in names):
        raise ValueError(f"{kind} must be distinct names out of {', '.join(by_name)}, got {list(names)}")
    return tuple(by_name[n] for n in names)


def _vocabulary(motions: Sequence[str] | None = None, shapes: Sequence[str] | None = None,
                colours: Sequence[str] | None = None) -> _Vocabulary:
    """The vocabulary restricted to the motion kinds, shapes and colours named (``MOTION_KINDS``,
    ``SHAPE_KINDS``, ``COLOUR_NAMES``; None: all).

    Why a choice: what pairs are made of decides how fast a toy model learns the direction. A
    run that must learn in minutes (the demo) keeps to one motion, one solid shape and bright
    colours, so that every pair asks the same question (up or down?) of alike-looking objects
    and the model learns it once for all pairs. The numbers of motions and shapes must stay
    coprime for ``_pair_spec``'s enumeration.
    """
    vocab = _Vocabulary(_pick("motions", motions, _MOTIONS, lambda m: m.kind),
                        _pick("shapes", shapes, _SHAPES, _shape_key),
                        _pick("colours", colours, _COLOURS, lambda c: c[0]))
    if math.gcd(len(vocab.motions), len(vocab.shapes)) != 1:
        raise ValueError(f"the numbers of motions ({len(vocab.motions)}) and shapes ({len(vocab.shapes)}) "
                         "must be coprime, so that every combination gets a pair")
    return vocab


def max_pairs(motions: Sequence[str] | None = None, shapes: Sequence[str] | None = None,
              colours: Sequence[str] | None = None) -> int:
    """How many distinct direction pairs there are with these motion kinds, shapes and colours."""
    return _vocabulary(motions, shapes, colours).max_pairs


@dataclass(frozen=True)
class _PairSpec:
    motion: _Motion
    shape: _Shape
    colour_name: str
    colour: tuple[int, int, int]

    def label(self, direction: int) -> str:
        return f"{self.motion.verb} {self.colour_name} {self.shape.name} ({self.motion.directions[direction]})"


def _pair_spec(index: int, vocab: _Vocabulary = _Vocabulary()) -> _PairSpec:
    """The ``index``-th (motion, shape, colour) combination, enumerated so that neighbours differ.

    The numbers of motions M and shapes S are coprime (4 and 5 by default), so ``j -> (j % M,
    j % S)`` visits every (motion, shape) once per block of M*S; the colour shifts by one per
    block. The first min(M, S) pairs therefore differ in all three attributes, and all
    ``vocab.max_pairs`` are distinct (with one motion and one shape: one colour per pair).
    """
    if not 0 <= index < vocab.max_pairs:
        raise ValueError(f"pair index {index} outside [0, {vocab.max_pairs})")
    period = len(vocab.motions) * len(vocab.shapes)
    j, block = index % period, index // period
    name, rgb = vocab.colours[(j + block) % len(vocab.colours)]
    return _PairSpec(vocab.motions[j % len(vocab.motions)], vocab.shapes[j % len(vocab.shapes)], name, rgb)


def class_names(num_classes: int, motions: Sequence[str] | None = None,
                shapes: Sequence[str] | None = None, colours: Sequence[str] | None = None) -> list[str]:
    """Class names in generation order: pair p gives classes 2p (phase forward) and 2p+1 (reversed).

    An odd count adds one unpaired class (the forward direction of pair ``num_classes // 2``).
    The class index used for training is the position in the *sorted* list, as for K400.
    ``motions``, ``shapes``, ``colours``: what pairs are made of (None: all, see ``_vocabulary``).
    """
    vocab = _vocabulary(motions, shapes, colours)
    if not 1 <= num_classes <= 2 * vocab.max_pairs:
        raise ValueError(f"num_classes must be in [1, {2 * vocab.max_pairs}], got {num_classes}")
    return [_pair_spec(c // 2, vocab).label(c % 2) for c in range(num_classes)]


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


_RADIUS = (0.12, 0.16)  # object radius, as a fraction of the short side


@dataclass(frozen=True)
class _VideoParams:
    """Per-video draws. Drawn without knowing the direction, so both classes share the distribution."""

    background: tuple[float, float, float]
    gradient: float  # amplitude of a static linear shading, in grey levels
    gradient_angle: float
    colour: tuple[float, float, float]
    radius: float  # pixels
    travel: float  # periods covered over the whole video
    phase: float  # in periods, uniform in [0, 1)
    x0: float  # pixels, meaning depends on the motion (column, start column, or mirror axis)
    y0: float
    drift: int  # +-1, horizontal drift direction of the slanted motion
    noise: float  # std of per-pixel Gaussian noise
    copies: int = 1  # sliding / drifting objects side by side, ``width / copies`` apart (not drawn)


def _draw_params(
    rng: np.random.Generator, spec: _PairSpec, width: int, height: int, travel: tuple[float, float], *,
    copies: int = 1,
) -> _VideoParams:
    side = min(width, height)
    base = rng.uniform(30, 80)
    mirror_axis = width / 2 + rng.uniform(-0.05, 0.05) * width
    return _VideoParams(
        background=tuple(float(base + rng.uniform(-15, 15)) for _ in range(3)),
        gradient=float(rng.uniform(0, 15)),
        gradient_angle=float(rng.uniform(0, 2 * math.pi)),
        colour=tuple(float(np.clip(c + rng.uniform(-15, 15), 0, 255)) for c in spec.colour),
        # Object about 1/4 of the short side across: still ~15 px after resize to short side 64
        # and a crop that may cut a third of the frame.
        radius=float(rng.uniform(*_RADIUS) * side),
        travel=float(rng.uniform(*travel)),
        phase=float(rng.uniform(0, 1)),
        x0=float(mirror_axis if spec.motion.kind in ("mirror", "zoom") else rng.uniform(0.3, 0.7) * width),
        y0=float(rng.uniform(0.35, 0.65) * height),
        drift=int(rng.choice((-1, 1))),
        noise=float(rng.uniform(1.0, 4.0)),
        copies=copies,
    )


def max_copies(width: int, height: int) -> int:
    """How many objects fit side by side without touching: the widest shape at the largest radius,
    on both sides of its centre, plus a gap of 2% of the short side."""
    extent = 2 * max(shape.scale for shape in _SHAPES) * _RADIUS[1] + 0.02
    return max(1, int(width // (extent * min(width, height))))


def _wrap(delta: np.ndarray, period: float) -> np.ndarray:
    """Signed offset on a circle of ``period`` pixels, in [-period/2, period/2)."""
    return (delta + period / 2) % period - period / 2


def _coverage(sdf: np.ndarray) -> np.ndarray:
    """Anti-aliased fill from a signed distance in pixels: 1-pixel ramp, so sub-pixel motion is smooth."""
    return np.clip(0.5 - sdf, 0.0, 1.0)


def _alpha(
    spec: _PairSpec, p: _VideoParams, phase: np.ndarray, xs: np.ndarray, ys: np.ndarray, width: int, height: int
) -> np.ndarray:
    """Object opacity ``(K, H, W)`` float32 for phases ``(K,)`` (in periods, any real value)."""
    ph = (phase % 1.0).astype(np.float32)[:, None, None]
    shape, kind = spec.shape, spec.motion.kind
    if kind in ("vertical", "slanted"):
        dy = _wrap(ys - ph * height, height)
        if kind == "vertical":
            # copies: the nearest of the objects spaced width/copies apart (wrapping at the edges)
            dx = xs - p.x0 if p.copies == 1 else _wrap(xs - p.x0, width / p.copies)
        else:  # 45 degrees in pixels; drift sign drawn per video so the class is flip-symmetric.
            # Unwrapped phase: x has period width, not height, and must not jump when y wraps.
            x = (p.x0 + p.drift * phase * height) % width
            dx = _wrap(xs - x.astype(np.float32)[:, None, None], width / p.copies)
        return _coverage(shape.signed_distance(dx, dy, p.radius))
    if kind == "mirror":
        # Two copies at axis +- d, d = phase * width/2: they move apart (phase up) or together.
        # Opacity goes to 0 at d = 0 and d = width/2, so the jump when the phase wraps is invisible.
        d = ph * (width / 2)
        dy = ys - p.y0
        left = shape.signed_distance(xs - (p.x0 - d), dy, p.radius)
        right = shape.signed_distance(xs - (p.x0 + d), dy, p.radius)
        fade = np.clip(3.0 * np.sin(np.pi * ph), 0.0, 1.0)
        return _coverage(np.minimum(left, right)) * fade
    if kind == "zoom":
        # Concentric outlines at radii r * 2**(k + phase): a zoom that repeats every octave.
        g = np.maximum(shape.gauge(xs - p.x0, ys - height / 2), 1e-3)
        u = np.log2(g / p.radius) - ph
        # Bands are g*ln2/2 px wide: ramp of ~1 px at their edges, none where they get too thin
        # to draw (inner fade) or leave the frame (outer fade).
        ramp = g * (math.log(2) / (2 * math.pi))
        bands = np.clip(0.5 + np.cos(2 * np.pi * u) * ramp, 0.0, 1.0)
        outer = 0.45 * min(width, height)
        envelope = np.clip((outer - g) / 2, 0, 1) * np.clip((g - 6.0) / 2, 0, 1)
        return bands * envelope
    raise ValueError(f"unknown motion {kind!r}")


def _render(
    spec: _PairSpec,
    p: _VideoParams,
    times: np.ndarray,
    *,
    frames: int,
    width: int,
    height: int,
    noise_key: Sequence[int],
) -> Iterator[np.ndarray]:
    """Yield uint8 RGB chunks ``(K, H, W, 3)`` for the frame indices ``times`` (in that order).

    Frame ``t`` is a pure function of (params, t), noise included, so rendering ``times[::-1]``
    gives exactly the time-reversed video (the twin).
    """
    xs = (np.arange(width, dtype=np.float32) + 0.5)[None, None, :]
    ys = (np.arange(height, dtype=np.float32) + 0.5)[None, :, None]
    ca, sa = math.cos(p.gradient_angle), math.sin(p.gradient_angle)
    shade = p.gradient * ((xs[0] - width / 2) * ca + (ys[0] - height / 2) * sa) / max(width, height)
    background = np.asarray(p.background, np.float32) + shade[..., None]  # (H, W, 3)
    colour = np.asarray(p.colour, np.float32)
    speed = p.travel / max(frames - 1, 1)
    # A short bank of noise frames indexed by t % len: drawing fresh Gaussian noise for every
    # frame was half the render time at 340x256, and the noise only has to look like sensor noise.
    noise = np.random.default_rng(list(noise_key)).standard_normal(
        (min(_NOISE_FRAMES, frames), height, width, 3), dtype=np.float32
    )
    noise *= p.noise
    chunk = max(1, _CHUNK_PIXELS // (width * height))
    for start in range(0, len(times), chunk):
        ts = np.asarray(times[start : start + chunk])
        alpha = _alpha(spec, p, p.phase + speed * ts, xs, ys, width, height)[..., None]
        out = background + alpha * (colour - background)
        out += noise[ts % len(noise)]
        np.clip(out + 0.5, 0, 255, out=out)
        yield out.astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Encoding and broken files
# --------------------------------------------------------------------------------------------


def _encode(
    path: Path,
    chunks: Iterator[np.ndarray],
    *,
    width: int,
    height: int,
    fps: Fraction,
    preset: str,
    faststart: bool = False,
) -> list[int]:
    """H.264 mp4 at constant ``fps``; returns packet sizes in file order (for ``undecodable_tail``).

    One encoder thread: x264 output then depends only on the input, so the same seed gives the
    same bytes.
    """
    container = av.open(str(path), "w", format="mp4", options={"movflags": "faststart"} if faststart else {})
    try:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"preset": preset, "crf": "23", "threads": "1"}
        sizes: list[int] = []
        index = 0
        for chunk in chunks:
            for rgb in chunk:
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = index
                index += 1
                for packet in stream.encode(frame):
                    sizes.append(packet.size)
                    container.mux(packet)
        for packet in stream.encode():
            sizes.append(packet.size)
            container.mux(packet)
    finally:
        container.close()
    return sizes


def _write_audio_only(path: Path, rng: np.random.Generator) -> None:
    """A playable mp4 with one second of quiet AAC noise and no video stream."""
    container = av.open(str(path), "w", format="mp4")
    try:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        samples = stream.codec_context.frame_size or 1024
        for i in range(16000 // samples + 1):
            data = (rng.standard_normal((1, samples)) * 0.01).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(data, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * samples
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()


def _mdat_payload_offset(data: bytes) -> int:
    """Byte offset of the first payload byte of the top-level ``mdat`` box (ISO BMFF box walk)."""
    pos = 0
    while pos + 8 <= len(data):
        size, header = int.from_bytes(data[pos : pos + 4], "big"), 8
        if size == 1:  # 64-bit largesize follows the type
            size, header = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:  # box runs to the end of the file
            size = len(data) - pos
        if data[pos + 4 : pos + 8] == b"mdat":
            return pos + header
        if size < header:
            break
        pos += size
    raise ValueError("no mdat box found")


def _scratch(path: Path) -> Path:
    """Where to encode the good file a broken one is cut from: outside train/ and val/, so an
    interrupted run never leaves an extra video in a split folder."""
    return path.parent.parent / f".synth-tmp-{path.name}"


def _write_corrupt(
    path: Path, kind: str, rng: np.random.Generator, render: Callable[[], Iterator[np.ndarray]], encode_kw: dict
) -> None:
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random_bytes":
        path.write_bytes(rng.bytes(int(rng.integers(1024, 9 * 1024))))
    elif kind == "audio_only":
        _write_audio_only(path, rng)
    elif kind == "truncated":
        tmp = _scratch(path)
        _encode(tmp, render(), **encode_kw)
        data = tmp.read_bytes()
        tmp.unlink()
        path.write_bytes(data[: max(1, int(len(data) * 0.3))])
    elif kind == "undecodable_tail":
        # moov first (faststart) so the index survives; then zero the packets of the second half.
        # Zeros are not a decodable H.264 slice: decoders stop at the first of them.
        tmp = _scratch(path)
        sizes = _encode(tmp, render(), faststart=True, **encode_kw)
        data = bytearray(tmp.read_bytes())
        tmp.unlink()
        cut = _mdat_payload_offset(bytes(data)) + sum(sizes[: max(1, len(sizes) // 2)])
        data[cut:] = bytes(len(data) - cut)
        path.write_bytes(bytes(data))
    else:
        raise ValueError(f"unknown corrupt kind {kind!r}")


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
            The demo takes one motion, one shape and bright colours (``_vocabulary``).
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
    vocab = _vocabulary(motions, shapes, colours)
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
        spec = _pair_spec(c // 2, vocab)
        params = _draw_params(np.random.default_rng(list(key)), spec, width, height, travel, copies=copies)
        times = np.arange(frames)
        if c % 2:  # the reversed twin of the pair draw
            times = times[::-1]
        return lambda: _render(
            spec, params, times, frames=frames, width=width, height=height, noise_key=(*key, _KEY_NOISE)
        )

    for n, (c, split, key) in enumerate(good):
        r = row(n, split, names[c])
        _encode(out / split / r.filename, video_source(c, key)(), **encode_kw)
        rows.append(r)
        counts["videos"][split] += 1

    corrupt_files = []
    for (i, kind, split), c in zip(corrupt_plan, corrupt_labels):
        r = row(len(good) + i, split, names[c])
        path = out / split / r.filename
        source = video_source(c, (seed, _KEY_CORRUPT, i))
        _write_corrupt(path, kind, np.random.default_rng([seed, _KEY_CORRUPT, i, 1]), source, encode_kw)
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
