"""Fixtures of the tune tests: the CLI with the tune commands (the tiny indexed set,
``tiny_index``, is the session's: tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def cli_app():
    """``k400ray.cli.app``: every command, ``tune``, ``report`` and ``demo`` included."""
    from k400ray.cli import app

    return app


@pytest.fixture()
def no_ray(monkeypatch, tmp_path):
    """A dry run must not start Ray: any init fails the test. The GMAC cache goes to tmp."""
    import k400ray.runtime

    def refuse(*args, **kwargs):
        raise AssertionError("dry run started Ray")

    monkeypatch.setattr(k400ray.runtime, "init_ray", refuse)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
