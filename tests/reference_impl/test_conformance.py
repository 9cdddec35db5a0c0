"""`ipmock conformance` end to end on CPU: the tiny reference server, its images, the contract."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from reference_impl.build import ModelDirs

CHECKS = (
    "2 images of exactly 64x64",
    "the same seed twice gives identical PNGs",
    "an IP-Adapter image changes the result",
    "scale 0 gives the no-adapter image",
    "the change grows with the scale (0.25 < 0.5 < 1.0)",
    "the contract (ipmock verify)",
)


@pytest.mark.timeout(300)
@pytest.mark.socket
@pytest.mark.slow
def test_conformance_on_cpu_at_tiny_size(tiny_dirs: ModelDirs, tmp_path: Path) -> None:
    junit = tmp_path / "conformance.xml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mock_server.cli",
            "conformance",
            "--model-dir",
            str(tiny_dirs.model_dir),
            "--ip-adapter-dir",
            str(tiny_dirs.ip_adapter_dir),
            "--device",
            "cpu",
            "--width",
            "64",
            "--height",
            "64",
            "--steps",
            "2",
            "--max-examples",
            "3",
            "--junit-xml",
            str(junit),
        ],
        capture_output=True,
        text=True,
        timeout=280,
    )
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-2000:]
    report = out[out.index("ipmock conformance report (64x64, 2 steps)") :]
    # Each image check is also printed as it ends, before verify runs.
    before_verify = out[: out.index("ipmock verify")]
    for check in CHECKS[:-1]:
        assert f"  ok: {check}: " in before_verify, before_verify[-3000:]
    assert "ipmock conformance: image checks: 5/5 (100%), " in before_verify  # progress
    for check in CHECKS:
        line = next((line for line in report.splitlines() if check in line), "")
        result, seconds, unit = line.split(check)[1].split()[:3]  # the summary table's row
        assert (result, unit) == ("ok", "s") and float(seconds) > 0, report
    assert "identical bytes" in report
    assert "flow checks: 6 passed, 0 failed; schemathesis: passed" in out
    assert "conformance: 6 passed, 0 failed" in out
    assert f"): {junit}" in out and "verify.xml" not in out  # the file the user keeps
    suites = ET.parse(junit).getroot().findall("testsuite")
    assert suites[0].get("name") == "ipmock conformance: images"
    assert (suites[0].get("tests"), suites[0].get("failures")) == ("5", "0")
    assert suites[1].get("name") == "ipmock verify: flow"


def test_conformance_refuses_a_model_it_cannot_serve(capsys: pytest.CaptureFixture[str]) -> None:
    from mock_server.cli import main

    assert main(["conformance", "--model-dir", "/nowhere"]) == 2
    assert "--ip-adapter-dir" in capsys.readouterr().err
    missing = ["--model-dir", "/nowhere", "--ip-adapter-dir", "/nowhere", "--device", "cpu"]
    assert main(["conformance", *missing]) == 2  # refused before any server starts
    out, err = capsys.readouterr()
    assert err == "ipmock conformance: --model-dir /nowhere is not a folder\n"
    assert "ipmock serve" not in out


@pytest.mark.socket
@pytest.mark.slow
def test_the_gpu_bench_runs_on_cpu_and_matches_plain_diffusers(
    tiny_dirs: ModelDirs, tmp_path: Path
) -> None:
    figures = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.gpu_generation",
            "--model-dir",
            str(tiny_dirs.model_dir),
            "--ip-adapter-dir",
            str(tiny_dirs.ip_adapter_dir),
            "--device",
            "cpu",
            "--width",
            "64",
            "--height",
            "64",
            "--steps",
            "2",
            "--samples",
            "1",
            "2",
            "--repeat",
            "1",
            "--warmup",
            "0",
            "--json",
            str(figures),
        ],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "seconds per image, 64x64, 2 steps" in done.stdout
    document = json.loads(figures.read_text())
    assert document["complete"] is True and document["meta"]["deterministic"] is False  # CPU
    rows = document["rows"]
    assert [(r["adapter"], r["samples"]) for r in rows] == [
        (None, 1),
        (None, 2),
        ("ip-adapter_sdxl", 1),
        ("ip-adapter_sdxl", 2),
    ]
    # Same seeds, same arguments, same modules: the reference makes diffusers' own images.
    assert all(r["mean_abs_diff"] == 0 for r in rows), rows
    assert all(r["ipmock"] > 0 and r["diffusers"] > 0 for r in rows)
