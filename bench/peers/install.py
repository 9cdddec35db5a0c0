"""Prism and WireMock from the npm registry, pinned in bench/peers/package.json and
package-lock.json, installed into bench/.peers/ (ignored by git) on the first run."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS_SOURCE = HERE  # package.json and package-lock.json (committed)
PEERS_HOME = HERE.parent / ".peers"  # where npm installs them (ignored by git)


class Missing(Exception):
    """A tool the run needs is not installed; printed, exit status 2."""


def require(tool: str, why: str, how: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise Missing(f"{tool} is not installed ({why}); {how}")
    return found


def prism_bin(home: Path = PEERS_HOME) -> Path:
    return home / "node_modules" / ".bin" / "prism"


def wiremock_jar(home: Path = PEERS_HOME) -> Path | None:
    jars = sorted((home / "node_modules" / "wiremock").glob("**/wiremock-standalone-*.jar"))
    return jars[0] if jars else None


def peers_installed(source: Path = PEERS_SOURCE, home: Path = PEERS_HOME) -> bool:
    """Whether bench/.peers holds exactly what bench/peers pins."""
    for name in ("package.json", "package-lock.json"):
        here, there = source / name, home / name
        if not there.is_file() or here.read_bytes() != there.read_bytes():
            return False
    return prism_bin(home).exists() and wiremock_jar(home) is not None


def install_peers(source: Path = PEERS_SOURCE, home: Path = PEERS_HOME) -> None:
    """``npm ci`` of the pinned peers into ``home``; nothing to do when already there."""
    if peers_installed(source, home):
        return
    npm = require(
        "npm",
        "it installs Prism and WireMock",
        "install Node.js 18+ with npm (apt-get install -y nodejs npm), or run with --only ipmock",
    )
    home.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(source / name, home / name)
    print(f"peers: installing the pinned Prism and WireMock into {home} (npm ci) ...", flush=True)
    # --ignore-scripts: nothing here needs an install script (the WireMock package ships
    # its jar; one dependency's script only reports usage over the network).
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=home,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not peers_installed(source, home):
        raise RuntimeError(f"npm ci failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def package_version(home: Path, package: str) -> str:
    manifest = home / "node_modules" / package / "package.json"
    return str(json.loads(manifest.read_text())["version"])


def first_line(command: Sequence[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"
