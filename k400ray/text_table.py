"""Aligned plain-text tables, the one way k400ray prints them (model summaries, benchmark
records, the grid's summary, the dry-run). A leaf module: every layer may use it."""

from __future__ import annotations

from typing import Collection, Sequence


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> list[str]:
    """The table's lines: the header, a rule of dashes, then the rows; every column as wide as its
    widest cell, columns whose index is in ``right`` right-aligned (numbers), the rest left-aligned.
    Trailing spaces are dropped."""
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]
