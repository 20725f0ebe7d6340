"""The axes of a search: any field of a trial's ``training`` or ``augmentation`` section, given
as a list of values (every one is run, like a grid) or as a distribution to sample from.

In a spec::

    search:
      space:
        training.lr: {loguniform: [0.001, 0.1]}
        training.weight_decay: {loguniform: [1.0e-5, 1.0e-3]}
        augmentation.mixup_alpha: [0.2, 1.0]          # a list: each value, for every sample

The distributions are Ray Tune's own (``tune.choice``, ``tune.uniform``, ``tune.loguniform``,
``tune.randint``, ``tune.lograndint`` and the quantised ``q*`` forms: :func:`Axis.domain`); nothing
here samples. ``randint`` and ``lograndint`` are Tune's: the upper bound is excluded. An axis is
checked against the field it names when the spec loads: the field exists, and its bounds and
values pass the field's own validation (``training.lr`` must stay above 0), so a typo or an
impossible range is a one-line spec error, not a failed trial hours later.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from k400ray.engine.params import AugmentationParams, Section, TrainingParams

# The sections a search may vary, by the name a spec gives them.
SEARCHABLE: dict[str, type[Section]] = {"training": TrainingParams, "augmentation": AugmentationParams}
# distribution -> how many numbers it takes ([low, high] or [low, high, q])
RANGES: dict[str, int] = {"uniform": 2, "loguniform": 2, "randint": 2, "lograndint": 2,
                          "quniform": 3, "qloguniform": 3, "qrandint": 3, "qlograndint": 3}
KINDS = ("grid", "choice", *RANGES)
Kind = Literal[KINDS]


class Axis(BaseModel):
    """One searched field: ``kind`` ``grid`` (every value) or ``choice`` (sampled among
    ``values``), or a range (``low``, ``high``, and ``q`` for the quantised kinds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    q: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, data):
        """A YAML list is a grid; ``{kind: args}`` a distribution (one key)."""
        if isinstance(data, (list, tuple)):
            return {"kind": "grid", "values": tuple(data)}
        if not isinstance(data, dict) or "kind" in data:
            return data
        if len(data) != 1:
            raise ValueError(f"one distribution per axis, as {{name: args}} (got {', '.join(map(str, data)) or 'none'}; "
                             f"known: {', '.join(KINDS[1:])}, or a list of values)")
        (kind, args), = data.items()
        if kind == "choice":
            return {"kind": kind, "values": tuple(args) if isinstance(args, (list, tuple)) else args}
        if kind not in RANGES:
            raise ValueError(f"unknown distribution {kind!r} (known: {', '.join(KINDS[1:])}, or a list of values)")
        if not isinstance(args, (list, tuple)) or len(args) != RANGES[kind]:
            shape = "[low, high]" if RANGES[kind] == 2 else "[low, high, q]"
            raise ValueError(f"{kind} takes {shape}")
        return {"kind": kind, "low": args[0], "high": args[1], **({"q": args[2]} if len(args) == 3 else {})}

    @model_validator(mode="after")
    def _coherent(self) -> "Axis":
        if self.kind in ("grid", "choice"):
            if not self.values:
                raise ValueError(f"{self.kind}: give at least one value")
            return self
        if self.low > self.high:
            raise ValueError(f"{self.kind}: low {self.low:g} > high {self.high:g}")
        if self.kind in ("randint", "lograndint", "qrandint", "qlograndint") and self.low == self.high:
            raise ValueError(f"{self.kind}: the high bound is excluded, so low {self.low:g} = high leaves no value")
        if "log" in self.kind and self.low <= 0:
            raise ValueError(f"{self.kind}: low must be above 0 (got {self.low:g})")
        if self.q is not None and self.q <= 0:
            raise ValueError(f"{self.kind}: q must be above 0 (got {self.q:g})")
        return self

    @property
    def sampled(self) -> bool:
        """Drawn by the searcher (True), or every value run (a grid axis)."""
        return self.kind != "grid"

    def examples(self) -> list:
        """Values to check against the field: the listed ones, or a range's bounds (as ints for
        the integer kinds; the excluded upper bound of those is checked minus one)."""
        if self.kind in ("grid", "choice"):
            return list(self.values)
        if "randint" in self.kind:
            return [int(self.low), int(self.high) - 1]
        return [self.low, self.high]

    def domain(self):
        """This axis as Ray Tune's search-space object (``tune.grid_search`` for a grid)."""
        from ray import tune

        if self.kind == "grid":
            return tune.grid_search(list(self.values))
        if self.kind == "choice":
            return tune.choice(list(self.values))
        build = getattr(tune, self.kind)
        low, high = (int(self.low), int(self.high)) if "randint" in self.kind else (self.low, self.high)
        if self.q is None:
            return build(low, high)
        return build(low, high, int(self.q) if "randint" in self.kind else self.q)


def check_field(path: str, axis: Axis) -> None:
    """``path`` (``section.field``) names a searchable field, and every value ``axis`` can give it
    passes the field's validation. Raises ValueError (one line)."""
    section, _, name = path.partition(".")
    if section not in SEARCHABLE or not name:
        raise ValueError(f"space.{path}: name a field as section.field, section one of {', '.join(SEARCHABLE)}")
    model = SEARCHABLE[section]
    if name not in model.model_fields:
        raise ValueError(f"space.{path}: unknown field (known: {', '.join(model.model_fields)})")
    for value in axis.examples():
        try:
            model.model_validate({name: value})
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise ValueError(f"space.{path}: {value!r}: {msg}") from None


def apply_values(sections: dict[str, Section], values: dict[str, Any]) -> dict[str, Section]:
    """``sections`` (by name, as in a spec) with ``values`` (``{section.field: value}``, as Tune
    sampled them) set and validated again; the sections no value names are returned as they are."""
    updates: dict[str, dict[str, Any]] = {}
    for path, value in values.items():
        section, _, name = path.partition(".")
        updates.setdefault(section, {})[name] = value
    out = dict(sections)
    for section, fields in updates.items():
        current = sections[section]
        out[section] = type(current).model_validate({**current.model_dump(), **fields})
    return out


def short_values(values: dict[str, Any]) -> str:
    """``values`` (``{section.field: value}``) in a few characters, for a run's name:
    ``lr=0.0123 weight_decay=3.1e-05`` (fields by their own name, numbers to 3 digits)."""
    def brief(value) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    return " ".join(f"{path.partition('.')[2] or path}={brief(v)}" for path, v in values.items())
