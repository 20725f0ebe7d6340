"""Imports follow the layer order the package docstring states; a lower layer never imports a
higher one, not even inside a function."""

import ast
from pathlib import Path

import k400ray

PACKAGE = Path(k400ray.__file__).resolve().parent
# Lowest first, as in k400ray/__init__.py. Leaf helpers (runtime imports ray_private, nothing else
# of k400ray) sit below everything; bench sits beside tune and may use anything up to engine.
ORDER = {"runtime": 0, "ray_private": 0, "text_table": 0, "contracts": 0, "data": 1, "models": 2, "presets": 3,
         "preset_summary": 3, "engine": 4, "bench": 4.5, "tracking": 5, "tune": 6, "report": 7, "console": 8, "cli": 9,
         "__main__": 9}


def _unit(module: str) -> str:
    return module.split(".")[1]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("k400ray."):
            found.add(_unit(node.module))
        elif isinstance(node, ast.Import):
            found |= {_unit(a.name) for a in node.names if a.name.startswith("k400ray.")}
    return found


def test_no_module_imports_a_higher_layer():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.name == "__init__.py" and rel.parent == Path("."):
            continue
        me = rel.parts[0].removesuffix(".py")
        assert me in ORDER, f"{rel}: add its layer to ORDER and to k400ray/__init__.py"
        upward += [f"{rel} imports k400ray.{t}" for t in _imports(path) if t != me and ORDER[t] > ORDER[me]]
    assert upward == []


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_graph() -> dict[str, set[str]]:
    """Each k400ray module -> the k400ray modules it imports (inside functions too);
    ``from pkg import submodule`` is an import of the submodule, not of ``pkg``."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in modules:
                subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
                deps |= subs if len(subs) == len(node.names) else subs | {node.module}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in modules}
        graph[name] = deps - {name}
    return graph


def test_no_two_modules_import_each_other():
    """No import cycle, direct or through other modules: a module that needs a function of a
    module that needs it back means the function lives in the wrong place."""
    graph = _module_graph()
    cycles, done = [], set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append(" -> ".join(path[path.index(module):] + [module]))
            return
        if module in done:
            return
        for dep in sorted(graph[module]):
            visit(dep, path + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert cycles == []


def test_python_m_k400ray_lists_every_command():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "k400ray", "--help"], capture_output=True, text=True, check=True,
                         env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"}).stdout
    for command in ("synth", "index", "prepare", "train", "eval", "models", "tune", "report", "demo", "bench"):
        assert f" {command} " in out, command


def test_the_package_docstring_states_the_order():
    doc = " ".join(k400ray.__doc__.split())
    assert "``data`` -> ``models`` -> ``presets`` -> ``engine`` -> ``tracking`` -> ``tune`` -> ``report`` -> ``console`` -> ``cli``" in doc


def test_the_train_controller_imports_no_model_code():
    """What the Train controller of every trial unpickles (the train function and the callbacks)
    loads neither torchvision nor the models: that import cost each trial about 1.5 CPU-s."""
    import subprocess
    import sys

    probe = ("import sys, ray.train.torch\n"
             "import k400ray.engine.entry, k400ray.tune.forward, k400ray.tracking.epoch_callback, k400ray.tracking.outbox\n"
             "print(sorted(m for m in sys.modules if m == 'torchvision' or m.startswith(('k400ray.models', 'k400ray.presets', 'k400ray.engine.worker'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
