"""What a cluster gives one trial, for the cost estimate: GPU instance, decode cores, prices.

Read from a Ray cluster-launcher YAML (``cost.cluster`` in the spec, e.g. ``cluster.yaml``): the
node type with GPUs runs the trials (its ``decode_cpu`` decodes beside them); node types with
``decode_cpu`` and no GPU are decode nodes, up to their ``max_workers``, shared by the trials
that run at once; the head type runs the driver and MLflow for the whole grid. Without a
cluster file a trial has its GPU nodes' spare cores only (cores - trial CPUs - 1 per node).
Prices come from ``records/prices.json``, overridden per instance type by ``cost.instances``;
a node type whose ``node_config`` asks for ``InstanceMarketOptions: {MarketType: spot}`` is
billed at the instance's spot price (a typical figure: spot prices move by zone and hour).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from k400ray.tune.spec import SearchSpec, SpecError
from k400ray.tune import throughput as tp

DEFAULT_GPU = "A100"
DEFAULT_DECODE_INSTANCE = "c6id.24xlarge"
DEFAULT_HEAD_INSTANCE = "m7i.2xlarge"


@dataclass(frozen=True)
class Instance:
    name: str
    usd_per_hour: float
    gpus: int = 0
    gpu: str | None = None
    cores: int = 0
    local_disk_gb: float = 0.0  # instance-store NVMe (0: EBS only, nothing to stage to)
    local_disk_gb_per_s: float = 0.0  # its read bandwidth, all drives together (RAID 0)
    network_gbps: float = 0.0
    spot_usd_per_hour: float | None = None  # typical, not a quote (None: no figure)


@dataclass(frozen=True)
class ClusterShape:
    source: str  # where the shape comes from, printed
    gpu: str  # GPU kind of the trials
    gpu_instance: Instance | None  # None: no priced instance holds this GPU kind
    gpu_node_decode_cores: float  # decode cores on one GPU node
    decode_instance: Instance | None
    decode_nodes: int  # at most, for the whole cluster
    decode_node_cores: float
    head_instance: Instance | None
    idle_timeout_h: float = 10 / 60  # an idle node stays up this long (Ray's launcher default: 5 min)
    gpu_spot: bool = False  # the cluster file buys the GPU nodes on the spot market
    decode_spot: bool = False  # ... the decode nodes


def instance_table(spec: SearchSpec) -> dict[str, Instance]:
    table = {name: Instance(name, **{k: v for k, v in row.items()})
             for name, row in tp.records("prices.json")["instances"].items()}
    for name, row in spec.cost.instances.items():
        table[name] = Instance(name, **row.model_dump())
    return table


def efs_price(spec: SearchSpec) -> float:
    if spec.cost.efs_usd_per_gb_read is not None:
        return spec.cost.efs_usd_per_gb_read
    return float(tp.records("prices.json")["efs"]["usd_per_gb_read"])


def _gpu_instance_for(kind: str, table: dict[str, Instance]) -> Instance | None:
    return next((i for i in table.values() if i.gpu == kind and i.gpus), None)


def cluster_shape(spec: SearchSpec, spec_path: str | Path) -> ClusterShape:
    table = instance_table(spec)
    if spec.cost.cluster is None:
        gpu = spec.cost.gpu or DEFAULT_GPU
        inst = _gpu_instance_for(gpu, table)
        r = spec.resources
        spare = 0.0
        if inst is not None and inst.cores:
            trials_per_node = max(1, inst.gpus // max(1, r.workers_per_trial * r.gpus_per_worker))
            spare = max(0.0, inst.cores - trials_per_node * (r.workers_per_trial * r.cpus_per_worker + 1))
        return ClusterShape("no cost.cluster: the GPU node's spare cores only", gpu, inst, spare,
                            table.get(DEFAULT_DECODE_INSTANCE), 0, 0.0, table.get(DEFAULT_HEAD_INSTANCE))
    return _from_file(spec, spec_path, table)


def _from_file(spec: SearchSpec, spec_path: str | Path, table: dict[str, Instance]) -> ClusterShape:
    path = Path(spec.cost.cluster)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        types = config["available_node_types"]
        head = types[config["head_node_type"]]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        what = "no such file" if isinstance(exc, OSError) else "not a Ray cluster config with available_node_types"
        raise SpecError(f"{spec_path}: cost.cluster: {path}: {what}") from None
    workers = [v for k, v in types.items() if k != config["head_node_type"]]
    gpu_types = [v for v in workers if (v.get("resources") or {}).get("GPU", 0) > 0]
    cpu_types = [v for v in workers if not (v.get("resources") or {}).get("GPU") and
                 (v.get("resources") or {}).get("decode_cpu")]
    if not gpu_types:
        raise SpecError(f"{spec_path}: cost.cluster: {path}: no node type with GPUs")
    node = gpu_types[0]
    gpu_inst = table.get((node.get("node_config") or {}).get("InstanceType", ""))
    gpu = spec.cost.gpu or (gpu_inst.gpu if gpu_inst and gpu_inst.gpu else DEFAULT_GPU)
    if spec.cost.gpu and gpu_inst and gpu_inst.gpu != spec.cost.gpu:
        gpu_inst = _gpu_instance_for(spec.cost.gpu, table)
    decode_inst = table.get((cpu_types[0].get("node_config") or {}).get("InstanceType", "")) if cpu_types else None
    names = {id(v): k for k, v in types.items()}

    def spot(node: dict) -> bool:
        return on_spot(node, f"{spec_path}: cost.cluster: {path}: available_node_types.{names[id(node)]}")

    return ClusterShape(
        f"{path}", gpu, gpu_inst, float(node["resources"].get("decode_cpu", 0)),
        decode_inst, sum(int(v.get("max_workers", 0)) for v in cpu_types),
        float(cpu_types[0]["resources"]["decode_cpu"]) if cpu_types else 0.0,
        table.get((head.get("node_config") or {}).get("InstanceType", "")),
        float(config.get("idle_timeout_minutes", 5)) / 60,
        spot(node), bool(cpu_types) and spot(cpu_types[0]),
    )


def on_spot(node: dict, where: str) -> bool:
    """Whether a node type's ``node_config`` launches it on the spot market (EC2's
    ``InstanceMarketOptions``, which Ray's AWS provider passes to ``RunInstances`` as it is)."""
    options = (node.get("node_config") or {}).get("InstanceMarketOptions")
    if options is None:
        return False
    if not isinstance(options, dict) or str(options.get("MarketType", "")).lower() not in ("spot", "capacity-block"):
        raise SpecError(f"{where}.node_config.InstanceMarketOptions: expected MarketType spot or capacity-block, "
                        f"got {options!r}")
    return str(options["MarketType"]).lower() == "spot"


def nodes_per_trial(shape: ClusterShape, trial_gpus: int) -> int:
    per_node = shape.gpu_instance.gpus if shape.gpu_instance else 8
    return max(1, math.ceil(trial_gpus / per_node))
