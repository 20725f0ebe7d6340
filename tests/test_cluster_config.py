"""``cluster.yaml`` and the on-premises config of docs/cluster.md pass Ray's own cluster-config
validation (what ``ray up`` runs before it touches a cloud), and keep the promises the docs make
about them: node types that fit the grid, MLflow and the dashboard on localhost only, token auth,
the project installed, shared storage, no credentials. A broken copy must fail validation.

Nothing here calls AWS: the AWS provider's own bootstrap (boto3, credentials) is the one step of
``ray up`` left out; the local provider goes through the whole of ``ray up``'s config path.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from tests.test_docs_commands import BadCommandLine, _is, doc_commands, find_tool_commands, k400ray_cli, parse_cli

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_YAML = ROOT / "cluster.yaml"
CLUSTER_DOC = ROOT / "docs" / "cluster.md"
GRID_SPEC = ROOT / "search_spaces" / "aug_grid.yaml"
COMMAND_FIELDS = ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
                  "head_start_ray_commands", "worker_start_ray_commands")


def aws_config() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text(encoding="utf-8"))


def onprem_config() -> dict:
    """The ```yaml block of docs/cluster.md whose provider is ``local``."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", CLUSTER_DOC.read_text(encoding="utf-8"), re.S | re.M)
    configs = [c for c in map(yaml.safe_load, blocks) if isinstance(c, dict) and c.get("provider", {}).get("type") == "local"]
    assert len(configs) == 1, "docs/cluster.md must hold exactly one ```yaml block with provider type local"
    return configs[0]


def ray_validate(config: dict) -> dict:
    """What ``ray up`` does with the file before any cloud call: the provider must be known, then
    ``prepare_config`` (defaults merged, node types filled in) and ``validate_config`` (the JSON
    schema + head/min/max checks). The local provider's bootstrap makes no remote call, so for it
    the whole ``_bootstrap_config`` runs."""
    from ray.autoscaler._private.commands import _bootstrap_config
    from ray.autoscaler._private.providers import _NODE_PROVIDERS
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = copy.deepcopy(config)
    assert config["provider"]["type"] in _NODE_PROVIDERS, f"unknown provider {config['provider']['type']!r}"
    if config["provider"]["type"] == "local":
        return _bootstrap_config(config, no_config_cache=True)
    prepared = prepare_config(config)
    validate_config(prepared)
    return prepared


def commands(config: dict) -> list[str]:
    return [cmd for field in COMMAND_FIELDS for cmd in config.get(field) or []]


def spec() -> dict:
    return yaml.safe_load(GRID_SPEC.read_text(encoding="utf-8"))


CONFIGS = {"cluster.yaml": aws_config, "docs/cluster.md on-prem block": onprem_config}


# --- Ray's validation -------------------------------------------------------------------------

@pytest.mark.parametrize("name", CONFIGS)
def test_ray_accepts_the_config(name):
    prepared = ray_validate(CONFIGS[name]())
    assert prepared["head_node_type"] in prepared["available_node_types"]


def _rename_top_level(config):
    config["max_worker"] = config.pop("max_workers")


def _unknown_head_type(config):
    config["head_node_type"] = "ray.head.gpu"


def _misspelled_node_field(config):
    node = config["available_node_types"]["ray.worker.gpu"]
    node["max_worker"] = node.pop("max_workers")


def _fractional_gpus(config):
    config["available_node_types"]["ray.worker.gpu"]["resources"]["GPU"] = 0.5


def _no_node_config(config):
    del config["available_node_types"]["ray.worker.cpu"]["node_config"]


def _min_above_max(config):
    config["available_node_types"]["ray.worker.cpu"]["min_workers"] = config["max_workers"] + 1


def _command_not_a_string(config):
    config["setup_commands"].append({"pip": "install"})


