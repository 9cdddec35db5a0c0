"""The live report (``GET /__mock/report``'s JSON) for people and for CI: a table, and
JUnit XML (one test case per client and property)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_STATES = {"held": "held", "broken": "BROKEN", "not_judged": "not judged"}


def plain(text: object) -> str:
    """Client-sent text as a terminal or an XML file may show it: characters that would
    act (escapes, control characters) written as ``\\xNN``."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _seqs(verdict: Mapping[str, Any]) -> str:
    seqs = verdict.get("seqs") or []
    if not seqs:
        return ""
    shown = ", ".join(str(s) for s in seqs[:8]) + (", ..." if len(seqs) > 8 else "")
    return f" [seq {shown}]"


def _journal_line(report: Mapping[str, Any]) -> str:
    journal = report["journal"]
    if journal["first_seq"] is None:
        return "journal: empty"
    line = f"journal: seq {journal['first_seq']} to {journal['last_seq']}"
    if journal["dropped"]:
        return line + f", {journal['dropped']} entries dropped by its bound"
    return line + ", nothing dropped"


def table(report: Mapping[str, Any], base_url: str) -> str:
    """The report as lines to print: per client its properties, then its jobs."""
    lines = [
        f"ipmock report of {plain(base_url)}: {_journal_line(report)}; "
        f"poll floor {report['poll_floor']:g} s, deadline {report['deadline']:g} s"
    ]
    width = max((len(name) for name in report["properties"]), default=10)
    for client in report["clients"]:
        who = "no API key" if client["client"] is None else plain(client["client"])
        lines += [
            "",
            f"client {who}: {client['exchanges']} exchange(s), {len(client['jobs'])} job(s)",
        ]
        if client.get("incomplete"):
            lines.append(f"  note: {plain(client['incomplete'])}")
        for name, verdict in client["properties"].items():
            state = _STATES.get(verdict["state"], verdict["state"])
            why = plain(verdict["why"]) + _seqs(verdict)
            lines.append(f"  {name:<{width}}  {state:<10}  {why}".rstrip())
        for job in client["jobs"]:
            broken = [
                f"{name}{_seqs(v)}"
                for name, v in job["properties"].items()
                if v["state"] == "broken"
            ]
            end = job["end"] or "no end seen"
            said = "broken: " + "; ".join(broken) if broken else "nothing broken"
            unseen = "" if job["submit_seen"] else " (its submit is not in the journal)"
            lines.append(f"  job {plain(job['id'])} ({end}){unseen}: {said}")
    broken_clients = sum(1 for c in report["clients"] if c["broken"])
    lines += [
        "",
        f"{len(report['clients'])} client(s), {broken_clients} with a broken property"
        if report["clients"]
        else "no client in the journal",
    ]
    return "\n".join(lines)


def junit_xml(report: Mapping[str, Any], path: Path) -> None:
    """Write one test case per client and property: a failure when broken, skipped when
    not judged (with why)."""
    suite = ET.Element("testsuite", name="ipmock report")
    failures = skipped = tests = 0
    for client in report["clients"]:
        who = "no-api-key" if client["client"] is None else plain(client["client"])
        for name, verdict in client["properties"].items():
            tests += 1
            case = ET.SubElement(suite, "testcase", classname=f"client {who}", name=name)
            if verdict["state"] == "broken":
                failures += 1
                failure = ET.SubElement(case, "failure", message=plain(verdict["why"]))
                failure.text = plain(verdict["why"]) + _seqs(verdict)
            elif verdict["state"] == "not_judged":
                skipped += 1
                ET.SubElement(case, "skipped", message=plain(verdict["why"]))
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
