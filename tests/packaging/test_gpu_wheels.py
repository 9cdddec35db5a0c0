"""scripts/gpu_wheels.py: the wheels a GPU machine without network lacks, chosen by version
(the machine's known versions against each carried package's own requirements)."""

from __future__ import annotations

import importlib.util
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import REPO


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_wheels", REPO / "scripts/gpu_wheels.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # for its dataclasses
    spec.loader.exec_module(module)
    return module


gpu_wheels = _load()


class World:
    """Installed distributions as (version, requirement lines, Requires-Python)."""

    def __init__(self, **dists: tuple[str | None, list[str]] | tuple[str, list[str], str]) -> None:
        self.dists = {name.replace("_", "-"): dist for name, dist in dists.items()}

    def version(self, name: str) -> str | None:
        dist = self.dists.get(name)
        return None if dist is None else dist[0]

    def requires(self, name: str) -> list[str]:
        return list(self.dists[name][1])

    def requires_python(self, name: str) -> str | None:
        dist: Any = self.dists[name]
        return dist[2] if len(dist) > 2 else None


def select(world: World, versions: dict[str, str], has: set[str] = frozenset()) -> Any:  # type: ignore[assignment]
    return gpu_wheels.select(
        "3.12.3", installed=world, versions=versions, has=frozenset(has) | versions.keys()
    )


GPU = 'extra == "gpu"'


def test_a_version_the_machine_holds_too_old_travels_with_what_it_needs() -> None:
    """The break this prevents: transformers 5.25 needs huggingface-hub 2.4; the machine's
    1.33 does not do, so the hub travels too, and the hub's own needs."""
    world = World(
        ipmock=(None, [f"diffusers>=0.42; {GPU}", f"transformers>=5.24; {GPU}", "orjson"]),
        schemathesis=("4.32.5", ["hypothesis>=6.130"]),
        diffusers=("0.42.1", ["huggingface-hub>=1.32,<3", "numpy"]),
        transformers=("5.25.0", ["huggingface-hub>=2.4,<3.0", "tokenizers<0.24,>=0.23.1"]),
        huggingface_hub=("2.4.0", ["httpx2>=2", "filelock"]),
        httpx2=("2.0.0", []),
        hypothesis=("6.170.27", ["attrs"]),
        orjson=("3.13.0", []),
    )
    machine = {"transformers": "5.17.0", "huggingface-hub": "1.33.0", "hypothesis": "6.100.0"}
    selection = select(world, machine, {"numpy", "tokenizers", "filelock", "attrs"})
    assert selection.carried == {
        "diffusers": "0.42.1",
        "httpx2": "2.0.0",
        "huggingface-hub": "2.4.0",
        "hypothesis": "6.170.27",
        "orjson": "3.13.0",
        "schemathesis": "4.32.5",
        "transformers": "5.25.0",
    }
    assert selection.why["huggingface-hub"] == (
        "the machine's 1.33.0 fails transformers 5.25.0 needs huggingface-hub<3.0,>=2.4"
    )
    assert (
        selection.why["transformers"]
        == "the machine's 5.17.0 fails ipmock needs transformers>=5.24"
    )
    assert selection.why["orjson"] == "not on the machine"


def test_what_the_machine_meets_stays_behind() -> None:
    world = World(
        ipmock=(None, [f"transformers>=5.24,<5.25; {GPU}", f"torch>=2.4; {GPU}"]),
        schemathesis=("4.32.5", []),
        transformers=("5.24.0", ["huggingface-hub>=1.31.0,<3.0", "regex>=2025.10.22"]),
    )
    machine = {"transformers": "5.17.0", "huggingface-hub": "1.33.0", "torch": "2.11.0"}
    selection = select(world, machine, {"regex"})
    assert selection.carried == {"schemathesis": "4.32.5", "transformers": "5.24.0"}
    assert selection.kept(machine) == {"huggingface-hub": "1.33.0", "torch": "2.11.0"}


def test_torch_does_not_travel_so_a_need_it_fails_is_a_conflict() -> None:
    world = World(
        ipmock=(None, [f"diffusers; {GPU}"]),
        schemathesis=("4.32.5", []),
        diffusers=("0.43.0", ["torch>=2.12"]),
        torch=("2.13.0", []),
    )
    with pytest.raises(gpu_wheels.Conflict) as conflict:
        select(world, {"torch": "2.11.0"})
    assert str(conflict.value) == (
        "the machine's 2.11.0 fails diffusers 0.43.0 needs torch>=2.12, and torch does not "
        "travel (the machine's is used)"
    )


