"""Find the videos of a dataset and their labels, in any of the layouts Kinetics-400 ships in.

- ``csv``: official ``annotations/{split}.csv`` (``label,youtube_id,time_start,time_end,split``)
  with videos ``{youtube_id}_{start:06d}_{end:06d}.mp4`` flat in ``{split}/`` or in
  ``{split}/{label}/`` (Academic Torrents / CVDF copies);
- ``list``: MMAction2 list files ``{split}*.txt`` with ``relative/path.mp4 label_index`` lines;
- ``tree``: a bare ``{split}/{class name}/*.mp4`` tree.

Labels are positions in the sorted list of train class names, reused for every split. Nothing
here opens a video: rows whose file is absent are reported as missing, not raised.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

Layout = Literal["auto", "csv", "list", "tree"]
SPLITS = ("train", "val", "test")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")
CSV_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")


class AnnotationError(ValueError):
    """The annotations themselves are unusable (a one-line message names the file and field)."""


@dataclass(frozen=True)
class VideoEntry:
    split: str
    path: str  # relative to the data root, POSIX separators
    label_name: str
    video_id: str


@dataclass
class Discovery:
    layout: str
    entries: list[VideoEntry] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    excluded: list[dict] = field(default_factory=list)  # {split, path, reason}: missing files, bad rows

    def exclude(self, split: str, path: str, reason: str) -> None:
        self.excluded.append({"split": split, "path": path, "reason": reason})


def detect_layout(root: Path) -> str:
    if any((root / "annotations" / f"{s}.csv").is_file() for s in SPLITS):
        return "csv"
    if _list_files(root):
        return "list"
    if any((root / s).is_dir() and any(p.is_dir() for p in (root / s).iterdir()) for s in SPLITS):
        return "tree"
    raise AnnotationError(
        f"{root}: no annotations/{{train,val}}.csv, no MMAction2 list files and no {{split}}/{{class}}/ folders"
    )


def _list_files(root: Path) -> dict[str, Path]:
    found = {}
    for split in SPLITS:
        candidates = sorted(root.glob(f"*{split}*list*.txt")) + sorted(root.glob(f"annotations/*{split}*list*.txt"))
        candidates += [p for p in (root / f"{split}.txt", root / "annotations" / f"{split}.txt") if p.is_file()]
        if candidates:
            found[split] = candidates[0]
    return found


def safe_relative(root: Path, rel: str) -> str | None:
    """``rel`` as a POSIX path inside ``root``, or None when it would escape it (``..``, absolute)."""
    pure = PurePosixPath(rel.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        return None
    resolved = (root / pure).resolve()
    try:
        resolved.relative_to(root.resolve())
    except ValueError:  # a symlink pointing outside the root
        return None
    return str(pure)


def _short(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:160]


def _video_id(rel: str) -> str:
    return PurePosixPath(rel).stem


def discover(root: str | Path, layout: Layout = "auto") -> Discovery:
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(f"{root}: data root is not a directory")
    chosen = detect_layout(root) if layout == "auto" else layout
    found = {"csv": _from_csv, "list": _from_lists, "tree": _from_tree}[chosen](root)
    found.layout = chosen
    return found


def _from_csv(root: Path) -> Discovery:
    out = Discovery(layout="csv")
    rows_by_split: dict[str, list[dict]] = {}
    for split in SPLITS:
        path = root / "annotations" / f"{split}.csv"
        if not path.is_file():
            continue
        # utf-8-sig: a CSV saved by a spreadsheet starts with a BOM that would hide the `label` column.
        with path.open(newline="", encoding="utf-8-sig") as fh:
            try:
                reader = csv.DictReader(fh)
                missing = [c for c in ("label", "youtube_id", "time_start", "time_end") if c not in (reader.fieldnames or [])]
                if missing:
                    raise AnnotationError(f"{path}: missing column(s) {', '.join(missing)} (header must be {','.join(CSV_COLUMNS)})")
                rows_by_split[split] = list(reader)
            except (UnicodeDecodeError, csv.Error) as exc:
                raise AnnotationError(f"{path}: unreadable CSV ({_short(exc)})") from None
    if "train" not in rows_by_split:
        raise AnnotationError(f"{root / 'annotations' / 'train.csv'}: the train split defines the classes and is required")
    index = _file_index(root)
    seen: set[str] = set()
    for split, rows in rows_by_split.items():
        for line, row in enumerate(rows, start=2):
            try:
                name = f"{row['youtube_id']}_{int(row['time_start']):06d}_{int(row['time_end']):06d}"
            except (TypeError, ValueError):
                out.exclude(split, f"annotations/{split}.csv:{line}", "bad time_start/time_end")
                continue
            label = (row.get("label") or "").strip()
            if not label:  # an empty label would become a class of its own and shift every index
                out.exclude(split, f"annotations/{split}.csv:{line}", "bad row: empty label")
                continue
            rel = index.get((split, name)) or index.get((None, name))
            if rel is None:
                out.exclude(split, f"{split}/{name}.mp4", "missing file")
                continue
            if rel in seen:
                out.exclude(split, rel, "duplicate row")
                continue
            seen.add(rel)
            out.entries.append(VideoEntry(split, rel, label, name))
    out.classes = sorted({e.label_name for e in out.entries if e.split == "train"})
    return _drop_unknown_labels(out)


def _file_index(root: Path) -> dict[tuple[str | None, str], str]:
    """Video stem -> relative path, for files flat in a split folder or one class folder down."""
    index: dict[tuple[str | None, str], str] = {}
    for split in SPLITS:
        base = root / split
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file():
                rel = path.relative_to(root).as_posix()
                index.setdefault((split, path.stem), rel)
                index.setdefault((None, path.stem), rel)
    return index


def _from_lists(root: Path) -> Discovery:
    out = Discovery(layout="list")
    lists = _list_files(root)
    if "train" not in lists:
        raise AnnotationError(f"{root}: no train list file (*train*list*.txt)")
    seen: set[str] = set()
    for split, list_path in lists.items():
        prefix_candidates = [root / split, root]
        try:
            lines = list_path.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as exc:
            raise AnnotationError(f"{list_path}: unreadable list file ({_short(exc)})") from None
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            rel_raw, _, label = raw.strip().rpartition(" ")
            if not rel_raw or not (label.isascii() and label.isdigit()):  # "-1" would sort first, shift every class
                out.exclude(split, f"{list_path.name}:{number}", "malformed line (want 'path label_index')")
                continue
            rel, escapes = None, safe_relative(root, rel_raw) is None
            for prefix in prefix_candidates:
                candidate = safe_relative(root, str(PurePosixPath(prefix.relative_to(root).as_posix()) / rel_raw))
                if candidate is None:  # `..`, absolute, or a symlink resolving outside the root
                    escapes = True
                    break
                if (root / candidate).is_file():
                    rel = candidate
                    break
            if rel is None and escapes:
                out.exclude(split, rel_raw, "path escapes the data root")
                continue
            if rel is None:
                out.exclude(split, rel_raw, "missing file")
                continue
            if rel in seen:
                out.exclude(split, rel, "duplicate row")
                continue
            seen.add(rel)
            out.entries.append(VideoEntry(split, rel, label, _video_id(rel)))
    # List files carry indices, not names: the index is the class (sorted numerically).
    out.classes = sorted({e.label_name for e in out.entries if e.split == "train"}, key=int)
    return _drop_unknown_labels(out)


def _from_tree(root: Path) -> Discovery:
    out = Discovery(layout="tree")
    for split in SPLITS:
        base = root / split
        if not base.is_dir():
            continue
        for class_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            for path in sorted(class_dir.iterdir()):
                if path.suffix.lower() in VIDEO_EXTENSIONS:
                    rel = path.relative_to(root).as_posix()
                    out.entries.append(VideoEntry(split, rel, class_dir.name, path.stem))
    out.classes = sorted({e.label_name for e in out.entries if e.split == "train"})
    if not out.classes:
        raise AnnotationError(f"{root / 'train'}: no class folders with videos")
    return _drop_unknown_labels(out)


def _drop_unknown_labels(found: Discovery) -> Discovery:
    known = set(found.classes)
    kept = []
    for entry in found.entries:
        if entry.label_name in known:
            kept.append(entry)
        else:
            found.exclude(entry.split, entry.path, f"label {entry.label_name!r} not in the train class list")
    found.entries = sorted(kept, key=lambda e: (SPLITS.index(e.split), e.path))
    return found


def class_index(classes: list[str]) -> dict[str, int]:
    return {name: i for i, name in enumerate(classes)}
