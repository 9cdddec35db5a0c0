"""Before measuring: each server answers the workload with schema-valid bodies and
refuses invalid ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema

from bench.peers.inputs import compact
from bench.serve_throughput import POLL_KEY, SUBMIT_KEY
from bench.support.bodies import SUBMIT_BODY
from mock_server import contract
from mock_server.contract import SUBMIT_PATH


def _without(name: str) -> dict[str, Any]:
    return {k: v for k, v in SUBMIT_BODY.items() if k != name}


# Bodies each of which breaks one documented rule; every server must refuse each (4xx).
INVALID_PROBES: dict[str, bytes] = {
    **{
        name: compact(body).encode()
        for name, body in {
            "samples 9 (range)": {**SUBMIT_BODY, "samples": 9},
            "width as a string (type)": {**SUBMIT_BODY, "width": "1024"},
            "blank prompt (pattern)": {**SUBMIT_BODY, "prompt": "   "},
            "unknown adapter (enum)": {**SUBMIT_BODY, "ip_adapter": ["ip-adapter_sd15"]},
            "adapter, no image (if/then)": _without("ip_adapter_image"),
            "2 scales, 1 adapter (if/then)": {**SUBMIT_BODY, "ip_adapter_scale": "0.5, 0.5"},
            "no prompt (required)": _without("prompt"),
        }.items()
    },
    "not JSON": b'{"prompt": ',
}


@dataclass
class Check:
    name: str
    status: int | None
    ok: bool
    detail: str = ""


@dataclass
class Checks:
    server: str
    results: list[Check] = field(default_factory=list)

    @property
    def answers_correctly(self) -> bool:
        return all(c.ok for c in self.results if not c.name.startswith("invalid: "))

    @property
    def validates(self) -> bool:
        """No invalid body was accepted (a 2xx); unanswered probes are shown, not counted."""
        return not any(
            c.status is not None and c.status < 300
            for c in self.results
            if c.name.startswith("invalid: ")
        )


def _schema_errors(body: Any, definition: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(contract.response_schema(definition))
    return [e.message for e in validator.iter_errors(body)]


def check_answer(
    response: httpx.Response,
    statuses: Sequence[int],
    definitions: Mapping[int, str],
    want_status: str,
) -> tuple[bool, str]:
    """Whether an answer has an expected HTTP status and a schema-valid body."""
    if response.status_code not in statuses:
        return False, f"HTTP {response.status_code}: {response.text[:200]}"
    try:
        body = response.json()
    except ValueError:
        return False, f"not JSON: {response.text[:200]}"
    errors = _schema_errors(body, definitions[response.status_code])
    if errors:
        return False, "; ".join(errors)[:300]
    if body.get("status") != want_status:
        return False, f"status {body.get('status')!r}, not {want_status}"
    return True, ""


PROBE_TIMEOUT_S = 5.0


def check_server(name: str, base: str, submit_query: str, poll_path: str) -> Checks:
    """The workload's answers (schema-valid) and the refusals of invalid bodies.

    An invalid body must get a 4xx; a server that answers one with 2xx does not validate
    (and is no fair peer). No answer within PROBE_TIMEOUT_S is recorded as such.
    """
    checks = Checks(name)
    headers = {"API-Key": SUBMIT_KEY, "Content-Type": "application/json"}
    submit_url = base + SUBMIT_PATH + submit_query
    with httpx.Client(timeout=30.0) as http:
        answer = http.post(submit_url, content=compact(SUBMIT_BODY), headers=headers)
        ok, detail = check_answer(answer, (200, 202), {200: "Success", 202: "Pending"}, "PENDING")
        checks.results.append(Check("valid submit", answer.status_code, ok, detail))
        answer = http.get(base + poll_path, headers={"API-Key": POLL_KEY})
        ok, detail = check_answer(answer, (200,), {200: "StatusResponse"}, "SUCCESS")
        checks.results.append(Check("poll", answer.status_code, ok, detail))
    probes: list[tuple[str, bytes, dict[str, str]]] = [
        ("no API key", compact(SUBMIT_BODY).encode(), {"Content-Type": "application/json"}),
        *((f"invalid: {probe}", body, headers) for probe, body in INVALID_PROBES.items()),
    ]
    for probe, body, probe_headers in probes:
        # A client of its own each: a probe left unanswered must not hold up the next.
        with httpx.Client(timeout=PROBE_TIMEOUT_S) as http:
            try:
                answer = http.post(submit_url, content=body, headers=probe_headers)
            except httpx.TimeoutException:
                detail = f"no answer within {PROBE_TIMEOUT_S:.0f} s"
                checks.results.append(Check(probe, None, False, detail))
                continue
        wanted = (
            answer.status_code == 401
            if probe == "no API key"
            else (400 <= answer.status_code < 500)
        )
        checks.results.append(Check(probe, answer.status_code, wanted, answer.text[:200]))
    return checks


def create_ipmock_job(base: str) -> str:
    answer = httpx.post(
        base + SUBMIT_PATH, content=compact(SUBMIT_BODY), headers={"API-Key": POLL_KEY}
    )
    if answer.status_code not in (200, 202):
        raise RuntimeError(f"ipmock: submit answered {answer.status_code}: {answer.text}")
    return str(answer.json()["id"])
