"""The ``k400ray bench`` commands (``data``, ``train``, ``index``): parse, run one benchmark, print.

Defaults finish in a few minutes on a 2-core machine. Without ``--index`` / ``--data-root`` the
input is a generated set of Kinetics-shaped videos (10 s, 340x256, 30 fps, H.264), cached in
``--work-dir``. ``--out FILE`` appends a Markdown record (command, machine, date, tables) to FILE.
How to read the numbers: ``docs/benchmarks.md``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

import typer

from k400ray.cli.common import fail, parse_size

bench_app = typer.Typer(add_completion=False, no_args_is_help=True,
                        help="Benchmarks: data path, training step and indexing against their hardware limits.")

_PRESETS_HELP = "comma-separated preset names"


def _comma_list(text: str, known, option: str, what: str) -> list[str]:
    """The names in a comma-separated option, or a one-line error naming the unknown ones."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        fail(f"{option}: unknown {what}(s) {', '.join(unknown) or '(none given)'} (known: {', '.join(known)})")
    return names


def _presets(text: str) -> list[str]:
    from k400ray.presets import PRESETS

    return _comma_list(text, sorted(PRESETS), "--presets", "preset")


def _methods(text: str) -> tuple[str, ...]:
    from k400ray.bench.data import ALL_METHODS, METHOD_KEYS

    chosen = {METHOD_KEYS[k] for k in _comma_list(text, list(METHOD_KEYS), "--methods", "method")}
    return tuple(m for m in ALL_METHODS if m in chosen)


def _work_dir(path: Optional[Path]) -> Path:
    from k400ray.bench.inputs import default_work_dir

    out = path or default_work_dir()
    out.mkdir(parents=True, exist_ok=True)
    return out


def _start_ray(address: Optional[str]) -> float:
    """Start or join Ray; seconds it took (reported apart from throughput)."""
    from k400ray.runtime import init_ray

    start = time.perf_counter()
    init_ray(address)
    return time.perf_counter() - start


def _check_index(index: Path, split: str) -> None:
    from k400ray.data.index import load_manifest

    try:
        manifest = load_manifest(index)
    except FileNotFoundError as exc:
        fail(str(exc))
    if split not in manifest["splits"] or not manifest["splits"][split]["videos"]:
        fail(f"{index}: split {split!r} has no indexed videos")


def _input_index(index: Optional[Path], split: str, work: Path, *, videos: int, seconds: float, size: str, fps: int) -> Path:
    from k400ray.bench.inputs import generated_index

    if index is not None:
        return index
    typer.echo(f"input: {videos} generated videos of {seconds:g} s, {size}, {fps} fps in {work} (made once, then reused)")
    return generated_index(work, videos=videos, seconds=seconds, fps=fps, size=parse_size(size))


def _emit(title: str, tables, notes: list[str], out: Optional[Path]) -> None:
    from k400ray.bench.common import write_record

    for table in tables:
        typer.echo(table.text())
        typer.echo("")
    for note in notes:
        typer.echo(note)
    if out is not None:
        write_record(out, title, tables, notes)
        typer.echo(f"record appended to {out}")


def _log(message: str) -> None:
    typer.echo(message, err=True)


