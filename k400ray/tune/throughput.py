"""Clips per second a trial can train, evaluate and decode, from the project's own measurements.

The numbers are package data (``k400ray/tune/records/measured.json``), copied from the records
in ``docs/benchmarks.md``; nothing here runs a model. Three rules turn them into a rate for any
preset on any GPU kind, and each rate says which rule made it (the dry run prints it):

- **measured**: the preset was benchmarked on that GPU kind (``bench train``): its clips/s.
- **FLOP model, same GPU**: another preset with the same backbone was measured there; the
  fraction of the GPU's bf16 peak it reached (6 x forward multiply-adds per training clip) is
  applied to this preset's multiply-adds.
- **FLOP model, another GPU** (the cluster's A100, say): that fraction, averaged over the GPU
  kinds where the preset (or its nearest same-backbone preset) was measured, times the other
  kind's peak. Eager bf16 video CNNs reach 4-12% of peak on H100/H200, so read it as the
  measured kinds' efficiency carried over, not a measurement.

Evaluation is a forward pass only: one view costs a third of a training clip of the same
multiply-adds (backward ~ 2 x forward), at the same fraction of peak.

Decoding: ``bench data --encodings``' CPU time per training clip on one core (decord, one
thread) for TSN (8 frames spread over the video) and I3D (32 consecutive frames at interval 2),
on realistic textured, moving 340x256 videos prepared with each encoding ``k400ray prepare``
can write (keyframe interval, x264's fast-decode tuning): the prepared copy's encoding picks
the row. Other presets use the one that samples like them, scaled by frames decoded per clip. A
raw copy at 720p or 1080p divides the x264-defaults row by the raw / prepared ratio that
``bench data --raw-sizes`` measured.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from k400ray.data.encoding import X264_DEFAULTS
from k400ray.presets import PRESETS, ModelPreset

TRAIN_FLOPS_PER_MAC = 6.0  # forward 2 FLOPs per multiply-add, backward ~ 2 x forward
EVAL_FLOPS_PER_MAC = 2.0
RESOLUTIONS = ("prepared", "720p", "1080p")


@lru_cache(maxsize=None)
def records(name: str = "measured.json") -> dict:
    """A JSON file of ``k400ray/tune/records`` (package data)."""
    return json.loads(resources.files("k400ray.tune").joinpath("records", name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Rate:
    clips_per_s: float
    how: str  # "measured on H100", "FLOP model: ...", printed with the estimate


def peak_tflops(gpu: str) -> float:
    peaks = {k: v for k, v in records()["peak_bf16_tflops"].items() if k != "about"}
    if gpu not in peaks:
        raise KeyError(f"unknown GPU kind {gpu!r} (known: {', '.join(sorted(peaks))})")
    return float(peaks[gpu])


def measured_kinds() -> list[str]:
    return list(records()["gpu_train"])


def _utilisation(kind: str, ref: str, ref_gmacs: dict[str, float]) -> float:
    """Fraction of ``kind``'s peak that the measured preset ``ref`` reached (training FLOPs)."""
    rate = records()["gpu_train"][kind]["presets"][ref]["clips_per_s"]
    return rate * TRAIN_FLOPS_PER_MAC * ref_gmacs[ref] * 1e9 / (peak_tflops(kind) * 1e12)


def _reference(name: str, backbone: str, gmacs: float, kind: str, ref_gmacs: dict[str, float],
               ref_backbones: dict[str, str], *, exact: bool) -> str | None:
    """``name`` itself when measured on ``kind`` (and ``exact``: a full-scale model), else the
    measured preset of the same backbone whose multiply-adds are closest."""
    measured = records()["gpu_train"][kind]["presets"]
    if exact and name in measured:
        return name
    same = [p for p in measured if ref_backbones.get(p) == backbone and p in ref_gmacs]
    if not same:
        return None
    return min(same, key=lambda p: abs(math.log(ref_gmacs[p] / gmacs)))


