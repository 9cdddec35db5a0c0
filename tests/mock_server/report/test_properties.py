"""Each client property on small hand-written journals: held on a careful client's
traffic, broken (naming the exchanges) on the traffic of a client with the bug it is
about, and not judged (saying why) when its occasion never arose or it needs what the
client returned."""

from __future__ import annotations

from typing import Any

import pytest

from mock_server.report import PROPERTIES, ClientResult, Evidence, Verdict, client_property, judge
from mock_server.report.properties import NEEDS_RESULT
from tests.mock_server.report.journals import BODY, PNG, careful, download, poll, submit

TWO_IMAGES = ClientResult([PNG, PNG])


def verdict(
    name: str,
    exchanges: list[dict[str, Any]],
    result: ClientResult | None = None,
    *,
    poll_floor: float = 1.0,
    deadline: float = 30.0,
) -> Verdict:
    return judge(Evidence(exchanges, poll_floor, deadline, result), [name])[name]


def test_the_registry_holds_the_built_in_properties_in_their_order() -> None:
    assert list(PROPERTIES)[:13] == [
        "returns_every_sample",
        "surfaces_failure",
        "surfaces_lost_submit",
        "honours_retry_after",
        "respects_poll_floor",
        "gives_up_at_deadline",
        "submits_once",
        "fetches_every_image",
        "no_poll_after_final",
        "no_poll_after_gone",
        "sends_its_key",
        "no_duplicate_submit",
        "finishes",
    ]


def test_a_careful_client_breaks_nothing_and_traffic_alone_judges_no_result() -> None:
    with_result = judge(Evidence(careful(), result=TWO_IMAGES))
    assert not [n for n, v in with_result.items() if v.state == "broken"]
    live = judge(Evidence(careful()))
    assert not [n for n, v in live.items() if v.state == "broken"]
    for name in ("returns_every_sample", "finishes"):
        assert live[name] == Verdict("not_judged", NEEDS_RESULT)


# returns_every_sample


def test_every_image_returned_holds() -> None:
    assert verdict("returns_every_sample", careful(), TWO_IMAGES).state == "held"


def test_one_image_short_is_broken_at_the_success() -> None:
    got = verdict("returns_every_sample", careful(), ClientResult([PNG]))
    assert got.state == "broken" and "returned 1 image(s) for 2 sample(s)" in got.why
    assert got.exchanges == (2,)


def test_bytes_that_are_no_png_are_broken() -> None:
    got = verdict("returns_every_sample", careful(), ClientResult([PNG, b"<html>"]))
    assert got.state == "broken" and "other than the PNG bytes" in got.why


def test_an_error_after_a_success_is_broken_unless_a_download_failed() -> None:
    error = ClientResult(None, error="RuntimeError('boom')")
    got = verdict("returns_every_sample", careful(), error)
    assert got.state == "broken"
    assert "raised RuntimeError('boom') on a job that succeeded" in got.why
    failed = [*careful()[:4], download(2.2, index=1, status=500)]
    assert verdict("returns_every_sample", failed, error).state == "held"


def test_giving_up_at_the_first_429_is_broken_a_reason_to_fail_is_not() -> None:
    crash = ClientResult(None, error="HTTPStatusError('429')")
    refused = [submit(0.0, None, status=429, retry_after=1)]
    got = verdict("returns_every_sample", refused, crash)
    assert got.state == "broken" and "gave no reason to fail" in got.why
    assert got.exchanges == (0,)
    tried = [*refused, submit(1.0, None, status=429, retry_after=1)]
    assert verdict("returns_every_sample", tried, crash).state == "not_judged"
    failed = [submit(0.0), poll(1.0, answer="FAILURE")]
    assert verdict("returns_every_sample", failed, crash).state == "not_judged"


def test_a_401_on_a_poll_is_no_reason_to_fail() -> None:
    dropped_key = [submit(0.0), poll(1.0, status=401)]
    crash = ClientResult(None, error="HTTPStatusError('401')")
    assert verdict("returns_every_sample", dropped_key, crash).state == "broken"


# surfaces_failure


def test_failure_must_raise_with_the_servers_message() -> None:
    failed = [submit(0.0), poll(1.0, answer="FAILURE", error="out of GPU memory")]
    held = ClientResult(None, error="JobFailed('out of GPU memory')")
    assert verdict("surfaces_failure", failed, held).state == "held"
    vague = verdict("surfaces_failure", failed, ClientResult(None, error="JobFailed('oops')"))
    assert vague.state == "broken" and "without the server's message" in vague.why
    quiet = verdict("surfaces_failure", failed, ClientResult([]))
    assert quiet.state == "broken" and quiet.exchanges == (1,)
    assert verdict("surfaces_failure", failed).why == NEEDS_RESULT
    assert verdict("surfaces_failure", careful(), TWO_IMAGES).state == "not_judged"


