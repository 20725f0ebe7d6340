"""Finding videos and labels in the three Kinetics layouts, without opening any video."""

import csv

import pytest

from k400ray.data.annotations import AnnotationError, discover, safe_relative

HEADER = ["label", "youtube_id", "time_start", "time_end", "split"]


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def _csv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(rows)


def test_csv_layout_flat_and_per_class(tmp_path):
    _csv(tmp_path / "annotations/train.csv", [
        ["passing American football (in game)", "aaaaaaaaaaa", 10, 20, "train"],
        ["abseiling", "bbbbbbbbbbb", 0, 10, "train"],
        ["abseiling", "ccccccccccc", 5, 15, "train"],       # missing file
        ["abseiling", "bbbbbbbbbbb", 0, 10, "train"],       # duplicate row
    ])
    _csv(tmp_path / "annotations/val.csv", [
        ["abseiling", "ddddddddddd", 1, 11, "val"],
        ["unheard of (class)", "eeeeeeeeeee", 1, 11, "val"],  # label not in train
    ])
    _touch(tmp_path / "train/aaaaaaaaaaa_000010_000020.mp4")
    _touch(tmp_path / "train/abseiling/bbbbbbbbbbb_000000_000010.mp4")  # one folder per class
    _touch(tmp_path / "val/ddddddddddd_000001_000011.mp4")
    _touch(tmp_path / "val/eeeeeeeeeee_000001_000011.mp4")
    found = discover(tmp_path)
    assert found.layout == "csv"
    assert found.classes == ["abseiling", "passing American football (in game)"]
    assert [(e.split, e.path) for e in found.entries] == [
        ("train", "train/aaaaaaaaaaa_000010_000020.mp4"),
        ("train", "train/abseiling/bbbbbbbbbbb_000000_000010.mp4"),
        ("val", "val/ddddddddddd_000001_000011.mp4"),
    ]
    reasons = sorted(x["reason"] for x in found.excluded)
    assert reasons[0] == "duplicate row"
    assert "label 'unheard of (class)' not in the train class list" in reasons
    assert "missing file" in reasons


def test_csv_missing_column_is_a_one_line_error(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations/train.csv").write_text("label,youtube_id,split\nx,y,train\n")
    with pytest.raises(AnnotationError, match=r"train.csv: missing column\(s\) time_start, time_end"):
        discover(tmp_path)


def test_list_files_reject_paths_escaping_the_root(tmp_path):
    _touch(tmp_path / "train/a.mp4")
    _touch(tmp_path / "train/b.mp4")
    _touch(tmp_path.parent / "outside.mp4")
    (tmp_path / "kinetics400_train_list_videos.txt").write_text("a.mp4 1\nb.mp4 0\n../../outside.mp4 0\n/etc/passwd 0\n")
    (tmp_path / "kinetics400_val_list_videos.txt").write_text("a.mp4 1\n")
    found = discover(tmp_path)
    assert found.layout == "list"
    assert found.classes == ["0", "1"]
    assert [(e.path, e.label_name) for e in found.entries if e.split == "train"] == [("train/a.mp4", "1"), ("train/b.mp4", "0")]
    escaped = [x for x in found.excluded if x["reason"] == "path escapes the data root"]
    assert len(escaped) == 2


def test_tree_layout(tmp_path):
    _touch(tmp_path / "train/zumba/x 1.mp4")
    _touch(tmp_path / "train/abseiling/ü.mp4")
    _touch(tmp_path / "val/zumba/y.mp4")
    found = discover(tmp_path)
    assert found.layout == "tree" and found.classes == ["abseiling", "zumba"]
    assert [e.path for e in found.entries] == ["train/abseiling/ü.mp4", "train/zumba/x 1.mp4", "val/zumba/y.mp4"]


def test_unrecognised_root(tmp_path):
    with pytest.raises(AnnotationError):
        discover(tmp_path)


def test_safe_relative(tmp_path):
    assert safe_relative(tmp_path, "train/a.mp4") == "train/a.mp4"
    assert safe_relative(tmp_path, "../a.mp4") is None
    assert safe_relative(tmp_path, "/abs/a.mp4") is None
