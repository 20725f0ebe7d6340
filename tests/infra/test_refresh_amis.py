"""``infra/refresh_amis.py`` against a fake SSM client, and cluster.yaml pinned to ``infra/amis.json``."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest
import yaml

from tests.infra import ROOT, load_script

ra = load_script("refresh_amis")
PARAM = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id"


class FakeSsm:
    """Answers ``get_parameter`` like boto3's SSM client, per region; records what it was asked."""

    def __init__(self, values: dict[str, str | Exception]):
        self.values, self.asked = values, []

    def __call__(self, region: str):
        self.region = region
        return self

    def get_parameter(self, Name: str):
        self.asked.append((self.region, Name))
        value = self.values[self.region]
        if isinstance(value, Exception):
            raise value
        return {"Parameter": {"Name": Name, "Value": value, "LastModifiedDate": dt.datetime(2026, 12, 1, 9, 30)}}


@pytest.fixture()
def copies(tmp_path):
    """amis.json and cluster.yaml copied, so --write never touches the repository's."""
    amis, cluster = tmp_path / "amis.json", tmp_path / "cluster.yaml"
    shutil.copy(ROOT / "infra" / "amis.json", amis)
    shutil.copy(ROOT / "cluster.yaml", cluster)
    return amis, cluster


def test_cluster_yaml_boots_the_pinned_image_of_its_region():
    amis = ra.load()
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text(encoding="utf-8"))
    ids = {n["node_config"]["ImageId"] for n in config["available_node_types"].values()}
    assert ids == {amis["regions"][config["provider"]["region"]]["ami"]}, "every node type boots the pinned id"
    assert amis["ssm_parameter"] == PARAM and "Ubuntu 24.04" in amis["name"]
    if ids == {amis["placeholder"]}:  # not yet refreshed: the file says so
        assert "PLACEHOLDER" in amis["about"] and all(r["read"] is None for r in amis["regions"].values())


def test_diff_and_write_with_a_fake_ssm(copies, capsys):
    amis, cluster = copies
    fresh = {r: "ami-0123456789abcdef0" for r in json.loads(amis.read_text())["regions"]}
    fresh["eu-west-1"] = "ami-0fedcba9876543210"
    fake = FakeSsm(fresh)
    assert ra.main([], client=fake, amis=amis, cluster=cluster) == 0
    out = capsys.readouterr().out
    assert "us-west-2: ami-00000000000000000 (placeholder) -> ami-0123456789abcdef0 (published 2026-12-01)" in out
    assert "nothing written" in out and amis.read_text() == (ROOT / "infra" / "amis.json").read_text()
    assert {name for _, name in fake.asked} == {PARAM} and len(fake.asked) == len(fresh)

    before = cluster.read_text()
    assert ra.main(["--write"], client=fake, amis=amis, cluster=cluster, today=dt.date(2026, 12, 6)) == 0
    data = json.loads(amis.read_text())
    assert data["regions"]["eu-west-1"] == {"ami": "ami-0fedcba9876543210", "read": "2026-12-06", "published": "2026-12-01"}
    after = cluster.read_text()
    config = yaml.safe_load(after)
    assert {n["node_config"]["ImageId"] for n in config["available_node_types"].values()} == {"ami-0123456789abcdef0"}
    # only the three ImageId lines changed: comments and layout are kept
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert len(changed) == 3 and len(before.splitlines()) == len(after.splitlines())

    capsys.readouterr()
    assert ra.main([], client=fake, amis=amis, cluster=cluster) == 0  # refreshed: nothing moves
    assert "us-west-2: ami-0123456789abcdef0 unchanged" in capsys.readouterr().out


def test_a_failing_region_is_one_line_and_nothing_is_written(copies, capsys):
    amis, cluster = copies
    values = {r: "ami-0123456789abcdef0" for r in json.loads(amis.read_text())["regions"]}
    values["ap-northeast-1"] = RuntimeError("ParameterNotFound")
    before = amis.read_text(), cluster.read_text()
    assert ra.main(["--write"], client=FakeSsm(values), amis=amis, cluster=cluster) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ap-northeast-1: RuntimeError: ParameterNotFound" in err
    assert (amis.read_text(), cluster.read_text()) == before
    values["ap-northeast-1"] = "resolve:ssm:nothing"
    assert ra.main([], client=FakeSsm(values), amis=amis, cluster=cluster) == 1
    assert "not an AMI id" in capsys.readouterr().err


def test_without_boto3_it_says_so_in_one_line(copies, capsys, monkeypatch):
    amis, cluster = copies
    monkeypatch.setitem(__import__("sys").modules, "boto3", None)  # import boto3 -> ImportError
    assert ra.main([], amis=amis, cluster=cluster) == 1
    assert capsys.readouterr().err.strip() == \
        "refresh_amis: boto3 is not installed: pip install -c constraints.txt boto3"


def test_a_broken_amis_file_names_the_field(tmp_path, capsys):
    bad = tmp_path / "amis.json"
    data = json.loads((ROOT / "infra" / "amis.json").read_text())
    data["regions"]["us-west-2"]["ami"] = "ami-xyz"
    bad.write_text(json.dumps(data))
    assert ra.main([], client=FakeSsm({}), amis=bad, cluster=ROOT / "cluster.yaml") == 1
    assert "regions.us-west-2.ami: not an AMI id" in capsys.readouterr().err
