"""Progress with a count (plain lines without a terminal) and Ray's output moved to a log file."""

from __future__ import annotations

import io
import os
import sys

from k400ray.console.counter import count_progress
from k400ray.console.ray_log import default_log_path, ray_output_to


def test_plain_progress_prints_a_count_every_few_seconds_and_at_the_end():
    out = io.StringIO()
    with count_progress("indexing", "videos", out, every_s=3600) as update:
        for done in range(0, 33, 16):
            update(done, 32)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # the first call, then the last: nothing in between within the hour
    assert lines[0].startswith("indexing: 0/32 videos (0%)")
    assert lines[1].startswith("indexing: 32/32 videos (100%)")


def test_live_progress_shows_a_bar_with_a_count():
    out = io.StringIO()
    with count_progress("indexing", "videos", out, live=True) as update:
        update(16, 32)
    assert "16/32" in out.getvalue() or "32" in out.getvalue()


def test_ray_output_goes_to_the_log(tmp_path):
    log = tmp_path / "runs" / "g.ray.log"
    with ray_output_to(log, title="k400ray tune g") as shown:
        os.write(2, b"raylet: 14 PYTHON worker processes have been started\n")  # C++ / fd-level
        print("Trial status: 2 RUNNING")  # Tune's tables (sys.stdout)
        print("to the log too", file=sys.stderr)
        shown.write("grid g: 2 trials\n")
    text = log.read_text()
    assert "===== " in text and "k400ray tune g" in text
    assert "14 PYTHON worker processes" in text and "Trial status" in text and "to the log too" in text
    assert "grid g" not in text
    assert default_log_path("s3://b/k", "g") == (tmp_path.cwd() / "g.ray.log").resolve()
    assert default_log_path(str(tmp_path), "g") == tmp_path / "g.ray.log"
