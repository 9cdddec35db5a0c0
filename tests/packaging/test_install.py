"""A plain (non-editable) install carries the schema files and the `ipmock` command. (The
wheels for a GPU machine: test_gpu_wheels.py beside it.)"""

from __future__ import annotations

import subprocess
import sys
import zipfile
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
        "mock_server/http/ui_files/index.html",  # the dashboard (mock_server.http.ui)
    ):
        assert required in names
    packages = {
        str(init.parent.relative_to(REPO)) + "/__init__.py"
        for top in ("mock_server", "contract_tests", "reference_impl")
        for init in (REPO / top).rglob("__init__.py")
    }
    assert sorted(packages - names) == []  # every subpackage listed in pyproject
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
