"""``infra/check_gpu_driver.py`` on a faked PCI bus and a faked ``nvidia-smi``: the pinned torch's
driver requirement, one line and a non-zero exit when a GPU node cannot meet it."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.infra import ROOT, load_script

gd = load_script("check_gpu_driver")
A100, NVSWITCH, NIC = ("0x10de", "0x030200"), ("0x10de", "0x068000"), ("0x1d0f", "0x020000")


def fake_bus(root: Path, devices) -> Path:
    for i, (vendor, cls) in enumerate(devices):
        dev = root / f"0000:{i:02x}:00.0"
        dev.mkdir(parents=True)
        (dev / "vendor").write_text(vendor + "\n")
        (dev / "class").write_text(cls + "\n")
    return root


def fake_smi(bin_dir: Path, stdout: str = "", code: int = 0) -> Path:
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\nprintf '{stdout}'\n" + (f"echo 'NVIDIA-SMI has failed' >&2\nexit {code}\n" if code else ""))
    smi.chmod(0o755)
    return bin_dir


def run(tmp_path: Path, devices, *, smi: str | None = None, code: int = 0) -> subprocess.CompletedProcess:
    """The script as a node's setup runs it: ``python3 infra/check_gpu_driver.py``."""
    bus = fake_bus(tmp_path / "pci", devices)
    path = str(fake_smi(tmp_path / "bin", smi or "", code)) if smi is not None or code else str(tmp_path / "empty")
    env = {**os.environ, "PATH": path}  # only the fake: no real nvidia-smi of this machine
    return subprocess.run([sys.executable, str(ROOT / "infra" / "check_gpu_driver.py"), "--pci", str(bus)],
                          capture_output=True, text=True, env=env, timeout=60)


def test_the_requirement_is_the_pinned_torchs():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert f"torch=={gd.TORCH}" in deps
    torch = pytest.importorskip("torch")
    if torch.version.cuda:  # a CUDA build of the pinned wheel (the one the cluster installs)
        assert torch.version.cuda == gd.CUDA
    assert gd.MIN_DRIVER == 580  # CUDA 13.x, NVIDIA's minor version compatibility table


def test_a_node_without_nvidia_gpus_passes(tmp_path):
    r = run(tmp_path, [NIC, NVSWITCH])  # no nvidia-smi on PATH either
    assert r.returncode == 0 and "no NVIDIA GPU on this node" in r.stdout


def test_a_new_enough_driver_passes(tmp_path):
    r = run(tmp_path, [A100] * 8 + [NVSWITCH, NIC], smi="595.91.07\\n" * 8)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ("check_gpu_driver: driver 595.91.07 on 8 GPU(s): ok "
                                "(torch 2.14.1 (CUDA 13.0) needs NVIDIA driver >= 580)")


@pytest.mark.parametrize("devices, smi, code, message", [
    ([A100] * 8, "570.133.20\\n" * 8, 0, "NVIDIA driver 570.133.20 is too old: torch 2.14.1 (CUDA 13.0) needs "
                                          "NVIDIA driver >= 580"),
    ([A100] * 8, "", 9, "8 NVIDIA GPU(s) but nvidia-smi failed (NVIDIA-SMI has failed)"),
    ([A100] * 8, "595.91.07\\n" * 7, 0, "the driver sees 7 of the 8 NVIDIA GPU(s)"),
    ([A100], "[N/A]\\n", 0, "nvidia-smi reported no driver version"),
], ids=["too-old", "smi-fails", "gpu-missing", "no-version"])
def test_a_gpu_node_that_cannot_run_torch_fails_in_one_line(tmp_path, devices, smi, code, message):
    r = run(tmp_path, devices, smi=smi, code=code)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr


def test_no_driver_at_all_fails(tmp_path):
    r = run(tmp_path, [A100] * 8)  # GPUs on the bus, no nvidia-smi anywhere
    assert r.returncode == 1 and "nvidia-smi failed" in r.stderr and r.stderr.count("\n") == 1


def test_every_node_checks_first():
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text(encoding="utf-8"))
    assert config["setup_commands"][0] == "python3 ~/k400ray/infra/check_gpu_driver.py"
    assert config["file_mounts"]["~/k400ray"] == "."  # the script is on the node before setup runs
