"""``infra/gpu_session.sh``, the prepared GPU run of issue #30: valid shell, every k400ray command
it runs or prints is accepted by the real CLI, and on a machine with no GPU `run` stops at once
saying so (the measurements themselves need the GPU machine)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra import ROOT
from tests.test_docs_commands import BadCommandLine, find_tool_commands, k400ray_cli, parse_cli

SCRIPT = ROOT / "infra" / "gpu_session.sh"
# Sample values of the script's variables, to parse its own command lines.
VARIABLES = {'"${k[@]}"': "k400ray", '"$k400ray"': "k400ray", '"$p"': "tsn_r50_1x1x8",
             '"$COMPILE_MODES"': "reduce-overhead", '"$procs"': "4"}


def _script_commands() -> list[list[str]]:
    """The k400ray command lines of the script (continuations joined, variables given values)."""
    text = re.sub(r"\\\n\s*", " ", SCRIPT.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        if not re.search(r'"\$\{k\[@\]\}" bench|"\$k400ray" bench', line):
            continue
        line = line.split(" || ")[0].strip()
        line = re.sub(r"^bounded \d+ ", "", line)
        for var, value in VARIABLES.items():
            line = line.replace(var, value)
        line = re.sub(r'"\$[A-Z_]+(/[^"]*)?"', lambda m: f"/x{m.group(1) or ''}", line)
        out.append(shlex.split(line))
    return out


def _ray_steps() -> str:
    return subprocess.run(["bash", str(SCRIPT), "ray-steps"], capture_output=True, text=True, check=True).stdout


def test_the_script_is_valid_shell():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    usage = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: infra/gpu_session.sh prepare")


def test_every_k400ray_command_it_runs_or_prints_parses():
    cli = k400ray_cli()
    commands = _script_commands()
    names = [" ".join(c[1:3]) for c in commands]
    assert names.count("bench train") == 1 and names.count("bench decode") == 2, names
    printed = [argv for line in _ray_steps().splitlines() if line.startswith("  ")  # its commands, not its prose
               for tool, argv in find_tool_commands(line) if tool == "k400ray"]
    assert [a[0] for a in printed][:4] == ["synth", "prepare", "index", "bench"] and len(printed) == 8
    for argv in [c[1:] for c in commands] + printed:
        try:
            parse_cli(cli, "k400ray", argv)
        except BadCommandLine as exc:
            pytest.fail(f"k400ray {shlex.join(argv)}: {exc}")
    assert "--compile" in commands[[" ".join(c[1:3]) for c in commands].index("bench train")]
    assert "search_spaces/gpu_ray_check.yaml" in _ray_steps()


def test_the_ray_check_spec_trains_on_one_gpu():
    from k400ray.tune.spec import load_spec, trial_config

    spec = load_spec(ROOT / "search_spaces" / "gpu_ray_check.yaml")
    assert spec.scale == "full" and spec.resources.gpus_per_worker == 1 and spec.training.compile == "off"
    cfg = trial_config(spec, "i3d_r50_32x2x1", "default", 0, num_classes=10)
    assert cfg.use_gpu and cfg.total_epochs == 3 and cfg.data.decode_backend == "cpu"


def test_run_without_a_gpu_stops_and_says_so(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: `run` would measure")
    done = subprocess.run(["bash", str(SCRIPT), "run"], capture_output=True, text=True, cwd=tmp_path,
                          env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "OUT": str(tmp_path / "out")})
    assert done.returncode == 1, done.stderr
    assert "no GPU visible: stop" in done.stderr
    assert "gpu False" in (tmp_path / "out" / "probe.txt").read_text()
