"""The search-space spec (``search_spaces/*.yaml``), validated before anything starts.

A spec names the data, the grid, the augmentation parameters, training overrides, resources,
the Tune scheduler, MLflow and checkpoint storage. The grid is either a cross product
(``presets`` x ``configs`` x ``seeds``) or explicit ``rows`` for a sheet that is not one::

    grid:
      seeds: [0]                       # the seeds of a row that lists none
      rows:
        - {preset: tsn_r50_1x1x7, config: gluoncv}
        - {preset: tsm_r50_1x1x8, config: randaugment, seeds: [0, 1]}

``configs`` is the sheet's column (``default``, ``randaugment``, ``mixup``, ``cutmix``,
``gluoncv``); ``augmentations``, its old name, still loads. A trial holds it as
``TrialConfig.config``; Tune params, MLflow tags and report records keep the key ``aug`` (so
older grids resume and report), and the parsed grid keeps it under ``augmentations`` (what
MLflow's parent run logs). A (preset, config) pair without meaning (``gluoncv`` on a preset
GluonCV never trained) is refused at load.

The ``data``, ``augmentation`` and ``training`` sections and the per-trial part of ``resources``
are the trial's own sections (:mod:`k400ray.engine.params`), declared once: each grid point
becomes one :class:`~k400ray.engine.config.TrialConfig` holding them as they are. Relative
paths are relative to the directory ``k400ray`` is run from.

Named configs: a spec may define its own configs beside the sheet's, each a built-in ``base``
and overrides of the ``augmentation`` and ``training`` sections::

    configs:
      mixup_a02: {base: mixup, augmentation: {mixup_alpha: 0.2}}

A grid names them like the built-in ones; the trial runs its base config's code path with the
overrides applied, and its name, MLflow ``config`` tag and report rows say the named config.

A search (``search:``, :mod:`k400ray.tune.space`) gives every sampled trial its own stable name:
the grid point's, then Tune's trial id (kept by ``--resume``), see :func:`tune_trial_name`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    AliasChoices, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator,
)

from k400ray.engine.config import Config, TrialConfig
from k400ray.engine.params import AugmentationParams, DataParams, ResourceParams, TrainingParams
from k400ray.presets import CONFIGS, DEFAULT, PRESETS, check_config, family_of
from k400ray.tune.space import Axis, apply_values, check_field, short_values


class SpecError(ValueError):
    """A spec that cannot run; the message is one line naming the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known_preset(name: str) -> str:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(sorted(PRESETS))})")
    return name


class GridRow(_Strict):
    """One row of the sheet: a preset trained with one config, once per seed."""

    preset: str
    config: str  # a built-in config, or one the spec's ``configs`` defines (checked by the spec)
    seeds: list[int] | None = Field(None, min_length=1)  # None: the grid's seeds

    @field_validator("preset")
    @classmethod
    def _known(cls, name: str) -> str:
        return _known_preset(name)

    @model_validator(mode="after")
    def _meaningful(self) -> "GridRow":
        if self.config in CONFIGS:  # a named config is checked with its base, by the spec
            check_config(self.preset, self.config)
        return self


def _unique(values) -> list:
    return list(dict.fromkeys(values))


class GridSpec(_Strict):
    # rows first: the cross-product checks below skip a grid made of rows
    rows: list[GridRow] | None = Field(None, min_length=1)
    presets: list[str] = Field(min_length=1)
    # the sheet's configs column; `augmentations` is its old name, still accepted
    augmentations: list[str] = Field(
        default_factory=lambda: [DEFAULT], min_length=1, validation_alias=AliasChoices("configs", "augmentations"),
    )
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _names_and_rows(cls, data):
        """One name for the configs; with rows, presets and configs are the rows' own (a parsed
        spec carries them, so that it loads again unchanged; a user need not write them)."""
        if not isinstance(data, dict):
            return data
        if "configs" in data and "augmentations" in data:
            raise ValueError("configs and augmentations (its old name) are both set: keep configs")
        rows = data.get("rows")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            return data
        derived = {"presets": _unique(r.get("preset") for r in rows),
                   "augmentations": _unique(r.get("config") for r in rows)}
        given = {"presets": data.get("presets"), "augmentations": data.get("configs", data.get("augmentations"))}
        for key, value in given.items():
            if value is not None and value != derived[key]:
                name = "configs" if key == "augmentations" else key
                raise ValueError(f"rows and {name} are both set: with rows, each row names its preset and config")
        return {**{k: v for k, v in data.items() if k != "configs"}, **derived}

    @field_validator("presets")
    @classmethod
    def _known_presets(cls, names: list[str]) -> list[str]:
        for name in names:
            _known_preset(name)
        return names

    @field_validator("augmentations")
    @classmethod
    def _meaningful_everywhere(cls, configs: list[str], info: ValidationInfo) -> list[str]:
        if "rows" in info.data and info.data["rows"] is None:  # a cross product (rows absent, not invalid)
            for preset in info.data.get("presets") or ():
                for config in configs:
                    if config in CONFIGS:  # a named config is checked with its base, by the spec
                        check_config(preset, config)
        return configs

    @model_validator(mode="after")
    def _each_point_once(self) -> "GridSpec":
        points = self.points()
        twice = next((p for i, p in enumerate(points) if p in points[:i]), None)
        if twice:
            raise ValueError(f"{twice[0]} x {twice[1]} with seed {twice[2]} is listed twice (trial names must differ)")
        return self

    def points(self) -> list[tuple[str, str, int]]:
        """(preset, config, seed) of every trial, in the order of the spec."""
        if self.rows is not None:
            return [(r.preset, r.config, s) for r in self.rows for s in (r.seeds or self.seeds)]
        return [(p, a, s) for p in self.presets for a in self.augmentations for s in self.seeds]


