"""Download into .whl/ the wheels a lent GPU machine lacks for scripts/gpu_run.sh.

    .venv/bin/python scripts/gpu_wheels.py          # for the lent machine's Python, 3.12.3
    .venv/bin/python scripts/gpu_wheels.py 3.11.7   # for a rehearsal here (docs/gpu.md)

What travels is found, not listed: the requirements of ipmock[gpu] and of schemathesis
(which ``ipmock verify`` runs), walked through the distributions installed in this
environment, less what the lent machine's image already has. Each wheel is the version
installed here, the one the suite tested.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOTS = (Requirement("ipmock[gpu]"), Requirement("schemathesis"))

# Those of ipmock's needs that the lent machine's image holds, from its package list
# (/work/.library/device/KINDS.md). What needs them travels; they and their own needs do not.
# fmt: off
LENT_MACHINE_HAS = frozenset({
    "accelerate", "anyio", "attrs", "certifi", "charset-normalizer", "click", "filelock",
    "fsspec", "h11", "hf-xet", "httpcore", "httpx", "huggingface-hub", "idna", "iniconfig",
    "jinja2", "markdown-it-py", "markupsafe", "mdurl", "mpmath", "networkx", "numpy", "packaging",
    "pillow", "pluggy", "psutil", "pygments", "pyyaml", "regex", "requests", "rich",
    "safetensors", "setuptools", "shellingham", "sortedcontainers", "sympy", "tokenizers",
    "torch", "tqdm", "typer", "typing-extensions", "urllib3", "uvloop", "werkzeug", "zipp",
})
# fmt: on

TOO_OLD_THERE = frozenset({"transformers", "hypothesis", "pytest"})
"""Held there, but too old: transformers 5.17 (the gpu extra needs 5.24); schemathesis
needs recent hypothesis and pytest."""

LENT_MACHINE_PYTHON = "3.12.3"

PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)


def _environment(python_version: str, extra: str) -> dict[str, str]:
    """Marker variables of the target: CPython ``python_version`` (x.y.z) on x86-64 Linux."""
    return {
        "python_version": ".".join(python_version.split(".")[:2]),
        "python_full_version": python_version,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "x86_64",
        "extra": extra,
    }


def carried(python_version: str = LENT_MACHINE_PYTHON) -> dict[str, str]:
    """Name to installed version of each distribution that travels (ipmock itself does not:
    gpu_run.sh installs it from the tree)."""
    found: dict[str, str] = {}
    pending = list(ROOTS)
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen or (name in LENT_MACHINE_HAS and name not in TOO_OLD_THERE):
            continue
        seen.add(key)
        if name != "ipmock":
            found[name] = metadata.version(name)
        for line in metadata.requires(name) or []:
            needed = Requirement(line)
            extras = requirement.extras or {""}
            if needed.marker is None or any(
                needed.marker.evaluate(_environment(python_version, extra)) for extra in extras
            ):
                pending.append(needed)
    return dict(sorted(found.items()))


def main() -> int:
    python_version = sys.argv[1] if len(sys.argv) > 1 else LENT_MACHINE_PYTHON
    target = Path(__file__).resolve().parent.parent / ".whl"
    for old in target.glob("*.whl"):
        old.unlink()
    pins = [f"{name}=={version}" for name, version in carried(python_version).items()]
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--only-binary=:all:", "--python-version", python_version,
         "--implementation", "cp", *platforms, "-d", str(target), *pins],
        check=True,
    )  # fmt: skip
    wheels = sorted(target.glob("*.whl"))
    size = sum(wheel.stat().st_size for wheel in wheels) / 2**20
    print(f"{len(wheels)} wheels, {size:.0f} MiB, in .whl/ for Python {python_version}:")
    print("  " + " ".join(pins))
    return 0


if __name__ == "__main__":
    sys.exit(main())
