"""Refresh the pinned AMI ids (``infra/amis.json``) from AWS's public SSM parameter, and
``cluster.yaml``'s ``ImageId`` fields with them.

Why pinned: an ``ImageId: resolve:ssm:.../latest/...`` lets a node the autoscaler adds on day 3
of a grid boot a newer image, with a newer NVIDIA driver and kernel, than the head and the nodes
started on day 1. With the id pinned every node boots the same image until you refresh it, on
purpose, between grids. Run from the repository root with AWS credentials (``aws configure``)::

    python infra/refresh_amis.py            # reads the parameter in every region, prints the diff
    python infra/refresh_amis.py --write    # ... and updates infra/amis.json and cluster.yaml

Needs boto3 (``pip install -c constraints.txt boto3``, the AWS provider of ``ray up`` needs it
too); reading a public ``/aws/service/...`` parameter needs only ``ssm:GetParameter``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Callable

import yaml

ROOT = Path(__file__).resolve().parents[1]
AMIS = ROOT / "infra" / "amis.json"
CLUSTER = ROOT / "cluster.yaml"
AMI_ID = re.compile(r"ami-[0-9a-f]{8}([0-9a-f]{9})?")
IMAGE_LINE = re.compile(r"^(\s*ImageId:\s*)(\S+)(.*)$", re.M)


class AmiError(Exception):
    """One line for the user: which file or region, and what is wrong."""


def load(path: Path = AMIS) -> dict:
    """``amis.json``, checked: every region has an ``ami`` shaped like an AMI id."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AmiError(f"{path}: cannot read: {exc}") from None
    for field in ("ssm_parameter", "placeholder", "regions"):
        if field not in data:
            raise AmiError(f"{path}: missing field {field!r}")
    for region, row in data["regions"].items():
        if not isinstance(row, dict) or not AMI_ID.fullmatch(str(row.get("ami", ""))):
            raise AmiError(f"{path}: regions.{region}.ami: not an AMI id: {row!r}")
    return data


def boto3_ssm(region: str):
    """An SSM client of ``region``; boto3 is imported here so the rest runs without it."""
    try:
        import boto3
    except ImportError:
        raise AmiError("refresh_amis: boto3 is not installed: pip install -c constraints.txt boto3") from None
    return boto3.client("ssm", region_name=region)


def read_ssm(regions: list[str], parameter: str,
             client: Callable[[str], object] = boto3_ssm) -> dict[str, tuple[str, str | None]]:
    """{region: (AMI id, date the parameter last changed)} as SSM says now. Any region that
    fails is one line of the error, after all regions were tried."""
    fresh, errors = {}, []
    for region in regions:
        try:
            p = client(region).get_parameter(Name=parameter)["Parameter"]
        except AmiError:
            raise
        except Exception as exc:  # botocore's ClientError, NoCredentialsError, EndpointConnectionError...
            errors.append(f"{region}: {type(exc).__name__}: {exc}")
            continue
        value = str(p["Value"])
        if not AMI_ID.fullmatch(value):
            errors.append(f"{region}: {parameter} holds {value!r}, not an AMI id")
            continue
        changed = p.get("LastModifiedDate")
        fresh[region] = (value, changed.date().isoformat() if hasattr(changed, "date") else None)
    if errors:
        raise AmiError("refresh_amis: SSM " + "; ".join(errors))
    return fresh


def diff(data: dict, fresh: dict[str, tuple[str, str | None]]) -> list[str]:
    """One line per region: unchanged, or old -> new (the placeholder named as such)."""
    lines = []
    for region, (ami, published) in sorted(fresh.items()):
        old = data["regions"].get(region, {}).get("ami")
        if old == ami:
            lines.append(f"  {region}: {ami} unchanged")
            continue
        was = "none" if old is None else f"{old} (placeholder)" if old == data["placeholder"] else old
        lines.append(f"  {region}: {was} -> {ami}" + (f" (published {published})" if published else ""))
    return lines


def update(data: dict, fresh: dict[str, tuple[str, str | None]], today: dt.date) -> dict:
    """A copy of ``data`` with every refreshed region's id, read date and published date."""
    out = json.loads(json.dumps(data))
    for region, (ami, published) in fresh.items():
        out["regions"][region] = {"ami": ami, "read": today.isoformat(), "published": published}
    return out


def pin_cluster(text: str, ami: str) -> str:
    """``cluster.yaml``'s text with every ``ImageId`` set to ``ami``, comments and layout kept."""
    if not IMAGE_LINE.search(text):
        raise AmiError("cluster.yaml: no ImageId field to pin")
    return IMAGE_LINE.sub(lambda m: f"{m.group(1)}{ami}{m.group(3)}", text)


def cluster_region(text: str) -> str:
    try:
        return yaml.safe_load(text)["provider"]["region"]
    except (yaml.YAMLError, KeyError, TypeError):
        raise AmiError("cluster.yaml: provider.region: missing") from None


def main(argv: list[str] | None = None, client: Callable[[str], object] = boto3_ssm,
         amis: Path = AMIS, cluster: Path = CLUSTER, today: dt.date | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update infra/amis.json and cluster.yaml")
    parser.add_argument("--region", action="append", help="only this region (repeatable); default: all in amis.json")
    args = parser.parse_args(argv)
    try:
        data = load(amis)
        text = cluster.read_text(encoding="utf-8")
        region = cluster_region(text)
        regions = args.region or sorted(data["regions"])
        if region not in data["regions"] and region not in regions:
            regions.append(region)
        fresh = read_ssm(regions, data["ssm_parameter"], client)
        print(f"{data['ssm_parameter']}:")
        print("\n".join(diff(data, fresh)))
        if not args.write:
            print("(nothing written: --write updates infra/amis.json and cluster.yaml)")
            return 0
        new = update(data, fresh, today or dt.date.today())
        amis.write_text(json.dumps(new, indent=2) + "\n", encoding="utf-8")
        cluster.write_text(pin_cluster(text, new["regions"][region]["ami"]), encoding="utf-8")
        print(f"wrote {amis.name} and {cluster.name} (ImageId {new['regions'][region]['ami']}, {region})")
        return 0
    except AmiError as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
