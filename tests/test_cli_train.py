"""`k400ray train` and `k400ray eval` from the command line, on a tiny synthetic set."""

import re

import pytest
from typer.testing import CliRunner

from k400ray.cli import app
from k400ray.data.index import build_index
from k400ray.data.synth import generate_synthetic

runner = CliRunner()

SPEC = """
experiment: clitest
scale: toy
data:
  train_index: {index}
grid:
  presets: [tsn_r50_1x1x8]
training:
  epochs: 1
  batch_per_worker: 4
  lr: 0.01
resources:
  decode_tasks: 2
  max_failures: 0
storage_path: {runs}
"""


@pytest.fixture(scope="module")
def spec_file(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate_synthetic(root, num_classes=4, videos_per_class=(3, 2), frames=24, seed=2)
    build_index(root, root / "index", progress=False)
    spec = root / "spec.yaml"
    spec.write_text(SPEC.format(index=root / "index", runs=root / "runs"))
    return spec


@pytest.mark.slow
def test_train_then_eval(spec_file):
    argv = ["train", str(spec_file), "--model", "tsn_r50_1x1x8", "--aug", "mixup", "--seed", "3"]
    r = runner.invoke(app, argv)
    assert r.exit_code == 0, r.output
    assert "clitest-tsn_r50_1x1x8-mixup-s3" in r.output
    # one line per epoch (1 here): loss, efficient acc1/acc5 (evaluated at the last epoch), clips/s, data wait
    epochs = [ln for ln in r.stdout.splitlines() if ln.startswith("epoch ")]
    assert len(epochs) == 1 and re.fullmatch(
        r"epoch 1/1: loss [\d.]+, efficient acc1/acc5 [\d.]+/[\d.]+, [\d.]+ clips/s, data wait \d+%", epochs[0]), r.stdout
    # The same trial again in the same place: refused in one line, never the old run's figures.
    again = runner.invoke(app, argv)
    assert again.exit_code == 2 and len(again.output.strip().splitlines()) == 1, again.output
    assert "already exists" in again.stderr and "finished, 1 epochs" in again.stderr and "--resume" in again.stderr
    assert "acc1/acc5" not in again.output
    eff = re.search(r"efficient acc1/acc5: ([\d.]+) / ([\d.]+)", r.output)
    acc = re.search(r"accurate  acc1/acc5: ([\d.]+) / ([\d.]+)", r.output)
    assert eff and acc and all(0 <= float(v) <= 100 for v in eff.groups() + acc.groups())
    checkpoint = re.search(r"checkpoint (\S+)", r.output).group(1)
    index = spec_file.parent / "index"
    r = runner.invoke(app, ["eval", checkpoint, "--index", str(index), "--mode", "accurate",
                            "--out", str(spec_file.parent / "p.parquet")])
    assert r.exit_code == 0, r.output
    assert "tsn_r50_1x1x8 accurate" in r.output and "(8 videos, 0 skipped, cpu, last weights, epoch 1)" in r.output
    assert (spec_file.parent / "p.parquet").is_file()


def test_train_rejects_unknown_preset_and_aug(spec_file):
    r = runner.invoke(app, ["train", str(spec_file), "--model", "resnet9000"])
    assert r.exit_code == 2 and "--model: unknown preset 'resnet9000'" in r.output
    r = runner.invoke(app, ["train", str(spec_file), "--model", "tsn_r50_1x1x8", "--aug", "autoaugment"])
    assert r.exit_code == 2 and "--config: unknown config 'autoaugment'" in r.output
    r = runner.invoke(app, ["train", str(spec_file), "--model", "tsm_r50_1x1x8", "--config", "gluoncv"])
    assert r.exit_code == 2 and "--config: config 'gluoncv' has no meaning for tsm_r50_1x1x8" in r.output


def test_eval_rejects_a_non_checkpoint(spec_file, tmp_path):
    r = runner.invoke(app, ["eval", str(tmp_path), "--index", str(spec_file.parent / "index")])
    assert r.exit_code == 2 and "not a k400ray checkpoint" in r.output


def test_spec_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiment: x\ndata: {train_index: /nowhere}\ngrid: {presets: [tsm_r50_1x1x8]}\nresources: {workers_per_trial: 0}\n")
    r = runner.invoke(app, ["train", str(bad), "--model", "tsm_r50_1x1x8"])
    assert r.exit_code == 2
    assert "resources.workers_per_trial" in r.output and len(r.output.strip().splitlines()) == 1
    bad.write_text("experiment: x\ndata: {train_index: /nowhere}\ngrid: {presets: [tsm_r50_1x1x8]}\n")
    r = runner.invoke(app, ["train", str(bad), "--model", "tsm_r50_1x1x8"])
    assert r.exit_code == 2 and "data.train_index: no index at /nowhere" in r.output
