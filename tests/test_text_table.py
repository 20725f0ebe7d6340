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


def test_markdown_tables_have_three_dashes_per_separator_cell():
    """MLflow's description renderer (showdown) leaves ``|:-:|:-|`` as text; three dashes render
    everywhere. A ``|`` in a cell is escaped; a short row is an error, not a broken table."""
    import pytest

    from k400ray.text_table import markdown_table

    assert markdown_table(("a", "b", "c"), [("1", "x|y", "3")], align="lcr") == [
        "| a | b | c |", "|:---|:---:|---:|", "| 1 | x\\|y | 3 |"]
    with pytest.raises(ValueError):
        markdown_table(("a", "b"), [("1",)])


def test_columns_empty_for_this_table_and_columns_that_do_not_fit_are_left_out():
    from k400ray.text_table import drop_empty_columns, fit_columns

    header, rows = ("model", "config", "Δ per seed", "p"), [("tsn", "mixup", "-", "0.5"), ("tsm", "cutmix", "-", "-")]
    assert drop_empty_columns(header, rows) == [0, 1, 3]
    assert fit_columns(header, rows, 80, drop_order=(2, 3)) == [0, 1, 2, 3]  # fits: all kept
    assert fit_columns(header, rows, 20, drop_order=(2, 3)) == [0, 1, 3]  # 18 wide without Δ per seed
    assert fit_columns(header, rows, 15, drop_order=(2, 3)) == [0, 1]  # "model  config" is 13 wide
    assert fit_columns(header, rows, 5, drop_order=(2,)) == [0, 1, 3]  # only what drop_order names goes