# surfaces_lost_submit


def test_a_lost_submit_must_raise() -> None:
    lost = [submit(0.0, "J1", dropped=True)]
    assert verdict("surfaces_lost_submit", lost, ClientResult(None, error="lost")).state == "held"
    got = verdict("surfaces_lost_submit", lost, ClientResult([]))
    assert got.state == "broken" and got.exchanges == (0,)
    five_hundred = [submit(0.0, "J1", status=500)]
    assert verdict("surfaces_lost_submit", five_hundred, ClientResult([])).state == "broken"
    assert verdict("surfaces_lost_submit", careful(), TWO_IMAGES).state == "not_judged"


# honours_retry_after


def test_a_request_before_retry_after_is_broken() -> None:
    waited = [submit(0.0, None, status=429, retry_after=3), *careful(start=3.0)]
    assert verdict("honours_retry_after", waited).state == "held"
    hasty = [submit(0.0, None, status=429, retry_after=3), *careful(start=0.5)]
    got = verdict("honours_retry_after", hasty)
    assert got.state == "broken" and got.exchanges == (0, 1)
    assert "0.5 s after a 429 with Retry-After 3" in got.why
    assert verdict("honours_retry_after", careful()).state == "not_judged"


def test_a_retry_after_that_never_arrived_binds_nobody() -> None:
    lost = [poll(0.0, dropped=True, retry_after=5), poll(1.0)]
    assert verdict("honours_retry_after", lost).state == "not_judged"


# respects_poll_floor


def test_polls_of_one_job_closer_than_the_floor_are_broken() -> None:
    assert verdict("respects_poll_floor", careful()).state == "held"
    eager = [submit(0.0), poll(0.1), poll(0.2), poll(0.3, answer="SUCCESS")]
    got = verdict("respects_poll_floor", eager)
    assert got.state == "broken" and got.exchanges == (1, 2, 3)
    two_jobs = [submit(0.0, "A"), submit(0.0, "B"), poll(1.0, "A"), poll(1.1, "B"), poll(2.0, "A")]
    assert verdict("respects_poll_floor", two_jobs).state == "held"
    assert verdict("respects_poll_floor", [submit(0.0), poll(1.0)]).state == "not_judged"


# gives_up_at_deadline


def _stuck(until: float) -> list[dict[str, Any]]:
    return [submit(0.0), *(poll(float(t)) for t in range(1, int(until) + 1))]


def test_asking_past_the_deadline_is_broken() -> None:
    gave_up = ClientResult(None, error="TimeoutError()")
    assert verdict("gives_up_at_deadline", _stuck(30), gave_up, deadline=30).state == "held"
    got = verdict("gives_up_at_deadline", _stuck(40), gave_up, deadline=30)
    assert got.state == "broken" and "kept going 40 s, past its 30 s deadline" in got.why
    assert got.exchanges == tuple(range(32, 41))
    assert verdict("gives_up_at_deadline", _stuck(30), deadline=30).state == "held"
    assert verdict("gives_up_at_deadline", _stuck(40), deadline=30).state == "broken"
    quiet = verdict("gives_up_at_deadline", _stuck(30), ClientResult([]), deadline=30)
    assert quiet.state == "broken" and "for a job that never ended" in quiet.why
    assert verdict("gives_up_at_deadline", careful()).state == "not_judged"


# submits_once


def test_a_second_submit_before_the_first_job_ended_is_broken() -> None:
    two_generations = careful("A") + careful("B", start=5.0)
    assert verdict("submits_once", two_generations).state == "held"
    repost = [submit(0.0, "A"), poll(1.0, "A", status=503), submit(2.0, "B")]
    got = verdict("submits_once", repost)
    assert got.state == "broken" and got.exchanges == (0, 2)
    assert "accepted, before its job ended" in got.why
    after_lost = [submit(0.0, "A", dropped=True), submit(1.0, "B")]
    got = verdict("submits_once", after_lost)
    assert got.state == "broken"
    assert "submitted again after a submit whose answer was lost had made job A" in got.why
    other_prompt = {**BODY, "prompt": "a cat"}
    side_by_side = [submit(0.0, "A"), submit(0.1, "B", body=other_prompt), *careful("A", 1.0)[1:]]
    assert verdict("submits_once", side_by_side).state == "held"  # two generations at once
    refused_first = [submit(0.0, None, status=429, retry_after=1), submit(1.0, "A")]
    assert verdict("submits_once", refused_first).state == "held"
    assert verdict("submits_once", refused_first[:1]).state == "not_judged"


