#!/usr/bin/env bash
# The GPU conformance run and benchmark, in one go, on a GPU machine without network
# (docs/gpu.md): installs the wheels from .whl/ (scripts/gpu_wheels.py) and this tree into
# a folder of its own, checks that every need of what it installed is met, builds
# full-size random weights, then runs `ipmock conformance` and bench.gpu_generation,
# each under its own time limit so that its log is written even when it is cut. Logs and
# results go to $OUT (default gpu-out/).
#
#   scripts/gpu_run.sh              # on the GPU: full size, CUDA, 1024 x 1024, 20 steps
#   scripts/gpu_run.sh --rehearse   # the same steps on a CPU at tiny size, in seconds
#
# Variables: OUT; GPU_RUN_WHEELS (default .whl), GPU_RUN_SITE (/tmp/site) and
# GPU_RUN_WEIGHTS (/tmp/ipmock-weights) say where the wheels, the install and the weights
# go; CONFORMANCE_ARGS and BENCH_ARGS are added to each program's options (a shorter run:
# CONFORMANCE_ARGS=--no-fuzz BENCH_ARGS="--samples 1 --repeat 1").
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
    "") size=full device=cuda
        shape=() build_limit=120 conformance_limit=200 conformance_args=(--max-examples 10)
        bench_limit=220 bench_args=(--repeat 2) ;;
    --rehearse) size=tiny device=cpu
        shape=(--width 64 --height 64 --steps 2) build_limit=120
        conformance_limit=300 conformance_args=(--max-examples 3)
        bench_limit=300 bench_args=(--repeat 1 --warmup 0)
        export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} ;;  # server and client share the cores
    *) echo "usage: scripts/gpu_run.sh [--rehearse]" >&2; exit 2 ;;
esac
read -ra extra_conformance <<< "${CONFORMANCE_ARGS:-}"
read -ra extra_bench <<< "${BENCH_ARGS:-}"
out=${OUT:-gpu-out}
wheels=${GPU_RUN_WHEELS:-.whl}
site=${GPU_RUN_SITE:-/tmp/site}
weights=${GPU_RUN_WEIGHTS:-/tmp/ipmock-weights}
mkdir -p "$out"
step() { echo "gpu_run $(date -u +%H:%M:%S) +${SECONDS}s: $*"; }
ls "$wheels"/*.whl >/dev/null || { echo "no wheels in $wheels/: run scripts/gpu_wheels.py first" >&2; exit 2; }
# Nothing is downloaded: a model hub, if anything asked it, would time out instead.
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1

{
    python3 -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__,
        "cuda", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")'
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    echo "== the machine's own packages (pip list)"
    python3 -m pip list --disable-pip-version-check 2>&1
    echo "== pip freeze"
    python3 -m pip freeze --disable-pip-version-check 2>&1
} > "$out/env.txt" 2>&1

# No index, no build isolation: the machine cannot download; its setuptools builds ipmock,
# from a copy of the project's own files: a build/ folder left in the tree by an earlier
# build may hold modules removed since, and setuptools would install them too.
step "install $(ls "$wheels"/*.whl | wc -l) wheels and this tree into $site"
rm -rf "$site"
source=$(mktemp -d)
python3 - "$source" <<'EOF' || exit
import os, shutil, sys, tomllib
with open("pyproject.toml", "rb") as file:
    setuptools = tomllib.load(file)["tool"]["setuptools"]
for package in {name.split(".")[0] for name in setuptools["packages"]}:  # subpackages inside
    folder = setuptools.get("package-dir", {}).get(package, package)
    shutil.copytree(folder, f"{sys.argv[1]}/{folder}", ignore=shutil.ignore_patterns("__pycache__"))
for name in ("pyproject.toml", "README.md", "LICENSE"):
    if os.path.exists(name):
        shutil.copy(name, sys.argv[1])
EOF
python3 -m pip install --quiet --disable-pip-version-check --no-index --no-deps \
    --no-build-isolation --no-compile --no-cache-dir --target "$site" "$wheels"/*.whl "$source" || exit
rm -rf "$source"
export PYTHONPATH=$site PATH=$site/bin:$PATH
{ echo "== installed for the run ($site)"; python3 -m pip list --disable-pip-version-check --path "$site"; } >> "$out/env.txt" 2>&1
# Every need of what was installed, met by what Python finds (the site, then the machine's).
python3 scripts/gpu_wheels.py --check "$site" 2>&1 | tee "$out/check.log" || exit

step "build $size random weights into $weights/$size (limit ${build_limit}s)"
# Built whole before the timed steps: both need all of it.
timeout "$build_limit" python3 -m reference_impl build "$size" "$weights/$size" \
    --time-limit "$build_limit" 2>&1 | tee "$out/build.log" || exit
step "conformance (limit ${conformance_limit}s)"
timeout "$conformance_limit" ipmock conformance --size "$size" --device "$device" \
    --weights-cache "$weights" "${shape[@]}" "${conformance_args[@]}" "${extra_conformance[@]}" \
    --junit-xml "$out/conformance.xml" 2>&1 | tee "$out/conformance.log"
conformance=$?
step "bench (limit ${bench_limit}s)"
timeout "$bench_limit" python3 -m bench.gpu_generation --size "$size" --device "$device" \
    --weights-cache "$weights" "${shape[@]}" "${bench_args[@]}" "${extra_bench[@]}" \
    --json "$out/bench.json" 2>&1 | tee "$out/bench.log"
bench=$?
step "done"
echo "gpu_run: conformance exit $conformance, bench exit $bench (124: cut by its time limit)"
[ "$conformance" = 0 ] && [ "$bench" = 0 ]
