#!/usr/bin/env bash
# The whole test suite on a fresh machine: venv, install, lint, types, tests.
# Extra arguments go to pytest (e.g. scripts/test.sh -k flows).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"

.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest "$@"
