"""Tables, the one way k400ray prints them: aligned plain text (model summaries, benchmark
records, the grid's summary, the dry-run, the sheet on a terminal) and markdown (the sheet,
MLflow run descriptions). A leaf module: every layer may use it."""

from __future__ import annotations

from typing import Collection, Sequence

ALIGNS = {"l": ":---", "c": ":---:", "r": "---:"}  # markdown separator cells, 3 dashes each (see markdown_table)


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> list[str]:
    """The table's lines: the header, a rule of dashes, then the rows; every column as wide as its
    widest cell, columns whose index is in ``right`` right-aligned (numbers), the rest left-aligned.
    Trailing spaces are dropped."""
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """A GitHub-flavoured markdown table: header, separator, rows; ``align`` one letter per column
    (``l``, ``c``, ``r``; default ``l``). ``|`` inside a cell is escaped.

    Why three dashes per separator cell: MLflow's UI renders run descriptions with showdown, whose
    table rule wants at least two dashes in the first two separator cells (``|:-:|:-|`` stays raw
    text there); three is what every markdown renderer takes."""
    if any(len(r) != len(header) for r in rows):
        raise ValueError(f"every row needs {len(header)} cells")
    align = align.ljust(len(header), "l")

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(header), "|" + "|".join(ALIGNS[a] for a in align) + "|", *(line(r) for r in rows)]


def drop_empty_columns(header: Sequence[str], rows: Sequence[Sequence[str]], empty: str = "-",
                       keep: int = 1) -> list[int]:
    """Indexes of the columns worth printing: the first ``keep`` always, the others unless every
    row holds ``empty`` there (a one-seed sheet's seed statistics)."""
    return [i for i in range(len(header)) if i < keep or any(str(r[i]) != empty for r in rows)]


def fit_columns(header: Sequence[str], rows: Sequence[Sequence[str]], width: int,
                drop_order: Sequence[int | Sequence[int]] = ()) -> list[int]:
    """Indexes of the columns of a :func:`text_table` that fit in ``width`` characters: columns
    are dropped in ``drop_order`` (least needed first; a tuple of indexes goes together, a
    figure and its p) until the table fits or only the columns not in ``drop_order`` are left."""
    kept = list(range(len(header)))

    def table_width(columns: list[int]) -> int:
        return sum(max(len(str(r[i])) for r in (header, *rows)) for i in columns) + 2 * (len(columns) - 1)

    for step in drop_order:
        if table_width(kept) <= width:
            break
        kept = [i for i in kept if i not in ((step,) if isinstance(step, int) else step)]
    return kept