# fetches_every_image


def test_an_image_url_never_fetched_is_broken() -> None:
    assert verdict("fetches_every_image", careful()).state == "held"
    first_only = careful()[:4]
    got = verdict("fetches_every_image", first_only)
    assert got.state == "broken" and got.exchanges == (2,)
    assert "fetched 1 of the 2 images" in got.why and "/images/J1/1.png" in got.why
    gave_up = [*careful()[:3], download(2.1, status=410)]
    assert verdict("fetches_every_image", gave_up).state == "not_judged"
    assert verdict("fetches_every_image", [submit(0.0)]).state == "not_judged"


# no_poll_after_final, no_poll_after_gone


def test_a_poll_after_the_final_answer_is_broken() -> None:
    assert verdict("no_poll_after_final", careful()).state == "held"
    again = [*careful(), poll(3.0, answer="SUCCESS")]
    got = verdict("no_poll_after_final", again)
    assert got.state == "broken" and got.exchanges == (2, 5)
    at_once = [submit(0.0, status=200, answer="SUCCESS"), poll(1.0, answer="SUCCESS")]
    assert verdict("no_poll_after_final", at_once).state == "broken"
    lost_final = [submit(0.0), poll(1.0, answer="SUCCESS", dropped=True)]
    lost_final.append(poll(2.0, answer="SUCCESS"))
    assert verdict("no_poll_after_final", lost_final).state == "held"
    assert verdict("no_poll_after_final", [submit(0.0), poll(1.0)]).state == "not_judged"


def test_a_poll_after_a_404_or_410_is_broken() -> None:
    expired = [submit(0.0), poll(1.0, status=410)]
    assert verdict("no_poll_after_gone", expired).state == "held"
    got = verdict("no_poll_after_gone", [*expired, poll(2.0, status=410), poll(3.0, status=410)])
    assert got.state == "broken" and got.exchanges == (1, 2, 3)
    assert verdict("no_poll_after_gone", careful()).state == "not_judged"


# sends_its_key


def test_a_status_request_without_the_key_is_broken() -> None:
    assert verdict("sends_its_key", careful()).state == "held"
    keyless = careful()
    keyless[2] = {**keyless[2], "client": None, "status": 401}
    got = verdict("sends_its_key", keyless)
    assert got.state == "broken" and got.exchanges == (2,)
    assert "1 status request(s) without its API key" in got.why
    assert verdict("sends_its_key", [submit(0.0)]).state == "not_judged"


# no_duplicate_submit


def test_the_same_body_again_while_its_job_was_abandoned_is_broken() -> None:
    assert verdict("no_duplicate_submit", careful("A") + careful("B", start=5.0)).state == "held"
    abandoned = [submit(0.0, "A"), poll(1.0, "A", dropped=True), *careful("B", start=2.0)]
    got = verdict("no_duplicate_submit", abandoned)
    assert got.state == "broken" and got.exchanges == (0, 2)
    other_body = [submit(0.0, "A"), submit(0.5, "B", body={**BODY, "prompt": "a cat"})]
    assert verdict("no_duplicate_submit", other_body).state == "held"
    followed_later = [submit(0.0, "A"), submit(0.5, "B"), poll(1.0, "A", answer="FAILURE")]
    assert verdict("no_duplicate_submit", followed_later).state == "held"


# finishes


def test_a_client_the_harness_stopped_does_not_finish() -> None:
    assert verdict("finishes", careful(), TWO_IMAGES).state == "held"
    stopped = ClientResult(None, stopped="made more than 200 requests")
    assert verdict("finishes", careful(), stopped) == Verdict(
        "broken", "made more than 200 requests"
    )


# the registry


def test_a_users_property_is_judged_beside_the_built_in_ones() -> None:
    @client_property("at_most_ten_requests", "no more than ten requests")
    def _ten(evidence: Evidence) -> Verdict:
        many = len(evidence.exchanges) > 10
        return Verdict("broken", "too many") if many else Verdict("held")

    try:
        assert judge(Evidence(careful()))["at_most_ten_requests"].state == "held"
        assert judge(Evidence(careful() * 3))["at_most_ten_requests"].state == "broken"
    finally:
        del PROPERTIES["at_most_ten_requests"]


def test_an_unknown_property_is_named_with_the_closest() -> None:
    with pytest.raises(ValueError, match=r"'submit_once' \(did you mean 'submits_once'\?\)"):
        judge(Evidence(careful()), ["submit_once"])
