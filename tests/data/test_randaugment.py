"""MMAction2 0.x randaugment (imgaug ``SomeOf(2)`` of 15 ops at level 0.9) on uint8 clips:
each op's effect at its level, two ops per draw, one draw per clip, one result per seed."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from torchvision.transforms.v2 import functional as F

from k400ray.data import randaugment as ra
from k400ray.data.randaugment import CUTOUT_FILL, apply_op, cutout, draw, mmaction_randaugment, op_table
from k400ray.data.transforms import rand_augment

TABLE = {op.name: op for op in op_table(9)}
SPACES = Path(__file__).resolve().parents[2] / "search_spaces"


def _clip(t=2, h=64, w=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (t, 3, h, w), dtype=torch.uint8, generator=g)


def _dot(h=101, w=101, y=30, x=70):
    """A black clip with one white 3x3 square centred at (y, x)."""
    clip = torch.zeros(1, 3, h, w, dtype=torch.uint8)
    clip[..., y - 1 : y + 2, x - 1 : x + 2] = 255
    return clip


def _centroid(clip):
    m = clip[0, 0].float()
    ys, xs = torch.meshgrid(torch.arange(m.shape[0]), torch.arange(m.shape[1]), indexing="ij")
    return float((m * ys).sum() / m.sum()), float((m * xs).sum() / m.sum())


# --- the op table: the reference's numbers at magnitude 9 ------------------------------------

def test_op_table_is_the_reference_list_at_level_0_9():
    assert list(TABLE) == [
        "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Posterize", "Solarize", "Color",
        "Contrast", "Brightness", "Sharpness", "Autocontrast", "Equalize", "Invert", "Cutout",
    ]
    assert "Identity" not in TABLE
    assert TABLE["ShearX"].value == pytest.approx(17.19 * 0.9) == TABLE["ShearY"].value
    assert TABLE["TranslateX"].value == pytest.approx(0.18) == TABLE["TranslateY"].value
    assert TABLE["Rotate"].value == pytest.approx(27.0)
    assert TABLE["Posterize"].value == 3
    assert TABLE["Solarize"].value == pytest.approx(230.4)
    for name in ("Color", "Contrast", "Brightness", "Sharpness"):
        assert TABLE[name].value == pytest.approx(1.72)
    assert TABLE["Cutout"].value == pytest.approx(0.18)
    assert {op.name for op in TABLE.values() if op.signed} == {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}


def test_level_follows_magnitude_and_is_bounded():
    assert op_table(10)[4].value == pytest.approx(30.0)
    assert {op.name: op.value for op in op_table(0)}["Posterize"] == 1  # max(1, int(0))
    for bad in (-1, 11):
        with pytest.raises(ValueError, match="magnitude"):
            op_table(bad)


# --- each op at its level --------------------------------------------------------------------

def test_shear_x_moves_a_point_by_tan_of_the_angle_times_its_height_offset():
    for sign in (1, -1):
        y, x = _centroid(apply_op(_dot(), TABLE["ShearX"], sign=sign))
        assert y == pytest.approx(30, abs=0.1)
        # the dot is 20 rows above the centre row (50)
        assert abs(x - 70) == pytest.approx(20 * math.tan(math.radians(17.19 * 0.9)), abs=0.1)


def test_shear_y_moves_a_point_vertically_by_tan_of_the_angle():
    for sign in (1, -1):
        y, x = _centroid(apply_op(_dot(), TABLE["ShearY"], sign=sign))
        assert x == pytest.approx(70, abs=0.1)
        assert abs(y - 30) == pytest.approx(20 * math.tan(math.radians(17.19 * 0.9)), abs=0.1)


@pytest.mark.parametrize("sign", [1, -1])
def test_translate_x_shifts_by_18_percent_of_the_width(sign):
    clip = torch.arange(100, dtype=torch.uint8).repeat(2, 3, 100, 1)  # (2, 3, 100, 100), x-ramp
    out = apply_op(clip, TABLE["TranslateX"], sign=sign)
    if sign == 1:
        assert torch.equal(out[..., 18:], clip[..., :-18]) and out[..., :18].max() == 0
    else:
        assert torch.equal(out[..., :-18], clip[..., 18:]) and out[..., -18:].max() == 0


def test_translate_y_shifts_by_18_percent_of_the_height():
    clip = _dot(h=200, w=101, y=100, x=50)
    shifts = {round(_centroid(apply_op(clip, TABLE["TranslateY"], sign=s))[0] - 100) for s in (1, -1)}
    assert shifts == {36, -36}


def test_rotate_is_torchvision_rotate_by_27_degrees():
    clip = _clip()
    for sign in (1, -1):
        expected = F.rotate(clip, 27.0 * sign, interpolation=F.InterpolationMode.BILINEAR, fill=0)
        assert torch.equal(apply_op(clip, TABLE["Rotate"], sign=sign), expected)
    # a point 20 px right of the centre turns 27 degrees counter-clockwise (sign +1)
    y, x = _centroid(apply_op(_dot(y=50, x=70), TABLE["Rotate"], sign=1))
    a = math.radians(27)
    assert (y, x) == (pytest.approx(50 - 20 * math.sin(a), abs=0.2), pytest.approx(50 + 20 * math.cos(a), abs=0.2))


def test_posterize_keeps_3_bits():
    clip = torch.arange(256, dtype=torch.uint8).repeat(1, 3, 256, 1)
    out = apply_op(clip, TABLE["Posterize"])
    assert torch.all(out % 32 == 0)
    assert torch.equal(out, clip & 0b11100000)


def test_solarize_inverts_from_230_up_and_keeps_the_rest():
    clip = torch.arange(256, dtype=torch.uint8).repeat(1, 3, 4, 1)
    out = apply_op(clip, TABLE["Solarize"])
    assert torch.equal(out[..., :230], clip[..., :230])
    assert torch.equal(out[..., 230:], 255 - clip[..., 230:])


def test_enhance_ops_use_factor_1_72():
    clip = _clip()
    for name, fn in (("Color", F.adjust_saturation), ("Contrast", F.adjust_contrast),
                     ("Brightness", F.adjust_brightness), ("Sharpness", F.adjust_sharpness)):
        assert torch.equal(apply_op(clip, TABLE[name]), fn(clip, 1.72)), name


def test_enhance_ops_have_the_expected_effect():
    dark = torch.randint(0, 100, (1, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    bright = apply_op(dark, TABLE["Brightness"]).float()
    assert torch.all((bright - dark.float() * 1.72).abs() <= 1)
    gray = dark[:, :1].repeat(1, 3, 1, 1)
    assert torch.equal(apply_op(gray, TABLE["Color"]), gray)  # no colour to saturate
    flat = torch.full((1, 3, 16, 16), 77, dtype=torch.uint8)
    assert torch.equal(apply_op(flat, TABLE["Sharpness"]), flat)
    assert torch.equal(apply_op(flat, TABLE["Contrast"]), flat)
    mid = torch.randint(100, 156, (1, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    ratio = apply_op(mid, TABLE["Contrast"]).float().std() / mid.float().std()
    assert ratio == pytest.approx(1.72, rel=0.05)


def test_autocontrast_equalize_invert():
    clip = torch.randint(60, 180, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    out = apply_op(clip, TABLE["Autocontrast"])
    # per channel min -> 0 and max -> 255 (torchvision's float32 scale can land on 254)
    assert torch.all(out.amin(dim=(-2, -1)) == 0) and torch.all(out.amax(dim=(-2, -1)) >= 254)
    assert torch.equal(out, F.autocontrast(clip))
    assert torch.equal(apply_op(clip, TABLE["Equalize"]), F.equalize(clip))
    assert torch.equal(apply_op(clip, TABLE["Invert"]), 255 - clip)


def test_cutout_is_one_grey_square_of_18_percent_of_the_height():
    clip = torch.zeros(2, 3, 100, 100, dtype=torch.uint8)
    out = apply_op(clip, TABLE["Cutout"], cutout_center=(0.5, 0.5))
    mask = out[0, 0] == CUTOUT_FILL
    assert CUTOUT_FILL == 128 and int(mask.sum()) == 18 * 18
    rows, cols = mask.nonzero(as_tuple=True)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (41, 58, 41, 58)
    assert torch.all(out == out[:1, :1])  # every channel and frame


def test_cutout_side_follows_the_height_and_is_clipped_at_the_border():
    wide = cutout(torch.zeros(1, 3, 50, 200, dtype=torch.uint8), 0.18, center_x=0.5, center_y=0.5)
    rows, cols = (wide[0, 0] == CUTOUT_FILL).nonzero(as_tuple=True)
    assert len(rows.unique()) == len(cols.unique()) == 9  # square: 0.18 * 50 in both directions
    corner = cutout(torch.zeros(1, 3, 100, 100, dtype=torch.uint8), 0.18, center_x=0.0, center_y=0.0)
    assert int((corner[0, 0] == CUTOUT_FILL).sum()) == 9 * 9


# --- the draw: two ops, one draw per clip, one result per seed -------------------------------

def test_a_draw_is_two_distinct_ops_in_table_order():
    seen = set()
    for seed in range(300):
        d = draw(2, np.random.default_rng(seed))
        assert len(d.ops) == 2 and d.ops[0] < d.ops[1] and set(d.signs) <= {-1, 1}
        assert all(0 <= c < 1 for c in d.cutout_center)
        seen.update(d.ops)
    assert seen == set(range(15))
    for bad in (0, 16):
        with pytest.raises(ValueError, match="num_ops"):
            draw(bad, np.random.default_rng(0))


def test_exactly_two_ops_are_applied(monkeypatch):
    calls = []
    real = ra.apply_op

    def spy(clip, op, **kw):
        calls.append(op.name)
        return real(clip, op, **kw)

    monkeypatch.setattr(ra, "apply_op", spy)
    for seed in range(20):
        calls.clear()
        mmaction_randaugment(_clip(), num_ops=2, magnitude=9, generator=np.random.default_rng(seed))
        assert len(calls) == 2 and len(set(calls)) == 2


def test_every_frame_gets_the_same_draw():
    clip = _clip(t=1).repeat(6, 1, 1, 1)
    for seed in range(40):  # enough seeds to hit geometric ops and Cutout
        out = mmaction_randaugment(clip, generator=np.random.default_rng(seed))
        assert out.shape == clip.shape and out.dtype == torch.uint8
        assert all(torch.equal(out[0], out[i]) for i in range(1, 6))


def test_same_seed_same_output_and_seeds_differ():
    clip = _clip()
    outs = [mmaction_randaugment(clip, generator=np.random.default_rng(s)) for s in range(8)]
    again = [mmaction_randaugment(clip, generator=np.random.default_rng(s)) for s in range(8)]
    assert all(torch.equal(a, b) for a, b in zip(outs, again))
    assert len({o.numpy().tobytes() for o in outs}) > 1
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(rand_augment(clip, num_ops=2, magnitude=9, generator=g1),
                       rand_augment(clip, num_ops=2, magnitude=9, generator=g2))


def test_the_input_clip_is_not_modified_and_bad_clips_are_refused():
    clip = _clip()
    before = clip.clone()
    for seed in range(20):
        mmaction_randaugment(clip, generator=np.random.default_rng(seed))
    assert torch.equal(clip, before)
    with pytest.raises(ValueError, match="uint8"):
        mmaction_randaugment(clip.float(), generator=np.random.default_rng(0))
    with pytest.raises(ValueError, match="uint8"):
        mmaction_randaugment(clip[:, :1], generator=np.random.default_rng(0))


# --- config fields: names unchanged, MMAction2 meaning and ranges ----------------------------

def test_spec_and_trial_config_fields_keep_their_names_with_the_new_ranges():
    from k400ray.engine.config import TrialConfig
    from k400ray.engine.params import AugmentationParams
    from k400ray.tune.spec import load_spec

    for name in ("demo.yaml", "aug_grid.yaml"):
        a = load_spec(SPACES / name).augmentation
        assert (a.randaugment_num_ops, a.randaugment_magnitude) == (2, 9)
    assert (AugmentationParams().randaugment_num_ops, AugmentationParams().randaugment_magnitude) == (2, 9)
    assert AugmentationParams(randaugment_magnitude=10).randaugment_magnitude == 10
    with pytest.raises(ValidationError):
        AugmentationParams(randaugment_magnitude=11)
    with pytest.raises(ValidationError):
        AugmentationParams(randaugment_num_ops=16)
    base = dict(preset="tsn_r50_1x1x8", train_index="i", val_index="i", num_classes=3, aug="randaugment")
    assert TrialConfig(**base).randaugment == (2, 9)
    with pytest.raises(ValidationError):
        TrialConfig(**base, randaugment_magnitude=11)