BREAKAGES = [  # (how the copy is broken, what Ray says)
    (_rename_top_level, "'max_worker' was unexpected"),
    (_unknown_head_type, "`head_node_type` must be one of `available_node_types`"),
    (_misspelled_node_field, "'max_worker' was unexpected"),
    (_fractional_gpus, "is not of type 'integer'"),
    (_no_node_config, "'node_config' is a required property"),
    (_min_above_max, "smaller than the sum of `min_workers`"),
    (_command_not_a_string, "is not of type 'string'"),
]


@pytest.mark.parametrize("breakage, message", BREAKAGES, ids=[b.__name__.strip("_") for b, _ in BREAKAGES])
def test_ray_rejects_a_broken_copy(breakage, message):
    import jsonschema

    config = aws_config()
    breakage(config)
    with pytest.raises((jsonschema.ValidationError, ValueError), match=re.escape(message)):
        ray_validate(config)


def test_ray_rejects_an_onprem_copy_without_head_ip():
    config = onprem_config()
    del config["provider"]["head_ip"]
    with pytest.raises(Exception) as info:
        ray_validate(config)
    assert _is(info.value, "ClickException"), info.value  # Ray's cli_logger.abort


# --- what docs/cluster.md promises ------------------------------------------------------------

def _node_types(config: dict):
    prepared = ray_validate(config)
    types = prepared["available_node_types"]
    head = types[prepared["head_node_type"]]
    workers = {k: v for k, v in types.items() if k != prepared["head_node_type"]}
    gpu = [v for v in workers.values() if v["resources"].get("GPU", 0) > 0]
    cpu = [v for v in workers.values() if not v["resources"].get("GPU", 0)]
    return prepared, head, gpu, cpu


def test_node_types_head_gpu_and_decode():
    prepared, head, gpu, cpu = _node_types(aws_config())
    assert head["resources"] == {"CPU": 0}, "the head schedules no decode or trial task"
    assert len(gpu) == 1 and gpu[0]["resources"]["GPU"] == 8
    assert len(cpu) == 1 and cpu[0]["resources"]["CPU"] >= 32, "a CPU-only decode node type"
    assert cpu[0]["resources"]["decode_cpu"] == cpu[0]["resources"]["CPU"], "its cores decode (and index)"
    for node in (*gpu, *cpu):
        assert 0 <= node["min_workers"] <= node["max_workers"]
    assert prepared["max_workers"] == gpu[0]["max_workers"] + cpu[0]["max_workers"]