class ResourceSpec(ResourceParams):
    """The trial's resources (engine/params.py) and what only the grid has: GPUs per worker (a
    trial's ``use_gpu``) and the trials running at once."""

    gpus_per_worker: int = Field(0, ge=0, le=1)
    max_concurrent_trials: int | None = Field(None, ge=1)

    def per_trial(self) -> ResourceParams:
        """The part a trial's config holds."""
        return ResourceParams.model_validate(self.model_dump(include=set(ResourceParams.model_fields)))


class SchedulerSpec(_Strict):
    """``fifo``, ``asha`` (one ASHA per preset: ``grace_period``, ``reduction_factor``) or ``pbt``
    (Ray Tune's population based training, :mod:`k400ray.tune.pbt`: every
    ``perturbation_interval`` epochs the bottom ``quantile_fraction`` of the trials copy a top
    trial's checkpoint and continue with its ``mutations`` explored, each resampled from its axis
    with ``resample_probability``; ``synch``: every trial waits for the others at each
    perturbation, which makes the exploits reproducible and costs each trial a restart)."""

    kind: Literal["fifo", "asha", "pbt"] = "fifo"
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(2.0, gt=1)
    perturbation_interval: int | None = Field(None, ge=1)
    mutations: dict[str, Axis] = Field(default_factory=dict)
    quantile_fraction: float = Field(0.25, gt=0, le=0.5)
    resample_probability: float = Field(0.25, ge=0, le=1)
    synch: bool = False

    @model_validator(mode="after")
    def _pbt_fields(self) -> "SchedulerSpec":
        from k400ray.tune.pbt import check_mutation

        if self.kind != "pbt":
            given = [f for f in ("perturbation_interval", "mutations") if getattr(self, f)]
            if given:
                raise ValueError(f"{given[0]}: only for kind pbt")
            return self
        if self.perturbation_interval is None:
            raise ValueError("perturbation_interval: pbt needs the epochs between exploits")
        if not self.mutations:
            raise ValueError("mutations: pbt needs at least one section.field to mutate")
        for path, axis in self.mutations.items():
            check_mutation(path, axis)
        return self


class MlflowSpec(_Strict):
    """Where the grid is tracked. A tracking server that does not answer (an outage, a restart)
    is waited for, holding no GPU: ``trial_start_wait_minutes`` by a trial before it starts,
    ``grid_end_wait_minutes`` by the driver before it closes the grid's runs; a trial that ends
    during an outage holds its end beside its checkpoints, and the driver leaves what it cannot
    send held (``k400ray tune SPEC --resume`` sends it). Not part of the grid's identity."""

    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str | None = None  # default: the spec's experiment name
    trial_start_wait_minutes: float = Field(60.0, ge=0)
    grid_end_wait_minutes: float = Field(5.0, ge=0)


class ReportSpec(_Strict):
    """How ``k400ray report`` reads this grid. ``baseline_model``: the preset every other model
    is compared with under the same config (None: the first TSN preset of the grid);
    ``k400ray report --baseline`` overrides it. Not part of the grid's identity: changing it
    does not stop a ``--resume``."""

    baseline_model: str | None = None

    @field_validator("baseline_model")
    @classmethod
    def _known(cls, name: str | None) -> str | None:
        return name if name is None else _known_preset(name)


