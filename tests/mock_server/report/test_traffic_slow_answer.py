"""reason_to_fail counts a slow last answer (a delay fault) as time the client spent:
on the wall clock ``ipmock fuzz`` judges by, the answer arrives ``duration_ms`` after its
request was received."""

from __future__ import annotations

from mock_server.report import traffic
from tests.mock_server.report.journals import poll, submit


def test_a_slow_last_answer_spends_the_deadline() -> None:
    late = {**poll(1.0), "duration_ms": 1500.0}  # answered at 2.5 s
    assert traffic.reason_to_fail([submit(0.0), late], 3.0, 0.5) == "its deadline was spent"


def test_a_quick_last_answer_does_not() -> None:
    quick = {**poll(1.0), "duration_ms": 5.0}
    assert traffic.reason_to_fail([submit(0.0), quick], 3.0, 0.5) is None
