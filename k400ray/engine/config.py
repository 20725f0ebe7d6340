"""The fully resolved configuration of one trial: what a Ray Train worker receives (as a dict)
and turns back into this typed object on its first line. It is saved in every checkpoint and
logged as the MLflow run's params, so each result says exactly how it was made.

Its sections (``augmentation``, ``training``, ``data``, ``resources``) are the classes of
:mod:`k400ray.engine.params`, the same ones a search-space spec is made of: a spec's section
becomes the trial's section as it is. A record written in the older flat layout (every field at
the top level, ``aug`` for ``config``, ``randaugment_ops``, ``num_workers``) still loads.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from k400ray.engine.compiled import default_compile_mode
from k400ray.engine.params import AugmentationParams, DataParams, ResourceParams, TrainingParams
from k400ray.presets import CONFIGS, DEFAULT, RANDAUGMENT, ModelPreset, config_variant, get_preset

# The sheet's `configs` column, named in presets.py only: ``Literal`` takes the tuple as its
# values (an unknown name is a literal_error).
Config = Literal[CONFIGS]
Scale = Literal["full", "toy"]

# The older flat layout: a top-level key -> (section, its name there).
_FLAT = {
    **{k: ("augmentation", k) for k in ("mixup_alpha", "cutmix_alpha", "randaugment_magnitude")},
    "randaugment_ops": ("augmentation", "randaugment_num_ops"),
    **{k: ("training", k) for k in TrainingParams.model_fields},
    **{k: ("data", k) for k in DataParams.model_fields},
    **{k: ("resources", k) for k in ResourceParams.model_fields if k != "workers_per_trial"},
    "num_workers": ("resources", "workers_per_trial"),
}


def trial_preset(preset: str, *, scale: Scale = "full", config: str = DEFAULT,
                 pretrained: str | None = None) -> ModelPreset:
    """The preset a trial trains: ``preset`` at ``scale``, as ``config`` trains it, with the local
    ImageNet weights ``pretrained`` of its 2D backbone (None: from scratch)."""
    resolved = config_variant(get_preset(preset, scale=scale), config)
    if pretrained:
        resolved = replace(resolved, arch=replace(resolved.arch, pretrained=pretrained))
    return resolved


class TrialConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str
    scale: Scale = "full"
    # the sheet's configs column; ``aug``: its older name, in records written before
    config: Config = Field(DEFAULT, validation_alias=AliasChoices("config", "aug"))
    seed: int = 0
    # A config the spec defines (``configs:``): what the trial is called by; ``config`` is its base
    config_name: str | None = None
    augmentation: AugmentationParams = AugmentationParams()
    training: TrainingParams = TrainingParams()
    data: DataParams  # index paths absolute, ``val_index`` set
    resources: ResourceParams = ResourceParams()
    train_split: str = "train"
    val_split: str = "val"
    num_classes: int = Field(..., ge=2)
    use_gpu: bool = False
    amp: bool | None = None  # bf16 autocast; default: on with GPUs
    # bookkeeping
    name: str = "trial"
    storage_path: str | None = None
    # Start from this checkpoint (a path or URI of a trial checkpoint) when the run has none of its own.
    init_checkpoint: str | None = None
    pretrained: str | None = None  # local ImageNet state dict of the preset's 2D backbone

    @model_validator(mode="before")
    @classmethod
    def _flat_layout(cls, data):
        """A record of the older flat layout (checkpoints, MLflow's ``trial_config.json``): its
        top-level fields moved into their sections."""
        if not isinstance(data, dict) or not _FLAT.keys() & data.keys():
            return data
        out = {k: v for k, v in data.items() if k not in _FLAT}
        for key, (section, name) in _FLAT.items():
            if key in data:
                part = out.setdefault(section, {})
                if not isinstance(part, dict):
                    part = out[section] = part.model_dump()
                part[name] = data[key]
        return out

    def flat_params(self) -> dict[str, object]:
        """The config as one flat mapping, under the names MLflow's params of a trial have always
        had (``aug``, ``randaugment_ops``, ``num_workers``, ``epochs``, ...): reports and searches
        over older and newer runs read the same keys. Values as ``model_dump(mode="json")``."""
        dumped = self.model_dump(mode="json")
        flat = {k: v for k, v in dumped.items() if k not in ("config", *{s for s, _ in _FLAT.values()})}
        flat["aug"] = dumped["config"]
        if flat["config_name"] is None:  # a built-in config: the params runs have always had
            del flat["config_name"]
        for key, (section, name) in _FLAT.items():
            flat[key] = dumped[section][name]
        return flat

    @property
    def config_label(self) -> str:
        """The config this trial is known by (names, MLflow's ``config`` tag, reports): the
        spec's named config, else the built-in one."""
        return self.config_name or self.config

    def resolved_preset(self) -> ModelPreset:
        return trial_preset(self.preset, scale=self.scale, config=self.config, pretrained=self.pretrained)

    @property
    def total_epochs(self) -> int:
        return self.training.total_epochs(self.resolved_preset())

    @property
    def batch_size(self) -> int:
        return self.training.batch_size(self.resolved_preset())

    @property
    def use_amp(self) -> bool:
        return self.use_gpu if self.amp is None else self.amp

    @property
    def compile_mode(self) -> str:
        return self.training.compile or default_compile_mode(self.preset, self.use_gpu)

    @property
    def randaugment(self) -> tuple[int, int] | None:
        """(ops, magnitude) of the ``randaugment`` config; None for the others."""
        a = self.augmentation
        return (a.randaugment_num_ops, a.randaugment_magnitude) if self.config == RANDAUGMENT else None