def test_the_grid_fits_the_gpu_nodes():
    _, _, (gpu,), _ = _node_types(aws_config())
    r = spec()["resources"]
    trial_gpus = r["workers_per_trial"] * r["gpus_per_worker"]
    assert trial_gpus <= gpu["resources"]["GPU"], "a trial must fit on one GPU node"
    assert r["workers_per_trial"] * r["cpus_per_worker"] <= gpu["resources"]["CPU"]
    # Decoding holds `decode_cpu`, never the CPUs a (restarting) trial's placement group needs.
    assert gpu["resources"]["CPU"] - r["workers_per_trial"] * r["cpus_per_worker"] <= 1
    assert gpu["resources"]["decode_cpu"] >= 32
    nodes_per_trial = -(-trial_gpus // gpu["resources"]["GPU"])
    assert r["max_concurrent_trials"] * nodes_per_trial <= gpu["max_workers"], \
        "max_concurrent_trials needs more GPU nodes than ray.worker.gpu may start"


@pytest.mark.parametrize("name", CONFIGS)
def test_nothing_listens_publicly(name):
    config = CONFIGS[name]()
    text = yaml.safe_dump(config)
    assert "0.0.0.0" not in text
    ray_heads = [argv for cmd in config["head_start_ray_commands"] for tool, argv in find_tool_commands(cmd, ("ray",))
                 if argv[:1] == ["start"]]
    assert ray_heads and all("--dashboard-host=127.0.0.1" in argv for argv in ray_heads)
    servers = [argv for cmd in commands(config) for tool, argv in find_tool_commands(cmd, ("mlflow",))
               if argv[:1] == ["server"]]
    assert len(servers) == 1
    server = servers[0]
    assert server[server.index("--host") + 1] == "127.0.0.1"
    uri = urlparse(spec()["mlflow"]["tracking_uri"])
    assert (uri.hostname, str(uri.port)) == ("127.0.0.1", server[server.index("--port") + 1]), \
        "the spec's tracking URI must be the MLflow server's address"


@pytest.mark.parametrize("name", CONFIGS)
def test_token_auth_and_project_install(name):
    config = CONFIGS[name]()
    assert config["file_mounts"]["~/k400ray"] == "."
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    starts = [c for c in config["head_start_ray_commands"] + config["worker_start_ray_commands"] if "ray start" in c]
    assert len(starts) == 2 and all("RAY_AUTH_MODE=token" in c for c in starts)
    assert any(re.search(r"pip install .*-e ~/k400ray", c) for c in commands(config))


def test_shared_storage():
    config, grid = aws_config(), spec()
    assert grid["storage_path"].startswith("s3://")
    server = next(c for c in commands(config) if "mlflow server" in c)
    assert "--artifacts-destination s3://" in server
    mounts = [m for c in config["setup_commands"] for m in re.findall(r":/ (/mnt/[\w/-]+)", c)]
    assert mounts == ["/mnt/k400"], "the dataset file system is mounted on every node"
    for path in (grid["data"]["train_index"], grid["data"]["data_root"]):
        assert path.startswith(mounts[0] + "/") or path == mounts[0]


@pytest.mark.parametrize("name", CONFIGS)
def test_mlflow_keeps_its_runs_in_postgresql_on_the_head(name):
    """Not SQLite on the shared file system: the head sets PostgreSQL up (and its dumps) before the
    server starts, the server's URI is that database over the local socket as the SSH user, and
    every node installs the driver."""
    config = CONFIGS[name]()
    setup = (config.get("head_setup_commands") or []) + config["head_start_ray_commands"]
    assert any("infra/mlflow_postgres.sh setup" in cmd for cmd in setup)
    server = next(argv for cmd in commands(config) for _, argv in find_tool_commands(cmd, ("mlflow",))
                  if argv[:1] == ["server"])
    uri = urlparse(server[server.index("--backend-store-uri") + 1])
    assert uri.scheme == "postgresql" and uri.username == config["auth"]["ssh_user"] and uri.path == "/mlflow"
    assert "host=/var/run/postgresql" in uri.query
    assert any("psycopg2-binary" in cmd for cmd in config["setup_commands"] if "pip install" in cmd)
    assert subprocess.run(["bash", "-n", str(ROOT / "infra" / "mlflow_postgres.sh")]).returncode == 0


def test_worker_nodes_stage_the_data_before_ray_starts():
    """Every worker node mounts its instance-store NVMe and copies the spec's data there in its
    setup (before `ray start`): the command parses, names the spec's index and local copy, and
    both worker types have drives to hold it."""
    config = aws_config()
    setup = config["worker_setup_commands"]
    assert any("infra/mount_local_disks.sh /mnt/local" in cmd for cmd in setup)
    assert subprocess.run(["bash", "-n", str(ROOT / "infra" / "mount_local_disks.sh")]).returncode == 0
    stages = [argv for cmd in setup for _, argv in find_tool_commands(cmd.replace("~/venv/bin/k400ray", "k400ray"),
                                                                        ("k400ray",)) if argv[:1] == ["stage"]]
    assert len(stages) == 1
    argv = stages[0]
    parse_cli(k400ray_cli(), "k400ray", argv)
    for name in ("aug_grid.yaml", "seed_sheet.yaml"):
        data = yaml.safe_load((ROOT / "search_spaces" / name).read_text(encoding="utf-8"))["data"]
        assert argv[1] == data["train_index"] and argv[argv.index("--to") + 1] == data["local_cache"], name
    assert "--if-present" in argv and argv[argv.index("--to") + 1].startswith("/mnt/local/")
    prices = json.loads((ROOT / "k400ray" / "tune" / "records" / "prices.json").read_text(encoding="utf-8"))
    for node in ("ray.worker.gpu", "ray.worker.cpu"):
        instance = config["available_node_types"][node]["node_config"]["InstanceType"]
        assert prices["instances"][instance]["local_disk_gb"] >= 1000, f"{node}: {instance} has no instance store"


SECRETS = [
    re.compile(r"AKIA[0-9A-Z]{16}"),  # AWS access key id
    re.compile(r"aws_(secret_)?access_key|secret_access_key|aws_session_token", re.I),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"password|passwd", re.I),
    re.compile(r"arn:aws:iam::\d{12}:"),  # an account id
]


