"""Shared bench helpers: tables, records, and the /proc memory sampler."""

import multiprocessing as mp
import os

import numpy as np

from k400ray.bench.common import PeakMemory, Table, machine_line, median, process_tree, pss_bytes, write_record


def test_table_text_and_markdown_align_and_format():
    t = Table(["preset", "clips/s", "ok"], [["tsn", 12.3456, True], ["i3d", 0.5, None]])
    text = t.text().splitlines()
    assert text[0].split() == ["preset", "clips/s", "ok"]
    assert text[2].split() == ["tsn", "12.3", "yes"] and text[3].split() == ["i3d", "0.500", "-"]
    assert len({len(line) for line in text[:2]}) == 1  # header and rule have the same width
    md = t.markdown().splitlines()
    assert md[0] == "| preset | clips/s | ok |" and md[2] == "| tsn | 12.3 | yes |"


def test_median_and_machine_line():
    assert median([3.0, 1.0, 2.0]) == 2.0 and np.isnan(median([]))
    line = machine_line()
    assert f"{os.cpu_count()} cores" in line and "GiB RAM" in line


def test_write_record_appends_command_machine_date_and_tables(tmp_path):
    out = tmp_path / "bench.md"
    for _ in range(2):
        write_record(out, "bench data", [Table(["a"], [[1]])], ["target met"])
    text = out.read_text()
    assert text.count("### bench data") == 2 and text.count("- command: `") == 2
    assert "- machine: " in text and "- date: 20" in text and "| a |" in text and "- target met" in text


def _sleep(seconds):
    import time

    time.sleep(seconds)


def test_peak_memory_sees_an_allocation_and_child_processes():
    with PeakMemory(interval=0.05) as mem:
        before = mem.own
        block = np.ones(200 * 2**20 // 8)  # 200 MiB, touched
        mem.sample()
        del block
    assert mem.own - before > 150 * 2**20
    assert mem.tree >= mem.own
    child = mp.get_context("spawn").Process(target=_sleep, args=(5,))
    child.start()
    try:
        assert child.pid in process_tree(os.getpid())
        assert pss_bytes(child.pid) > 0
    finally:
        child.terminate()
        child.join()
    assert pss_bytes(10**9) == 0  # no such process


def test_cpu_between_snapshots_counts_new_processes_and_refuses_lost_ones():
    from k400ray.bench.common import cpu_seconds_between

    assert cpu_seconds_between({1: 1.0, 2: 2.0}, {1: 1.5, 2: 2.5, 3: 0.25}) == 1.25
    assert np.isnan(cpu_seconds_between({1: 1.0, 2: 2.0}, {1: 3.0}))
