"""The synthetic Kinetics-shaped set: real on-disk layout, readable by decord, deterministic, and
direction pairs whose frames look alike while their motion is opposite (the TSN vs TSM test bed)."""

import csv
import re

import av
import decord
import numpy as np
import pytest

from k400ray.data import synth, synth_render
from k400ray.data.synth import CORRUPT_KINDS, CSV_HEADER, class_names, generate_synthetic

NAME = re.compile(r"^[A-Za-z0-9_-]{11}_(\d{6})_(\d{6})\.mp4$")
# Width 40, not 48: decord's get_batch fails on widths 16, 24, 48 and 72 (array size mismatch).
TINY = dict(num_classes=4, videos_per_class=(2, 2), frames=16, fps=8, size=(40, 32))
DECORD_ERRORS = (RuntimeError, decord.DECORDError)


def _rows(root, split):
    with open(root / "annotations" / f"{split}.csv", newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _path(root, row):
    label, yid, start, end, split = row
    return root / split / f"{yid}_{int(start):06d}_{int(end):06d}.mp4"


def _decode(path):
    vr = decord.VideoReader(str(path), num_threads=1)
    return vr.get_batch(list(range(len(vr)))).asnumpy()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return generate_synthetic(root, seed=3, corrupt=5, missing=2, **TINY)


def test_layout_csv_and_names(tiny):
    root = tiny.out_dir
    broken = {c.path for c in tiny.corrupt_files}
    assert sorted(p.name for p in root.iterdir()) == ["annotations", "train", "val"]
    for split in ("train", "val"):
        text = (root / "annotations" / f"{split}.csv").read_text(encoding="utf-8")
        assert text.splitlines()[0] == "label,youtube_id,time_start,time_end,split" == ",".join(CSV_HEADER)
        rows = _rows(root, split)[1:]
        assert len(rows) == tiny.videos[split] + tiny.corrupt[split] + tiny.missing[split]
        assert {r[4] for r in rows} == {split}
        assert {r[0] for r in rows} <= set(tiny.classes)
        listed = {_path(root, r) for r in rows}
        on_disk = set((root / split).iterdir())
        assert on_disk == listed - set(tiny.missing_files)  # every file is listed, nothing else
        for path in on_disk:
            start, end = (int(v) for v in NAME.match(path.name).groups())
            assert end - start == round(TINY["frames"] / TINY["fps"])
        assert len(on_disk - broken) == tiny.videos[split] == TINY["videos_per_class"][split == "val"] * 4
    # Real K400 labels have spaces, parentheses and quotes; the CSV must escape the quotes.
    assert all(" " in c and "(" in c and c.endswith(")") for c in tiny.classes)
    assert any('"' in c for c in tiny.classes)
    assert '""plus""' in (root / "annotations" / "train.csv").read_text()
    assert list(tiny.classes) == sorted(class_names(4))
    assert all(a != b and a.split(" (")[0] == b.split(" (")[0] for a, b in tiny.pairs)


def test_decord_reads_every_good_video(tiny):
    broken = {c.path for c in tiny.corrupt_files}
    good = [p for split in ("train", "val") for p in (tiny.out_dir / split).iterdir() if p not in broken]
    assert len(good) == 16
    w, h = TINY["size"]
    for path in good:
        vr = decord.VideoReader(str(path), num_threads=1)
        assert len(vr) == TINY["frames"]
        assert vr.get_avg_fps() == pytest.approx(TINY["fps"])
        assert vr.get_batch(list(range(len(vr)))).asnumpy().shape == (TINY["frames"], h, w, 3)


def test_same_seed_same_bytes_other_seed_other_data(tiny, tmp_path):
    again = generate_synthetic(tmp_path / "a", seed=3, corrupt=5, missing=2, **TINY)
    for split in ("train", "val"):
        assert _rows(again.out_dir, split) == _rows(tiny.out_dir, split)
        for path in sorted((tiny.out_dir / split).iterdir()):
            assert (again.out_dir / split / path.name).read_bytes() == path.read_bytes(), path.name
    other = generate_synthetic(tmp_path / "b", seed=4, **TINY)
    assert {r[1] for r in _rows(other.out_dir, "train")[1:]}.isdisjoint(r[1] for r in _rows(tiny.out_dir, "train")[1:])
    label = tiny.pairs[0][0]
    first = [
        next(_path(root, r) for r in _rows(root, "val")[1:] if r[0] == label) for root in (tiny.out_dir, other.out_dir)
    ]
    assert not np.array_equal(_decode(first[0]), _decode(first[1]))


# --- the pair property --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Three pairs (vertical square, slanted plus, mirrored disks), 4 train videos per class."""
    root = tmp_path_factory.mktemp("pairs")
    summary = generate_synthetic(root, num_classes=6, videos_per_class=(4, 0), frames=24, fps=12, size=(64, 48), seed=1)
    videos = {}
    for row in _rows(root, "train")[1:]:
        videos.setdefault(row[0], []).append(_decode(_path(root, row)).astype(np.float32))
    return summary, videos


def _object_mask(frames, colour):
    """Pixels close to the pair's object colour (backgrounds stay dark grey, objects are saturated)."""
    return np.abs(frames - np.asarray(colour, np.float32)).sum(-1) < 100


def _vertical_steps(frames, colour):
    """Frame-to-frame motion of the object's row centroid, as a circular mean (the motion wraps)."""
    mask = _object_mask(frames, colour)
    h = frames.shape[1]
    rows = np.exp(2j * np.pi * (np.arange(h) + 0.5) / h)
    centroid = np.angle((mask.sum(2) * rows).sum(1)) * h / (2 * np.pi)
    return (np.diff(centroid) + h / 2) % h - h / 2


def _spread_steps(frames, colour):
    """Frame-to-frame change of the mean distance of the object pixels from their mean column."""
    spreads = []
    for m in _object_mask(frames, colour):
        x = np.nonzero(m)[1].astype(np.float64)
        spreads.append(np.abs(x - x.mean()).mean() if len(x) > 20 else np.nan)  # faded out: no sample
    steps = np.diff(np.asarray(spreads))
    return steps[np.isfinite(steps)]


def test_pair_classes_have_the_same_frames(pairs):
    """TSN averages per-frame evidence: a pair's two classes must show the same frames.

    The two classes of a pair are time-reversed twins, so their mean images agree up to codec
    noise, while different pairs (other shape, colour, motion) are far apart.
    """
    summary, videos = pairs
    means = {label: np.mean([v.mean(0) for v in vs], 0) for label, vs in videos.items()}
    for a, b in summary.pairs:
        assert np.abs(means[a] - means[b]).mean() < 1.0
        # Each video of one class is the exact time reversal of one video of the other class.
        for va in videos[a]:
            assert min(np.abs(va - vb[::-1]).mean() for vb in videos[b]) < 3.0
    (a, _), (c, _) = summary.pairs[:2]
    assert np.abs(means[a] - means[c]).mean() > 5.0


def test_pair_classes_move_in_opposite_directions(pairs):
    summary, videos = pairs
    for pair_index, (forward, backward) in enumerate(summary.pairs):
        spec = synth_render.pair_spec(pair_index)
        steps = _spread_steps if spec.motion.kind == "mirror" else _vertical_steps
        for label, sign in ((forward, 1), (backward, -1)):
            for frames in videos[label]:
                s = steps(frames, spec.colour)
                assert sign * np.median(s) > 0.2, (label, s)
                # And never so fast that the direction is ambiguous (frames/8 apart < half a period).
                assert np.abs(np.median(s)) * 24 / 8 < frames.shape[1] / 2


def test_zoom_bands_move_outward_for_the_forward_class():
    """Log-periodic zoom: the phase of the bands in log2(radius) must grow for the forward class."""
    spec = synth_render.pair_spec(3)
    assert spec.motion.kind == "zoom"
    w, h = 96, 64
    p = synth_render.draw_params(np.random.default_rng(0), spec, w, h, (0.55, 0.75))
    xs = (np.arange(w, dtype=np.float32) + 0.5)[None, None, :]
    ys = (np.arange(h, dtype=np.float32) + 0.5)[None, :, None]
    phases = p.phase + np.linspace(0, p.travel, 12)
    alpha = synth_render.object_alpha(spec, p, phases, xs, ys, w, h)
    log_radius = np.log2(np.maximum(spec.shape.gauge(xs - p.x0, ys - h / 2), 1e-3))[0]
    band_phase = np.angle((alpha * np.exp(2j * np.pi * log_radius)).sum((1, 2))) / (2 * np.pi)
    steps = (np.diff(band_phase) + 0.5) % 1.0 - 0.5
    assert (steps > 0).all()


def test_rendered_twin_is_the_exact_time_reversal():
    for index in range(4):
        spec = synth_render.pair_spec(index)
        p = synth_render.draw_params(np.random.default_rng(index), spec, 40, 32, (0.55, 0.75))
        kw = dict(frames=10, width=40, height=32, noise_key=(index,))
        forward = np.concatenate(list(synth_render.render(spec, p, np.arange(10), **kw)))
        backward = np.concatenate(list(synth_render.render(spec, p, np.arange(10)[::-1], **kw)))
        assert np.array_equal(forward[::-1], backward)


def test_shapes_are_left_right_symmetric():
    """Training flips clips left-right, so a class must look the same mirrored (docstring of synth)."""
    xs = np.arange(-20, 21, dtype=np.float32)[None, None, :]
    ys = np.arange(-20, 21, dtype=np.float32)[None, :, None] + 0.3
    for shape in synth_render.SHAPES:
        sdf = shape.signed_distance(xs, ys, 9.0)
        assert np.allclose(sdf, sdf[..., ::-1], atol=1e-4), shape.name


# --- broken files and missing rows --------------------------------------------------------------


def _decodable_frames(path):
    """Frames a sequential PyAV decode yields before the first error."""
    count = 0
    with av.open(str(path)) as container:
        try:
            for _ in container.decode(video=0):
                count += 1
        except av.error.FFmpegError:
            pass
    return count


def test_corrupt_files_fail_in_decord(tiny):
    assert sorted(c.kind for c in tiny.corrupt_files) == sorted(CORRUPT_KINDS)
    assert {c.split for c in tiny.corrupt_files} == {"train", "val"}
    for c in tiny.corrupt_files:
        assert c.path.parent.name == c.split and c.label in tiny.classes
        if c.kind == "undecodable_tail":
            vr = decord.VideoReader(str(c.path), num_threads=1)
            assert len(vr) == TINY["frames"]  # the header promises every frame...
            with pytest.raises(DECORD_ERRORS):  # ...decord fails on the way (where depends on read-ahead)...
                for i in range(len(vr)):
                    vr[i]
            assert 0 < _decodable_frames(c.path) < TINY["frames"]  # ...and a plain decoder gets the first part
        else:
            with pytest.raises(DECORD_ERRORS):
                decord.VideoReader(str(c.path), num_threads=1)
    sizes = {c.kind: c.path.stat().st_size for c in tiny.corrupt_files}
    assert sizes["empty"] == 0 and 1024 <= sizes["random_bytes"] < 9 * 1024


def test_missing_rows_are_listed_without_files(tiny):
    assert len(tiny.missing_files) == 2 and tiny.missing == {"train": 1, "val": 1}
    listed = {_path(tiny.out_dir, r) for split in ("train", "val") for r in _rows(tiny.out_dir, split)[1:]}
    for path in tiny.missing_files:
        assert path in listed and not path.exists()


# --- arguments ----------------------------------------------------------------------------------


def test_odd_class_count_and_class_limits(tmp_path):
    summary = generate_synthetic(tmp_path, num_classes=3, videos_per_class=(1, 0), frames=4, size=(32, 32))
    assert len(summary.classes) == 3 and len(summary.pairs) == 1
    assert summary.videos == {"train": 3, "val": 0}
    names = class_names(2 * synth.MAX_PAIRS)
    assert len(set(names)) == len(names) >= 400
    with pytest.raises(ValueError):
        class_names(2 * synth.MAX_PAIRS + 1)


def test_bad_arguments_and_existing_output(tmp_path):
    with pytest.raises(ValueError, match="even"):
        generate_synthetic(tmp_path / "x", size=(49, 32))
    generate_synthetic(tmp_path / "y", num_classes=2, videos_per_class=(1, 0), frames=4, size=(32, 32))
    with pytest.raises(FileExistsError):
        generate_synthetic(tmp_path / "y", num_classes=2, videos_per_class=(1, 0), frames=4, size=(32, 32))
    again = generate_synthetic(
        tmp_path / "y", num_classes=2, videos_per_class=(0, 1), frames=4, size=(32, 32), overwrite=True
    )
    assert not any((tmp_path / "y" / "train").iterdir()) and again.videos == {"train": 0, "val": 2}
