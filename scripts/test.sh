#!/usr/bin/env bash
# The whole test suite on a fresh machine: venv, install, lint, types, tests.
# Extra arguments go to pytest (e.g. scripts/test.sh -k flows).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests run for real, installed when missing (quietly; the package
# lists refreshed only when an install fails).
need() {  # need COMMAND PACKAGE
    command -v "$1" >/dev/null && return
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get install -y -q "$2" >/dev/null 2>&1 \
        || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "$2" >/dev/null; }
}
need redis-server redis-server  # the Redis store's tests start and stop their own
need curl curl                  # the docs pages' examples, run as a reader types them
need go golang-go               # docs/any-language.md builds its Go wrapper
need chromium chromium          # the dashboard's browser tests (Playwright drives it)

python3 -m venv .venv
# The CPU build of torch first (on these machines it lies on disk), so that the gpu extra
# finds torch installed and does not fetch a CUDA build of several GB.
.venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test,gpu]"
# The GPU machine's package versions in a venv of their own, with the wheels chosen for
# them, for tests/packaging/test_gpu_rehearsal.py; rebuilt only when out of date.
.venv/bin/python scripts/gpu_wheels.py --rehearsal build/gpu-rehearsal
# The wheels of ipmock's own dependencies (no extras), for the test that installs the
# README's way into a fresh venv with no network (tests/packaging/test_readme_install.py).
.venv/bin/python -m pip download --quiet --disable-pip-version-check --dest .venv/wheelhouse .

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# The docs site: a broken link, anchor or reference fails it (mkdocs.yml; into build/site).
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet
# Three processes on two cores: most tests wait on servers, clients and clocks, not the CPU.
# A test file stays in one process (its module fixtures, such as the browser, start once).
.venv/bin/pytest -n 3 --dist loadfile "$@"
