"""Write ``constraints.txt``: the exact versions every cluster node (``cluster.yaml``) and the
project's own venv (``Makefile``) install.

Run from the repository root with the project's venv, after ``make install``::

    .venv/bin/python infra/make_constraints.py

The pins are this venv's versions (``pip freeze``) of k400ray's dependency closure, walked
from its requirements (Ray with the extras k400ray uses) and what the nodes add on top
(``ray[default]`` for the autoscaler and dashboard, ``boto3`` for the AWS provider and MLflow's
S3 store, ``psycopg2-binary`` for the MLflow server's PostgreSQL); what of those this venv lacks (boto3) is resolved by pip against those pins
(``pip install --dry-run --report``), keeping the versions ``constraints.txt`` already names
where they still fit, so the head and every worker get one set of versions whatever day they
boot, and running this twice changes nothing.

The venv runs Python 3.11; the cluster's image runs 3.12 (``CLUSTER_PYTHON``). So the whole set
is resolved again for 3.12, as the nodes' pip will (``--python-version 3.12
--only-binary=:all:``: every pin must have a wheel there, nothing is built on a node), under the
same pins. One file serves both: a package both Pythons need has the same version on both (else
this stops and names it); a package only one of them needs (an environment marker on
``python_version`` in some requirement) is pinned with that marker. Commit the result;
``tests/test_cluster_config.py`` checks it against ``pyproject.toml`` and both Pythons' markers.
To move a pin: change ``pyproject.toml``, install the new version into the venv without
``-c constraints.txt``, run this again.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
# What cluster.yaml's setup commands install beside k400ray: the autoscaler and dashboard, the AWS
# provider and MLflow's S3 store, the head MLflow server's PostgreSQL driver.
NODE_EXTRAS = ["ray[default]", "boto3", "psycopg2-binary"]
# The cluster image's python3: Ubuntu 24.04's (AWS's release notes of the Ubuntu 24.04 Deep Learning
# Base OSS AMIs list python_location /usr/bin/python3.12); cluster.yaml's venv is made from it.
CLUSTER_PYTHON = "3.12"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: list[str]) -> dict[str, str]:
    """{canonical name: installed version} of ``roots`` and everything they need here."""
    seen: dict[str, str] = {}
    todo = [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        name = canonical(req.name)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency this venv does not have
        extras = set(req.extras)
        if name in seen and not extras:
            continue
        seen[name] = dist.version
        for raw in dist.requires or []:
            dep = Requirement(raw)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if dep.marker is None or any(dep.marker.evaluate(env) for env in envs):
                todo.append(dep)
    return seen


def project_requirements() -> list[str]:
    return [r for r in metadata.requires("k400ray") or [] if "extra ==" not in r]


def pip_resolve(pins: dict[str, str], requirements: list[str], python: str | None = None) -> dict[str, str]:
    """{name: version} pip installs for ``requirements`` under ``pins`` (PyPI, nothing installed):
    for this interpreter, or for Python ``python`` from wheels only, as a node of that Python will."""
    with tempfile.TemporaryDirectory() as tmp:
        cons = Path(tmp) / "c.txt"
        cons.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
        report = Path(tmp) / "r.json"
        target = ["--python-version", python, "--only-binary=:all:", "--target", str(Path(tmp) / "t")] if python else []
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                        "--report", str(report), *target, "-c", str(cons), *requirements], check=True)
        items = json.loads(report.read_text())["install"]
    return {canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in items}


def node_requirements(pins: dict[str, str]) -> list[str]:
    return [f"ray[default]=={pins['ray']}", *NODE_EXTRAS[1:]]


def previous_pins(path: Path) -> dict[str, str]:
    """{name: version} of an existing constraints file (markers ignored); {} without one."""
    if not path.exists():
        return {}
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            pins[canonical(req.name)] = next(iter(req.specifier)).version
    return pins


def node_extras(pins: dict[str, str], previous: dict[str, str]) -> dict[str, str]:
    """What NODE_EXTRAS add to ``pins``: the previous file's versions where pip still accepts them."""
    kept = {n: v for n, v in previous.items() if n not in pins}
    try:
        resolved = pip_resolve({**kept, **pins}, node_requirements(pins))
    except subprocess.CalledProcessError:
        resolved = pip_resolve(pins, node_requirements(pins))
    return {k: v for k, v in resolved.items() if k not in pins}


def merge(local: dict[str, str], cluster: dict[str, str]) -> dict[str, str]:
    """{name: constraint line} valid on both Pythons: one version where both need the package,
    a ``python_version`` marker where only one does. Different versions: one line, exit 1."""
    differ = sorted(n for n in local.keys() & cluster.keys() if local[n] != cluster[n])
    if differ:
        n = differ[0]
        raise SystemExit(f"constraints: {n} resolves to {local[n]} here but {cluster[n]} on Python {CLUSTER_PYTHON}"
                         f" ({len(differ)} package(s) differ): pin a version both have wheels for")
    lines = {}
    for name in sorted(local.keys() | cluster.keys()):
        if name in local and name in cluster:
            lines[name] = f"{name}=={local[name]}"
        elif name in cluster:
            lines[name] = f'{name}=={cluster[name]} ; python_version >= "{CLUSTER_PYTHON}"'
        else:
            lines[name] = f'{name}=={local[name]} ; python_version < "{CLUSTER_PYTHON}"'
    return lines


def main() -> None:
    out = ROOT / "constraints.txt"
    pins = closure(project_requirements() + NODE_EXTRAS)
    pins.pop("k400ray", None)
    pins.update(node_extras(pins, previous_pins(out)))
    cluster = pip_resolve(pins, project_requirements() + node_requirements(pins), python=CLUSTER_PYTHON)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    header = [
        "# Exact versions for every cluster node and the project's venv: cluster.yaml's setup commands and",
        "# the Makefile install with `pip install -c constraints.txt`. Generated by infra/make_constraints.py",
        f"# from the project's venv (its dependency closure, Python {here}) plus ray[default], boto3 and psycopg2-binary resolved",
        f"# against it, then resolved again for the cluster's Python {CLUSTER_PYTHON} from wheels only: one file for",
        "# both (a package only one Python needs carries a python_version marker).",
        "# tests/test_cluster_config.py checks it against pyproject.toml. Regenerate after changing pins.",
    ]
    body = list(merge(pins, cluster).values())
    out.write_text("\n".join(header + body) + "\n")
    print(f"constraints.txt: {len(body)} pins, valid on Python {here} and {CLUSTER_PYTHON}")


if __name__ == "__main__":
    main()
