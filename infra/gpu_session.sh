#!/usr/bin/env bash
# Issue #30's GPU measurements, prepared so that a session with a GPU machine runs one command.
#
# The lent GPU machine has PyTorch (2.14, CUDA 13) but not Ray, decord, PyAV, MLflow or pyarrow,
# cannot reach PyPI, and receives at most 64 MiB of files per call. So the work is split:
#
#   infra/gpu_session.sh prepare [PYTHON_VERSION]
#       here, on the development machine (the project's venv, PyPI): writes .gpu-session/ (ignored
#       by git, carried to the GPU machine): the wheels of what `k400ray bench` needs beyond torch
#       (typer, pydantic, PyYAML and theirs: for Pythons 3.11-3.13) and PyNvVideoCodec (for
#       PYTHON_VERSION only: 27 MB a wheel; default 3.12, or what `probe` printed), 8 realistic
#       10-s 340x256 videos prepared with `k400ray prepare`'s default encoding and their list,
#       and this machine's CPU decode figures of them (cpu-decode.md). About 2-4 minutes here.
#   infra/gpu_session.sh probe
#       on the GPU machine, seconds: the GPU, Python, torch and which modules import.
#   infra/gpu_session.sh run
#       on the GPU machine, from the repository root, .gpu-session carried: in this order, the
#       steps needing the fewest packages first, each bounded so the whole stays inside
#       GPU_SESSION_BUDGET_S (default 540 s):
#         (a) compiled vs eager training steps of the four full-size presets in bf16 (`k400ray
#             bench train --compute-only --compile MODES`), one record per preset, compile time in it;
#         (b) NVDEC decode clips/s and CPU per clip for TSN 8x1x1 and I3D 32x2x1 on the carried
#             prepared copy (`k400ray bench decode`), if PyNvVideoCodec installs there; else says why;
#         (c) the trial through Ray on the GPU: needs Ray, decord, PyAV and MLflow; where they are
#             absent (the lent machine as delivered) it writes the steps instead (`ray-steps`).
#       Records go to $OUT/gpu.md (the device tool's output folder; ./gpu-session-out otherwise),
#       in docs/benchmarks.md's record format, with the log beside them.
#   infra/gpu_session.sh ray-steps
#       prints (c)'s steps and commands, for a GPU node with the whole project installed.
#
# With the device tool: run `prepare` here, then one call on the GPU machine:
#   run(command="bash infra/gpu_session.sh run", carry=[".gpu-session"], timeout_s=600)
# Environment: GPU_SESSION_BUDGET_S (seconds for `run`), COMPILE_MODES (default reduce-overhead;
# e.g. reduce-overhead,default), PRESETS (default the four full-size presets, most important first).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SESSION="$ROOT/.gpu-session"
PRESETS="${PRESETS:-tsn_r50_1x1x8,i3d_r50_32x2x1,tsm_r50_1x1x8,tsm_mobilenetv2_dense_1x1x8}"
COMPILE_MODES="${COMPILE_MODES:-reduce-overhead}"
SMALL_WHEELS="typer click rich shellingham annotated-doc pygments markdown-it-py mdurl pydantic pydantic-core annotated-types typing-extensions typing-inspection pyyaml"
PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
CARRY_LIMIT_MIB=60

pin() {  # the version constraints.txt pins for a package
  grep -i -m1 "^$1==" "$ROOT/constraints.txt" | sed 's/ *;.*//' | cut -d= -f3
}

prepare() {
  local pyver="${1:-3.12}" pip="$ROOT/.venv/bin/pip" k400ray="$ROOT/.venv/bin/k400ray"
  [ -x "$k400ray" ] || { echo "error: run 'make install' first (no $k400ray)" >&2; return 2; }
  rm -rf "$SESSION/wheels" && mkdir -p "$SESSION/wheels"
  for v in 3.11 3.12 3.13; do  # k400ray needs Python >= 3.11
    for pkg in $SMALL_WHEELS; do
      "$pip" download -q --no-deps --only-binary=:all: --implementation cp --python-version "$v" $PLATFORMS \
        -d "$SESSION/wheels" "$pkg==$(pin "$pkg")" || { echo "error: no wheel of $pkg for Python $v" >&2; return 1; }
    done
  done
  "$pip" download -q --no-deps --only-binary=:all: --implementation cp --python-version "$pyver" $PLATFORMS \
    -d "$SESSION/wheels" "PyNvVideoCodec>=2.2.4" || echo "warning: no PyNvVideoCodec wheel for Python $pyver" >&2
  # The prepared 340x256 copy, its list, and the CPU decoders' figures on it (this machine).
  "$k400ray" bench decode --textured 8 --seconds 10 --work-dir "$ROOT/.gpu-session-work" \
    --save-list "$SESSION/video-list.json" --backends cpu --clips 64 --processes 2 --repeats 3 \
    --out "$SESSION/cpu-decode.md" || return 1
  local mib
  mib=$(du -sm "$SESSION" | cut -f1)
  echo "prepared $SESSION: ${mib} MiB (Python $pyver for PyNvVideoCodec)"
  [ "$mib" -le "$CARRY_LIMIT_MIB" ] || { echo "error: $SESSION is ${mib} MiB, over ${CARRY_LIMIT_MIB}" >&2; return 1; }
}