def test_no_credentials_in_cluster_yaml():
    text = CLUSTER_YAML.read_text(encoding="utf-8")
    assert not [p.pattern for p in SECRETS if p.search(text)]
    assert "ssh_private_key" not in aws_config()["auth"], "ray up creates and uses its own key pair"


# --- the commands themselves ------------------------------------------------------------------

@pytest.mark.parametrize("name", CONFIGS)
def test_every_command_is_valid_shell(name):
    bad = []
    for cmd in commands(CONFIGS[name]()):
        r = subprocess.run(["bash", "-n", "-c", cmd], capture_output=True, text=True)
        if r.returncode:
            bad.append(f"{cmd}\n  {r.stderr.strip()}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name", CONFIGS)
def test_ray_and_mlflow_command_lines_parse(name):
    """`ray start ...` with Ray's CLI and `mlflow server ...` with MLflow's: a wrong flag fails here,
    not on a freshly booted head node."""
    from mlflow.cli import cli as mlflow_cli
    from ray.scripts.scripts import cli as ray_cli

    clis = {"ray": ray_cli, "mlflow": mlflow_cli}
    seen = set()
    for cmd in commands(CONFIGS[name]()):
        for tool, argv in find_tool_commands(cmd, tuple(clis)):
            seen.add(f"{tool} {argv[0]}")
            try:
                parse_cli(clis[tool], tool, argv)
            except BadCommandLine as exc:
                pytest.fail(f"{tool} {shlex.join(argv)}\n  -> {exc}")
    assert {"ray start", "ray stop", "mlflow server"} <= seen


# --- least-privilege IAM (infra/iam) -----------------------------------------------------------

IAM = ROOT / "infra" / "iam"
POLICIES = {"head": IAM / "head-policy.json", "worker": IAM / "worker-policy.json", "trust": IAM / "ec2-trust-policy.json"}


def _statements(path: Path) -> list[dict]:
    policy = json.loads(path.read_text(encoding="utf-8"))
    assert policy["Version"] == "2012-10-17", path
    assert set(policy) == {"Version", "Statement"}, path
    return policy["Statement"]


def _listed(value) -> list[str]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("name", POLICIES)
def test_iam_files_are_valid_policies_that_docs_use(name):
    path = POLICIES[name]
    sids = []
    for st in _statements(path):
        assert st["Effect"] == "Allow" and st.get("Sid"), st
        sids.append(st["Sid"])
        assert ("Principal" in st) == (name == "trust"), st  # identity policies name no principal
        actions = _listed(st["Action"])
        assert all(re.fullmatch(r"[a-z0-9]+:[A-Za-z]+", a) for a in actions), f"no wildcard actions: {actions}"
        if name != "trust":
            resources = _listed(st["Resource"])
            if "*" in resources:  # only what AWS cannot scope to a resource
                assert all(a.startswith("ec2:Describe") for a in actions), st
    assert len(sids) == len(set(sids))
    doc = CLUSTER_DOC.read_text(encoding="utf-8")
    assert f"file://infra/iam/{path.name}" in doc, f"docs/cluster.md must create the role from {path.name}"
    assert "FullAccess" not in doc, "no full-access managed policies"


def _worker_instance_types(config: dict) -> set[str]:
    return {n["node_config"]["InstanceType"] for k, n in config["available_node_types"].items()
            if k != config["head_node_type"]}


