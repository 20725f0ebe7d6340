"""Fail a node's setup, in one line, when its NVIDIA driver is too old for the pinned torch.

Why: a driver older than the CUDA runtime of torch's wheels needs does not fail at boot; it
fails when the first trial calls CUDA, hours later, as a CUDA error in a Ray Train worker. This
runs first in every node's setup (``cluster.yaml``'s ``setup_commands``), before anything is
installed or staged, with the image's own ``python3`` and the standard library only (no torch):
a node without NVIDIA GPUs (the head, the decode nodes) passes at once; a GPU node passes only
when ``nvidia-smi`` works, sees every GPU on the PCI bus and reports a driver at least
``MIN_DRIVER``. A failed setup keeps the node out of the cluster, with this line in its log.

The requirement is stored here (``tests/infra/test_check_gpu_driver.py`` checks it against
``pyproject.toml``'s torch pin and that torch's ``torch.version.cuda``): torch 2.14.1's Linux
wheels are built with CUDA 13.0, and NVIDIA's minimum driver per CUDA major version is the
"minor version compatibility" table of the CUDA Compatibility guide
(https://docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html: CUDA 13.x
>= 580, CUDA 12.x >= 525, CUDA 11.x >= 450, on Linux).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

TORCH = "2.14.1"
CUDA = "13.0"  # torch.version.cuda of that wheel
MIN_DRIVER_BY_CUDA_MAJOR = {11: 450, 12: 525, 13: 580}
MIN_DRIVER = MIN_DRIVER_BY_CUDA_MAJOR[int(CUDA.split(".")[0])]

NVIDIA_VENDOR = "0x10de"
GPU_CLASSES = ("0x0300", "0x0302")  # display controllers: VGA, 3D (A100, H100); not NVSwitch bridges
PCI = Path("/sys/bus/pci/devices")


def pci_gpus(root: Path = PCI) -> int:
    """NVIDIA GPUs on the PCI bus, whatever the driver's state."""
    count = 0
    for dev in root.glob("*") if root.is_dir() else []:
        try:
            vendor = (dev / "vendor").read_text().strip()
            cls = (dev / "class").read_text().strip()
        except OSError:
            continue
        count += vendor == NVIDIA_VENDOR and cls.startswith(GPU_CLASSES)
    return count


def driver_versions(nvidia_smi: str = "nvidia-smi") -> list[str]:
    """The driver version of every GPU the driver sees (raises OSError / CalledProcessError)."""
    out = subprocess.run([nvidia_smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def check(gpus: int, nvidia_smi: str = "nvidia-smi") -> tuple[bool, str]:
    """(passes, the one line to print)."""
    need = f"torch {TORCH} (CUDA {CUDA}) needs NVIDIA driver >= {MIN_DRIVER}"
    if not gpus:
        return True, "check_gpu_driver: no NVIDIA GPU on this node: nothing to check"
    try:
        versions = driver_versions(nvidia_smi)
    except (OSError, subprocess.SubprocessError) as exc:
        err = (getattr(exc, "stderr", None) or getattr(exc, "stdout", None) or str(exc)).strip().splitlines()
        return False, f"check_gpu_driver: {gpus} NVIDIA GPU(s) but nvidia-smi failed ({err[0] if err else exc}); {need}"
    if len(versions) != gpus:
        return False, f"check_gpu_driver: the driver sees {len(versions)} of the {gpus} NVIDIA GPU(s) on the PCI bus"
    try:
        majors = {int(v.split(".")[0]) for v in versions}
    except ValueError:
        return False, f"check_gpu_driver: nvidia-smi reported no driver version: {versions[0]!r}; {need}"
    if min(majors) < MIN_DRIVER:
        return False, (f"check_gpu_driver: NVIDIA driver {versions[0]} is too old: {need}; boot a newer image "
                       "(python infra/refresh_amis.py --write)")
    return True, f"check_gpu_driver: driver {versions[0]} on {gpus} GPU(s): ok ({need})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pci", type=Path, default=PCI, help=argparse.SUPPRESS)  # tests: a fake bus
    args = parser.parse_args(argv)
    ok, line = check(pci_gpus(args.pci))
    print(line, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
