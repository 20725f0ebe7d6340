"""What ``k400ray`` itself answers, before any command."""

import tomllib
from pathlib import Path

from typer.testing import CliRunner

import k400ray
from k400ray.cli import app


def test_version_is_the_package_version():
    pyproject = tomllib.loads((Path(k400ray.__file__).parents[1] / "pyproject.toml").read_text())
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"k400ray {pyproject['project']['version']}\n"
    assert k400ray.__version__ == pyproject["project"]["version"]
