"""The wheels an offline GPU machine lacks, chosen by version, for scripts/gpu_run.sh.

    .venv/bin/python scripts/gpu_wheels.py                 # into .whl/, for the machine's 3.12.3
    .venv/bin/python scripts/gpu_wheels.py --rehearsal DIR # the CPU rehearsal's venv and wheels
    python3 scripts/gpu_wheels.py --check SITE             # on the machine, once installed

What travels is found, not listed. The requirements of ipmock[gpu] and of schemathesis
(which ``ipmock verify`` runs) are walked through the distributions installed in this
environment. A need that the GPU machine's own version meets stays behind; one it does not
meet (or a package it lacks) travels at the version installed here, the one the suite
tested, and that package's needs are walked in turn. A need nothing can meet (torch does
not travel; a wheel that refuses the machine's Python; a version here that another
carried package refuses) stops the script, naming the conflict.

``--rehearsal DIR`` (run by scripts/test.sh) keeps DIR/venv, a virtual environment
holding the GPU machine's versions (a CPU torch standing in for its CUDA build), and
DIR/wheels, the wheels chosen for this Python; both are rebuilt only when what they
should hold has changed. tests/packaging/test_gpu_rehearsal.py runs the GPU script there.
``--check SITE`` tells, after gpu_run.sh has installed the wheels into SITE, whether every
need of what is installed there is met by what Python finds, before any long step.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Protocol

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOTS = (Requirement("ipmock[gpu]"), Requirement("schemathesis"))

OFFLINE_MACHINE_PYTHON = "3.12.3"

# The versions its `pip list` shows. hypothesis and pytest are held at versions older than
# schemathesis needs (which ones exactly is not known): the two given stand in for them,
# here and in the rehearsal.
# fmt: off
OFFLINE_MACHINE_VERSIONS: Mapping[str, str] = {
    "accelerate": "1.15.0", "huggingface-hub": "1.33.0", "numpy": "2.5.2",
    "safetensors": "0.8.0", "tokenizers": "0.23.2", "torch": "2.11.0",
    "transformers": "5.17.0", "hypothesis": "6.100.0", "pytest": "8.3.0",
}

# Those of ipmock's needs (and of the rehearsal's venv) that the machine's image holds, from
# its package list, at versions not known: trusted to meet any need. The rehearsal installs
# the current release of each; `--check` on the machine finds one that is too old there
# (then give its version above).
OFFLINE_MACHINE_HAS = frozenset({
    "anyio", "attrs", "certifi", "charset-normalizer", "click", "filelock", "fsspec", "h11",
    "hf-xet", "httpcore", "httpx", "idna", "iniconfig", "jinja2", "markdown-it-py",
    "markupsafe", "mdurl", "mpmath", "networkx", "packaging", "pillow", "pip", "pluggy",
    "psutil", "pygments", "pyyaml", "regex", "requests", "rich", "setuptools", "shellingham",
    "sortedcontainers", "sympy", "tqdm", "typer", "typing-extensions", "urllib3", "uvloop",
    "werkzeug", "wheel", "zipp", "annotated-doc",
}) | OFFLINE_MACHINE_VERSIONS.keys()
# fmt: on

STAYS = frozenset({"torch"})
"""Never carried: the machine's CUDA build is the one to use; a need it fails is a conflict."""

REHEARSAL_TORCH = "torch==2.13.0"
"""The CPU build that stands in for the machine's CUDA torch in the rehearsal (on disk here)."""

REHEARSAL_STAND_INS: Mapping[str, str] = {
    "torch": REHEARSAL_TORCH,
    "numpy": "numpy<=2.5.2",  # 2.5 needs Python 3.12: a 3.11 takes the newest before it
    "typer": "typer<0.29",  # 0.29 needs pydantic, which the machine lacks: its typer is older
}
"""Requirements of the rehearsal's venv where the machine's own version cannot be had."""

PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)


