"""The fuzzer catches naive clients, each with the smallest flow that shows its bug."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, find, settings
from hypothesis import strategies as st

from contract_tests.flows import Flow
from contract_tests.properties import ClientContractViolation, FlowContext, check_client
from contract_tests.strategies import server_flows

SUBMIT = "/sdxl/text2image/v1"


def _poll_path(job_id: str) -> str:
    return f"{SUBMIT}/status/{job_id}"


def _download(ctx: FlowContext, body: dict[str, Any]) -> list[bytes]:
    return [ctx.http.get(url).content for url in body.get("download_urls", [])]


def polls_forever(ctx: FlowContext) -> list[bytes]:
    """Careful about everything except giving up."""
    headers = {"API-Key": ctx.api_key}
    while (submitted := ctx.http.post(SUBMIT, json=ctx.request, headers=headers)).status_code in (
        429,
        503,
    ):
        ctx.sleep(float(submitted.headers.get("retry-after", 1)))
    body = submitted.json()
    while body["status"] == "PENDING":
        ctx.sleep(ctx.poll_floor)
        try:
            polled = ctx.http.get(_poll_path(body["id"]), headers=headers)
        except httpx.TransportError:
            continue
        if polled.status_code == 200:
            body = polled.json()
        else:
            ctx.sleep(float(polled.headers.get("retry-after", 1)))
    if body["status"] == "FAILURE":
        raise RuntimeError(body["error"])
    return _download(ctx, body)


def failure_as_success(ctx: FlowContext) -> list[bytes]:
    """Treats any final answer as success: a FAILURE comes back as no images."""
    headers = {"API-Key": ctx.api_key}
    deadline = ctx.monotonic() + ctx.deadline
    body: dict[str, Any] = {"status": "PENDING"}
    while True:
        submitted = ctx.http.post(SUBMIT, json=ctx.request, headers=headers)
        if submitted.status_code not in (429, 503):
            body = submitted.json()
            break
        ctx.sleep(float(submitted.headers.get("retry-after", 1)))
    while body["status"] == "PENDING" and ctx.monotonic() < deadline:
        ctx.sleep(ctx.poll_floor)
        try:
            polled = ctx.http.get(_poll_path(body["id"]), headers=headers)
        except httpx.TransportError:
            continue
        if polled.status_code == 200:
            body = polled.json()
        else:
            ctx.sleep(float(polled.headers.get("retry-after", 1)))
    if body["status"] == "PENDING":
        raise TimeoutError("deadline")
    return _download(ctx, body)


def crashes_on_429(ctx: FlowContext) -> list[bytes]:
    """Every non-2xx answer is fatal."""
    headers = {"API-Key": ctx.api_key}
    deadline = ctx.monotonic() + ctx.deadline
    body = ctx.http.post(SUBMIT, json=ctx.request, headers=headers).raise_for_status().json()
    while body["status"] == "PENDING":
        if ctx.monotonic() > deadline:
            raise TimeoutError("deadline")
        ctx.sleep(ctx.poll_floor)
        body = ctx.http.get(_poll_path(body["id"]), headers=headers).raise_for_status().json()
    if body["status"] == "FAILURE":
        raise RuntimeError(body["error"])
    return _download(ctx, body)


def reposts_on_poll_error(ctx: FlowContext) -> list[bytes]:
    """Starts over with a new submit when a poll fails: a double charge."""
    headers = {"API-Key": ctx.api_key}
    deadline = ctx.monotonic() + ctx.deadline
    while ctx.monotonic() < deadline:
        submitted = ctx.http.post(SUBMIT, json=ctx.request, headers=headers)
        if submitted.status_code in (429, 503):
            ctx.sleep(float(submitted.headers.get("retry-after", 1)))
            continue
        body = submitted.json()
        try:
            while body["status"] == "PENDING" and ctx.monotonic() < deadline:
                ctx.sleep(ctx.poll_floor)
                polled = ctx.http.get(_poll_path(body["id"]), headers=headers)
                if polled.status_code == 429:
                    ctx.sleep(float(polled.headers.get("retry-after", 1)))
                    continue
                body = polled.raise_for_status().json()
        except httpx.HTTPError:
            continue  # the bug: submit again
        if body["status"] == "FAILURE":
            raise RuntimeError(body["error"])
        if body["status"] == "SUCCESS":
            return _download(ctx, body)
    raise TimeoutError("deadline")


def resubmits_when_the_submit_fails(ctx: FlowContext) -> list[bytes]:
    """Careful about polls, but sends the submit again when its answer is lost or a 5xx:
    the first submit may have made a job, so this one pays twice."""
    headers = {"API-Key": ctx.api_key}
    deadline = ctx.monotonic() + ctx.deadline
    while True:
        try:
            submitted = ctx.http.post(SUBMIT, json=ctx.request, headers=headers)
        except httpx.TransportError:
            ctx.sleep(ctx.poll_floor)
            continue  # the bug
        if submitted.status_code in (429, 500, 503):  # the bug: 500 came after the job
            ctx.sleep(float(submitted.headers.get("retry-after", 1)))
            continue
        break
    body = submitted.json()
    while body["status"] == "PENDING":
        if ctx.monotonic() > deadline:
            raise TimeoutError("deadline")
        ctx.sleep(ctx.poll_floor)
        try:
            polled = ctx.http.get(_poll_path(body["id"]), headers=headers)
        except httpx.TransportError:
            continue
        if polled.status_code == 200:
            body = polled.json()
        else:
            ctx.sleep(float(polled.headers.get("retry-after", 1)))
    if body["status"] == "FAILURE":
        raise RuntimeError(body["error"])
    return _download(ctx, body)


def trusts_every_download(ctx: FlowContext) -> list[bytes]:
    """Careful about submits and polls, but keeps whatever a download answered (a 503's
    error body as the image) and lets a dropped download end it uncaught."""
    headers = {"API-Key": ctx.api_key}
    deadline = ctx.monotonic() + ctx.deadline
    try:
        submitted = ctx.http.post(SUBMIT, json=ctx.request, headers=headers)
    except httpx.TransportError as exc:
        raise RuntimeError("the submit's answer was lost") from exc
    while submitted.status_code in (429, 503):
        ctx.sleep(float(submitted.headers.get("retry-after", 1)))
        submitted = ctx.http.post(SUBMIT, json=ctx.request, headers=headers)
    body = submitted.json()
    if submitted.status_code >= 400:
        raise RuntimeError(body["error"])
    while body["status"] == "PENDING":
        if ctx.monotonic() > deadline:
            raise TimeoutError("deadline")
        ctx.sleep(ctx.poll_floor)
        try:
            polled = ctx.http.get(_poll_path(body["id"]), headers=headers)
        except httpx.TransportError:
            continue
        if polled.status_code == 200:
            body = polled.json()
        else:
            ctx.sleep(float(polled.headers.get("retry-after", 1)))
    if body["status"] == "FAILURE":
        raise RuntimeError(body["error"])
    return _download(ctx, body)


POLL_FLOWS = server_flows(submit_faults=False, max_download_faults=0)
"""The flows of the clients whose bugs are in submit retries and polling."""


def minimal_violation(
    client: Callable[[FlowContext], list[bytes]], flows: st.SearchStrategy[Flow] = POLL_FLOWS
) -> tuple[Flow, str]:
    def violates(flow: Flow) -> bool:
        try:
            check_client(flow, client, poll_floor=1.0, deadline=60.0)
        except ClientContractViolation:
            return True
        return False

    flow = find(
        flows,
        violates,
        settings=settings(
            max_examples=3000, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        ),
    )
    with pytest.raises(ClientContractViolation) as caught:
        check_client(flow, client, poll_floor=1.0, deadline=60.0)
    return flow, str(caught.value)


def test_polls_forever_is_caught_on_a_job_that_never_ends() -> None:
    flow, message = minimal_violation(polls_forever)
    assert "finishes: still going" in message
    assert flow == Flow(pending_polls=None, error=flow.error, request=flow.request)


def test_failure_as_success_is_caught() -> None:
    flow, message = minimal_violation(failure_as_success)
    assert "surfaces_failure" in message
    assert (flow.outcome, flow.pending_polls, flow.faults, flow.submit_refusals) == (
        "failure",
        0,
        (),
        (),
    )


def test_crash_on_429_is_caught_with_one_refusal() -> None:
    flow, message = minimal_violation(crashes_on_429)
    assert "returns_every_sample: raised" in message
    faults = len(flow.submit_refusals) + len(flow.faults)
    assert faults == 1
    assert flow.outcome == "success"


def test_repost_on_poll_error_is_caught_as_a_double_charge() -> None:
    flow, message = minimal_violation(reposts_on_poll_error)
    assert "submits_once" in message
    assert flow.submit_refusals == ()
    assert len(flow.faults) == 1
    assert flow.faults[0].kind in ("busy", "server-error", "drop")
    assert "replay: Flow.from_json(" in message
    replayed = Flow.from_json(message.split("replay: Flow.from_json(")[1].rstrip(")")[1:-1])
    assert replayed == flow


def test_resubmit_after_a_lost_submit_answer_is_caught_as_a_double_charge() -> None:
    flow, message = minimal_violation(resubmits_when_the_submit_fails, server_flows())
    assert "submits_once: submitted again after a submit whose answer" in message
    assert "had made job" in message
    (fault,) = flow.faults
    assert (fault.on, fault.kind) in {("submit", "drop"), ("submit", "server-error")}
    assert flow.submit_refusals == ()
    assert "submit accepted, then" in message  # the flow in words names the lost answer


def test_a_download_taken_whatever_it_answered_is_caught() -> None:
    flow, message = minimal_violation(trusts_every_download, server_flows())
    assert "returns_every_sample" in message
    (fault,) = flow.faults
    assert fault.on == "download"
    assert "download request" in message
