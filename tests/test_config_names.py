"""The sheet's config names are spelled in ``k400ray/presets.py`` only (issue #20, "no twins"):
every other module uses its constants (``RANDAUGMENT``, ``MIXUP``, ``CUTMIX``, ``GLUONCV``,
``CONFIGS``, ``BATCH_MIX_CONFIGS``), so a config is renamed or added in one place."""

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

from k400ray.presets import BATCH_MIX_CONFIGS, CONFIGS, CUTMIX, DEFAULT, GLUONCV, MIXUP, RANDAUGMENT

ROOT = Path(__file__).resolve().parents[1] / "k400ray"
# "default" is also an ordinary word of other meanings (typer defaults, crop names, ...), so only
# the four other names are checked; messages and docstrings may still say them inside a sentence.
NAMES = ("randaugment", "mixup", "cutmix", "gluoncv")
# Modules that may write a name as a string of its own, and why. Empty: none needs to.
ALLOWED: dict[str, str] = {}


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, kinds) and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)}


def _name_literals(path: Path) -> list[str]:
    """``line: 'name'`` for every string constant of ``path`` that is exactly a config name."""
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    return [f"{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in NAMES and id(node) not in docs]


def test_config_names_are_string_literals_only_in_presets():
    found = {path.relative_to(ROOT).as_posix(): hits for path in sorted(ROOT.rglob("*.py"))
             if (hits := _name_literals(path))}
    assert set(found) - set(ALLOWED) == {"presets.py"}, found


def test_presets_names_each_config_once():
    hits = _name_literals(ROOT / "presets.py")
    assert sorted(h.split(": ")[1] for h in hits) == sorted(repr(n) for n in NAMES)


def test_the_constants_are_the_sheet_configs():
    assert CONFIGS == (DEFAULT, RANDAUGMENT, MIXUP, CUTMIX, GLUONCV)
    assert CONFIGS == ("default", "randaugment", "mixup", "cutmix", "gluoncv")
    assert BATCH_MIX_CONFIGS == ("mixup", "cutmix")


def test_an_unknown_config_is_still_refused_by_name():
    from k400ray.engine.config import TrialConfig

    for key in ("config", "aug"):  # ``aug``: the older name, in records written before
        with pytest.raises(ValidationError, match="Input should be 'default', 'randaugment', 'mixup', 'cutmix' or 'gluoncv'"):
            TrialConfig(preset="tsn_r50_1x1x8", data={"train_index": "i"}, num_classes=3, **{key: "bogus"})
    assert TrialConfig(preset="tsn_r50_1x1x8", data={"train_index": "i"}, num_classes=3).config == "default"