@bench_app.command()
def data(
    index: Optional[Path] = typer.Option(None, "--index", help="index to read (default: a generated set)"),
    split: str = typer.Option("train", "--split"),
    presets: str = typer.Option("tsn_r50_1x1x8,i3d_r50_32x2x1", "--presets", help=_PRESETS_HELP),
    clips: int = typer.Option(128, "--clips", min=1, help="clips per measured pass (index rows cycled or cut to this)"),
    repeats: int = typer.Option(3, "--repeats", min=1, help="measured passes per method; the median is reported"),
    processes: Optional[int] = typer.Option(None, "--processes", min=1, help="decode processes for every method (default: cores)"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="default: the preset's batch per GPU"),
    videos: Optional[int] = typer.Option(None, "--videos", min=1,
                                         help="generated videos (without --index; default 16, 2 with --encodings)"),
    seconds: float = typer.Option(10.0, "--seconds", min=0.1, help="generated video length"),
    size: str = typer.Option("340x256", "--size", help="generated WIDTHxHEIGHT"),
    fps: int = typer.Option(30, "--fps", min=1, help="generated frame rate"),
    ray_tasks: Optional[int] = typer.Option(None, "--ray-tasks", min=1,
                                            help="concurrent Ray decode tasks (default: --processes)"),
    methods: str = typer.Option("limit,ray,dataloader", "--methods",
                                help="comma-separated subset of limit, ray, dataloader, limit-glibc "
                                     "(without ray, Ray is not started)"),
    epoch_rows: int = typer.Option(0, "--epoch-rows", min=0,
                                   help="also time an epoch's start (first batch) over an index of N rows, e.g. 240000"),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", help="cache for generated videos and sized indexes"),
    raw_sizes: Optional[str] = typer.Option(
        None, "--raw-sizes",
        help="comma-separated WIDTHxHEIGHT, e.g. 1920x1080,1280x720: instead, CPU per train clip on --videos generated "
             "videos of --seconds at each size against their `k400ray prepare` copies (decode limit only, no Ray)"),
    encodings: bool = typer.Option(
        False, "--encodings",
        help="instead, CPU per train clip and bytes per video of `k400ray prepare` copies of textured generated "
             "videos (--sources) in several encodings (--encoding-names), against x264's defaults (no Ray)"),
    sources: str = typer.Option("340x256,1920x1080", "--sources",
                                help="comma-separated WIDTHxHEIGHT of the textured sources (--encodings)"),
    encoding_names: Optional[str] = typer.Option(
        None, "--encoding-names",
        help="comma-separated keyint<N>[-fastdecode] (--encodings; default: keyint250, keyint250-fastdecode, "
             "keyint64-fastdecode, keyint32, keyint32-fastdecode, keyint24-fastdecode, keyint16, keyint16-fastdecode, "
             "keyint8-fastdecode)"),
    record_json: Optional[Path] = typer.Option(
        None, "--record-json", help="(--encodings) also write the first source's figures to this JSON file, as the "
                                    "decode_by_encoding entry of k400ray/tune/records/measured.json"),
    short_side: int = typer.Option(256, "--short-side", min=16,
                                   help="short side of the prepared copies (--raw-sizes, --encodings)"),
    out: Optional[Path] = typer.Option(None, "--out", help="append a Markdown record to this file"),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: RAY_ADDRESS or a local Ray)"),
) -> None:
    """Train clips/s of the decoder alone, the Ray Data pipeline and a torch DataLoader, side by side."""
    from k400ray.bench.common import machine_line
    from k400ray.bench.data import run_data_bench

    names = _presets(presets)
    if raw_sizes is not None and encodings:
        fail("--raw-sizes and --encodings are two separate runs: give one")
    if encodings:
        _encodings(sources, encoding_names, names, short_side=short_side, videos=videos or 2, seconds=seconds, fps=fps,
                   clips=clips, repeats=repeats, processes=processes, work_dir=work_dir, out=out,
                   record_json=record_json)
        return
    videos = videos or 16
    if raw_sizes is not None:
        _raw_vs_prepared(raw_sizes, names, short_side=short_side, videos=videos, seconds=seconds, fps=fps, clips=clips,
                         repeats=repeats, processes=processes, work_dir=work_dir, out=out)
        return
    chosen = _methods(methods)
    uses_ray = "ray data" in chosen
    if epoch_rows and not uses_ray:
        fail("--epoch-rows times the Ray Data pipeline: keep 'ray' in --methods")
    if index is not None:
        _check_index(index, split)
    work = _work_dir(work_dir)
    ray_s = _start_ray(address) if uses_ray else None
    index_dir = _input_index(index, split, work, videos=videos, seconds=seconds, size=size, fps=fps)
    processes = processes or os.cpu_count() or 1
    load = os.getloadavg()[0]
    result = run_data_bench(index_dir, split=split, presets=names, clips=clips, processes=processes, repeats=repeats,
                            batch_size=batch_size, ray_tasks=ray_tasks, methods=chosen, work_dir=work, log=_log)
    starts = None
    if epoch_rows:
        from k400ray.bench.data import epoch_start_seconds
        from k400ray.presets import get_preset

        preset = get_preset(names[0])
        starts = epoch_start_seconds(index_dir, split, epoch_rows, preset.clip_spec("train"), processes=processes,
                                     batch_size=result.batch_sizes[names[0]], work_dir=work)
    tasks = "" if result.ray_tasks == processes else f" ({result.ray_tasks} Ray decode tasks)"
    typer.echo(f"bench data: {clips} clips per pass ({result.distinct_videos} distinct videos), {processes} processes"
               f"{tasks}, median of {repeats}; {machine_line()}")
    notes = [f"target {line}" for line in result.targets()]
    if ray_s is not None:
        notes.append(f"ray start-up: init {ray_s:.1f} s ('warm-up s': unmeasured passes, see bench.data.warm_up)")
    if starts:
        notes.append(f"epoch start over {epoch_rows} index rows ({names[0]}, batch {result.batch_sizes[names[0]]}): "
                     + ", ".join(f"{k} {v:.1f} s" for k, v in starts.items()) + " to the first batch")
    notes.append(f"batch sizes: {', '.join(f'{k} {v}' for k, v in result.batch_sizes.items())}")
    notes.append(f"load average (1 min) at start / end: {load:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    _emit("bench data", [t for t in (result.table(), result.cluster_table()) if t is not None], notes, out)


def _raw_vs_prepared(raw_sizes: str, names: list[str], *, short_side: int, videos: int, seconds: float, fps: int,
                     clips: int, repeats: int, processes: Optional[int], work_dir: Optional[Path],
                     out: Optional[Path]) -> None:
    """``bench data --raw-sizes``: the decode-cost ratio of raw over prepared videos."""
    from k400ray.bench.common import machine_line
    from k400ray.bench.resolution import run_resolution_bench

    sizes = [parse_size(s.strip()) for s in raw_sizes.split(",") if s.strip()]
    if not sizes:
        fail("--raw-sizes: give at least one WIDTHxHEIGHT")
    processes = processes or os.cpu_count() or 1
    load = os.getloadavg()[0]
    result = run_resolution_bench(sizes, presets=names, work_dir=_work_dir(work_dir), short_side=short_side,
                                  videos=videos, seconds=seconds, fps=fps, clips=clips, repeats=repeats,
                                  processes=processes, log=_log)
    typer.echo(f"bench data --raw-sizes: {clips} clips per pass from {videos} generated videos of {seconds:g} s at "
               f"{fps} fps per size, {processes} decode-limit processes, median of {repeats}; {machine_line()}")
    notes = [f"ratio {p} {size}: decoding a training clip costs {result.ratio(p, size):.2f}x the CPU at source "
             f"resolution as on the short-side-{short_side} copy" for p in names for size in result.sizes]
    notes.append("CPU ms/clip: CPU time of the decode processes (/proc) per clip, whatever else the machine ran")
    notes.append(f"load average (1 min) at start / end: {load:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    _emit("bench data (raw vs prepared)", [result.table()], notes, out)


def _encodings(sources: str, encoding_names: Optional[str], names: list[str], *, short_side: int, videos: int,
               seconds: float, fps: int, clips: int, repeats: int, processes: Optional[int], work_dir: Optional[Path],
               out: Optional[Path], record_json: Optional[Path]) -> None:
    """``bench data --encodings``: decode CPU per clip and bytes per video of each encoding."""
    import json

    from k400ray.bench.common import command_line, machine_line, record_date
    from k400ray.bench.encodings import DEFAULT_ENCODINGS, run_encoding_bench
    from k400ray.data.encoding import Encoding

    sizes = [parse_size(s.strip()) for s in sources.split(",") if s.strip()]
    if not sizes:
        fail("--sources: give at least one WIDTHxHEIGHT")
    try:
        chosen = [Encoding.from_name(n) for n in (encoding_names or ",".join(DEFAULT_ENCODINGS)).split(",") if n.strip()]
    except ValueError as exc:
        fail(f"--encoding-names: {exc}")
    processes = processes or os.cpu_count() or 1
    load = os.getloadavg()[0]
    result = run_encoding_bench(sizes, encodings=chosen, presets=names, work_dir=_work_dir(work_dir),
                                short_side=short_side, videos=videos, seconds=seconds, fps=fps, clips=clips,
                                repeats=repeats, processes=processes, log=_log)
    typer.echo(f"bench data --encodings: {clips} clips per pass from {videos} textured videos of {seconds:g} s at {fps} "
               f"fps per source, copies at short side {short_side}, {processes} decode-limit processes, median of "
               f"{repeats}; {machine_line()}")
    default = Encoding().name
    notes = result.goal_lines(default)
    notes.append("CPU ms/clip: CPU time of the decode processes (/proc) per clip, whatever else the machine ran; "
                 "x lower: the CPU per clip of x264's defaults (keyint250) over this row's")
    notes.append(f"load average (1 min) at start / end: {load:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    _emit("bench data (encodings)", [result.table()], notes, out)
    if record_json is not None:
        size = result.sizes[0]
        entry = result.record(size, record=f"{command_line()}, {machine_line()}, {record_date()}", default=default,
                              source=f"realistic generated {size}, {seconds:g} s, {fps} fps, raw x264 medium keyint 250")
        record_json.write_text(json.dumps({"decode_by_encoding": entry}, indent=2) + "\n", encoding="utf-8")
        typer.echo(f"decode_by_encoding ({size}) written to {record_json}")


@bench_app.command()
def train(
    index: Optional[Path] = typer.Option(None, "--index", help="index to read (default: a generated set)"),
    split: str = typer.Option("train", "--split"),
    presets: str = typer.Option("tsn_r50_1x1x8,i3d_r50_32x2x1", "--presets", help=_PRESETS_HELP),
    scale: Optional[str] = typer.Option(None, "--scale", help="full | toy (default: full on a GPU, toy on CPU)"),
    steps: int = typer.Option(20, "--steps", min=2, help="steps per measured epoch"),
    repeats: int = typer.Option(2, "--repeats", min=1, help="measured epochs per source"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="default: the preset's batch per GPU"),
    decode_tasks: Optional[int] = typer.Option(None, "--decode-tasks", min=1, help="default: cores (minus compute threads on CPU)"),
    compute_threads: int = typer.Option(1, "--compute-threads", min=1, help="torch threads for the model on CPU"),
    compute_only: bool = typer.Option(False, "--compute-only",
                                      help="model steps on in-memory batches only: no index, decoder or Ray needed"),
    compile_modes: Optional[str] = typer.Option(
        None, "--compile",
        help="comma-separated torch.compile modes (default, reduce-overhead, max-autotune): each also measured "
             "against eager on the compute-only batches, side by side, with its compile time"),
    compile_backend: str = typer.Option(
        "inductor", "--compile-backend",
        help="torch.compile backend for --compile; aot_eager or eager only check that the comparison runs "
             "(no C++ compiler needed, no meaningful speed)"),
    videos: int = typer.Option(16, "--videos", min=1, help="generated videos (without --index)"),
    seconds: Optional[float] = typer.Option(None, "--seconds", min=0.1, help="generated length (default: 10 full, 4 toy)"),
    size: Optional[str] = typer.Option(None, "--size", help="generated WIDTHxHEIGHT (default: 340x256 full, 80x64 toy)"),
    fps: Optional[int] = typer.Option(None, "--fps", min=1, help="generated frame rate (default: 30 full, 12 toy)"),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", help="cache for generated videos and sized indexes"),
    out: Optional[Path] = typer.Option(None, "--out", help="append a Markdown record to this file"),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: RAY_ADDRESS or a local Ray)"),
) -> None:
    """Training step time split into data wait and compute, stall fraction, memory (GPU: x compute bound)."""
    import torch

    from k400ray.bench.common import machine_line
    from k400ray.bench.train import run_train_bench

    names = _presets(presets)
    scale = scale or ("full" if torch.cuda.is_available() else "toy")
    if scale not in ("full", "toy"):
        fail(f"--scale must be 'full' or 'toy', got {scale!r}")
    toy = scale == "toy"
    modes = _compile_modes(compile_modes)
    if compile_backend not in ("inductor", "aot_eager", "eager"):
        fail(f"--compile-backend must be inductor, aot_eager or eager, got {compile_backend!r}")
    if modes and compile_backend == "inductor" and not torch.cuda.is_available():
        from k400ray.engine.compiled import cpu_compiler_missing

        if missing := cpu_compiler_missing():
            fail(f"--compile: {missing} (or pass --compile-backend aot_eager)")
    ray_s = index_dir = work = None
    if not compute_only:
        if index is not None:
            _check_index(index, split)
        work = _work_dir(work_dir)
        ray_s = _start_ray(address)
        index_dir = _input_index(
            index, split, work, videos=videos, seconds=seconds or (4.0 if toy else 10.0),
            size=size or ("80x64" if toy else "340x256"), fps=fps or (12 if toy else 30),
        )
    load = os.getloadavg()[0]
    result = run_train_bench(index_dir, split=split, presets=names, scale=scale, steps=steps, batch_size=batch_size,
                             repeats=repeats, decode_tasks=decode_tasks, compute_threads=compute_threads,
                             compute_only=compute_only, compile_modes=modes, compile_backend=compile_backend,
                             work_dir=work, log=_log)
    typer.echo(f"bench train: {scale} scale on {result.device}{' (bf16, channels_last)' if result.amp else ''}, "
               f"{steps} steps x {repeats} epochs per source, {result.compute_threads} compute thread(s), "
               f"{'no decode (compute only)' if compute_only else f'{result.decode_tasks} decode task(s)'}; {machine_line()}")
    notes = [f"target {line}" for line in result.targets()]
    notes += [f"compile {line}" for line in result.compile_targets()]
    if modes:
        notes.append(f"compile: torch {torch.__version__}, backend {compile_backend}; 'compile s': the first compiled "
                     "pass beyond its steps' compiled time (CUDA-graph recording included), paid once per trial")
    if ray_s is not None:
        notes.append(f"ray start-up: init {ray_s:.1f} s; 'first batch s' is the pipeline start of each epoch, left out of stall %")
    notes.append("memory: peak PSS sampled every 0.25 s, driver alone and its whole process tree (Ray workers included)")
    notes.append(f"load average (1 min) at start / end: {load:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    tables = [result.table(), result.capacity_table(), result.compile_table()]
    _emit("bench train", [t for t in tables if t is not None], notes, out)


def _compile_modes(text: Optional[str]) -> tuple[str, ...]:
    """The modes of ``--compile`` (eager is always measured beside them), or a one-line error."""
    if text is None:
        return ()
    from k400ray.engine.compiled import COMPILE_MODES, OFF

    return tuple(_comma_list(text, [m for m in COMPILE_MODES if m != OFF], "--compile", "mode"))


@bench_app.command()
def decode(
    video_list: Optional[Path] = typer.Option(None, "--video-list",
                                              help="JSON list of videos (written by --save-list); no pyarrow needed"),
    index: Optional[Path] = typer.Option(None, "--index", help="or an index to read (needs pyarrow)"),
    split: str = typer.Option("train", "--split"),
    textured: Optional[int] = typer.Option(
        None, "--textured", min=1,
        help="or N realistic 340x256 videos of --seconds, prepared with `k400ray prepare`'s default encoding "
             "(made in --work-dir; needs PyAV)"),
    seconds: float = typer.Option(10.0, "--seconds", min=0.1, help="length of the --textured videos"),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", help="cache for the --textured sources"),
    save_list: Optional[Path] = typer.Option(
        None, "--save-list", help="write the rows of --index, or the --textured videos beside it, as a --video-list file"),
    presets: str = typer.Option("tsn_r50_1x1x8,i3d_r50_32x2x1", "--presets", help=_PRESETS_HELP),
    backends: str = typer.Option("nvdec", "--backends", help="comma-separated decode backends: cpu, nvdec"),
    clips: int = typer.Option(256, "--clips", min=1, help="clips per measured pass (rows cycled or cut to this)"),
    processes: int = typer.Option(2, "--processes", min=1, help="decode processes (each its own NVDEC session)"),
    repeats: int = typer.Option(3, "--repeats", min=1, help="measured passes; the median is reported"),
    train_rates_from: Optional[Path] = typer.Option(
        None, "--train-rates-from",
        help="a records file whose last `bench train` record (the same GPU) gives each preset's training clips/s"),
    out: Optional[Path] = typer.Option(None, "--out", help="append a Markdown record to this file"),
) -> None:
    """Training clips/s and CPU per clip of each decode backend (CPU decoders, NVDEC on the GPU); no Ray."""
    from k400ray.bench.common import machine_line
    from k400ray.bench.gpu_decode import decode_notes, decode_table, load_video_list, run_decode_bench, save_video_list
    from k400ray.data.decode import DECODE_BACKENDS

    names = _presets(presets)
    chosen = _comma_list(backends, list(DECODE_BACKENDS), "--backends", "backend")
    if sum(x is not None for x in (video_list, index, textured)) != 1:
        fail("give one input: --video-list FILE, --index DIR or --textured N")
    if save_list is not None and video_list is not None:
        fail("--save-list writes the rows of --index or --textured: not with --video-list")
    if index is not None:
        _check_index(index, split)
        list_path = save_video_list(index, split, save_list or _work_dir(work_dir) / "video-list.json")
    elif textured is not None:
        from k400ray.bench.gpu_decode import save_textured_list

        work = _work_dir(work_dir)
        list_path = save_textured_list(work, save_list or work / "textured-list" / "video-list.json",
                                       videos=textured, seconds=seconds, fps=30)
    else:
        list_path = video_list
    if save_list is not None:
        typer.echo(f"video list written to {save_list}")
    try:
        root, rows = load_video_list(list_path)
    except ValueError as exc:
        fail(str(exc))
    rates = None
    if train_rates_from is not None:
        from k400ray.bench.gpu_decode import train_rates

        if not train_rates_from.is_file():
            fail(f"--train-rates-from: no records file at {train_rates_from}")
        rates = train_rates(train_rates_from)
    load = os.getloadavg()[0]
    runs = run_decode_bench(root, rows, presets=names, backends=chosen, clips=clips, processes=processes,
                            repeats=repeats, rates=rates, log=_log)
    typer.echo(f"bench decode: {clips} clips per pass from {len(rows)} videos, {processes} process(es), median of "
               f"{repeats}; {machine_line()}")
    notes = decode_notes(runs)
    notes.append("CPU ms/clip: CPU time of this process and its decode processes (/proc) per clip; decode cores: "
                 "that CPU at the GPU's compute-only training rate")
    notes.append(f"load average (1 min) at start / end: {load:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    _emit("bench decode", [decode_table(runs)], notes, out)


@bench_app.command("index")
def index_cmd(
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="dataset root to probe (default: a generated set)"),
    rows: int = typer.Option(240_000, "--rows", min=0, help="rows of the synthetic index built for the memory figure (0: skip)"),
    repeats: int = typer.Option(3, "--repeats", min=1),
    processes: Optional[int] = typer.Option(None, "--processes", min=1, help="probe processes (default: cores)"),
    videos: int = typer.Option(16, "--videos", min=1, help="generated videos (without --data-root)"),
    files: int = typer.Option(128, "--files", min=1,
                              help="hard links to the generated videos to index (without --data-root)"),
    seconds: float = typer.Option(10.0, "--seconds", min=0.1),
    size: str = typer.Option("340x256", "--size"),
    fps: int = typer.Option(30, "--fps", min=1),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", help="cache for generated videos and indexes"),
    out: Optional[Path] = typer.Option(None, "--out", help="append a Markdown record to this file"),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: RAY_ADDRESS or a local Ray)"),
) -> None:
    """Videos probed per second per core, and peak memory while indexing a Kinetics-sized (240k-row) index."""
    from k400ray.bench.common import machine_line
    from k400ray.bench.index import run_index_bench

    if data_root is not None and not data_root.is_dir():
        fail(f"{data_root}: data root is not a directory")
    work = _work_dir(work_dir)
    ray_s = _start_ray(address)
    if data_root is None:
        from k400ray.bench.inputs import replicated_tree

        generated = _input_index(None, "train", work, videos=videos, seconds=seconds, size=size, fps=fps)
        data_root = replicated_tree(generated, "train", files, work)
    processes = processes or os.cpu_count() or 1
    from k400ray.data.annotations import AnnotationError

    load = os.getloadavg()[0]
    try:
        result = run_index_bench(data_root, processes=processes, repeats=repeats, rows=rows, work_dir=work / "index-bench",
                                 log=_log)
    except (AnnotationError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"bench index: {result.videos} videos under {data_root}, {processes} processes, median of {repeats}; "
               f"{machine_line()}")
    tables = [result.table()] + ([result.memory_table()] if result.memory else [])
    notes = [f"ray start-up: init {ray_s:.1f} s (one warm-up build excluded)",
             f"load average (1 min) at start / end: {load:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"]
    if result.memory:
        m = result.memory
        notes.append(f"memory: {m.rows} synthetic rows through the real build_index (discovery and probe results "
                     f"synthetic); driver PSS {m.baseline_gib:.2f} -> peak {m.peak_driver_gib:.2f} GiB")
    _emit("bench index", tables, notes, out)
