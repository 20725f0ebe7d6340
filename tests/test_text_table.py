"""The one plain-text table helper every printed table goes through."""

from pathlib import Path

from k400ray.text_table import text_table


def test_columns_are_as_wide_as_their_widest_cell_and_numbers_align_right():
    lines = text_table(("name", "n"), [("tsm", "8"), ("i3d_r50", "32")], right={1})
    assert lines == ["name      n", "-------  --", "tsm       8", "i3d_r50  32"]


def test_no_other_module_aligns_table_columns_itself():
    """The twins (model summary, bench records, grid summary, dry-run) call text_table."""
    root = Path(__file__).resolve().parents[1] / "k400ray"
    aligners = [p.relative_to(root).as_posix() for p in root.rglob("*.py")
                if ".rjust(w)" in p.read_text() or ".ljust(w)" in p.read_text()]
    assert aligners == ["text_table.py"]