class InstanceSpec(_Strict):
    """One instance type's price (and GPUs), overriding or adding to the built-in table."""

    usd_per_hour: float = Field(gt=0)
    gpus: int = Field(0, ge=0)
    gpu: str | None = None  # the GPU kind, e.g. A100 (required when gpus > 0)
    cores: int = Field(0, ge=0)
    local_disk_gb: float = Field(0.0, ge=0)  # instance-store NVMe that `k400ray stage` can use
    local_disk_gb_per_s: float = Field(0.0, ge=0)
    network_gbps: float = Field(0.0, ge=0)
    spot_usd_per_hour: float | None = Field(None, gt=0)  # what a node type on spot (InstanceMarketOptions) costs

    @model_validator(mode="after")
    def _gpu_kind(self) -> "InstanceSpec":
        if self.gpus and not self.gpu:
            raise ValueError("gpu: name the GPU kind of an instance with GPUs (e.g. A100)")
        return self


class CostSpec(_Strict):
    """What ``--dry-run`` prices the grid with (``k400ray/tune/cost.py``). Every field is
    optional; not part of the grid's identity (changing it never stops a ``--resume``).
    ``cluster``: a Ray cluster-launcher YAML (``cluster.yaml``): the GPU instance type, its
    ``decode_cpu`` and the decode nodes' are read from its node types. ``resolution``: the copy
    the index points at (``prepared`` by ``k400ray prepare``, or a raw 720p / 1080p copy)."""

    cluster: str | None = None
    gpu: str | None = None  # GPU kind (default: the cluster's GPU instance's, else A100)
    decode_cores_per_gpu: float | None = Field(None, gt=0)  # default: from the cluster
    resolution: Literal["prepared", "720p", "1080p"] = "prepared"
    decode_efficiency: float | None = Field(None, gt=0, le=1)  # default: Ray Data's measured share of the decode limit
    startup_minutes: float = Field(10.0, ge=0)  # per trial: node boot + setup, worker group, first batch
    dataset_gb: float | None = Field(None, gt=0)  # train + val (default: the index's bytes, the prepare manifest's...)
    # the prepared copy's encoding, a name of the bench record (default: the prepare manifest's, else prepare's default)
    encoding: str | None = None
    efs_usd_per_gb_read: float | None = Field(None, ge=0)
    instances: dict[str, InstanceSpec] = Field(default_factory=dict)


class SearchSection(_Strict):
    """What a search varies beyond the grid (``k400ray/tune/space.py``): ``space`` maps
    ``section.field`` to a list of values (each one run) or a distribution, sampled
    ``num_samples`` times per grid point (preset x config x seed: every sample is run with each
    seed, so seeds stay common random numbers across the sampled points) by ``searcher``
    (``random``, or ``optuna``: Optuna's TPE through Ray Tune), at most ``max_concurrent``
    sampled trials at once (None: as the resources allow)."""

    space: dict[str, Axis] = Field(default_factory=dict)
    num_samples: int = Field(1, ge=1)
    searcher: Literal["random", "optuna"] = "random"
    max_concurrent: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _fields_exist(self) -> "SearchSection":
        for path, axis in self.space.items():
            check_field(path, axis)
        return self

    @property
    def sampled(self) -> bool:
        """Whether any axis is drawn (rather than every value run)."""
        return any(axis.sampled for axis in self.space.values())


class NamedConfig(_Strict):
    """A config the spec defines: a built-in ``base`` (its code path: batch mixing, RandAugment,
    GluonCV's recipe) with fields of the ``augmentation`` and ``training`` sections overridden."""

    base: Config
    augmentation: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fields_exist(self) -> "NamedConfig":
        for section, model in (("augmentation", AugmentationParams), ("training", TrainingParams)):
            overrides = getattr(self, section)
            unknown = next((k for k in overrides if k not in model.model_fields), None)
            if unknown:
                raise ValueError(f"{section}.{unknown}: unknown field (known: {', '.join(model.model_fields)})")
            try:
                model.model_validate(overrides)
            except ValidationError as exc:
                err = exc.errors()[0]
                raise ValueError(f"{section}.{_field_path(err['loc'])}: "
                                 f"{err['msg'].removeprefix('Value error, ')}") from None
        return self


