"""The pure parts of bench.peers: the peers' inputs, the checks, the goal arithmetic.

No server, no network, no npm: the side-by-side run itself is a benchmark, run by hand.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from bench.peers.checks import INVALID_PROBES, Check, Checks, check_answer
from bench.peers.cli import _parse_only
from bench.peers.inputs import (
    FAILURE_CODES,
    PEER_JOB_ID,
    PENDING_BODY,
    failure_body,
    prism_document,
    success_body,
    wiremock_mappings,
)
from bench.peers.install import peers_installed, wiremock_jar
from bench.peers.load import Row, Run, make_row, verdicts
from bench.peers.servers import ipmock_env
from bench.serve_throughput import WrkResult
from bench.support import procfs
from bench.support.bodies import SUBMIT_BODY
from mock_server import contract
from tests.conftest import REPO

BENCH = REPO / "bench"
BASE = "http://127.0.0.1:4010"


def _valid(body: Any, definition: str) -> bool:
    validator = jsonschema.Draft202012Validator(contract.response_schema(definition))
    return validator.is_valid(body)


def _request_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(contract.request_schema())


def test_the_documented_answers_keep_the_contract() -> None:
    assert _valid(PENDING_BODY, "Pending")
    assert _valid(success_body(BASE), "Success")
    assert success_body(BASE)["download_urls"] == [f"{BASE}/images/{PEER_JOB_ID}/0.png"]
    for status in FAILURE_CODES:
        assert _valid(failure_body(status, "why"), "Failure")


def test_wiremock_submit_matches_the_request_schema_in_draft_2020_12() -> None:
    mappings = wiremock_mappings(contract.request_schema(), BASE)["mappings"]
    submit = mappings[0]
    assert submit["request"]["method"] == "POST"
    assert submit["request"]["urlPath"] == "/sdxl/text2image/v1"
    [pattern] = submit["request"]["bodyPatterns"]
    assert pattern["schemaVersion"] == "V202012"
    assert json.loads(pattern["matchesJsonSchema"]) == contract.request_schema()
    assert submit["response"]["status"] == 202
    assert json.loads(submit["response"]["body"]) == PENDING_BODY


def test_wiremock_poll_and_refusals() -> None:
    mappings = wiremock_mappings(contract.request_schema(), BASE)["mappings"]
    by_name = {m["name"]: m for m in mappings}
    poll = by_name["poll"]
    assert poll["request"]["urlPathTemplate"] == "/sdxl/text2image/v1/status/{id}"
    assert json.loads(poll["response"]["body"]) == success_body(BASE)
    invalid = by_name["submit (invalid body)"]
    assert invalid["response"]["status"] == 400
    assert _valid(json.loads(invalid["response"]["body"]), "Failure")
    # The catch-alls lose to the real stubs (WireMock: a lower number wins).
    assert invalid["priority"] > by_name["POST without a key"]["priority"] > poll["priority"]
    assert by_name["POST without a key"]["request"]["headers"] == {"API-Key": {"absent": True}}
    assert by_name["POST without a key"]["response"]["status"] == 401
    for mapping in mappings:
        assert mapping["response"]["headers"] == {"Content-Type": "application/json"}


def test_the_prism_document_adds_examples_and_keeps_the_schemas() -> None:
    original = contract.openapi()
    document = prism_document(original, BASE)
    submit = document["paths"]["/sdxl/text2image/v1"]["post"]["responses"]
    status = document["paths"]["/sdxl/text2image/v1/status/{id}"]["get"]["responses"]
    assert submit["202"]["content"]["application/json"]["example"] == PENDING_BODY
    assert status["200"]["content"]["application/json"]["example"] == success_body(BASE)
    assert _valid(submit["400"]["content"]["application/json"]["example"], "Failure")
    assert document["components"] == original["components"]
    assert prism_document(original, BASE) == document  # the input is left alone

    def without_examples(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: without_examples(v) for k, v in node.items() if k != "example"}
        if isinstance(node, list):
            return [without_examples(v) for v in node]
        return node

    assert without_examples(document) == original


def test_every_invalid_probe_breaks_the_request_schema() -> None:
    validator = _request_validator()
    assert validator.is_valid(SUBMIT_BODY)
    for name, raw in INVALID_PROBES.items():
        if name == "not JSON":
            with pytest.raises(ValueError):
                json.loads(raw)
            continue
        assert not validator.is_valid(json.loads(raw)), name


def test_ipmock_env_drops_the_callers_settings_and_lifts_the_in_flight_cap() -> None:
    env = ipmock_env({"PATH": "/bin", "IPMOCK_STRICT": "1", "IPMOCK_PORT": "9"})
    assert env == {"PATH": "/bin", "IPMOCK_MAX_IN_FLIGHT": "0"}


def _wrk(rps: float, p99: float) -> Any:
    return WrkResult(rps, p99 / 2, p99, int(rps * 10), 0, 0)


def test_the_goal_uses_the_fastest_peer_and_the_lowest_peer_p99() -> None:
    rows = [
        Row("submit (POST)", "ipmock", _wrk(3000, 8.0)),
        Row("submit (POST)", "prism", _wrk(1000, 7.0)),
        Row("submit (POST)", "wiremock", _wrk(1900, 20.0)),
        Row("poll (GET)", "ipmock", _wrk(9000, 3.0)),
        Row("poll (GET)", "prism", _wrk(2000, 9.0)),
        Row("poll (GET)", "wiremock", _wrk(6000, 4.0)),
    ]
    submit, poll = verdicts(rows, ["prism", "wiremock"])
    assert (submit.best_rps_peer, submit.best_p99_peer) == ("wiremock", "prism")
    assert submit.rps_ratio == pytest.approx(3000 / 1900)
    assert submit.p99_ratio == pytest.approx(8.0 / 7.0)
    assert not submit.met  # fast enough, but its p99 is above prism's
    assert poll.met and poll.rps_ratio == pytest.approx(1.5)
    # A peer that does not validate is left out of the comparison.
    [alone] = verdicts(rows[:3], ["prism"])
    assert alone.best_rps_peer == "prism" and alone.met is False
    assert verdicts(rows[:1], ["prism", "wiremock"]) == []


def test_the_median_round_is_reported_with_its_cpu_time() -> None:
    runs = [Run(_wrk(rps, 1.0), cpu, 10.0) for rps, cpu in ((300, 3.0), (100, 1.0))]
    runs += [Run(_wrk(200, 3.0), 1.0, 10.0), Run(_wrk(400, 4.0), None, 10.0)]
    row = make_row("poll (GET)", "ipmock", runs)
    assert row.result.requests_per_s == 200
    assert row.rounds == (300, 100, 200, 400)
    assert row.cpu_us_per_request == pytest.approx(1.0 / 2000 * 1e6)  # 2000 requests
    assert row.cores == pytest.approx(0.1)
    alone = make_row("poll (GET)", "ipmock", runs[3:])
    assert alone.rounds == () and alone.cpu_us_per_request is None and alone.cores is None


def test_group_cpu_seconds_adds_up_one_process_group(tmp_path: Path) -> None:
    def stat(pid: int, comm: str, pgrp: int, utime: int, stime: int) -> None:
        # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt
        # cmajflt utime stime ...
        fields = ["S", "1", str(pgrp), "1", "0", "-1", "0", "0", "0", "0", "0"]
        fields += [str(utime), str(stime), "0", "0"]
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(f"{pid} ({comm}) {' '.join(fields)}\n")

    ticks = os.sysconf("SC_CLK_TCK")
    stat(10, "java", 10, 3 * ticks, ticks)
    stat(11, "a (b) c", 10, ticks, 0)  # a name with spaces and parentheses
    stat(12, "wrk", 12, 50 * ticks, 0)
    assert procfs.group_cpu_seconds(10, tmp_path) == pytest.approx(5.0)
    assert procfs.group_cpu_seconds(99, tmp_path) == 0.0
    assert procfs.group_cpu_seconds(10, tmp_path / "absent") is None


def test_only() -> None:
    assert _parse_only("wiremock, ipmock") == ["ipmock", "wiremock"]
    with pytest.raises(Exception, match="subset"):
        _parse_only("ipmock,mockoon")


def test_check_answer_wants_the_status_and_a_schema_valid_body() -> None:
    def answer(status: int, body: Any) -> httpx.Response:
        return httpx.Response(status, json=body)

    defs = {200: "Success", 202: "Pending"}
    assert check_answer(answer(202, PENDING_BODY), (200, 202), defs, "PENDING")[0]
    ok, why = check_answer(answer(400, {}), (200, 202), defs, "PENDING")
    assert not ok and why.startswith("HTTP 400")
    ok, why = check_answer(
        answer(200, {"status": "SUCCESS", "download_urls": ["string"]}), (200,), defs, "SUCCESS"
    )
    assert not ok and "does not match" in why  # what Prism answers without examples
    ok, why = check_answer(answer(202, {"status": "PENDING"}), (202,), defs, "PENDING")
    assert not ok and "'id' is a required property" in why


def test_checks_count_an_accepted_invalid_body_not_a_silent_one() -> None:
    checks = Checks(
        "x",
        [
            Check("valid submit", 202, True),
            Check("invalid: not JSON", None, False, "no answer"),
        ],
    )
    assert checks.answers_correctly and checks.validates
    checks.results.append(Check("invalid: samples 9 (range)", 202, False))
    assert not checks.validates


def test_peers_installed_needs_the_pinned_files_and_both_peers(tmp_path: Path) -> None:
    source, home = tmp_path / "src", tmp_path / "home"
    source.mkdir()
    (source / "package.json").write_text('{"dependencies": {}}')
    (source / "package-lock.json").write_text("{}")
    assert not peers_installed(source, home)
    home.mkdir()
    for name in ("package.json", "package-lock.json"):
        (home / name).write_bytes((source / name).read_bytes())
    assert not peers_installed(source, home)  # nothing installed yet
    (home / "node_modules" / ".bin").mkdir(parents=True)
    (home / "node_modules" / ".bin" / "prism").write_text("")
    jar = home / "node_modules" / "wiremock" / "build" / "wiremock-standalone-3.13.2.jar"
    jar.parent.mkdir(parents=True)
    jar.write_text("")
    assert peers_installed(source, home)
    assert wiremock_jar(home) == jar
    (source / "package.json").write_text('{"dependencies": {"wiremock": "9"}}')
    assert not peers_installed(source, home)  # a new pin: install again


def test_the_pinned_package_json_pins_exact_versions() -> None:
    manifest = json.loads((BENCH / "peers" / "package.json").read_text())
    lock = json.loads((BENCH / "peers" / "package-lock.json").read_text())
    deps = manifest["dependencies"]
    assert set(deps) == {"@stoplight/prism-cli", "wiremock"}
    for name, version in deps.items():
        assert version[0].isdigit(), f"{name} {version} is a range"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
