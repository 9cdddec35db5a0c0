"""The GPU run, rehearsed in the suite: ``scripts/gpu_run.sh --rehearse`` in a virtual
environment that holds the GPU machine's package versions (build/gpu-rehearsal, which
scripts/test.sh keeps current), with the wheels scripts/gpu_wheels.py chooses, at tiny size
on the CPU. A dependency that drifts (a release that needs a newer huggingface-hub than the
machine's, say) fails here instead of on the GPU."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

from .test_gpu_wheels import gpu_wheels

pytestmark = [pytest.mark.slow]

REHEARSAL = REPO / "build" / "gpu-rehearsal"


@pytest.mark.timeout(600)
def test_the_gpu_run_passes_in_the_gpu_machines_versions(tmp_path: Path) -> None:
    stale = gpu_wheels.rehearsal_stale(REHEARSAL)
    assert not stale, (
        f"{REHEARSAL} is out of date ({' and '.join(stale)}): scripts/test.sh rebuilds it "
        "(.venv/bin/python scripts/gpu_wheels.py --rehearsal build/gpu-rehearsal)"
    )
    out = tmp_path / "out"
    env = {
        "PATH": f"{REHEARSAL / 'venv' / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "OUT": str(out),
        "GPU_RUN_WHEELS": str(REHEARSAL / "wheels"),
        "GPU_RUN_SITE": str(tmp_path / "site"),
        "GPU_RUN_WEIGHTS": str(tmp_path / "weights"),
    }
    done = subprocess.run(
        ["bash", "scripts/gpu_run.sh", "--rehearse"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=560,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-8000:]
    assert "gpu_run: conformance exit 0, bench exit 0" in log
    assert "gpu_wheels --check: 0 unmet need(s)" in log
    assert "conformance: 6 passed, 0 failed" in log
    for step in ("install", "build tiny random weights", "conformance", "bench", "done"):
        assert re.search(rf"^gpu_run \d\d:\d\d:\d\d \+\d+s: {step}", log, re.M), step

    # The machine's own versions ran it, the carried ones on top.
    environment = (out / "env.txt").read_text()
    machine, installed = environment.split("== installed for the run")
    for pin in ("transformers==5.17.0", "huggingface[-_]hub==1.33.0", "hypothesis==6.100.0"):
        assert re.search(rf"^{pin}$", machine, re.M | re.I), pin
    carried = gpu_wheels.rehearsal_plan()["wheels"]["pins"]
    for pin in carried:
        name, version = pin.split("==")
        assert re.search(rf"^{name.replace('-', '[-_]')}\s+{version}$", installed, re.M | re.I)
    bench = json.loads((out / "bench.json").read_text())
    assert bench["complete"] is True and len(bench["rows"]) == 4
