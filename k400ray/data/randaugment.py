"""MMAction2 0.x's "randaugment" (``Imgaug(transforms='default')``) rebuilt on torchvision ops.

The reference's randaugment rows ran imgaug's ``SomeOf(n=2)`` over 15 ops at level 9/10, not
torchvision's ``RandAugment``. This module reproduces that op list and its level-derived
parameters (``op_table``) with ``torchvision.transforms.v2.functional`` on uint8 clips, so the
randaugment numbers we report are produced by the augmentation the reference used.

Shapes: a clip is a uint8 tensor ``(T, C, H, W)`` with C = 3 (RGB); the output has the same
shape and dtype. One draw (which ops, their signs, the Cutout position) per clip, applied to
every frame, as the reference's ``to_deterministic()`` call does.

Where we depart from the reference, and why:
- The reference fixes the sign of shear/translate/rotate once, when the pipeline is built
  (``random.choice([-1, 1])`` at construction), so a whole run only ever rotates one way.
  We draw each sign per clip from the clip's generator: same magnitudes, no run-wide bias,
  and a run is still reproducible from its seed.
- Shear uses torchvision's convention (offset ``tan(angle) * y``). imgaug built its matrix with
  scikit-image's ``AffineTransform``, whose shear convention depends on the scikit-image
  version (older ones: offset ``sin(angle) * y`` and the sheared axis scaled by ``cos``); at
  15.5 degrees the two differ by about 4% of the offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

MAX_LEVEL = 10  # the reference's magnitude scale: level = magnitude / 10
CUTOUT_FILL = 128  # imgaug Cutout's default constant fill (mid-grey), which the reference keeps
_BILINEAR = F.InterpolationMode.BILINEAR  # imgaug's affine default (order=1), black fill (cval=0)


@dataclass(frozen=True)
class AugOp:
    """One entry of the op list: ``value`` is the level-derived parameter, in ``unit``.

    ``signed`` ops get a random sign per clip; ``value`` is their magnitude.
    """

    name: str
    value: float | None
    unit: str
    signed: bool = False


def op_table(magnitude: int = 9) -> tuple[AugOp, ...]:
    """The reference's 15 ops with their parameters at ``magnitude`` (0..10), in its order.

    The formulas are MMAction2 0.x ``Imgaug.default_transforms``' (level = magnitude / 10).
    Kept as data so docs, tests and the applier all read the same numbers.
    """
    if not 0 <= magnitude <= MAX_LEVEL:
        raise ValueError(f"randaugment magnitude must be in 0..{MAX_LEVEL}, got {magnitude}")
    level = magnitude / MAX_LEVEL
    enhance = 1.8 * level + 0.1
    return (
        AugOp("ShearX", 17.19 * level, "degrees", signed=True),
        AugOp("ShearY", 17.19 * level, "degrees", signed=True),
        AugOp("TranslateX", 0.2 * level, "fraction of width", signed=True),
        AugOp("TranslateY", 0.2 * level, "fraction of height", signed=True),
        AugOp("Rotate", 30 * level, "degrees", signed=True),
        AugOp("Posterize", max(1, int(4 * level)), "bits kept"),
        AugOp("Solarize", 256 * level, "threshold (pixels >= int(threshold) inverted)"),
        AugOp("Color", enhance, "saturation factor"),
        AugOp("Contrast", enhance, "contrast factor"),
        AugOp("Brightness", enhance, "brightness factor"),
        AugOp("Sharpness", enhance, "sharpness factor"),
        AugOp("Autocontrast", None, "per-channel min/max stretch"),
        AugOp("Equalize", None, "per-channel histogram equalisation"),
        AugOp("Invert", None, "255 - x"),
        AugOp("Cutout", 0.2 * level, "square side, fraction of height"),
    )


def _affine(clip: torch.Tensor, *, angle: float = 0.0, translate=(0.0, 0.0), shear=(0.0, 0.0)) -> torch.Tensor:
    return F.affine(clip, angle=angle, translate=list(translate), scale=1.0, shear=list(shear),
                    interpolation=_BILINEAR, fill=0)


def cutout(clip: torch.Tensor, side: float, *, center_x: float, center_y: float) -> torch.Tensor:
    """imgaug's square Cutout: side ``side * H`` pixels in both directions, centred at the
    relative position (``center_x``, ``center_y``) in [0, 1], clipped to the frame (so a box
    near an edge is partly outside it), filled with ``CUTOUT_FILL``."""
    h, w = clip.shape[-2:]
    half = side * h / 2
    x1, x2 = int(center_x * w - half), int(center_x * w + half)
    y1, y2 = int(center_y * h - half), int(center_y * h + half)
    x1, x2 = min(max(x1, 0), w), min(max(x2, 0), w)
    y1, y2 = min(max(y1, 0), h), min(max(y2, 0), h)
    out = clip.clone()
    out[..., y1:y2, x1:x2] = CUTOUT_FILL
    return out


def apply_op(clip: torch.Tensor, op: AugOp, *, sign: int = 1, cutout_center: tuple[float, float] = (0.5, 0.5)) -> torch.Tensor:
    """Apply one op of ``op_table`` to every frame of ``clip`` (``sign`` only for signed ops)."""
    h, w = clip.shape[-2:]
    v = op.value * sign if op.signed else op.value
    appliers = {
        "ShearX": lambda: _affine(clip, shear=(v, 0.0)),
        "ShearY": lambda: _affine(clip, shear=(0.0, v)),
        "TranslateX": lambda: _affine(clip, translate=(v * w, 0.0)),
        "TranslateY": lambda: _affine(clip, translate=(0.0, v * h)),
        "Rotate": lambda: F.rotate(clip, v, interpolation=_BILINEAR, fill=0),
        "Posterize": lambda: F.posterize(clip, int(v)),
        # imgaug builds its lookup table from int(threshold): 230.4 inverts values >= 230
        "Solarize": lambda: F.solarize(clip, int(v)),
        "Color": lambda: F.adjust_saturation(clip, v),
        "Contrast": lambda: F.adjust_contrast(clip, v),
        "Brightness": lambda: F.adjust_brightness(clip, v),
        "Sharpness": lambda: F.adjust_sharpness(clip, v),
        "Autocontrast": lambda: F.autocontrast(clip),
        "Equalize": lambda: F.equalize(clip),
        "Invert": lambda: F.invert(clip),
        "Cutout": lambda: cutout(clip, v, center_x=cutout_center[0], center_y=cutout_center[1]),
    }
    return appliers[op.name]()


@dataclass(frozen=True)
class Draw:
    """What one clip gets: indices into ``op_table`` (applied in table order, as imgaug's
    ``SomeOf`` with ``random_order=False`` does), a sign per chosen op, the Cutout centre."""

    ops: tuple[int, ...]
    signs: tuple[int, ...]
    cutout_center: tuple[float, float]


def draw(num_ops: int, rng: np.random.Generator, *, table_size: int = 15) -> Draw:
    """Pick ``num_ops`` distinct ops and their random parts from ``rng`` only."""
    if not 1 <= num_ops <= table_size:
        raise ValueError(f"randaugment num_ops must be in 1..{table_size}, got {num_ops}")
    ops = tuple(sorted(int(i) for i in rng.choice(table_size, size=num_ops, replace=False)))
    signs = tuple(int(s) for s in rng.choice([-1, 1], size=num_ops))
    center = (float(rng.random()), float(rng.random()))
    return Draw(ops=ops, signs=signs, cutout_center=center)


def _numpy_rng(generator: np.random.Generator | torch.Generator | None) -> np.random.Generator:
    if isinstance(generator, np.random.Generator):
        return generator
    if generator is None:
        return np.random.default_rng()
    return np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))


def mmaction_randaugment(
    clip: torch.Tensor,
    *,
    num_ops: int = 2,
    magnitude: int = 9,
    generator: np.random.Generator | torch.Generator | None = None,
) -> torch.Tensor:
    """MMAction2 0.x randaugment on a uint8 ``(T, 3, H, W)`` clip: ``num_ops`` of the 15 ops at
    ``magnitude``/10, one draw for the whole clip. Same ``generator`` state, same output."""
    if clip.ndim != 4 or clip.dtype != torch.uint8 or clip.shape[1] != 3:
        raise ValueError(f"expected a uint8 (T, 3, H, W) clip, got {tuple(clip.shape)} {clip.dtype}")
    table = op_table(magnitude)
    d = draw(num_ops, _numpy_rng(generator), table_size=len(table))
    for idx, sign in zip(d.ops, d.signs):
        clip = apply_op(clip, table[idx], sign=sign, cutout_center=d.cutout_center)
    return clip.contiguous()