def test_a_version_here_that_another_carried_package_refuses_is_a_conflict() -> None:
    world = World(
        ipmock=(None, ["a", "b"]),
        schemathesis=("4.32.5", []),
        a=("1.0", ["c<2"]),
        b=("1.0", []),
        c=("2.1", []),
    )
    with pytest.raises(gpu_wheels.Conflict, match=r"a 1\.0 needs c<2, but c 2\.1 is what is"):
        select(world, {})


def test_a_wheel_that_refuses_the_machines_python_is_a_conflict() -> None:
    world = World(ipmock=(None, ["a"]), schemathesis=("4.32.5", []), a=("1.0", [], ">=3.13"))
    with pytest.raises(gpu_wheels.Conflict, match=r"a needs Python >=3\.13; the machine has 3\.12"):
        select(world, {})


def test_a_package_to_carry_that_is_not_installed_here_is_a_conflict() -> None:
    world = World(ipmock=(None, ["missing"]), schemathesis=("4.32.5", []))
    with pytest.raises(gpu_wheels.Conflict, match=r"missing must travel .* not installed here"):
        select(world, {})


def test_markers_are_those_of_the_machine() -> None:
    world = World(
        ipmock=(None, ["tomli; python_version < '3.11'", "uvloop; sys_platform != 'win32'"]),
        schemathesis=("4.32.5", []),
        uvloop=("0.22.0", []),
    )
    assert select(world, {}).carried == {"schemathesis": "4.32.5", "uvloop": "0.22.0"}


def test_this_environment_carries_what_the_machine_lacks_or_holds_too_old() -> None:
    selection = gpu_wheels.select()
    carried = selection.carried
    # ipmock's own needs, one behind a marker (httptools), the gpu extra's, verify's, and
    # needs of needs (referencing -> rpds-py, schemathesis -> harfile).
    for name in (
        "orjson",
        "redis",
        "starlette",
        "httptools",
        "jsonschema-rs",
        "diffusers",
        "transformers",
        "schemathesis",
        "rpds-py",
        "harfile",
    ):
        assert carried.get(name) == metadata.version(name)
    # Older there than schemathesis needs: they travel.
    assert {"hypothesis", "pytest"} <= carried.keys()
    assert "torch" not in carried and "ipmock" not in carried
    # What stays is what the machine has, at a version that meets every need.
    kept = selection.kept(gpu_wheels.OFFLINE_MACHINE_VERSIONS)
    assert {"huggingface-hub", "torch", "tokenizers", "safetensors"} <= kept.keys()
    for name, version in kept.items():
        for need in selection.needs[name]:
            assert need.requirement.specifier.contains(version, prereleases=True), need


def test_the_rehearsal_venv_holds_the_machines_versions() -> None:
    requirements = gpu_wheels.rehearsal_requirements()
    assert "transformers==5.17.0" in requirements and "huggingface-hub==1.33.0" in requirements
    assert "hypothesis==6.100.0" in requirements and "pytest==8.3.0" in requirements
    assert "torch==2.13.0" in requirements  # the CPU build on disk stands in for CUDA 2.11
    assert len(requirements) == len(gpu_wheels.OFFLINE_MACHINE_HAS)


def test_check_names_each_unmet_need_of_what_was_installed(tmp_path: Path) -> None:
    info = tmp_path / "site" / "carried-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: carried\nVersion: 1.0\n"
        "Requires-Dist: packaging>=1000\nRequires-Dist: not-installed-anywhere\n"
        "Requires-Dist: pytest\nRequires-Dist: tomli; python_version < '3.8'\n"
    )
    found = metadata.version("packaging")
    assert gpu_wheels.unmet_needs(tmp_path / "site") == [
        "carried 1.0 needs not-installed-anywhere: not installed",
        f"carried 1.0 needs packaging>=1000: found {found}",
    ]
    assert gpu_wheels.main(["--check", str(tmp_path / "site")]) == 1
    assert gpu_wheels.unmet_needs(tmp_path) == []