def test_head_policy_grants_what_the_autoscaler_needs_and_no_more():
    config = aws_config()
    st = {s["Sid"]: s for s in _statements(POLICIES["head"])}
    # pinned image ids (infra/amis.json): EC2 resolves no SSM parameter at launch, the head reads none
    assert not [s for s in st.values() if any(a.startswith("ssm:") for a in _listed(s["Action"]))]
    # it launches, tags and ends only instances tagged with this cluster's name, of the worker types
    # cluster.yaml names (the head itself is launched by `ray up` with your own credentials)
    name = config["cluster_name"]
    launch = st["LaunchOnlyInstancesTaggedAsThisCluster"]
    assert set(launch["Condition"]) == {"StringEquals"}
    assert launch["Condition"]["StringEquals"]["aws:RequestTag/ray-cluster-name"] == name
    assert sorted(_listed(launch["Condition"]["StringEquals"]["ec2:InstanceType"])) == \
        sorted(_worker_instance_types(config)), "ec2:InstanceType must name exactly cluster.yaml's worker types"
    assert _listed(launch["Action"]) == ["ec2:RunInstances"] and _listed(launch["Resource"]) == \
        [f"arn:aws:ec2:{config['provider']['region']}:*:instance/*"]
    # spot nodes: RunInstances also creates a spot-instances-request
    if any("InstanceMarketOptions" in n["node_config"] for n in config["available_node_types"].values()):
        assert any(r.endswith(":spot-instances-request/*") for r in _listed(st["WhatALaunchUses"]["Resource"]))
    manage = st["ManageOnlyThisClustersInstances"]
    assert "ec2:TerminateInstances" in manage["Action"]
    assert manage["Condition"]["StringEquals"] == {"ec2:ResourceTag/ray-cluster-name": name}
    # it passes the worker role only, and the workers' instance profile is that role's
    profiles = {n["node_config"]["IamInstanceProfile"]["Name"] for k, n in config["available_node_types"].items()
                if k != config["head_node_type"]}
    head_profile = config["available_node_types"][config["head_node_type"]]["node_config"]["IamInstanceProfile"]["Name"]
    assert profiles == {"k400ray-worker"} and head_profile == "k400ray-head"
    assert _listed(st["HandWorkersTheirRole"]["Resource"]) == ["arn:aws:iam::*:role/k400ray-worker"]


S3_WRITES = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}


def _s3_prefix(uri: str) -> str:
    """``s3://bucket/a/b`` -> the policy resource of everything under it: ``arn:aws:s3:::bucket/a/b/*``."""
    assert uri.startswith("s3://"), uri
    return f"arn:aws:s3:::{uri.removeprefix('s3://').rstrip('/')}/*"


def _granted(role: str, actions: set[str]) -> set[str]:
    """Object resources on which the role's policy allows any of ``actions``."""
    return {r for s in _statements(POLICIES[role]) if actions & set(_listed(s["Action"]))
            for r in _listed(s["Resource"])}


