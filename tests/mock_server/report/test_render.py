"""The live report as a table and as JUnit XML: every verdict shown, client-sent text
shown as text, the seqs that broke a property named."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from mock_server.report.live import live_report
from mock_server.report.render import junit_xml, plain, table
from tests.mock_server.report.journals import careful, poll, submit


def _report() -> dict[str, Any]:
    fine = [{**e, "seq": i + 1, "client": "good…ok·111111"} for i, e in enumerate(careful())]
    hasty = [submit(0.0, "J2"), poll(0.1, "J2"), poll(0.2, "J2")]
    bad = [{**e, "seq": i + 6, "client": "bad\x1b[2J…·222222"} for i, e in enumerate(hasty)]
    return live_report(fine + bad)


def test_the_table_shows_each_client_each_verdict_and_each_job() -> None:
    text = table(_report(), "http://127.0.0.1:8000")
    assert "journal: seq 1 to 8, nothing dropped" in text
    assert "client good…ok·111111: 5 exchange(s), 1 job(s)" in text
    assert "respects_poll_floor" in text and "BROKEN" in text and "[seq 7, 8]" in text
    assert "not judged  needs what the client returned" in text
    assert "job J1 (SUCCESS): nothing broken" in text
    assert "job J2 (no end seen): broken: respects_poll_floor [seq 7, 8]" in text
    assert "2 client(s), 1 with a broken property" in text


def test_client_sent_characters_that_would_act_are_written_out() -> None:
    text = table(_report(), "http://127.0.0.1:8000")
    assert "\x1b" not in text and "bad\\x1b[2J" in text
    assert plain("a\nb\u200bc") == "a\\nb\\u200bc"


def test_junit_has_a_case_per_client_and_property(tmp_path: Path) -> None:
    path = tmp_path / "report.xml"
    report = _report()
    junit_xml(report, path)
    suite = ET.parse(path).getroot()
    per_client = len(report["properties"])
    assert suite.get("tests") == str(2 * per_client)
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["respects_poll_floor"]
    assert "\x1b" not in path.read_text(encoding="utf-8")
    skipped = [c for c in suite.iter("testcase") if c.find("skipped") is not None]
    assert int(suite.get("skipped", "0")) == len(skipped) > 0


def test_an_empty_journal_says_so() -> None:
    text = table(live_report([]), "http://127.0.0.1:8000")
    assert "journal: empty" in text and "no client in the journal" in text
