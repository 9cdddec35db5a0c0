"""The live report on hand-written journals: per client and per job, the broken
exchanges by ``seq``, properties that need a result not judged, and what the journal's
bound dropped."""

from __future__ import annotations

from typing import Any

from mock_server.report.live import live_report
from mock_server.report.properties import NEEDS_RESULT
from tests.mock_server.report.journals import careful, poll, submit


def numbered(
    entries: list[dict[str, Any]], first: int = 1, client: str = "A"
) -> list[dict[str, Any]]:
    return [{**e, "seq": first + i, "client": client} for i, e in enumerate(entries)]


def test_a_careful_client_breaks_nothing_and_what_needs_a_result_is_not_judged() -> None:
    report = live_report(numbered(careful()))
    assert report["broken"] is False
    assert report["journal"] == {
        "entries": 5,
        "first_seq": 1,
        "last_seq": 5,
        "dropped": 0,
        "missing": [],
    }
    (client,) = report["clients"]
    assert client["client"] == "A" and client["exchanges"] == 5 and client["incomplete"] is None
    assert client["properties"]["finishes"] == {"state": "not_judged", "why": NEEDS_RESULT}
    assert client["properties"]["respects_poll_floor"]["state"] == "held"
    (job,) = client["jobs"]
    assert job["id"] == "J1" and job["end"] == "SUCCESS" and job["seqs"] == [1, 2, 3, 4, 5]


def test_broken_properties_name_their_exchanges_by_seq_per_client_and_per_job() -> None:
    hasty = numbered([submit(0.0, "J2"), poll(0.1, "J2"), poll(0.2, "J2")], first=6, client="B")
    report = live_report(numbered(careful()) + hasty)
    assert report["broken"] is True
    fine, eager = report["clients"]
    assert fine["broken"] is False
    floor = eager["properties"]["respects_poll_floor"]
    assert floor["state"] == "broken" and floor["seqs"] == [7, 8]
    assert eager["jobs"][0]["properties"]["respects_poll_floor"]["seqs"] == [7, 8]


def test_the_poll_floor_and_deadline_are_the_callers() -> None:
    entries = numbered(careful())
    tight = live_report(entries, poll_floor=2.0)
    assert tight["clients"][0]["properties"]["respects_poll_floor"]["state"] == "broken"
    assert tight["poll_floor"] == 2.0


def test_a_cross_job_property_is_broken_on_the_client_not_on_either_job() -> None:
    repost = numbered([submit(0.0, "J1"), poll(1.0, "J1", status=503), submit(2.0, "J2")])
    (client,) = live_report(repost)["clients"]
    assert client["properties"]["submits_once"]["seqs"] == [1, 3]
    assert all(j["properties"]["submits_once"]["state"] != "broken" for j in client["jobs"])
    assert client["broken"] is True


def test_refused_submits_before_a_job_belong_to_it() -> None:
    entries = numbered([submit(0.0, None, status=429, retry_after=5), *careful(start=1.0)])
    (client,) = live_report(entries)["clients"]
    (job,) = client["jobs"]
    assert job["seqs"][0] == 1
    assert job["properties"]["honours_retry_after"]["seqs"] == [1, 2]


def test_one_client_by_its_id() -> None:
    entries = numbered(careful()) + numbered(careful("J9"), first=6, client="B")
    report = live_report(entries, client="B")
    assert [c["client"] for c in report["clients"]] == ["B"]
    assert live_report(entries, client="nobody")["clients"] == []


def test_a_dropped_submit_is_said_and_the_gap_counted() -> None:
    tail = numbered(careful()[1:], first=40)  # seq 1 to 39 fell out of the journal
    report = live_report(tail)
    assert report["journal"]["dropped"] == 39 and report["journal"]["missing"] == [[1, 39]]
    (client,) = report["clients"]
    assert client["jobs"][0]["submit_seen"] is False
    assert "dropped 39 entries" in client["incomplete"]
    assert "--journal-size" in client["incomplete"]


def test_a_gap_inside_the_journal_is_counted_too() -> None:
    entries = numbered(careful())
    del entries[2]
    assert live_report(entries)["journal"]["missing"] == [[3, 3]]


def test_an_empty_journal_is_an_empty_report() -> None:
    report = live_report([])
    assert report["clients"] == [] and report["broken"] is False
    assert report["journal"]["first_seq"] is None


def test_a_download_sent_with_no_key_goes_with_the_client_of_its_job() -> None:
    entries = numbered(careful())
    for download in entries[3:]:
        download["client"] = None
    (client,) = live_report(entries)["clients"]
    assert client["client"] == "A" and client["exchanges"] == 5
    assert client["properties"]["fetches_every_image"]["state"] == "held"
    stray = numbered([submit(0.0, "J7")], first=6, client="B")
    stray[0].update(client=None, path="/images/unknown/0.png", method="GET", job_id=None)
    report = live_report(entries + stray)
    assert [c["client"] for c in report["clients"]] == ["A", None]
