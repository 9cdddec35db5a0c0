"""A plain (non-editable) install carries the schema files and the `ipmock` command; the
wheels for a lent GPU machine are what it lacks."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from tests.conftest import REPO


def test_wheel_carries_contract_and_finds_it(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("ipmock-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "ipmock_schema/request.schema.json",
        "ipmock_schema/response.schema.json",
        "ipmock_schema/openapi.json",
        "ipmock_schema/INTERPRETATION.md",
        "mock_server/config.schema.json",
        "mock_server/py.typed",
    ):
        assert required in names
    assert any(n.endswith("entry_points.txt") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "ipmock = mock_server.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    # Run from an empty folder with only the installed copy first on the path.
    probe = (
        "import mock_server, mock_server.contract as c;"
        "print(mock_server.__file__);"
        "print(c.openapi()['components']['schemas']['Text2ImageRequest']['required'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert out[0].startswith(str(target))
    assert out[1] == "['prompt']"


def test_gpu_wheels_are_what_the_lent_machine_lacks() -> None:
    spec = importlib.util.spec_from_file_location("gpu_wheels", REPO / "scripts/gpu_wheels.py")
    assert spec is not None and spec.loader is not None
    gpu_wheels = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_wheels)
    carried = gpu_wheels.carried()
    # ipmock's own needs, one behind a marker (httptools), the gpu extra's, verify's, and
    # needs of needs (referencing -> rpds-py, schemathesis -> harfile).
    for name in ("orjson", "redis", "starlette", "httptools", "jsonschema-rs", "diffusers",
                 "transformers", "schemathesis", "rpds-py", "harfile"):  # fmt: skip
        assert carried.get(name) == metadata.version(name)
    # What the machine holds stays, and so do its needs (huggingface-hub 2's httpx2, here).
    assert not carried.keys() & (gpu_wheels.LENT_MACHINE_HAS - gpu_wheels.TOO_OLD_THERE)
    assert "torch" not in carried and "httpx2" not in carried and "ipmock" not in carried
