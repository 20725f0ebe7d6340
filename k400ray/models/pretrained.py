"""Load a torchvision ImageNet state dict (a local file; nothing is ever downloaded) into a model.

Our backbones keep torchvision's parameter names under ``backbone.``, with two systematic
differences that are mapped here rather than hidden in the modules:

- TSM wraps shifted convs in :class:`TemporalShift`, which adds ``.net`` to their names;
- I3D convs are 3D: a 2D kernel ``(out, in, kh, kw)`` is inflated to ``(out, in, kt, kh, kw)`` by
  repeating it ``kt`` times along time and dividing by ``kt``, so a clip of identical frames
  gives the 2D network's activations (Carreira & Zisserman 2017).

The ImageNet classifier (``fc.*`` / ``classifier.*``) is skipped and reported; the new class
head keeps its initialisation. A file of another architecture or width raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from k400ray.models.arch import ArchConfig
from k400ray.models.temporal_shift import TemporalShift

# Parameter prefix of the ImageNet classifier in each torchvision model: ignored on load.
IMAGENET_CLASSIFIER = {"resnet50": "fc.", "mobilenetv2": "classifier."}
BACKBONE_PREFIX = "backbone."


@dataclass(frozen=True)
class PretrainedReport:
    """What :func:`load_pretrained` did: model keys it filled (``inflated`` among them), model keys
    the file has no value for (``missing``: the new class head), file keys it ignored (``unexpected``)."""

    path: str
    loaded: tuple[str, ...]
    inflated: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]

    def summary(self) -> str:
        return (
            f"loaded {len(self.loaded)} tensors from {self.path} ({len(self.inflated)} inflated to 3D); "
            f"kept initialisation of {list(self.missing)}; ignored {list(self.unexpected)}"
        )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)`` a flat name -> tensor mapping, with one-line errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and weights_only errors all mean "not a state dict file"
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a readable PyTorch state dict ({first_line})") from err
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict (parameter name -> tensor), got {type(obj).__name__}")
    return dict(obj)


def source_key(model_key: str, shift_prefixes: frozenset[str]) -> str | None:
    """torchvision name of a model parameter, or None when it is not a backbone parameter.

    ``backbone.layer1.0.conv1.net.weight`` (TSM) -> ``layer1.0.conv1.weight``.
    """
    if not model_key.startswith(BACKBONE_PREFIX):
        return None
    module, _, leaf = model_key.rpartition(".")
    if module.endswith(".net") and module[: -len(".net")] in shift_prefixes:
        module = module[: -len(".net")]
    return f"{module}.{leaf}"[len(BACKBONE_PREFIX) :]


def _fit(
    src: torch.Tensor, dst_shape: torch.Size, *, name: str, path: Path, allow_inflate: bool
) -> tuple[torch.Tensor, bool]:
    """Source tensor shaped for the model (inflated when a 2D kernel meets a 3D one)."""
    if src.shape == dst_shape:
        return src, False
    is_2d_of_3d = src.dim() == 4 and len(dst_shape) == 5 and (*dst_shape[:2], *dst_shape[3:]) == tuple(src.shape)
    if allow_inflate and is_2d_of_3d:
        kt = dst_shape[2]
        return src.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt, True
    raise ValueError(
        f"{path}: shape mismatch for {name!r}: file {tuple(src.shape)} vs model {tuple(dst_shape)} "
        f"(weights of another architecture or width?)"
    )


def load_pretrained(model: nn.Module, arch: ArchConfig, path: str | Path) -> PretrainedReport:
    """Copy the backbone weights of a torchvision ``arch.backbone`` ImageNet state dict into ``model``.

    Strict on the backbone: every backbone tensor must come from the file with a compatible shape
    and the file may hold nothing else besides its ImageNet classifier; otherwise ``ValueError``
    (and the model is left unchanged).
    """
    path = Path(path)
    source = read_state_dict(path)
    classifier = IMAGENET_CLASSIFIER.get(arch.backbone)
    if classifier is None:
        raise ValueError(f"no ImageNet weights known for backbone {arch.backbone!r}")
    target = model.state_dict()
    shift_prefixes = frozenset(name for name, module in model.named_modules() if isinstance(module, TemporalShift))
    mapping = {k: s for k in target if (s := source_key(k, shift_prefixes)) is not None}

    # Old torchvision files predate BN's num_batches_tracked buffer; it does not affect the
    # network (momentum is fixed), so it is optional and keeps the model's value when absent.
    mapping = {k: s for k, s in mapping.items() if s in source or not s.endswith(".num_batches_tracked")}
    absent = [s for s in mapping.values() if s not in source]
    if absent:
        raise ValueError(
            f"{path}: not a torchvision {arch.backbone} state dict matching this model: "
            f"{len(absent)} of {len(mapping)} backbone tensors missing, e.g. {absent[0]!r}"
        )
    used = set(mapping.values())
    extra = [k for k in source if k not in used and not k.startswith(classifier)]
    if extra:
        raise ValueError(
            f"{path}: not a torchvision {arch.backbone} state dict matching this model: "
            f"{len(extra)} tensors have no place in it, e.g. {extra[0]!r}"
        )

    new_state: dict[str, torch.Tensor] = {}
    inflated: list[str] = []
    for model_key, src_key in mapping.items():
        tensor, was_inflated = _fit(
            source[src_key], target[model_key].shape, name=src_key, path=path, allow_inflate=arch.family == "i3d"
        )
        new_state[model_key] = tensor
        if was_inflated:
            inflated.append(model_key)
    loaded = tuple(new_state)  # before loading: BN may add a default num_batches_tracked to the dict
    result = model.load_state_dict(new_state, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys  # mapping only holds model keys
    return PretrainedReport(
        path=str(path),
        loaded=loaded,
        inflated=tuple(inflated),
        missing=tuple(result.missing_keys),
        unexpected=tuple(k for k in source if k not in used),
    )
