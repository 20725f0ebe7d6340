"""What a search (the spec's ``search`` section) will cost, from the grid's own per-trial model.

A search runs, for every grid point (preset x config x seed, or a row's seeds), every combination
of its list axes, ``num_samples`` times when any axis is sampled. Each list combination is priced
as its own trial (the values are applied to the spec, so an axis on ``training.epochs`` changes
the epochs priced); a sampled axis cannot be known in advance, so its trials are priced with the
spec's own value of that field, and the text says so.

With ASHA (``scheduler.kind: asha``, one ASHA per preset: :mod:`k400ray.tune.scheduler`), what a
search costs lies between two bounds: none stopped (the full cost), and every trial stopped at the
earliest rung it can be, the rungs being ``grace_period x reduction_factor^k`` epochs below the
preset's longest run and ``1 / reduction_factor`` of the trials going on past each rung. A trial
stopped early trains and evaluates only its epochs and never runs the accurate mode; its start-up
is paid all the same. Storage reads are priced as if every trial ran to its end (an upper bound
on that small share).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from k400ray.tune.cost import (
    Dollars, GridCost, TrialCost, VideoCounts, concurrency, decode_cores, dollars, estimate, grid_wall_hours,
    video_counts,
)
from k400ray.tune import storage
from k400ray.tune.cluster_shape import cluster_shape
from k400ray.tune.space import apply_values
from k400ray.tune.spec import SearchSpec


def list_combinations(spec: SearchSpec) -> list[dict[str, Any]]:
    """Every combination of the list axes' values (``{section.field: value}``), in spec order;
    ``[{}]`` when no axis is a list."""
    axes = {path: axis.values for path, axis in spec.search.space.items() if not axis.sampled}
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def samples_per_combination(spec: SearchSpec) -> int:
    """``num_samples`` when any axis is sampled, else 1 (a list-only search runs each value once)."""
    return spec.search.num_samples if spec.search.sampled else 1


def trials_per_point(spec: SearchSpec) -> int:
    """Trials one grid point becomes: the list combinations x the samples."""
    return len(list_combinations(spec)) * samples_per_combination(spec)


def with_values(spec: SearchSpec, values: dict[str, Any]) -> SearchSpec:
    """``spec`` with ``values`` (``{section.field: value}``) set in its sections, validated again."""
    sections = apply_values({"training": spec.training, "augmentation": spec.augmentation}, values)
    return spec.model_copy(update=sections)


def slots(spec: SearchSpec, trials: int) -> int:
    """Trials at once: ``resources.max_concurrent_trials`` and ``search.max_concurrent``, the lower."""
    return min(concurrency(spec, trials), spec.search.max_concurrent or trials)


@dataclass(frozen=True)
class PricedTrial:
    """One distinct trial of a search: its list-axis values and its cost (``samples`` alike)."""

    values: dict[str, Any]
    cost: TrialCost


@dataclass(frozen=True)
class AshaRange:
    """The cheapest a search can be under ASHA (most stopped at their rungs) and the dearest
    (none stopped)."""

    rungs: dict[str, list[float]]  # per preset, the epochs at which ASHA may stop a trial
    low_gpu_hours: float
    high_gpu_hours: float
    low: Dollars
    high: Dollars
    low_wall_h: float
    high_wall_h: float


@dataclass(frozen=True)
class SearchCost:
    """A search priced: the distinct trials, the samples of each, every trial, the ASHA range."""

    spec: SearchSpec  # the spec priced (its concurrency set to the search's slots)
    distinct: list[PricedTrial]
    samples: int
    grid: GridCost  # every trial (``distinct`` x ``samples``), as the grid's dry run prices them
    asha: AshaRange | None


def rungs(max_t: int, grace_period: int, reduction_factor: float) -> list[float]:
    """The epochs at which Ray's ASHA (one bracket) may stop a trial of ``max_t`` epochs: ``grace
    x rf^k`` below ``max_t`` (a trial at its last epoch is never stopped here)."""
    grace = min(grace_period, max_t)
    out, k = [], 0
    while grace * reduction_factor ** k < max_t:
        out.append(grace * reduction_factor ** k)
        k += 1
    return out


def expected_epochs(epochs: int, stops: list[float], reduction_factor: float) -> tuple[float, float]:
    """(epochs trained, share that reaches its last epoch) of a trial of ``epochs`` when each rung
    in ``stops`` lets ``1 / reduction_factor`` go on: the most ASHA can stop, on average."""
    trained, share, last = 0.0, 1.0, 0.0
    for rung in (r for r in stops if r < epochs):
        trained += share * (rung - last)
        share /= reduction_factor
        last = rung
    return trained + share * (epochs - last), share


def most_stopped(row: TrialCost, stops: list[float], reduction_factor: float) -> TrialCost:
    """``row`` as it costs on average when ASHA stops all it can: its epochs and efficient
    evaluations cut to the epochs trained, the accurate mode only for the share that reaches its end."""
    trained, share = expected_epochs(row.epochs, stops, reduction_factor)
    part = trained / row.epochs if row.epochs else 1.0
    return replace(row, train_h=row.train_h * part, efficient_h=row.efficient_h * part,
                   accurate_h=row.accurate_h * share)


def price_search(spec: SearchSpec, spec_path: str | Path = "spec", *, counts: VideoCounts | None = None,
                 num_classes: int = 400) -> SearchCost:
    """Price every trial of a search once (as :func:`k400ray.tune.cost.price_grid` a grid's),
    and the ASHA range when the spec uses ASHA.

    Args:
        spec (SearchSpec): a spec with a ``search`` section.
        spec_path (str | Path): the spec's file (``cost.cluster`` is found relative to it).
        counts (VideoCounts): videos per epoch and evaluation (default: :func:`video_counts`).
        num_classes (int): classes of the models priced.
    Returns:
        SearchCost: what ``--dry-run`` prints for a search.
    """
    counts = counts or video_counts(spec)
    samples = samples_per_combination(spec)
    combos = list_combinations(spec)
    trials = len(spec.grid_points()) * len(combos) * samples
    at_once = slots(spec, trials)
    priced = spec.model_copy(update={"resources": spec.resources.model_copy(
        update={"max_concurrent_trials": at_once})})
    shape = cluster_shape(priced, spec_path)
    encoding, how = storage.prepared_encoding(priced, spec_path)
    size = storage.data_size(priced, *counts.whole, encoding)
    distinct = [PricedTrial(values, row) for values in combos
                for row in estimate(with_values(priced, values), counts, num_classes=num_classes, shape=shape,
                                    spec_path=spec_path, encoding=encoding, size=size, trials=trials)]
    rows = [p.cost for p in distinct for _ in range(samples)]
    wall = grid_wall_hours(rows, at_once)
    grid = GridCost(shape, counts, decode_cores(priced, shape, trials), encoding, how, size, rows, at_once, wall,
                    dollars(priced, shape, rows, wall, counts, size))
    return SearchCost(priced, distinct, samples, grid, _asha_range(priced, grid) if spec.scheduler.kind == "asha"
                      else None)


def _asha_range(spec: SearchSpec, grid: GridCost) -> AshaRange:
    """Most stopped vs none stopped, each preset's rungs from its longest trial (as
    :func:`k400ray.tune.scheduler.build_scheduler` sets ``max_t``)."""
    sched = spec.scheduler
    max_t: dict[str, int] = {}
    for row in grid.rows:
        max_t[row.preset] = max(max_t.get(row.preset, 0), row.epochs)
    stops = {p: rungs(t, sched.grace_period, sched.reduction_factor) for p, t in max_t.items()}
    low_rows = [most_stopped(r, stops[r.preset], sched.reduction_factor) for r in grid.rows]
    low_wall = grid_wall_hours(low_rows, grid.slots)
    return AshaRange(stops, sum(r.gpu_hours for r in low_rows), sum(r.gpu_hours for r in grid.rows),
                     dollars(spec, grid.shape, low_rows, low_wall, grid.counts, grid.size), grid.dollars,
                     low_wall, grid.grid_h)


def fraction_finishing(stops: list[float], reduction_factor: float) -> float:
    """Share of a preset's trials that reach their last epoch when ASHA stops all it can."""
    return 1.0 / reduction_factor ** len(stops) if stops else 1.0