probe() {
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -4
  python3 - <<'EOF'
import importlib.util, sys
print("python", sys.version.split()[0])
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available())
except Exception as exc:
    print("torch: does not import:", exc)
for name in ("numpy", "torchvision", "typer", "pydantic", "yaml", "pyarrow", "PyNvVideoCodec", "ray", "decord", "av",
             "mlflow"):  # installed or not (found, not imported: seconds, not tens of seconds)
    print(f"  {name}: {'yes' if importlib.util.find_spec(name) else 'no'}")
EOF
}

ray_steps() {
  cat <<'EOF'
(c) A trial through Ray on the GPU node: not run on the lent machine as delivered (no Ray, decord,
PyAV or MLflow there, and no PyPI to install them from). On a GPU node with the project installed
(`make install`, or cluster.yaml's setup: pip install -c constraints.txt -e '.[gpu-decode]'), from
the repository root, about 15 minutes of which ~6 on the GPU:

  k400ray synth /tmp/gpu-check/raw --classes 10 --train-per-class 100 --val-per-class 4 --size 340x256 --frames 300 --fps 30
  k400ray prepare /tmp/gpu-check/raw --out /tmp/gpu-check/prepared
  k400ray index /tmp/gpu-check/prepared --out /tmp/gpu-check/index
  k400ray bench train --compute-only --scale full --presets tsn_r50_1x1x8,tsm_r50_1x1x8,i3d_r50_32x2x1,tsm_mobilenetv2_dense_1x1x8 --steps 30 --repeats 3 --out gpu-ray.md
  nvidia-smi --query-gpu=timestamp,utilization.gpu --format=csv,noheader -lms 500 > gpu-util.csv &
  k400ray train search_spaces/gpu_ray_check.yaml --model tsn_r50_1x1x8 --config default --fresh
  k400ray train search_spaces/gpu_ray_check.yaml --model tsm_r50_1x1x8 --config default --fresh
  k400ray train search_spaces/gpu_ray_check.yaml --model i3d_r50_32x2x1 --config default --fresh
  k400ray train search_spaces/gpu_ray_check.yaml --model tsm_mobilenetv2_dense_1x1x8 --config default --fresh
  kill %1

Each `train` prints a line per epoch with clips/s and data wait (the data-stall share). Read
epochs 2-3 (the first includes Ray Data's start and cuDNN's tuning): their clips/s over the
compute-only clips/s of the same preset in gpu-ray.md is the ratio the issue asks for (goal
>= 0.9 for every preset); the GPU busy share is the mean of gpu-util.csv over each trial's epochs
2-3. Again with `training: {compile: reduce-overhead}` in the spec for the compiled rate, and
`data: {decode_backend: nvdec}` for decoding on the GPU.
EOF
}

# --- run: on the GPU machine ------------------------------------------------------------------

log() { echo "[gpu_session $(date +%H:%M:%S) +${SECONDS}s] $*" | tee -a "$OUT/gpu_session.log" >&2; }

left() {  # seconds of the budget still unspent, minus a margin and what later steps reserve
  echo $(( BUDGET - SECONDS - 15 - ${RESERVE:-0} ))
}

bounded() {  # bounded SECONDS_MAX CMD...: run CMD within min(SECONDS_MAX, what is left); 124 if skipped
  local max=$1; shift
  local t
  t=$(left)
  [ "$t" -gt "$max" ] && t=$max
  if [ "$t" -lt 30 ]; then log "skipped (budget spent): $*"; return 124; fi
  log "run (<= ${t}s): $*"
  timeout --kill-after=10 "$t" "$@" >>"$OUT/gpu_session.log" 2>&1
  local rc=$?
  [ $rc -eq 0 ] || log "exit $rc: $*"
  return $rc
}

note() {  # a line of the run's own record in $OUT/gpu.md
  echo "- $*" >>"$OUT/gpu.md"
}

install_missing() {  # carried wheels of the modules torch's image lacks, into $SITE (nothing system-wide)
  local missing=()
  for pair in typer:typer pydantic:pydantic yaml:pyyaml; do
    python3 -c "import ${pair%%:*}" 2>/dev/null || missing+=("${pair##*:}")
  done
  python3 -c "import PyNvVideoCodec" 2>/dev/null || missing+=("PyNvVideoCodec")
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing from carried wheels: ${missing[*]}"
  python3 -m pip install -q --no-index --find-links "$SESSION/wheels" --target "$SITE" "${missing[@]}" \
    >>"$OUT/gpu_session.log" 2>&1 || log "pip could not install all of ${missing[*]} (see the log)"
}

run() {
  BUDGET="${GPU_SESSION_BUDGET_S:-540}"
  OUT="${OUT:-$ROOT/gpu-session-out}"
  SITE="$(mktemp -d)/site"
  mkdir -p "$OUT" "$SITE"
  cd "$ROOT" || return 1
  export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  local k=(python3 -m k400ray)
  log "probe"; probe >"$OUT/probe.txt" 2>&1; cat "$OUT/probe.txt" >>"$OUT/gpu_session.log"
  python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null || { log "no GPU visible: stop"; return 1; }
  install_missing
  if ! "${k[@]}" --help >/dev/null 2>>"$OUT/gpu_session.log"; then
    log "the k400ray CLI does not import here (see the log): stop"; return 1
  fi
  {
    echo "## GPU session ($(date '+%Y-%m-%d %H:%M'), infra/gpu_session.sh run)"
    echo
    sed 's/^/    /' "$OUT/probe.txt"
    echo
  } >>"$OUT/gpu.md"

  # (a) compiled vs eager, one preset per command: a time-out loses one preset, not all. The
  # decode step's time is kept back (RESERVE) so that a slow compile cannot crowd it out.
  IFS=, read -ra presets <<<"$PRESETS"
  [ -f "$SESSION/video-list.json" ] && RESERVE=100
  for p in "${presets[@]}"; do
    bounded 240 "${k[@]}" bench train --compute-only --scale full --presets "$p" --steps 20 --repeats 3 \
      --compile "$COMPILE_MODES" --out "$OUT/gpu.md" || note "compile $p ($COMPILE_MODES): not measured (exit $?, see gpu_session.log)"
  done

  # (b) NVDEC decode on the carried prepared copy.
  RESERVE=0
  if [ ! -f "$SESSION/video-list.json" ]; then
    note "GPU decode: not measured: no .gpu-session/video-list.json carried (run 'infra/gpu_session.sh prepare' first)"
  elif ! python3 -c "import PyNvVideoCodec" 2>>"$OUT/gpu_session.log"; then
    note "GPU decode: not measured: PyNvVideoCodec does not install or import here (Python $(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])'); see gpu_session.log; prepare with that Python version)"
  else
    for procs in 1 4; do
      bounded 90 "${k[@]}" bench decode --video-list "$SESSION/video-list.json" --backends nvdec \
        --presets tsn_r50_1x1x8,i3d_r50_32x2x1 --clips 256 --processes "$procs" --repeats 3 \
        --train-rates-from "$OUT/gpu.md" --out "$OUT/gpu.md" || note "GPU decode ($procs processes): not measured (exit $?)"
    done
    [ -f "$SESSION/cpu-decode.md" ] && note "CPU decoders on the same videos (development machine): see .gpu-session/cpu-decode.md"
  fi

  # (c) The trial through Ray needs what this machine lacks.
  if python3 -c "import ray, decord, av, mlflow" 2>/dev/null; then
    note "Ray-on-GPU: Ray, decord, PyAV and MLflow import here: run the steps of 'infra/gpu_session.sh ray-steps'"
  else
    note "Ray-on-GPU: not run: Ray, decord, PyAV or MLflow is missing on this machine; the steps: infra/gpu_session.sh ray-steps"
  fi
  ray_steps >"$OUT/ray-steps.txt"
  log "done in ${SECONDS}s: $OUT/gpu.md"
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  probe) probe ;;
  run) run ;;
  ray-steps) ray_steps ;;
  *) echo "usage: infra/gpu_session.sh prepare [PYTHON_VERSION] | probe | run | ray-steps" >&2; exit 2 ;;
esac
