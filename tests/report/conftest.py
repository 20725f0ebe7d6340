"""Fixtures of the report tests: the CLI with the tune/report commands."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def cli_app():
    from k400ray.cli import app

    return app