class SearchSpec(_Strict):
    experiment: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    scale: Literal["full", "toy"] = "full"
    # data, augmentation and training: the trial's own sections (engine/params.py), as they are
    data: DataParams
    grid: GridSpec
    augmentation: AugmentationParams = AugmentationParams()
    training: TrainingParams = TrainingParams()
    resources: ResourceSpec = ResourceSpec()
    scheduler: SchedulerSpec = SchedulerSpec()
    mlflow: MlflowSpec = MlflowSpec()
    report: ReportSpec = ReportSpec()
    cost: CostSpec = CostSpec()
    search: SearchSection = SearchSection()
    configs: dict[str, NamedConfig] = Field(default_factory=dict)  # named configs, by name
    storage_path: str = "k400ray-runs"  # local dir, or a URI every node reaches (s3://...)
    # ImageNet weights per 2D backbone, local files every node reads (nothing is downloaded):
    # {resnet50: /mnt/k400/weights/resnet50-imagenet.pth, mobilenetv2: ...}. Full scale only.
    pretrained: dict[Literal["resnet50", "mobilenetv2"], str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _pretrained_needs_full_scale(self) -> "SearchSpec":
        if self.pretrained and self.scale == "toy":
            raise ValueError("pretrained: ImageNet weights fit full-scale backbones only (scale: full)")
        return self

    @model_validator(mode="before")
    @classmethod
    def _configs_named(cls, data):
        """Named configs shadow no built-in one, and the grid names only configs that exist
        (checked on the spec as written, to name the field the user wrote)."""
        if not isinstance(data, dict):
            return data
        defined = data.get("configs") if isinstance(data.get("configs"), dict) else {}
        for name in defined:
            if name in CONFIGS:
                raise ValueError(f"configs.{name}: shadows the built-in config {name!r} (choose another name)")
            if not isinstance(name, str) or not _NAME.match(name):
                raise ValueError(f"configs.{name}: a config name is letters, digits, '_', '.' or '-'")
        grid = data.get("grid") if isinstance(data.get("grid"), dict) else {}
        named = [(f"grid.{key}", c) for key in ("configs", "augmentations") if isinstance(grid.get(key), list)
                 for c in grid[key]]
        if isinstance(grid.get("rows"), list):
            named += [(f"grid.rows.{i}.config", r.get("config")) for i, r in enumerate(grid["rows"]) if isinstance(r, dict)]
        for where, config in named:
            if isinstance(config, str) and config not in CONFIGS and config not in defined:
                more = f"; defined: {', '.join(defined)}" if defined else ""
                raise ValueError(f"{where}: unknown config {config!r} (built in: {', '.join(CONFIGS)}{more})")
        return data

    @model_validator(mode="after")
    def _configs_meaningful(self) -> "SearchSpec":
        """A named config is meaningful for each preset it runs with (through its base)."""
        for preset, config, _ in self.grid.points():
            if config in self.configs:
                try:
                    check_config(preset, self.base_config(config))
                except ValueError as exc:
                    raise ValueError(f"configs.{config}: {exc}") from None
        return self

    @model_validator(mode="after")
    def _pbt_searcher(self) -> "SearchSpec":
        if self.scheduler.kind == "pbt":
            if self.search.searcher != "random":
                raise ValueError(f"search.searcher: {self.search.searcher} cannot drive PBT, whose population "
                                 "is drawn at random (searcher: random)")
            both = sorted(set(self.scheduler.mutations) & set(self.search.space))
            if both:
                raise ValueError(f"scheduler.mutations.{both[0]}: also a search.space axis; PBT draws its start")
        return self


    @model_validator(mode="after")
    def _optuna_one_point(self) -> "SearchSpec":
        """Optuna's TPE learns from the trials it has seen: it must compare like with like. So it
        runs one study over one grid point (one preset, config and seed) and samples every axis
        itself (it takes no list of values to run each of)."""
        if self.search.searcher != "optuna":
            return self
        if not self.search.space:
            raise ValueError("search.space: the optuna searcher needs at least one axis")
        listed = next((p for p, a in self.search.space.items() if not a.sampled), None)
        if listed:
            raise ValueError(f"search.space.{listed}: optuna samples every axis; write {{choice: [...]}} "
                             "instead of a list")
        if len(self.grid.points()) > 1:
            raise ValueError("search.searcher: optuna runs one study over one grid point (one preset, config "
                             f"and seed); this grid has {len(self.grid.points())}: split it into specs, or use random")
        return self

    @field_validator("scheduler")
    @classmethod
    def _pbt_fits_grid(cls, scheduler: SchedulerSpec, info: ValidationInfo) -> SchedulerSpec:
        """A PBT population shares a preset, and exploits before its last epoch (see tune/pbt.py)."""
        from k400ray.engine.config import trial_preset
        from k400ray.engine.recipe import REFERENCE_EVAL_INTERVAL, TOY_EVAL_INTERVAL
        from k400ray.tune.pbt import check_population

        grid, training, scale = info.data.get("grid"), info.data.get("training"), info.data.get("scale")
        if scheduler.kind != "pbt" or grid is None or training is None or scale is None:
            return scheduler
        default_interval = TOY_EVAL_INTERVAL if scale == "toy" else REFERENCE_EVAL_INTERVAL
        check_population(
            scheduler, points=grid.points(),
            epochs_of=lambda preset, config: training.total_epochs(trial_preset(preset, scale=scale, config=config)),
            eval_interval_of=lambda preset, config: training.eval_interval or default_interval,
        )
        return scheduler

    @model_validator(mode="after")
    def _baseline_in_grid(self) -> "SearchSpec":
        baseline = self.report.baseline_model
        if baseline is not None and baseline not in self.grid.presets:
            raise ValueError(f"report.baseline_model: {baseline} is not a preset of the grid "
                             f"({', '.join(self.grid.presets)})")
        return self

    @property
    def mlflow_experiment(self) -> str:
        return self.mlflow.experiment or self.experiment

    @property
    def val_index(self) -> str:
        return self.data.val_path

    def grid_points(self) -> list[tuple[str, str, int]]:
        """(preset, config, seed) of every trial: the cross product, or the rows."""
        return self.grid.points()

    @property
    def searching(self) -> bool:
        """Whether this spec is a search (axes beyond the grid), not a plain grid."""
        return bool(self.search.space)

    def base_config(self, config: str) -> str:
        """The built-in config whose code path ``config`` (built in or named) runs."""
        return self.configs[config].base if config in self.configs else config

    def sections_for(self, config: str) -> tuple[AugmentationParams, TrainingParams]:
        """The ``augmentation`` and ``training`` sections a trial of ``config`` runs with: the
        spec's, with a named config's overrides applied."""
        named = self.configs.get(config)
        if named is None:
            return self.augmentation, self.training
        return (AugmentationParams.model_validate({**self.augmentation.model_dump(), **named.augmentation}),
                TrainingParams.model_validate({**self.training.model_dump(), **named.training}))

    def epochs_of(self, preset: str, config: str) -> int:
        """The epochs a trial of (``preset``, ``config``) trains."""
        from k400ray.engine.config import trial_preset

        training = self.sections_for(config)[1]
        return training.total_epochs(trial_preset(preset, scale=self.scale, config=self.base_config(config)))


_NAME = __import__("re").compile(r"^[A-Za-z0-9_.-]+$")


def _field_path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def load_spec(path: str | Path) -> SearchSpec:
    """Parse and validate; any problem is a :class:`SpecError` with one line naming file and field."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SpecError(f"{path}:{where} not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: the spec must be a YAML mapping")
    try:
        return SearchSpec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        where = f"{_field_path(err['loc'])}: " if err["loc"] else ""  # a whole-spec check names its field
        raise SpecError(f"{path}: {where}{msg}{more}") from None


def check_indexes(spec: SearchSpec, origin: str | Path) -> int:
    """The indexes exist and agree on the class list; returns the number of classes."""
    from k400ray.data.index import load_manifest

    manifests = {}
    for field, index in (("data.train_index", spec.data.train_index), ("data.val_index", spec.val_index)):
        try:
            manifests[field] = load_manifest(index)
        except FileNotFoundError:
            raise SpecError(f"{origin}: {field}: no index at {index} (run `k400ray index DATA_ROOT --out {index}`)") from None
    train, val = manifests["data.train_index"], manifests["data.val_index"]
    if train["classes"] != val["classes"]:
        raise SpecError(f"{origin}: data.val_index: its class list differs from data.train_index's")
    if not train["splits"].get("train", {}).get("videos"):
        raise SpecError(f"{origin}: data.train_index: no indexed train videos")
    if not val["splits"].get("val", {}).get("videos"):
        raise SpecError(f"{origin}: data.val_index: no indexed val videos")
    for backbone, weights in spec.pretrained.items():
        if not Path(weights).is_file():
            raise SpecError(f"{origin}: pretrained.{backbone}: no weights file at {weights}")
    return len(train["classes"])


def trial_name(experiment: str, preset: str, aug: str, seed: int, sample: str | None = None) -> str:
    """Stable across restarts (no timestamps), so a resumed run finds its checkpoints. ``sample``:
    a search's sampled trial's own part (Tune's trial id), None for a grid's trial."""
    return f"{experiment}-{preset}-{aug}-s{seed}" + (f"-{sample}" if sample else "")


def sampled_values(params: dict) -> dict[str, Any]:
    """``{section.field: value}`` a search's Tune trial was given (empty for a grid's trial):
    Tune's params hold them nested, under ``values``."""
    return {f"{section}.{name}": value
            for section, fields in (params.get("values") or {}).items() for name, value in fields.items()}


def tune_trial_name(experiment: str, params: dict, trial_id: str) -> str:
    """The stable name of the Tune trial with ``params`` and ``trial_id``: a grid's trial keeps its
    point's name; a search's sampled trial adds Tune's trial id, saved with the experiment (so
    ``--resume`` gives it the same name) and unique even where two samples draw equal values."""
    return trial_name(experiment, *grid_point(params), sample=trial_id if "values" in params else None)


def sampled_trial(cfg: TrialConfig, values: dict[str, Any], *, name: str) -> TrialConfig:
    """``cfg`` (its grid point's trial) with a search's sampled ``values`` (``{section.field:
    value}``) applied to its sections, validated again, and named ``name``."""
    sections = apply_values({"augmentation": cfg.augmentation, "training": cfg.training}, values)
    return cfg.model_copy(update={**sections, "name": name})


def preset_labels(presets) -> dict[str, str]:
    """Short names of a grid's presets for MLflow's runs table: the family (``tsn``) when the grid
    has one preset of it, else the family and what tells its presets apart (``tsn_1x1x8`` and
    ``tsn_1x1x7``; ``tsm_r50`` and ``tsm_mobilenetv2_dense``). Unique within the grid: a label two
    presets would share falls back to the preset names."""
    presets = list(dict.fromkeys(presets))
    family = {p: family_of(p) for p in presets}
    labels = {}
    for p in presets:
        kin = [q for q in presets if family[q] == family[p]]
        shared = set.intersection(*(set(q.split("_")) for q in kin))
        labels[p] = "_".join([family[p], *(t for t in p.split("_") if t not in shared and t != family[p])])
    if len(set(labels.values())) < len(labels):
        return {p: p for p in presets}
    return labels


def run_label(preset: str, aug: str, seed: int, presets, values: dict | None = None) -> str:
    """A trial's name in MLflow's runs table, short enough to read whole: ``tsm·mixup·s0``
    (``presets``: every preset of the grid, see :func:`preset_labels`), then a search's sampled
    ``values`` briefly (``lr=0.012 weight_decay=3.1e-05``). The trial's stable name stays
    :func:`trial_name` (the ``k400ray.trial`` tag, Train's run directory)."""
    label = f"{preset_labels(presets)[preset]}·{aug}·s{seed}"
    return f"{label}·{short_values(values)}" if values else label


def grid_point(params: dict) -> tuple[str, str, int]:
    """(preset, aug, seed) of a Tune trial's params: under ``point`` (one grid search over the
    spec's points), or at the top level (grids started before explicit rows existed)."""
    point = params.get("point", params)
    return point["preset"], point["aug"], int(point["seed"])


def trial_config(spec: SearchSpec, preset: str, config: str, seed: int, *, num_classes: int) -> TrialConfig:
    """The trial of one grid point: the spec's sections as the trial's (a named config's overrides
    applied; ``config`` the base, ``config_name`` the named one), index paths absolute."""
    base = spec.base_config(config)
    try:
        check_config(preset, base)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    augmentation, training = spec.sections_for(config)
    storage = spec.storage_path if "://" in spec.storage_path else str(Path(spec.storage_path).resolve())
    data = spec.data.model_copy(update={"train_index": str(Path(spec.data.train_index).resolve()),
                                        "val_index": str(Path(spec.val_index).resolve())})
    return TrialConfig(
        preset=preset, scale=spec.scale, config=base, seed=seed, augmentation=augmentation,
        training=training, data=data, config_name=config if config != base else None, resources=spec.resources.per_trial(),
        use_gpu=spec.resources.gpus_per_worker > 0, num_classes=num_classes,
        name=trial_name(spec.experiment, preset, config, seed), storage_path=storage,
        pretrained=_weights_for(spec, preset),
    )


def _weights_for(spec: SearchSpec, preset: str) -> str | None:
    weights = spec.pretrained.get(PRESETS[preset].arch.backbone)
    return str(Path(weights).resolve()) if weights else None
