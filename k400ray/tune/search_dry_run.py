"""The text of ``k400ray tune SPEC --dry-run`` for a search: how many trials its axes make, one
table row per distinct trial (grid point x list-axis values; sampled trials alike are counted,
not listed), the grid's cost lines over every trial, and with ASHA the range between every trial
stopped at its earliest rung and none stopped. The numbers are :mod:`k400ray.tune.search_cost`'s."""

from __future__ import annotations

from pathlib import Path

from k400ray.text_table import text_table
from k400ray.tune.dry_run import (
    _dollar_lines, _grid_shape, _hours, _n, _throughput_lines, counts_source, resources_line, schedule_text,
)
from k400ray.tune.search_cost import SearchCost, price_search
from k400ray.tune.space import Axis
from k400ray.tune.spec import SearchSpec


def axis_text(path: str, axis: Axis) -> str:
    """``augmentation.mixup_alpha: each of 0.2, 1.0`` or ``training.lr: loguniform 0.001 to 0.1``."""
    if axis.kind == "grid":
        return f"{path}: each of {', '.join(map(str, axis.values))}"
    if axis.kind == "choice":
        return f"{path}: choice of {', '.join(map(str, axis.values))}"
    return f"{path}: {axis.kind} {axis.low:g} to {axis.high:g}" + (f" step {axis.q:g}" if axis.q else "")


def search_shape(spec: SearchSpec, samples: int) -> str:
    """``3 rows of grid.rows x 2 values of augmentation.mixup_alpha x 24 samples``."""
    parts = [_grid_shape(spec)]
    parts += [_n(len(a.values), "value") + f" of {p}" for p, a in spec.search.space.items() if not a.sampled]
    if spec.search.sampled:
        parts.append(_n(samples, "sample"))
    return " x ".join(parts)


def format_search_dry_run(spec: SearchSpec, spec_path: str | Path) -> str:
    """The text ``--dry-run`` prints for a spec with a ``search`` section.

    Args:
        spec (SearchSpec): the search.
        spec_path (str | Path): the spec's file (named in the text; relative paths start there).
    Returns:
        str: lines: the search, one row per distinct trial, where each rate comes from, the cost.
    """
    priced = price_search(spec, spec_path)
    grid, rows = priced.grid, priced.grid.rows
    sampled = [p for p, a in spec.search.space.items() if a.sampled]
    listed = [p for p, a in spec.search.space.items() if not a.sampled]
    lines = [
        f"{spec_path}: experiment {spec.experiment!r}, scale {spec.scale}, {len(rows)} trials "
        f"({search_shape(spec, priced.samples)})" + (f", searcher {spec.search.searcher}" if sampled else ""),
        "search: " + "; ".join(axis_text(p, a) for p, a in spec.search.space.items()),
    ]
    if sampled:
        lines.append(f"  sampled axes ({', '.join(sampled)}) are priced at the spec's own value of each field")
    lines += [
        resources_line(priced.spec) + (f" (search.max_concurrent {spec.search.max_concurrent})"
                                       if spec.search.max_concurrent else ""),
        f"videos: {grid.counts.train:,} train / {grid.counts.val:,} val ({counts_source(grid.counts, spec)})",
        "one row per distinct trial (grid point x list-axis values); samples: trials alike in cost; lr: the "
        "trial's base lr after linear scaling; wall h and GPU-hours: one trial",
        "",
    ]
    lines += _table(priced, listed)
    lines += ["", *_throughput_lines(priced.spec, grid), ""]
    lines += _cost_lines(priced, spec)
    lines += _dollar_lines(priced.spec, grid.shape, grid.dollars)
    lines.append("dry run: nothing was started")
    return "\n".join(lines)


def _table(priced: SearchCost, listed: list[str]) -> list[str]:
    header = ("preset", "config", "seed", *listed, "samples", "epochs", "lr", "batch", "schedule", "bound", "wall h",
              "GPU-hours")
    body = [(p.cost.preset, p.cost.aug, str(p.cost.seed), *(str(p.values[a]) for a in listed), str(priced.samples),
             str(p.cost.epochs), f"{p.cost.recipe.lr:.4g}",
             f"{p.cost.recipe.total_batch} ({p.cost.recipe.world_size}x{p.cost.recipe.batch_per_worker})",
             schedule_text(p.cost.recipe), p.cost.bottleneck, _hours(p.cost.wall_h), _hours(p.cost.gpu_hours))
            for p in priced.distinct]
    first = 3 + len(listed)
    return text_table(header, body, right={2, first, first + 1, first + 2, first + 6, first + 7})


def _cost_lines(priced: SearchCost, spec: SearchSpec) -> list[str]:
    grid, rows = priced.grid, priced.grid.rows
    gpus = rows[0].gpus if rows else 0
    parts = {"training": sum(c.train_h for c in rows), "efficient eval": sum(c.efficient_h for c in rows),
             "accurate eval": sum(c.accurate_h for c in rows), "start-up": sum(c.startup_h for c in rows)}
    lines = [f"estimated cost: {_hours(sum(c.gpu_hours for c in rows))} {grid.shape.gpu} GPU-hours for "
             f"{len(rows)} trials (" + ", ".join(f"{k} {_hours(v * gpus)}" for k, v in parts.items()) + ")"]
    if rows:
        lines.append(f"  wall clock: ~{_hours(max(c.wall_h for c in rows))} h per trial at most on {gpus} GPUs; "
                     f"~{_hours(grid.grid_h)} h for the search at {grid.slots} trial(s) at once")
    if not spec.resources.gpus_per_worker:
        lines.append("  (this spec requests no GPUs; priced as if each worker had one GPU of the kind above)")
    asha = priced.asha
    if asha is None:
        lines.append(f"ASHA: not used (scheduler.kind {spec.scheduler.kind}): every trial runs all its epochs, "
                     f"the full cost ~${grid.dollars.total:,.0f}")
        return lines
    sched = spec.scheduler
    lines.append(f"ASHA: between ${asha.low.total:,.0f} (most stopped at their rungs) and ${asha.high.total:,.0f} "
                 f"(none stopped); {_hours(asha.low_gpu_hours)} to {_hours(asha.high_gpu_hours)} GPU-hours, "
                 f"~{_hours(asha.low_wall_h)} to ~{_hours(asha.high_wall_h)} h of wall clock")
    for preset, stops in asha.rungs.items():
        where = ", ".join(f"{r:g}" for r in stops) or "none (grace period at the last epoch)"
        finishing = 100.0 / sched.reduction_factor ** len(stops)
        lines.append(f"  {preset}: rungs at epochs {where}; 1/{sched.reduction_factor:g} go on past each, "
                     f"{finishing:.3g}% reach the last epoch (grace_period {sched.grace_period}) at the most stopped")
    lines.append("  most stopped: a stopped trial trains and evaluates only its epochs and skips the accurate mode; "
                 "start-up and storage reads counted in full")
    return lines

