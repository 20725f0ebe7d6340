"""``python -m k400ray``: the same command line as the ``k400ray`` script (e.g. on a node where
the package is on PYTHONPATH but not installed)."""

from k400ray.cli import app

app(prog_name="k400ray")
