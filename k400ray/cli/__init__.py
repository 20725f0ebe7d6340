"""The ``k400ray`` command line. Thin: each command parses arguments, calls one library
function, prints, and maps user errors to a one-line message with exit code 2
(:func:`k400ray.cli.common.fail`).

One module per command group, each with a ``register(app)``: :mod:`.data` (``synth``,
``index``, ``prepare``), :mod:`.train` (``train``, ``eval``, ``models``), :mod:`.tune` (``tune``,
``report``, ``demo``), :mod:`.bench` (the ``bench`` group). ``app`` has every command, whether
run as the ``k400ray`` script or as ``python -m k400ray``; ``k400ray --version`` prints the
package version.
"""

from __future__ import annotations

import typer

from k400ray.cli import bench, data, train, tune
from k400ray.cli.common import fail

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="k400ray: Ray-distributed ablation grids for Kinetics-400 action recognition (TSN, TSM, I3D).")


def _print_version(value: bool) -> None:
    if value:
        from k400ray import __version__

        typer.echo(f"k400ray {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                          help="print the package version and exit")) -> None:
    """Options of ``k400ray`` itself, before any command."""
data.register(app)
train.register(app)
tune.register(app)
app.add_typer(bench.bench_app, name="bench")

__all__ = ["app", "fail"]
