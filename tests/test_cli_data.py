"""`k400ray synth` then `k400ray index`, as a user runs them: counts match, broken files listed."""

import json

from typer.testing import CliRunner

from k400ray.cli import app

runner = CliRunner()


def test_synth_then_index_counts_and_reasons(ray_local, tmp_path):
    data, index = tmp_path / "s", tmp_path / "i"
    r = runner.invoke(app, ["synth", str(data), "--classes", "4", "--train-per-class", "3", "--val-per-class", "2",
                            "--frames", "16", "--corrupt", "5", "--missing", "2"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["index", str(data), "--out", str(index)])
    assert r.exit_code == 0, r.output
    manifest = json.loads((index / "manifest.json").read_text())
    assert len(manifest["classes"]) == 4
    # 5 broken kinds: four are unusable; the one whose tail does not decode is indexed with the
    # frames that really decode (fewer than its header claims).
    videos = manifest["splits"]["train"]["videos"] + manifest["splits"]["val"]["videos"]
    assert videos == 12 + 8 + 1
    corrupt = sum(s["corrupt"] for s in manifest["splits"].values())
    missing = sum(s["missing"] for s in manifest["splits"].values())
    assert (corrupt, missing) == (4, 2)
    import pyarrow.parquet as pq

    rows = [r for split in ("train", "val") for rel in manifest["splits"][split]["shards"]
            for r in pq.read_table(index / rel).to_pylist()]
    short = [r for r in rows if r["num_frames"] < r["header_frames"]]
    assert len(short) == 1 and 0 < short[0]["num_frames"] < 16
    reasons = [x["reason"] for x in manifest["excluded"]]
    assert "empty file (0 bytes)" in reasons and reasons.count("missing file") == 2
    assert any("no video stream" in r for r in reasons)
    assert all(x["path"] and x["reason"] for x in manifest["excluded"])
    assert "excluded" in r.output


def test_index_bad_inputs_are_one_line_errors(tmp_path):
    r = runner.invoke(app, ["index", str(tmp_path / "nope"), "--out", str(tmp_path / "i")])
    assert r.exit_code == 2 and "data root is not a directory" in r.output
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "train.csv").write_text("label,youtube_id\nx,y\n")
    r = runner.invoke(app, ["index", str(tmp_path), "--out", str(tmp_path / "i")])
    assert r.exit_code == 2 and "train.csv: missing column(s) time_start, time_end" in r.output
    assert not (tmp_path / "i").exists()


def test_synth_rejects_bad_size(tmp_path):
    r = runner.invoke(app, ["synth", str(tmp_path / "s"), "--size", "81x64"])
    assert r.exit_code == 2 and "--size" in r.output


def test_python_dash_m_lists_every_command():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "k400ray", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("synth", "index", "models", "train", "eval", "tune", "report", "demo", "bench"):
        assert command in out, command