class Conflict(Exception):
    """A need that neither the machine nor a carried wheel can meet."""


class Installed(Protocol):
    """The distributions whose wheels would travel (importlib.metadata's, by default)."""

    def version(self, name: str) -> str | None: ...
    def requires(self, name: str) -> list[str]: ...
    def requires_python(self, name: str) -> str | None: ...


class _Metadata:
    """importlib.metadata, but ipmock's own needs from pyproject.toml: an ipmock.egg-info
    left in the tree by an earlier build may be found first and be out of date."""

    def version(self, name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    def requires(self, name: str) -> list[str]:
        if name == "ipmock":
            return _project_requires()
        return metadata.requires(name) or []

    def requires_python(self, name: str) -> str | None:
        if name == "ipmock":
            return str(_project()["requires-python"])
        return metadata.metadata(name).get("Requires-Python")


def _project() -> dict[str, object]:
    with (Path(__file__).resolve().parent.parent / "pyproject.toml").open("rb") as file:
        project: dict[str, object] = tomllib.load(file)["project"]
    return project


def _project_requires() -> list[str]:
    """ipmock's dependencies and its gpu extra's, as requirement lines of its metadata."""
    project = _project()
    lines = list(project["dependencies"])  # type: ignore[call-overload]
    for line in project["optional-dependencies"]["gpu"]:  # type: ignore[index]
        requirement = Requirement(line)
        marker = f"({requirement.marker}) and " if requirement.marker else ""
        requirement.marker = None
        lines.append(f'{requirement}; {marker}extra == "gpu"')
    return lines


@dataclass(frozen=True)
class Need:
    """``requirement``, as ``by`` (a distribution and its version, or ``ipmock``) states it."""

    by: str
    requirement: Requirement

    def __str__(self) -> str:
        extras = f"[{','.join(sorted(self.requirement.extras))}]" if self.requirement.extras else ""
        return f"{self.by} needs {self.requirement.name}{extras}{self.requirement.specifier}"


@dataclass
class Selection:
    """What travels (name to version, with why) and the needs each package has to meet."""

    carried: dict[str, str] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)
    needs: dict[str, list[Need]] = field(default_factory=lambda: defaultdict(list))

    def kept(self, versions: Mapping[str, str]) -> dict[str, str]:
        """Needed packages the machine holds at a known version that meets every need."""
        return {
            n: versions[n] for n in sorted(self.needs) if n in versions and n not in self.carried
        }


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


def _applies(requirement: Requirement, python_version: str, extras: Iterable[str]) -> bool:
    return requirement.marker is None or any(
        requirement.marker.evaluate(_environment(python_version, extra)) for extra in extras
    )


def _unmet(name: str, needs: list[Need], versions: Mapping[str, str], has: frozenset[str]) -> str:
    """Why the machine's copy of ``name`` will not do ("" when it will)."""
    if name not in has:
        return "not on the machine"
    version = versions.get(name)
    if version is None:
        return ""  # held at a version not known: trusted
    failed = [n for n in needs if not n.requirement.specifier.contains(version, prereleases=True)]
    if failed:
        return f"the machine's {version} fails {failed[0]}"
    return ""


