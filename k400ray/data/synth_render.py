"""Rendering of the synthetic set: shapes, colours and motions, the direction pairs they make,
and the frames of one video (see :mod:`k400ray.data.synth` for why the set looks like this).

Every frame is a pure function of the video's drawn parameters and its index, so rendering the
indices backwards gives the exact time reversal (the pair's other class).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

_CHUNK_PIXELS = 1 << 21  # frames rendered per numpy batch: keeps temporaries to ~10s of MB
_NOISE_FRAMES = 7  # prime, so the noise period never lines up with 8-segment sampling


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
SHAPES = (
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
MAX_PAIRS = len(_MOTIONS) * len(SHAPES) * len(_COLOURS)


def _shape_key(shape: _Shape) -> str:
    """The shape's one-word name for arguments ("plus" for the '"plus" sign')."""
    return shape.name.replace('"', "").split()[0]


SHAPE_KINDS = tuple(_shape_key(s) for s in SHAPES)
COLOUR_NAMES = tuple(name for name, _ in _COLOURS)


@dataclass(frozen=True)
class Vocabulary:
    """The motions, shapes and colours that direction pairs are made of (by default all of them)."""

    motions: tuple[_Motion, ...] = _MOTIONS
    shapes: tuple[_Shape, ...] = SHAPES
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


def vocabulary(motions: Sequence[str] | None = None, shapes: Sequence[str] | None = None,
                colours: Sequence[str] | None = None) -> Vocabulary:
    """The vocabulary restricted to the motion kinds, shapes and colours named (``MOTION_KINDS``,
    ``SHAPE_KINDS``, ``COLOUR_NAMES``; None: all).

    Why a choice: what pairs are made of decides how fast a toy model learns the direction. A
    run that must learn in minutes (the demo) keeps to one motion, one solid shape and bright
    colours, so that every pair asks the same question (up or down?) of alike-looking objects
    and the model learns it once for all pairs. The numbers of motions and shapes must stay
    coprime for ``pair_spec``'s enumeration.
    """
    vocab = Vocabulary(_pick("motions", motions, _MOTIONS, lambda m: m.kind),
                        _pick("shapes", shapes, SHAPES, _shape_key),
                        _pick("colours", colours, _COLOURS, lambda c: c[0]))
    if math.gcd(len(vocab.motions), len(vocab.shapes)) != 1:
        raise ValueError(f"the numbers of motions ({len(vocab.motions)}) and shapes ({len(vocab.shapes)}) "
                         "must be coprime, so that every combination gets a pair")
    return vocab


def max_pairs(motions: Sequence[str] | None = None, shapes: Sequence[str] | None = None,
              colours: Sequence[str] | None = None) -> int:
    """How many distinct direction pairs there are with these motion kinds, shapes and colours."""
    return vocabulary(motions, shapes, colours).max_pairs


@dataclass(frozen=True)
class PairSpec:
    motion: _Motion
    shape: _Shape
    colour_name: str
    colour: tuple[int, int, int]

    def label(self, direction: int) -> str:
        return f"{self.motion.verb} {self.colour_name} {self.shape.name} ({self.motion.directions[direction]})"


def pair_spec(index: int, vocab: Vocabulary = Vocabulary()) -> PairSpec:
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
    return PairSpec(vocab.motions[j % len(vocab.motions)], vocab.shapes[j % len(vocab.shapes)], name, rgb)


def class_names(num_classes: int, motions: Sequence[str] | None = None,
                shapes: Sequence[str] | None = None, colours: Sequence[str] | None = None) -> list[str]:
    """Class names in generation order: pair p gives classes 2p (phase forward) and 2p+1 (reversed).

    An odd count adds one unpaired class (the forward direction of pair ``num_classes // 2``).
    The class index used for training is the position in the *sorted* list, as for K400.
    ``motions``, ``shapes``, ``colours``: what pairs are made of (None: all, see ``vocabulary``).
    """
    vocab = vocabulary(motions, shapes, colours)
    if not 1 <= num_classes <= 2 * vocab.max_pairs:
        raise ValueError(f"num_classes must be in [1, {2 * vocab.max_pairs}], got {num_classes}")
    return [pair_spec(c // 2, vocab).label(c % 2) for c in range(num_classes)]


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


_RADIUS = (0.12, 0.16)  # object radius, as a fraction of the short side


@dataclass(frozen=True)
class VideoParams:
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


def draw_params(
    rng: np.random.Generator, spec: PairSpec, width: int, height: int, travel: tuple[float, float], *,
    copies: int = 1,
) -> VideoParams:
    side = min(width, height)
    base = rng.uniform(30, 80)
    mirror_axis = width / 2 + rng.uniform(-0.05, 0.05) * width
    return VideoParams(
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
    extent = 2 * max(shape.scale for shape in SHAPES) * _RADIUS[1] + 0.02
    return max(1, int(width // (extent * min(width, height))))


def _wrap(delta: np.ndarray, period: float) -> np.ndarray:
    """Signed offset on a circle of ``period`` pixels, in [-period/2, period/2)."""
    return (delta + period / 2) % period - period / 2


def _coverage(sdf: np.ndarray) -> np.ndarray:
    """Anti-aliased fill from a signed distance in pixels: 1-pixel ramp, so sub-pixel motion is smooth."""
    return np.clip(0.5 - sdf, 0.0, 1.0)


def object_alpha(
    spec: PairSpec, p: VideoParams, phase: np.ndarray, xs: np.ndarray, ys: np.ndarray, width: int, height: int
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


def render(
    spec: PairSpec,
    p: VideoParams,
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
        alpha = object_alpha(spec, p, p.phase + speed * ts, xs, ys, width, height)[..., None]
        out = background + alpha * (colour - background)
        out += noise[ts % len(noise)]
        np.clip(out + 0.5, 0, 255, out=out)
        yield out.astype(np.uint8)