def _runs_prefixes() -> set[str]:
    """The storage_path of every spec that runs on cluster.yaml."""
    paths = set()
    for path in sorted((ROOT / "search_spaces").glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        if (raw.get("cost") or {}).get("cluster") == "cluster.yaml":
            paths.add(_s3_prefix(raw["storage_path"]))
    assert paths, "no spec runs on cluster.yaml"
    return paths


def _prepared_prefix() -> str:
    """The bucket copy of the prepared data that docs/data.md stages from (`k400ray stage --from s3://...`)."""
    froms = {c.argv[c.argv.index("--from") + 1] for c in doc_commands([ROOT / "docs" / "data.md"])
             if c.tool == "k400ray" and c.argv[:1] == ("stage",) and "--from" in c.argv}
    assert len(froms) == 1, froms
    return _s3_prefix(froms.pop())


def _mlflow_artifacts() -> str:
    server = next(argv for cmd in commands(aws_config()) for _, argv in find_tool_commands(cmd, ("mlflow",))
                  if argv[:1] == ["server"])
    return _s3_prefix(server[server.index("--artifacts-destination") + 1])


def test_workers_write_only_the_runs_prefix():
    """Checkpoints and Tune state go under the specs' storage_path; workers read that and the
    prepared copy (staging); MLflow's artifacts are the head's MLflow server's alone."""
    runs = _runs_prefixes()
    assert _granted("worker", S3_WRITES) == runs
    assert _granted("worker", {"s3:GetObject"}) == runs | {_prepared_prefix()}
    assert _mlflow_artifacts() not in _granted("worker", S3_WRITES | {"s3:GetObject"})
    assert _granted("head", S3_WRITES) == runs | {_mlflow_artifacts()}  # Tune's driver and the MLflow server
    bucket = {p.split(":::")[1].split("/")[0] for p in runs}
    for role in ("head", "worker"):
        actions = {a for s in _statements(POLICIES[role]) for a in _listed(s["Action"]) if a.startswith("s3:")}
        assert actions <= {"s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject"} | S3_WRITES, role
        listed = {r for s in _statements(POLICIES[role]) if "s3:ListBucket" in _listed(s["Action"])
                  for r in _listed(s["Resource"])}
        assert listed == {f"arn:aws:s3:::{b}" for b in bucket}, role


# --- the network: SSH from one range, NFS from the cluster only --------------------------------

def test_ssh_is_open_to_the_users_range_only():
    """cluster.yaml's security group opens SSH to the YOUR-SSH-CIDR parameter, never to the
    world, and docs/cluster.md creates that group (with the same rule and the between-nodes rule)
    before `ray up`, since Ray adds SSH from 0.0.0.0/0 to a group it creates itself."""
    group = aws_config()["provider"]["security_group"]
    ssh = [p for p in group["IpPermissions"] if p["FromPort"] <= 22 <= p["ToPort"]]
    assert len(ssh) == 1 and ssh[0]["IpProtocol"] == "tcp"
    cidrs = [r["CidrIp"] for r in ssh[0]["IpRanges"]]
    assert cidrs == ["YOUR-SSH-CIDR"] and not ssh[0].get("Ipv6Ranges")
    doc = CLUSTER_DOC.read_text(encoding="utf-8")
    assert f"--group-name {group['GroupName']} " in doc, "docs/cluster.md must create the cluster's group"
    assert "--protocol tcp --port 22 --cidr YOUR-SSH-CIDR" in doc
    assert '--protocol -1 --source-group "$CLUSTER_SG"' in doc, "all traffic between the cluster's nodes"
    assert "0.0.0.0/0" not in doc


def test_efs_admits_the_cluster_group_only():
    doc = CLUSTER_DOC.read_text(encoding="utf-8")
    nfs = [ln for ln in doc.splitlines() if "authorize-security-group-ingress" in ln and "--port 2049" in ln]
    assert len(nfs) == 1 and '--source-group "$CLUSTER_SG"' in nfs[0] and "--cidr" not in nfs[0], nfs
    placeholder = json.loads((ROOT / "infra" / "amis.json").read_text(encoding="utf-8"))["placeholder"]
    grep = next(ln for ln in doc.splitlines() if ln.strip().startswith("grep -n") and "YOUR-" in ln)
    assert f"-e {placeholder}" in grep and "cluster.yaml" in grep and "infra/iam/*.json" in grep
    assert placeholder not in CLUSTER_YAML.read_text(encoding="utf-8").split("\nprovider:")[0], \
        "no placeholder id in cluster.yaml's comments: the docs' grep must find only the ImageIds"


# --- the same pinned software on every node ----------------------------------------------------

CONSTRAINTS = ROOT / "constraints.txt"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(python: str | None = None) -> dict[str, str]:
    """{name: version} of constraints.txt's lines that apply on ``python`` (default: every line)."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    env = default_environment() | ({"python_version": python, "python_full_version": f"{python}.0"} if python else {})
    pins = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==" and not req.extras and not req.url, f"not an exact pin: {line}"
            if python is None or req.marker is None or req.marker.evaluate(env):
                assert _canonical(req.name) not in pins, f"pinned twice for Python {python}: {line}"
                pins[_canonical(req.name)] = spec.version
    return pins


def _here() -> str:
    import sys

    return f"{sys.version_info.major}.{sys.version_info.minor}"


PYTHONS = ["3.11", "3.12"]  # the venv's (Makefile, CI), the cluster image's (infra/make_constraints.py)


@pytest.mark.parametrize("name", CONFIGS)
def test_every_node_installs_the_same_pinned_versions(name):
    config = CONFIGS[name]()
    installs = [(field, cmd) for field in COMMAND_FIELDS for cmd in config.get(field) or [] if "pip install" in cmd]
    assert installs, "the project is installed"
    for field, cmd in installs:
        # one command, run on every node, with the repository's constraints
        assert field == "setup_commands", f"{field}: installs differ between head and workers: {cmd}"
        for part in cmd.split("&&"):
            if "pip install" in part:
                assert "-c ~/k400ray/constraints.txt" in part, part
                assert "==" not in part, f"versions live in constraints.txt only: {part}"


def test_constraints_match_pyproject_and_cover_the_closure():
    import tomllib

    from packaging.requirements import Requirement

    pins = _pins()
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    for raw in deps:
        req = Requirement(raw)
        key = re.sub(r"[-_.]+", "-", req.name).lower()
        assert key in pins, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(pins[key], prereleases=True), f"constraints.txt {key}=={pins[key]} vs pyproject {raw}"
    for extra in ("boto3", "aiohttp", "py-spy", "opencensus"):  # what the nodes add: ray[default], boto3
        assert extra in pins, extra


@pytest.mark.parametrize("python", PYTHONS)
def test_constraints_agree_with_both_pythons_markers(python):
    """One constraints file for the venv's Python and the cluster's: walk k400ray's requirements
    and what the nodes add (ray[default], boto3) through the installed packages' metadata, with
    the environment markers of ``python``. Every package reached is pinned by a line that applies
    on that Python, at a version every requirer accepts, and supports that Python (Requires-Python).
    Packages this venv does not have (boto3's own) are checked as leaves."""
    import tomllib
    from importlib import metadata

    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    script = ROOT / "infra" / "make_constraints.py"
    assert f'CLUSTER_PYTHON = "{PYTHONS[-1]}"' in script.read_text(encoding="utf-8")
    assert _here() in PYTHONS, f"this venv runs Python {_here()}: add it to PYTHONS and regenerate constraints.txt"
    pins = _pins(python)
    env = default_environment() | {"python_version": python, "python_full_version": f"{python}.0"}
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    todo, seen, problems = [Requirement(r) for r in (*deps, "ray[default]", "boto3")], set(), []
    while todo:
        req = todo.pop()
        name = _canonical(req.name)
        if name not in pins:
            problems.append(f"{name} (needed on Python {python}) has no pin that applies there")
            continue
        if not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{name}=={pins[name]} is outside {req} on Python {python}")
        if (name, frozenset(req.extras)) in seen:
            continue
        seen.add((name, frozenset(req.extras)))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # not in this venv: a leaf
        if dist.version.split("+")[0] != pins[name]:
            continue  # another version here (test_this_venv_runs_the_pinned_versions names the ones that matter)
        requires_python = dist.metadata.get("Requires-Python")
        if requires_python and not SpecifierSet(requires_python).contains(f"{python}.0"):
            problems.append(f"{name}=={pins[name]} requires Python {requires_python}, not {python}")
        for raw in dist.requires or []:
            dep = Requirement(raw)
            if dep.marker is None or any(dep.marker.evaluate(env | {"extra": e}) for e in (req.extras or {""})):
                todo.append(dep)
    assert not problems, "\n".join(sorted(set(problems)))
    assert len(seen) > 100  # the walk went through the closure


def test_this_venv_runs_the_pinned_versions():
    """A pyproject pin changed without regenerating constraints.txt (infra/make_constraints.py) shows here."""
    from importlib import metadata

    pins = _pins()
    for name in ("torch", "torchvision", "ray", "mlflow", "av", "decord2", "pyarrow", "numpy", "pydantic"):
        assert metadata.version(name) == pins[name], name
