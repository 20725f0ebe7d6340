"""Metric keys, trial statuses and MLflow tag and param names are spelled in
``k400ray/contracts.py`` only: every other module imports them, so a name read in one process
and written in another cannot drift apart (a misspelt key raises nothing; its figure just never
shows). The check walks every module's AST for string constants, f-string parts included, and
skips docstrings: prose may name a key."""

import ast
from pathlib import Path

import pytest

from k400ray import contracts

ROOT = Path(__file__).resolve().parents[1] / "k400ray"
CONTRACTS = "contracts.py"

# Contract names that are also ordinary words, with other meanings in other modules (a table's
# "model" column, the spec's "training" section, a checkpoint's "epoch"): these are found only
# where a run's tags, a report's metrics or a run's params are read (``x["seed"]``,
# ``x.get("seed")``, ``"seed" in x``), as tests/test_config_names.py leaves "default" out.
ORDINARY = {contracts.EPOCH, contracts.LR, contracts.MODEL_TAG, contracts.CONFIG_TAG, contracts.CONFIG_TAG_FORMERLY,
            contracts.SEED_TAG, contracts.FAMILY_TAG, contracts.ROLE_GRID, contracts.ROLE_TRIAL, contracts.TRAINING,
            contracts.NUM_CLASSES_PARAM}
# Read positions that are not contracts all the same, by module, and why.
ALLOWED: dict[str, dict[str, str]] = {
    "engine/resume.py": {"epoch": "a key of the checkpoint's state file", "model": "a key of the state file",
                         "lr": "torch's parameter-group key"},
    "engine/offline_eval.py": {"epoch": "a key of the checkpoint's state file",
                               "model": "a key of the state file"},
    "engine/worker.py": {"lr": "torch's parameter-group key", "trial": "a key of the Train loop's config"},
    "tune/spec.py": {"aug": "a key of a grid point (Tune's param space)", "seed": "a key of a grid point",
                     "config": "a key of the spec's grid rows, as users write them",
                     "grid": "a section of the spec", "training": "a section of the spec"},
    "cli/data.py": {"num_classes": "a field of the dataset's manifest"},
    "tune/runner.py": {"grid": "a section of the spec", "training": "a section of the spec"},
    "tracking/mlflow_log.py": {"grid": "a section of the spec"},
    "tune/throughput.py": {"clips_per_s": "a field of the measured-throughput records (tune/records)"},
    "data/prepare.py": {"finished": "the manifest's time stamp"},
    "engine/checkpoint.py": {"config": "a key of the checkpoint's state file"},
    "engine/config.py": {"config": "a field of TrialConfig's own dump",
                         "aug": "the MLflow param the config has always been logged under (older runs read it)"},
    "data/stage.py": {"finished": "the staging record's time stamp"},
    "tracking/artifacts.py": {"val_videos": "a column of per_class_accuracy.csv: the class's videos"},
}


def _contract_strings() -> dict[str, str]:
    """Every string the contracts module defines -> the constant that names it."""
    found = {}
    for name, value in vars(contracts).items():
        if name.isupper() and isinstance(value, str):
            found.setdefault(value, name)
    return found


NAMES = _contract_strings()
# What builds a metric key, tag filter or param name inside an f-string: ``f"{mode}_acc1"``,
# ``f"tags.`config`"``, ``f"{aug}_alpha"``.
SUFFIXES = tuple(f"_{figure}" for figure in (contracts.ACC1, contracts.ACC5, contracts.MEAN_CLASS_ACC, "alpha"))


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, kinds) and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)}


