"""Realistic benchmark sources: textured, moving video encoded as a YouTube-derived Kinetics file is.

What decoding costs depends on the picture. The synthetic set (:mod:`k400ray.data.synth`) draws
flat shapes on flat backgrounds: x264 codes most of each frame as skipped blocks, the decoder
has almost nothing to do, and a comparison of encodings (keyframe interval, fast-decode tuning)
made on it says little about real video. Here every frame is textured at all scales: 1/f
("pink") noise, the amplitude spectrum of natural images, coloured, with its contrast varying
across the picture as real scenes have flat and busy regions. A camera pans and zooms over it
(sub-pixel motion everywhere: every block needs motion compensation and a residual), a few
textured objects move on their own paths in front of it, and light grain changes every frame,
as sensor noise does.

Encoded as the raw Kinetics files are: libx264 ``medium``, CRF 23, x264's defaults otherwise
(keyframe interval 250, scene cuts, B-frames, CABAC, deblocking), yuv420p, through
:func:`k400ray.data.synth_encode.encode`. The same seed renders the same frames; x264 ``medium``
does not always give the same bytes for them (a few tenths of a percent apart).
A 10-s 340x256 video is about 0.45 MB, in the range of real 340x256 Kinetics clips (a few
hundred kB); docs/benchmarks.md records the size of what a benchmark ran on.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

TEXTURE_SCALE = 1.8  # background texture side / frame side: room for the camera to pan and zoom
LUMA_EXPONENT = 1.3  # amplitude ~ 1/f**1.3: a little smoother than 1/f, as optics and motion blur make it
CHROMA_EXPONENT = 1.6  # colour varies over larger areas than brightness
GRAIN = 1.5  # standard deviation of the per-frame luma grain, in 8-bit levels
OBJECTS = 3


def pink_noise(shape: tuple[int, int], rng: np.random.Generator, exponent: float) -> np.ndarray:
    """A zero-mean, unit-variance float32 field whose amplitude spectrum falls as 1/f**exponent."""
    white = rng.standard_normal(shape, dtype=np.float32)
    spectrum = np.fft.rfft2(white)
    radius = np.hypot(np.fft.fftfreq(shape[0])[:, None], np.fft.rfftfreq(shape[1])[None, :])
    radius[0, 0] = 1.0
    spectrum /= radius**exponent
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=shape).astype(np.float32)
    return field / max(float(field.std()), 1e-6)


def _texture(height: int, width: int, rng: np.random.Generator):
    """A coloured natural-image-like texture (PIL RGB image)."""
    from PIL import Image

    contrast = 0.35 + np.abs(pink_noise((height, width), rng, 2.0))  # busy and flat regions
    luma = pink_noise((height, width), rng, LUMA_EXPONENT) * contrast
    hue_a, hue_b = (pink_noise((height, width), rng, CHROMA_EXPONENT) for _ in range(2))
    base = rng.uniform(0.3, 0.6, 3).astype(np.float32)
    rgb = (base + 0.16 * luma[..., None] + 0.07 * hue_a[..., None] * np.float32([1.0, -0.5, -0.5])
           + 0.07 * hue_b[..., None] * np.float32([-0.3, 0.8, -0.5]))
    return Image.fromarray((np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8))


def _moving_object(frame_height: int, rng: np.random.Generator):
    """(texture, soft elliptic mask, path phases, path frequencies in Hz, path amplitudes)."""
    from PIL import Image

    r = max(2, int(frame_height * rng.uniform(0.12, 0.22)))
    yy, xx = np.mgrid[-r:r, -r:r] + 0.5
    edge = np.hypot(xx / rng.uniform(0.7, 1.0), yy) - 0.95 * r
    mask = Image.fromarray((np.clip(0.5 - edge, 0.0, 1.0) * 255).astype(np.uint8))
    return (_texture(2 * r, 2 * r, rng), mask, rng.uniform(0, 2 * np.pi, 2), rng.uniform(0.15, 0.5, 2),
            rng.uniform(0.2, 0.45, 2))


def render(size: tuple[int, int], frames: int, fps: int, seed: int) -> Iterator[np.ndarray]:
    """The frames of one video, one (1, H, W, 3) uint8 array at a time (what ``encode`` takes)."""
    from PIL import Image

    width, height = size
    rng = np.random.default_rng(seed)
    tex_w, tex_h = int(width * TEXTURE_SCALE), int(height * TEXTURE_SCALE)
    background = _texture(tex_h, tex_w, rng)
    objects = [_moving_object(height, rng) for _ in range(OBJECTS)]
    phase = rng.uniform(0, 2 * np.pi, 3)
    for i in range(frames):
        t = i / fps
        zoom = 1.15 + 0.12 * np.sin(2 * np.pi * t / 9 + phase[0])
        cx = tex_w / 2 + 0.22 * tex_w * np.sin(2 * np.pi * t / 14 + phase[1])
        cy = tex_h / 2 + 0.18 * tex_h * np.sin(2 * np.pi * t / 11 + phase[2])
        # Output pixel (x, y) shows texture point (cx + (x - W/2) / zoom, cy + (y - H/2) / zoom).
        affine = (1 / zoom, 0, cx - width / 2 / zoom, 0, 1 / zoom, cy - height / 2 / zoom)
        img = background.transform((width, height), Image.AFFINE, affine, resample=Image.BILINEAR)
        for texture, mask, ph, freq, amp in objects:
            x = width / 2 + amp[0] * width * np.sin(2 * np.pi * freq[0] * t + ph[0]) - texture.width / 2
            y = height / 2 + amp[1] * height * np.sin(2 * np.pi * freq[1] * t + ph[1]) - texture.height / 2
            img.paste(texture, (int(x), int(y)), mask)
        pixels = np.asarray(img, dtype=np.float32) + rng.normal(0, GRAIN, (height, width, 1)).astype(np.float32)
        yield np.clip(pixels, 0, 255).astype(np.uint8)[None]


def write_textured_video(path: str | Path, size: tuple[int, int], *, frames: int, fps: int, seed: int) -> int:
    """One textured video at ``path`` (x264 ``medium``, CRF 23, x264 defaults); its size in bytes."""
    from k400ray.data.synth_encode import encode

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    encode(path, render(size, frames, fps, seed), width=size[0], height=size[1], fps=Fraction(fps), preset="medium")
    return path.stat().st_size


def textured_videos(work_dir: str | Path, size: tuple[int, int], *, videos: int, seconds: float, fps: int) -> list[Path]:
    """``videos`` textured videos at ``size`` (seeds 0, 1, ...), made once in the work folder and
    reused while the parameters match."""
    frames = max(2, round(seconds * fps))
    base = Path(work_dir) / f"textured{videos}-{frames}f-{fps}fps-{size[0]}x{size[1]}-medium"
    paths = [base / f"video{i:02d}.mp4" for i in range(videos)]
    done = base / ".complete"
    if not done.is_file():
        for seed, path in enumerate(paths):
            write_textured_video(path, size, frames=frames, fps=fps, seed=seed)
        done.write_text("")
    return paths
