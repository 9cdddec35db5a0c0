#!/usr/bin/env bash
# The GPU conformance run and benchmark, in one go, on a lent GPU machine (docs/gpu.md):
# installs the wheels in .whl/ (scripts/gpu_wheels.sh) and this tree into /tmp/site,
# builds full-size random weights, then runs `ipmock conformance` and
# bench/gpu_generation.py, each under its own time limit so that its log is written even
# when it is cut. Logs and results go to $OUT (default gpu-out/).
#
#   scripts/gpu_run.sh              # on the GPU: full size, CUDA, 1024 x 1024, 20 steps
#   scripts/gpu_run.sh --rehearse   # the same steps on a CPU at tiny size, in seconds
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
    "") size=full device=cuda
        shape=() conformance_limit=200 conformance_args=(--max-examples 10)
        bench_limit=220 bench_args=(--repeat 2) ;;
    --rehearse) size=tiny device=cpu
        shape=(--width 64 --height 64 --steps 2) conformance_limit=300 conformance_args=(--max-examples 3)
        bench_limit=300 bench_args=(--repeat 1) ;;
    *) echo "usage: scripts/gpu_run.sh [--rehearse]" >&2; exit 2 ;;
esac
out=${OUT:-gpu-out}
mkdir -p "$out"
site=/tmp/site
weights=/tmp/ipmock-weights
ls .whl/*.whl >/dev/null || { echo "no wheels in .whl/: run scripts/gpu_wheels.sh first" >&2; exit 2; }

# No index, no build isolation: the machine cannot download; its setuptools builds ipmock.
rm -rf "$site"
python3 -m pip install --quiet --disable-pip-version-check --no-index --no-deps \
    --no-build-isolation --no-compile --no-cache-dir --target "$site" .whl/*.whl . || exit
export PYTHONPATH=$site PATH=$site/bin:$PATH PYTHONUNBUFFERED=1

{
    python3 -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__,
        "cuda", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")'
    python3 -m pip list --disable-pip-version-check --path "$site" 2>/dev/null
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
} > "$out/env.txt" 2>&1

# Built whole before the timed steps: both need all of it.
python3 -m reference_impl build "$size" "$weights/$size" 2>&1 | tee "$out/build.log" || exit
timeout "$conformance_limit" ipmock conformance --size "$size" --device "$device" \
    --weights-cache "$weights" "${shape[@]}" "${conformance_args[@]}" \
    --junit-xml "$out/conformance.xml" 2>&1 | tee "$out/conformance.log"
conformance=$?
timeout "$bench_limit" python3 bench/gpu_generation.py --size "$size" --device "$device" \
    --weights-cache "$weights" "${shape[@]}" "${bench_args[@]}" \
    --json "$out/bench.json" 2>&1 | tee "$out/bench.log"
bench=$?
echo "gpu_run: conformance exit $conformance, bench exit $bench (124: cut by its time limit)"
[ "$conformance" = 0 ] && [ "$bench" = 0 ]