def _read_positions(tree: ast.AST) -> set[int]:
    """The string constants that something is looked up by: ``x[s]``, ``x.get(s)``, ``s in x``."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            found.add(id(node.slice))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "get" and node.args:
            found.add(id(node.args[0]))
        elif isinstance(node, ast.Compare) and isinstance(node.ops[0], (ast.In, ast.NotIn)):
            found.add(id(node.left))
    return found


def _quoted(text: str) -> str | None:
    """A contract name that ``text`` quotes (``tags.`config```, ``= 'grid'``), else None."""
    for name in NAMES:
        if any(f"{q}{name}{q}" in text for q in "`'\""):
            return name
    return None


def _hits(path: Path) -> list[tuple[int, str]]:
    """``(line, name)`` for every contract name ``path`` spells as a string of its own, as an
    f-string part, or as a keyword that builds a dict (``update(epoch=...)``)."""
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    in_fstring = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    read = _read_positions(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = node.value
            if text in NAMES and (text not in ORDINARY or id(node) in read):
                hits.append((node.lineno, text))
            elif (quoted := _quoted(text)) is not None:
                hits.append((node.lineno, quoted))
            elif id(node) in in_fstring and text.endswith(SUFFIXES):
                hits.append((node.lineno, text))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("update", "dict"):
            hits += [(node.lineno, kw.arg) for kw in node.keywords if kw.arg in NAMES and kw.arg not in ORDINARY]
    return hits


def _spelled_outside() -> dict[str, list[str]]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == CONTRACTS:
            continue
        allowed = ALLOWED.get(rel, {})
        hits = [f"{line}: {name!r}" for line, name in _hits(path) if name not in allowed]
        if hits:
            found[rel] = hits
    return found


def test_no_contract_name_is_spelled_outside_the_contracts_module():
    assert _spelled_outside() == {}


def test_every_allowance_is_still_needed():
    """An allowance whose string is gone is removed, so that the list says only what is true."""
    stale = []
    for rel, allowed in ALLOWED.items():
        spelled = {name for _, name in _hits(ROOT / rel)}
        stale += [f"{rel}: {name!r}" for name in allowed if name not in spelled]
    assert stale == []


def test_the_check_finds_what_it_is_for(tmp_path):
    """A key, an f-string built key, a quoted tag in a query, a dict keyword, statuses and a tag
    read by an ordinary word are found; a docstring that names a key and a table header that
    says "model" are not."""
    module = tmp_path / "m.py"
    module.write_text('"""reports efficient_acc1."""\n'
                      'a = m["efficient_acc1"]\n'
                      'b = m[f"{mode}_acc5"]\n'
                      'c = f"tags.`k400ray.role` = {x}"\n'
                      'd = dict(skipped_videos=1)\n'
                      'e = "done" if x else "stopped early"\n'
                      'f = run.data.tags.get("seed")\n'
                      'g = ("model", "config", "seed")\n')
    assert sorted(line for line, _ in _hits(module)) == [2, 3, 4, 5, 6, 6, 7]


def test_the_contracts_module_names_each_string_once():
    """Two constants with one value would be two names for one thing, unless one is the other's
    alias on purpose (a status that is also a flag's name)."""
    values = [value for name, value in vars(contracts).items() if name.isupper() and isinstance(value, str)]
    assert sorted(v for v in set(values) if values.count(v) > 1) == []


@pytest.mark.parametrize("mode", ["efficient", "accurate"])
def test_mode_metrics_are_the_named_keys(mode):
    from k400ray.presets import EVAL_MODES

    assert mode in EVAL_MODES
    for figure in (contracts.ACC1, contracts.ACC5, contracts.MEAN_CLASS_ACC):
        key = contracts.mode_metric(mode, figure)
        assert getattr(contracts, key.upper()) == key


def test_old_spellings_are_still_read():
    """Checkpoints of older runs say ``done`` for tested; older MLflow runs tag the config ``aug``."""
    assert contracts.is_tested({"done": 1}) and contracts.is_tested({contracts.TESTED: 1})
    assert not contracts.is_tested({contracts.TESTED: 0, "done": 0})
    assert contracts.config_of({"aug": "mixup"}) == "mixup"
    assert contracts.config_of({contracts.CONFIG_TAG: "cutmix", "aug": "cutmix"}) == "cutmix"
    assert contracts.config_of({}) == "?"
