"""`k400ray bench data --encodings`: ratios against x264's defaults, the goal, the record the
cost model reads; and the command on a tiny textured source."""

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from k400ray.bench.clip_cpu import SourceResult
from k400ray.bench.encodings import AS_IS, EncodingBench
from k400ray.cli import app
from k400ray.data.encoding import Encoding

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
TSN, I3D = "tsn_r50_1x1x8", "i3d_r50_32x2x1"


def _bench(cpu_ms: dict[str, tuple[float, float]], kb: dict[str, float]) -> EncodingBench:
    """One 340x256 source; CPU ms per clip (TSN, I3D) and kB per video by encoding name."""
    results = [SourceResult(p, f"340x256 {name}", 10, cpu_s=[ms[i] / 100, 1.0, ms[i] / 100])  # median of 3 passes
               for name, ms in cpu_ms.items() for i, p in enumerate((TSN, I3D))]
    return EncodingBench(256, ["340x256"], [n for n in cpu_ms if n != AS_IS],
                         {f"340x256 {n}": 1000 * v for n, v in kb.items()}, results)


BENCH = _bench({AS_IS: (90, 80), "keyint250": (80, 60), "keyint32": (55, 45), "keyint16-fastdecode": (32, 36)},
               {AS_IS: 400, "keyint250": 500, "keyint32": 600, "keyint16-fastdecode": 700})


def test_ratios_are_against_x264_defaults_and_the_goal_needs_cpu_and_bytes():
    assert BENCH.cpu_gain(TSN, "340x256", "keyint16-fastdecode") == pytest.approx(2.5)
    assert BENCH.cpu_gain(I3D, "340x256", "keyint16-fastdecode") == pytest.approx(60 / 36)
    assert BENCH.bytes_ratio("340x256", "keyint16-fastdecode") == pytest.approx(1.4)
    assert BENCH.meets_goal("340x256", "keyint16-fastdecode") is True
    assert BENCH.meets_goal("340x256", "keyint32") is False  # 80/55 < 2x for TSN
    fat = _bench({"keyint250": (80, 60), "keyint8-fastdecode": (20, 20)}, {"keyint250": 500, "keyint8-fastdecode": 900})
    assert fat.cpu_gain(TSN, "340x256", "keyint8-fastdecode") == 4.0 and fat.meets_goal("340x256", "keyint8-fastdecode") is False
    table = BENCH.table()
    assert [r[1] for r in table.rows] == ["source as is (x264 medium)", "keyint250", "keyint32", "keyint16-fastdecode"]
    assert table.rows[3] == ["340x256", "keyint16-fastdecode", 16, True, 700.0, 1.4, 32.0, 2.5, 36.0, 1.67, True]
    assert table.rows[1][-1] == "-" and table.rows[2][-1] is False


def test_goal_lines_name_what_meets_it_and_prepares_default():
    lines = BENCH.goal_lines("keyint16-fastdecode")
    assert lines[0].startswith("goal 340x256 (tsn_r50_1x1x8 >= 2x and i3d_r50_32x2x1 >= 1.5x lower CPU")
    assert lines[0].endswith("met by keyint16-fastdecode (tsn_r50_1x1x8 2.50x, i3d_r50_32x2x1 1.67x lower CPU, 1.40x bytes)")
    assert lines[1].startswith("prepare's default on 340x256: keyint16-fastdecode") and lines[1].endswith("goal met")
    assert BENCH.goal_lines("keyint32")[1].endswith("goal MISSED")


def test_the_record_has_the_shape_the_cost_model_reads():
    entry = BENCH.record("340x256", record="cmd, machine, date", source="src", default="keyint16-fastdecode")
    assert entry["default"] == "keyint16-fastdecode" and entry["record"] == "cmd, machine, date"
    assert list(entry["encodings"]) == ["keyint250", "keyint32", "keyint16-fastdecode"]  # the source as is is not one
    assert entry["encodings"]["keyint16-fastdecode"] == {
        "keyframe_interval": 16, "fast_decode": True, "bytes_per_video": 700000,
        "cpu_ms_per_clip": {TSN: 32.0, I3D: 36.0}}


@pytest.mark.slow
def test_bench_data_encodings_runs_on_a_tiny_textured_source(tmp_path):
    """Source 64x48 at short side 48: measured as it is and re-encoded by prepare's encoder."""
    out, record = tmp_path / "record.md", tmp_path / "entry.json"
    r = runner.invoke(app, ["bench", "data", "--encodings", "--sources", "64x48", "--short-side", "48",
                            "--encoding-names", "keyint4-fastdecode", "--presets", TSN, "--videos", "1",
                            "--seconds", "1", "--fps", "8", "--clips", "2", "--repeats", "1", "--processes", "1",
                            "--work-dir", str(tmp_path / "w"), "--out", str(out), "--record-json", str(record)])
    assert r.exit_code == 0, r.output
    rows = re.findall(r"^64x48\s+(source as is \(x264 medium\)|keyint250|keyint4-fastdecode)\s", r.output, flags=re.M)
    assert rows == ["source as is (x264 medium)", "keyint250", "keyint4-fastdecode"]
    assert "goal 64x48: not checked" in r.output and "### bench data (encodings)" in out.read_text()
    entry = json.loads(record.read_text())["decode_by_encoding"]
    assert set(entry["encodings"]) == {"keyint250", "keyint4-fastdecode"}
    assert entry["encodings"]["keyint4-fastdecode"]["cpu_ms_per_clip"][TSN] > 0
    assert re.search(r", \d{4}-\d\d-\d\d \d\d:\d\d$", entry["record"]) and entry["source"].startswith("realistic")


def test_bench_data_encodings_refuses_bad_names_and_two_modes():
    r = runner.invoke(app, ["bench", "data", "--encodings", "--encoding-names", "keyint16,gop8"])
    assert r.exit_code == 2 and "--encoding-names: 'gop8'" in r.output
    r = runner.invoke(app, ["bench", "data", "--encodings", "--raw-sizes", "1920x1080"])
    assert r.exit_code == 2 and "give one" in r.output


def test_the_shipped_record_is_the_documented_table_and_prepares_default():
    """measured.json's decode_by_encoding is the 340x256 part of the record in docs/benchmarks.md,
    and names the encoding `k400ray prepare` uses by default."""
    shipped = json.loads((REPO / "k400ray/tune/records/measured.json").read_text())["decode_by_encoding"]
    docs = (REPO / "docs/benchmarks.md").read_text()
    assert shipped["default"] == Encoding().name and shipped["default"] in shipped["encodings"]
    assert f"- command: `{shipped['record'].split(', ')[0]}`" in docs
    rows = {line.split(" | ")[1]: line for line in docs.splitlines() if line.startswith("| 340x256 | ")}
    for name, entry in shipped["encodings"].items():
        assert Encoding.from_name(name) == Encoding(entry["keyframe_interval"], entry["fast_decode"])
        cells = rows[name].strip("| ").split(" | ")
        assert f"{entry['bytes_per_video'] / 1000:.1f}" in cells, name
        assert all(f"{ms:.1f}" in cells for ms in entry["cpu_ms_per_clip"].values()), name
