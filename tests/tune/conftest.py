"""Fixtures of the tune tests: the CLI with the tune commands (the tiny indexed set,
``tiny_index``, is the session's: tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def cli_app():
    """``k400ray.cli.app``: every command, ``tune``, ``report`` and ``demo`` included."""
    from k400ray.cli import app

    return app

