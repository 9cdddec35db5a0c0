"""The seeded fault mix and the fault catalogue's config: draws, seeding, reset, errors."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest

from mock_server.config import ConfigError, load_book, scenario_from_json
from mock_server.faults import FAULT_KINDS, FAULT_STEPS, SOCKET_FAULT_KINDS, Fault, FaultMix
from mock_server.scenarios import CHAOS_WEIGHTS, Scenario, ScenarioBook
from mock_server.state import MemoryQueue

STUCK = Scenario("stuck", pending_polls=None)


def _book(mix: FaultMix | None, seed: int | None = 7, **kwargs: object) -> ScenarioBook:
    return ScenarioBook(fault_mix=mix, seed=seed, **kwargs)  # type: ignore[arg-type]


def _draws(book: ScenarioBook, n: int, scenario: Scenario = STUCK) -> list[Fault | None]:
    return [book.fault_for(scenario, request) for request in range(1, n + 1)]


def _load(tmp_path: Path, toml: str, **kwargs: object) -> ScenarioBook:
    path = tmp_path / "ipmock.toml"
    path.write_text(toml, encoding="utf-8")
    return load_book(path, **kwargs)  # type: ignore[arg-type]


def test_same_seed_same_sequence() -> None:
    mix = FaultMix(rate=0.3)
    first, second = _draws(_book(mix), 300), _draws(_book(mix), 300)
    assert first == second
    assert any(f is not None and f.kind in SOCKET_FAULT_KINDS for f in first)
    assert _draws(_book(mix, seed=8), 300) != first


def test_reset_starts_the_sequence_over() -> None:
    book = _book(FaultMix(rate=0.5))
    first = _draws(book, 100)
    assert _draws(book, 100) != first  # the sequence goes on ...
    book.reset()
    assert _draws(book, 100) == first  # ... until the admin reset


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.7])
def test_rate_is_respected_over_many_draws(rate: float) -> None:
    draws = _draws(_book(FaultMix(rate=rate)), 5000)
    share = sum(f is not None for f in draws) / len(draws)
    assert share == pytest.approx(rate, abs=0.03)


def test_rate_one_faults_every_request_and_kinds_are_even() -> None:
    draws = _draws(_book(FaultMix(rate=1.0)), 5000)
    counts = Counter(f.kind for f in draws if f is not None)
    assert sum(counts.values()) == 5000
    assert set(counts) == set(FAULT_KINDS)
    assert min(counts.values()) > 5000 / len(FAULT_KINDS) * 0.8


def test_kinds_are_limited_to_those_configured() -> None:
    draws = _draws(_book(FaultMix(rate=0.5, kinds=("reset", "garbage"))), 1000)
    assert {f.kind for f in draws if f is not None} == {"reset", "garbage"}


def test_drawn_faults_carry_the_mix_settings() -> None:
    mix = FaultMix(
        rate=1.0, kinds=("busy", "dribble", "delay"), seconds=2, jitter=0.5, retry_after=9
    )
    draws = [f for f in _draws(_book(mix), 300) if f is not None]
    for fault in draws:
        assert fault.jitter == 0.0  # settled when drawn
        if fault.kind == "busy":
            assert (fault.retry_after, fault.seconds) == (9, 0.0)
        else:
            assert 2.0 <= fault.seconds <= 2.5
    slow = {f.seconds for f in draws if f.kind != "busy"}
    assert len(slow) > 10  # the jitter varies


def test_scenario_faults_win_over_the_mix() -> None:
    scenario = Scenario("x", pending_polls=None, faults=(Fault(2, "busy", retry_after=4),))
    draws = _draws(_book(FaultMix(rate=1.0, kinds=("empty",))), 3, scenario)
    assert [f.kind if f else None for f in draws] == ["empty", "busy", "empty"]


def test_no_mix_means_only_scenario_faults() -> None:
    scenario = Scenario("x", pending_polls=None, faults=(Fault(2, "reset"),))
    assert [f.kind if f else None for f in _draws(_book(None), 4, scenario)] == [
        None,
        "reset",
        None,
        None,
    ]


def test_scenario_delay_jitter_is_seeded_and_bounded() -> None:
    scenario = Scenario("x", faults=(Fault(1, "delay", seconds=1.0, jitter=2.0),))
    fresh = [_book(None).fault_for(scenario, 1) for _ in range(3)]
    assert fresh[0] == fresh[1] == fresh[2]  # same seed, same jitter
    book = _book(None)
    settled = [book.fault_for(scenario, 1) for _ in range(200)]
    values = [f.seconds for f in settled if f is not None]
    assert all(1.0 <= s <= 3.0 for s in values)
    assert max(values) - min(values) > 1.0


def test_turning_faults_on_changes_no_scenario_choice() -> None:
    async def choices(mix: FaultMix | None) -> list[str]:
        book = _book(mix, chaos_weights=CHAOS_WEIGHTS)
        picked = []
        for _ in range(50):
            picked.append((await book.choose(None, MemoryQueue(), {})).name)
            book.fault_for(STUCK, 1)
        return picked

    assert asyncio.run(choices(None)) == asyncio.run(choices(FaultMix(rate=0.9)))


def test_config_turns_the_mix_on(tmp_path: Path) -> None:
    book = _load(
        tmp_path,
        '[chaos]\nfaults = { rate = 0.25, kinds = ["reset", "dribble"], seconds = 0.5,'
        " jitter = 0, retry_after = 2 }\n",
        seed=3,
    )
    assert book.fault_mix == FaultMix(
        rate=0.25, kinds=("reset", "dribble"), seconds=0.5, jitter=0, retry_after=2
    )
    assert book.chaos_weights is None  # the scenario mix stays off without weights


def test_chaos_flag_turns_on_every_kind_unless_the_config_says_otherwise(tmp_path: Path) -> None:
    default = load_book(None, chaos=True, seed=7).fault_mix
    assert default is not None and 0 < default.rate < 1
    assert set(default.kinds) == set(FAULT_KINDS)
    assert load_book(None).fault_mix is None
    assert _load(tmp_path, "[chaos]\nfaults = { rate = 0 }\n", chaos=True).fault_mix is None
    chosen = _load(tmp_path, '[chaos]\nfaults = { rate = 0.5, kinds = ["empty"] }\n', chaos=True)
    assert chosen.fault_mix == FaultMix(rate=0.5, kinds=("empty",))


def test_config_scenarios_take_every_fault_kind(tmp_path: Path) -> None:
    faults = ", ".join(
        f'{{ at_request = {i}, kind = "{kind}", seconds = 0.5, jitter = 0.25 }}'
        for i, kind in enumerate(FAULT_KINDS, start=1)
    )
    book = _load(tmp_path, f'[[scenarios]]\nname = "all"\nfaults = [{faults}]\n')
    assert [f.kind for f in book.get("all").faults] == list(FAULT_KINDS)
    assert book.get("all").faults[4].jitter == 0.25


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        (
            "[chaos]\nfaults = { rate = 1.5 }\n",
            "chaos.faults.rate: 1.5 is greater than the maximum",
        ),
        ("[chaos]\nfaults = { rate = -0.1 }\n", "chaos.faults.rate"),
        (
            "[chaos]\nfaults = { kinds = ['reset'] }\n",
            "chaos.faults: 'rate' is a required property",
        ),
        ("[chaos]\nfaults = { rate = 0.1, kinds = ['explode'] }\n", "chaos.faults.kinds.0"),
        ("[chaos]\nfaults = { rate = 0.1, kinds = [] }\n", "chaos.faults.kinds"),
        ("[chaos]\nfaults = { rate = 0.1, kinds = ['reset', 'reset'] }\n", "chaos.faults.kinds"),
        ("[chaos]\nfaults = { rate = 0.1, speed = 2 }\n", "chaos.faults: unknown field 'speed'"),
        ("[chaos]\nfaults = { rate = 0.1, jitter = -1 }\n", "chaos.faults.jitter"),
        (
            "[[scenarios]]\nname = 'x'\nfaults = [{ at_request = 1, kind = 'dribble', "
            "jitter = -1 }]\n",
            "scenarios.0.faults.0.jitter",
        ),
        (
            "[[scenarios]]\nname = 'x'\nfaults = [{ at_request = 1, kind = 'explode' }]\n",
            "scenarios.0.faults.0.kind: 'explode' is not one of",
        ),
    ],
)
def test_config_errors_name_the_field(tmp_path: Path, toml: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(needle)):
        _load(tmp_path, toml)


def test_inline_scenarios_take_the_new_kinds_and_name_bad_ones() -> None:
    scenario = scenario_from_json({"faults": [{"at_request": 1, "kind": "garbage"}]})
    assert scenario.faults == (Fault(1, "garbage"),)
    with pytest.raises(ConfigError, match=re.escape("scenarios.0: faults.0.kind")):
        scenario_from_json({"faults": [{"at_request": 1, "kind": "nope"}]}, "scenarios.0")


def test_fault_mix_refuses_bad_values_in_python_too() -> None:
    with pytest.raises(ValueError, match=r"faults\.rate"):
        FaultMix(rate=2.0)
    with pytest.raises(ValueError, match=r"faults\.kinds"):
        FaultMix(rate=0.5, kinds=())
    with pytest.raises(ValueError, match=r"faults\.kinds: unknown fault kind\(s\) 'explode'"):
        FaultMix(rate=0.5, kinds=("explode",))  # type: ignore[arg-type]


def test_the_schema_lists_exactly_the_fault_kinds() -> None:
    schema = json.loads(resources.files("mock_server").joinpath("config.schema.json").read_text())
    assert tuple(schema["$defs"]["fault_kind"]["enum"]) == FAULT_KINDS


# Steps: a fault says which request of a job it hits (on = submit, poll or download).


def test_a_scenario_fault_hits_only_its_step() -> None:
    scenario = Scenario(
        "x",
        faults=(
            Fault(1, "drop", on="submit"),
            Fault(1, "busy"),
            Fault(2, "reset", on="download"),
        ),
    )
    book = _book(None)
    assert [book.fault_for(scenario, 1, on) for on in ("submit", "poll", "download")] == [
        Fault(1, "drop", on="submit"),
        Fault(1, "busy"),
        None,
    ]
    assert book.fault_for(scenario, 2, "download") == Fault(2, "reset", on="download")
    assert book.fault_for(scenario, 2) is None
    assert [book.faults_on(scenario, on) for on in ("submit", "poll", "download")] == [True] * 3
    assert not book.faults_on(STUCK, "download")


def test_the_mix_faults_polls_only_unless_told() -> None:
    book = _book(FaultMix(rate=1.0))
    assert book.fault_for(STUCK, 1, "submit") is None
    assert book.fault_for(STUCK, 1, "download") is None
    assert not book.faults_on(STUCK, "download")
    # A step the mix leaves alone draws nothing, so the polls' sequence is today's.
    plain, mixed = _book(FaultMix(rate=0.3)), _book(FaultMix(rate=0.3))
    for request in range(1, 50):
        mixed.fault_for(STUCK, request, "submit")
        mixed.fault_for(STUCK, request, "download")
    assert _draws(plain, 200) == _draws(mixed, 200)


def test_a_mix_on_submits_and_downloads_marks_its_draws() -> None:
    book = _book(FaultMix(rate=1.0, kinds=("busy",), on=("submit", "download")))
    assert book.fault_for(STUCK, 1, "submit") == Fault(1, "busy", on="submit")
    assert book.fault_for(STUCK, 3, "download") == Fault(3, "busy", on="download")
    assert book.fault_for(STUCK, 1) is None
    assert book.faults_on(STUCK, "download")


def test_fault_steps_in_the_config_file(tmp_path: Path) -> None:
    book = _load(
        tmp_path,
        '[[scenarios]]\nname = "lossy"\nfaults = [{ at_request = 1, kind = "reset", '
        'on = "submit" }, { at_request = 2, kind = "delay", seconds = 3, on = "download" }]\n'
        '[chaos]\nfaults = { rate = 0.5, on = "download" }\n',
    )
    assert book.get("lossy").faults == (
        Fault(1, "reset", on="submit"),
        Fault(2, "delay", seconds=3.0, on="download"),
    )
    assert book.fault_mix is not None and book.fault_mix.on == ("download",)
    listed = _load(tmp_path, '[chaos]\nfaults = { rate = 0.5, on = ["submit", "poll"] }\n')
    assert listed.fault_mix is not None and listed.fault_mix.on == ("submit", "poll")


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            '{ at_request = 1, kind = "reset", on = "sumbit" }',
            "scenarios.0.faults.0.on: 'sumbit' is not one of ['submit', 'poll', 'download']",
        ),
        (
            '{ at_request = 2, kind = "reset", on = "submit" }',
            "scenarios.0.faults.0.at_request: 2 is not 1: a job has one submit",
        ),
    ],
)
def test_a_bad_fault_step_is_named(tmp_path: Path, fault: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, f'[[scenarios]]\nname = "x"\nfaults = [{fault}]\n')
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("on", "message"),
    [
        ('"everywhere"', "chaos.faults.on: 'everywhere' is not one of"),
        ("[]", "chaos.faults.on: [] should be non-empty"),
        ('["poll", "poll"]', "chaos.faults.on: ['poll', 'poll'] has non-unique elements"),
    ],
)
def test_a_bad_mix_step_is_named(tmp_path: Path, on: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, f"[chaos]\nfaults = {{ rate = 0.5, on = {on} }}\n")
    assert message in str(refused.value)


def test_a_fault_step_is_checked_in_python_too() -> None:
    with pytest.raises(ValueError, match="fault on 'later'"):
        Fault(1, "drop", on="later")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"faults\.on: .later. given"):
        FaultMix(rate=0.5, on=("later",))  # type: ignore[arg-type]


def test_the_schema_lists_exactly_the_fault_steps() -> None:
    schema = json.loads(resources.files("mock_server").joinpath("config.schema.json").read_text())
    assert tuple(schema["$defs"]["fault_step"]["enum"]) == FAULT_STEPS