def select(
    python_version: str = OFFLINE_MACHINE_PYTHON,
    *,
    installed: Installed | None = None,
    versions: Mapping[str, str] = OFFLINE_MACHINE_VERSIONS,
    has: frozenset[str] = OFFLINE_MACHINE_HAS,
) -> Selection:
    """Walk ROOTS' requirements: carry what the machine lacks or holds at a version that
    fails a need; raise Conflict when a need cannot be met at all."""
    installed = installed or _Metadata()
    selection = Selection()
    walked: set[tuple[str, frozenset[str]]] = set()
    pending: list[tuple[str, Requirement]] = [("ipmock", root) for root in ROOTS]
    while pending:
        by, requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name != "ipmock":
            selection.needs[name].append(Need(by, requirement))
        if name != "ipmock" and name not in selection.carried:
            reason = _unmet(name, selection.needs[name], versions, has)
            if not reason:
                continue
            if name in STAYS:
                raise Conflict(f"{reason}, and {name} does not travel (the machine's is used)")
            version = installed.version(name)
            if version is None:
                raise Conflict(f"{name} must travel ({reason}) but is not installed here")
            selection.carried[name] = version
            selection.why[name] = reason
        key = (name, frozenset(requirement.extras))
        if key in walked:
            continue
        walked.add(key)
        label = name if name == "ipmock" else f"{name} {selection.carried[name]}"
        for line in installed.requires(name):
            needed = Requirement(line)
            if _applies(needed, python_version, requirement.extras or {""}):
                pending.append((label, needed))
    _check_carried(selection, python_version, installed)
    return selection


def _check_carried(selection: Selection, python_version: str, installed: Installed) -> None:
    """A carried version must meet every need of it, and accept the machine's Python."""
    for name, version in selection.carried.items():
        for need in selection.needs[name]:
            if not need.requirement.specifier.contains(version, prereleases=True):
                raise Conflict(f"{need}, but {name} {version} is what is installed here")
    for name in ["ipmock", *selection.carried]:
        supported = installed.requires_python(name)
        if supported and not SpecifierSet(supported).contains(python_version):
            raise Conflict(f"{name} needs Python {supported}; the machine has {python_version}")


def carried(python_version: str = OFFLINE_MACHINE_PYTHON) -> dict[str, str]:
    """Name to installed version of each distribution that travels (ipmock itself does not:
    gpu_run.sh installs it from the tree)."""
    return dict(sorted(select(python_version).carried.items()))


