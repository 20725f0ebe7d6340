"""``infra/make_constraints.py``: one constraints file for the venv's Python and the cluster's
(the pip resolutions themselves need PyPI and run when the file is regenerated, not here)."""

from __future__ import annotations

import pytest

from tests.infra import load_script

mc = load_script("make_constraints")


def test_merge_pins_both_pythons_in_one_file():
    local = {"numpy": "2.3.0", "tomli": "2.2.1", "torch": "2.14.1"}
    cluster = {"numpy": "2.3.0", "torch": "2.14.1", "setuptools": "80.0.0"}
    assert mc.merge(local, cluster) == {
        "numpy": "numpy==2.3.0",
        "setuptools": 'setuptools==80.0.0 ; python_version >= "3.12"',  # only the cluster's Python needs it
        "tomli": 'tomli==2.2.1 ; python_version < "3.12"',  # only the venv's
        "torch": "torch==2.14.1",
    }


def test_merge_refuses_two_versions_in_one_line():
    with pytest.raises(SystemExit, match=r"^constraints: numpy resolves to 2.3.0 here but 2.4.0 on Python 3.12 "
                                         r"\(1 package\(s\) differ\)"):
        mc.merge({"numpy": "2.3.0", "av": "18.1.0"}, {"numpy": "2.4.0", "av": "18.1.0"})


def test_previous_pins_read_markers_and_comments(tmp_path):
    path = tmp_path / "constraints.txt"
    path.write_text('# header\nNumPy==2.3.0\nsetuptools==80.0.0 ; python_version >= "3.12"\n\n')
    assert mc.previous_pins(path) == {"numpy": "2.3.0", "setuptools": "80.0.0"}
    assert mc.previous_pins(tmp_path / "none.txt") == {}