def train_rate(name: str, preset: ModelPreset, gpu: str, gmacs: float, ref_gmacs: dict[str, float],
               ref_backbones: dict[str, str], *, exact: bool = True) -> Rate:
    """Training clips/s of preset ``name`` on one GPU of kind ``gpu``. ``gmacs``: forward
    multiply-adds (1e9) of one of its training clips; ``ref_gmacs`` / ``ref_backbones``: those of
    the measured presets; ``exact``: this is the measured model itself (not a toy variant)."""
    flops = TRAIN_FLOPS_PER_MAC * gmacs * 1e9
    backbone = preset.arch.backbone
    if gpu in records()["gpu_train"]:
        ref = _reference(name, backbone, gmacs, gpu, ref_gmacs, ref_backbones, exact=exact)
        if ref == name and exact:
            return Rate(records()["gpu_train"][gpu]["presets"][name]["clips_per_s"], f"measured on {gpu}")
        if ref is not None:
            u = _utilisation(gpu, ref, ref_gmacs)
            return Rate(u * peak_tflops(gpu) * 1e12 / flops, f"FLOP model: {ref} reached {u:.1%} of {gpu} peak")
    fractions = []
    for kind in measured_kinds():
        ref = _reference(name, backbone, gmacs, kind, ref_gmacs, ref_backbones, exact=exact)
        if ref is not None:
            fractions.append((kind, ref, _utilisation(kind, ref, ref_gmacs)))
    if not fractions:
        raise KeyError(f"{name}: no measured preset with backbone {backbone}")
    u = sum(f for _, _, f in fractions) / len(fractions)
    kinds = " and ".join(dict.fromkeys(k for k, _, _ in fractions))
    refs = ", ".join(dict.fromkeys(r for _, r, _ in fractions))
    return Rate(u * peak_tflops(gpu) * 1e12 / flops,
                f"FLOP model: {refs} reached {u:.1%} of peak on {kinds}; x {gpu} peak {peak_tflops(gpu):.0f} TFLOP/s")


def eval_views_per_s(train: Rate, train_gmacs: float, view_gmacs: float) -> float:
    """Evaluation views/s on one GPU: forward only, at the training rate's fraction of peak."""
    return train.clips_per_s * (TRAIN_FLOPS_PER_MAC * train_gmacs) / (EVAL_FLOPS_PER_MAC * view_gmacs)


def frames_per_video(preset: ModelPreset, mode: str) -> int:
    """Frames decoded for one video in ``mode`` (crops do not decode again)."""
    sampling = preset.train_sampling if mode == "train" else preset.views(mode).sampling
    return sampling.view_frames * sampling.temporal_views(test_mode=mode != "train")


def _decode_reference(preset: ModelPreset) -> str:
    """The measured preset that samples like ``preset``: consecutive frames (I3D) or spread (TSN)."""
    return "i3d_r50_32x2x1" if preset.train_sampling.clip_len > 1 else "tsn_r50_1x1x8"


# The prepared copy that ``bench data --raw-sizes`` compared raw videos with: x264's defaults.
RAW_REFERENCE_ENCODING = X264_DEFAULTS.name


def encoding_record(name: str | None = None) -> dict:
    """One row of the encoding table (default: the encoding ``k400ray prepare`` writes)."""
    table = records()["decode_by_encoding"]
    return table["encodings"][name or table["default"]]


def raw_ratio(preset: ModelPreset, resolution: str) -> float:
    """CPU per clip at ``resolution`` over a prepared copy (1.0 for a prepared copy)."""
    if resolution == "prepared":
        return 1.0
    value = records()["raw_over_prepared"][resolution][_decode_reference(preset)]
    if value is None:
        raise KeyError(f"no raw/prepared decode ratio recorded for {resolution}")
    return float(value)


def decode_videos_per_core_s(preset: ModelPreset, mode: str, resolution: str, encoding: str | None = None) -> float:
    """Videos one core decodes per second in ``mode`` (the decode limit) from a copy prepared
    with ``encoding`` (default: prepare's), or from a raw copy at ``resolution``."""
    ref = _decode_reference(preset)
    row = encoding_record(encoding if resolution == "prepared" else RAW_REFERENCE_ENCODING)
    clips_per_s = 1000.0 / row["cpu_ms_per_clip"][ref]
    ref_frames = frames_per_video(PRESETS[ref], "train")
    return clips_per_s * ref_frames / frames_per_video(preset, mode) / raw_ratio(preset, resolution)


def ray_data_efficiency(preset: ModelPreset) -> float:
    """What Ray Data delivered of the decode limit (measured on 2 cores: the lower bound)."""
    return float(records()["decode"]["ray_data_x_limit"][_decode_reference(preset)])


def epoch_start_s(rows: int, *, shuffled: bool) -> float:
    """Seconds from asking for an epoch to its first batch, scaled linearly from the 240k-row record."""
    rec = records()["decode"]["epoch_start_s"]
    return rec["shuffled" if shuffled else "in_order"] * rows / rec["rows"]