def download(pins: list[str], python_version: str, target: Path) -> list[Path]:
    """The wheels of ``pins`` for CPython ``python_version`` on x86-64 Linux, into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*.whl"):
        old.unlink()
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            python_version,
            "--implementation",
            "cp",
            *platforms,
            "-d",
            str(target),
            *pins,
        ],
        check=True,
    )
    return sorted(target.glob("*.whl"))


# --- The rehearsal ----------------------------------------------------------------------------


def rehearsal_requirements() -> list[str]:
    """What the rehearsal's venv installs: the machine's versions where known, else current."""
    known = {n: f"{n}=={v}" for n, v in OFFLINE_MACHINE_VERSIONS.items()}
    return [REHEARSAL_STAND_INS.get(n, known.get(n, n)) for n in sorted(OFFLINE_MACHINE_HAS)]


def _python_version() -> str:
    return ".".join(map(str, sys.version_info[:3]))


def rehearsal_plan() -> dict[str, dict[str, object]]:
    """What DIR/venv and DIR/wheels should hold now (compared with their stamps)."""
    python_version = _python_version()
    pins = [f"{n}=={v}" for n, v in carried(python_version).items()]
    return {
        "venv": {"python": python_version, "requirements": rehearsal_requirements()},
        "wheels": {"python": python_version, "pins": pins},
    }


def rehearsal_stale(folder: Path) -> list[str]:
    """The parts of ``folder`` that are missing or out of date ([] when current)."""
    stale = []
    for part, wanted in rehearsal_plan().items():
        stamp = folder / f"{part}.json"
        if not stamp.is_file() or json.loads(stamp.read_text()) != wanted:
            stale.append(part)
    return stale


def _venv_python(folder: Path) -> Path:
    return folder / "venv" / "bin" / "python"


def _extras_in_venv(folder: Path) -> list[str]:
    """Distributions in the venv that the machine's table does not name."""
    listing = subprocess.run(
        [
            str(_venv_python(folder)),
            "-m",
            "pip",
            "list",
            "--format=json",
            "--disable-pip-version-check",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    names = {canonicalize_name(d["name"]) for d in json.loads(listing)}
    return sorted(names - OFFLINE_MACHINE_HAS)


def build_rehearsal(folder: Path) -> None:
    """Make ``folder``/venv and ``folder``/wheels current; untouched parts are kept."""
    plan = rehearsal_plan()
    stale = rehearsal_stale(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if "venv" in stale:
        (folder / "venv.json").unlink(missing_ok=True)
        shutil.rmtree(folder / "venv", ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True)
        pip = [
            str(_venv_python(folder)),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ]
        # torch first, alone: the CPU build on disk, so that nothing fetches a CUDA one.
        subprocess.run([*pip, REHEARSAL_TORCH], check=True)
        subprocess.run([*pip, *rehearsal_requirements()], check=True)
        extras = _extras_in_venv(folder)
        if extras:
            raise Conflict(
                f"the rehearsal's venv holds {', '.join(extras)}, which the GPU machine's "
                "table (OFFLINE_MACHINE_HAS) does not: name them there if the machine has them"
            )
        (folder / "venv.json").write_text(json.dumps(plan["venv"], indent=2) + "\n")
        print(f"gpu_wheels: rehearsal venv built in {folder / 'venv'}")
    if "wheels" in stale:
        (folder / "wheels.json").unlink(missing_ok=True)
        pins = plan["wheels"]["pins"]
        assert isinstance(pins, list)
        wheels = download(pins, _python_version(), folder / "wheels")
        (folder / "wheels.json").write_text(json.dumps(plan["wheels"], indent=2) + "\n")
        print(f"gpu_wheels: {len(wheels)} rehearsal wheels in {folder / 'wheels'}")


# --- On the machine ----------------------------------------------------------------------------


def unmet_needs(site: Path) -> list[str]:
    """Each need of a distribution installed in ``site`` that this Python does not meet
    (``site`` first on its path, as gpu_run.sh runs)."""
    here = _python_version()
    problems = []
    for dist in metadata.distributions(path=[str(site)]):
        name = canonicalize_name(dist.metadata["Name"])
        extras = {"", "gpu"} if name == "ipmock" else {""}
        for line in dist.requires or []:
            requirement = Requirement(line)
            if not _applies(requirement, here, extras):
                continue
            need = Need(f"{name} {dist.version}", requirement)
            try:
                found = metadata.version(requirement.name)
            except metadata.PackageNotFoundError:
                problems.append(f"{need}: not installed")
                continue
            if not requirement.specifier.contains(found, prereleases=True):
                problems.append(f"{need}: found {found}")
    return sorted(set(problems))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if args[:1] == ["--check"] and len(args) == 2:
            problems = unmet_needs(Path(args[1]))
            for problem in problems:
                print(f"gpu_wheels --check: {problem}", file=sys.stderr)
            print(f"gpu_wheels --check: {len(problems)} unmet need(s) in {args[1]}")
            return 1 if problems else 0
        if args[:1] == ["--rehearsal"] and len(args) == 2:
            build_rehearsal(Path(args[1]))
            return 0
        if len(args) > 1 or (args and args[0].startswith("-")):
            print(__doc__.split("\n\n")[1], file=sys.stderr)
            return 2
        python_version = args[0] if args else OFFLINE_MACHINE_PYTHON
        selection = select(python_version)
    except Conflict as exc:
        print(f"gpu_wheels: conflict: {exc}", file=sys.stderr)
        return 1
    pins = [f"{name}=={version}" for name, version in sorted(selection.carried.items())]
    wheels = download(pins, python_version, Path(__file__).resolve().parent.parent / ".whl")
    size = sum(wheel.stat().st_size for wheel in wheels) / 2**20
    print(f"{len(wheels)} wheels, {size:.0f} MiB, in .whl/ for Python {python_version}:")
    for name, version in sorted(selection.carried.items()):
        print(f"  {name} {version}: {selection.why[name]}")
    kept = selection.kept(OFFLINE_MACHINE_VERSIONS)
    print("the machine's own: " + ", ".join(f"{n} {v}" for n, v in kept.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
