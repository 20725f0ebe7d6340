"""The ``k400ray`` command line. Thin: each command parses arguments, calls one library
function, prints, and maps user errors to a one-line message with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])


def fail(message: str, code: int = 2) -> None:
    """One line on stderr, non-zero exit: the contract for every bad input."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def models(fmt: str = typer.Option("table", "--format", help="table | json"),
           scale: str = typer.Option("full", help="full | toy"),
           num_classes: int = typer.Option(400, help="classifier size used for the counts")) -> None:
    """List the model presets with parameters and GFLOPs (multiply-adds) per view."""
    from k400ray.models.summary import preset_summaries, format_table

    if fmt not in ("table", "json"):
        fail(f"--format must be 'table' or 'json', got {fmt!r}")
    if scale not in ("full", "toy"):
        fail(f"--scale must be 'full' or 'toy', got {scale!r}")
    rows = preset_summaries(scale=scale, num_classes=num_classes)
    typer.echo(json.dumps(rows, indent=2) if fmt == "json" else format_table(rows))


if __name__ == "__main__":
    app()
