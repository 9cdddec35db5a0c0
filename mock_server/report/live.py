"""The live report: what each client of a running mock did, judged from the journal alone.

``live_report(entries, ...)`` groups the journal by client (the id of its API key, never
the key; a download, which needs no key, goes with the client of its job) and judges
each client's traffic with every registered property, then each of its jobs alone (the
job's exchanges and the refused submits just before it): the submit properties look
across jobs, so a client can break one that none of its jobs breaks. A property that
needs what the client returned is ``not_judged`` here. The journal keeps its last
entries only; the report says when the entries it would need were dropped (the
journal's numbers, ``seq``, start past 1 or skip some).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from mock_server.report import traffic
from mock_server.report.properties import PROPERTIES, Evidence, Verdict, judge

Entry = Mapping[str, Any]


def live_report(
    entries: Sequence[Entry],
    *,
    poll_floor: float = 1.0,
    deadline: float = 300.0,
    client: str | None = None,
) -> dict[str, Any]:
    """The report as JSON: the journal's span and what it lost, then per client (all of
    them, or the one whose id is ``client``) its verdicts and its jobs' verdicts."""
    journal = _journal_span(entries)
    by_client: dict[str | None, list[Entry]] = {}
    for entry, who in zip(entries, _clients(entries), strict=True):
        by_client.setdefault(who, []).append(entry)
    chosen = [
        (name, traffic_of)
        for name, traffic_of in by_client.items()
        if client is None or name == client
    ]
    clients = [
        _client_report(name, exchanges, poll_floor, deadline, journal["dropped"])
        for name, exchanges in chosen
    ]
    return {
        "poll_floor": poll_floor,
        "deadline": deadline,
        "journal": journal,
        "broken": any(c["broken"] for c in clients),
        "properties": {name: p.description for name, p in PROPERTIES.items()},
        "clients": clients,
    }


def _clients(entries: Sequence[Entry]) -> list[str | None]:
    """Whose each exchange is: its key's client, or, for a request sent with no key (a
    download: image URLs need none), the client whose key made or polled its job."""
    owner: dict[str, str] = {}
    for entry in entries:
        job, who = traffic.job_of(entry), entry.get("client")
        if job is not None and who is not None:
            owner.setdefault(job, who)
    found = []
    for entry in entries:
        who = entry.get("client")
        job = traffic.job_of(entry)
        found.append(owner.get(job) if who is None and job is not None else who)
    return found


def _journal_span(entries: Sequence[Entry]) -> dict[str, Any]:
    """First and last ``seq``, how many entries are missing before and between them."""
    seqs = sorted(s for s in (e.get("seq") for e in entries) if isinstance(s, int))
    if not seqs:
        return {
            "entries": len(entries),
            "first_seq": None,
            "last_seq": None,
            "dropped": 0,
            "missing": [],
        }
    gaps = [[a + 1, b - 1] for a, b in pairwise(seqs) if b > a + 1]
    if seqs[0] > 1:
        gaps.insert(0, [1, seqs[0] - 1])
    return {
        "entries": len(entries),
        "first_seq": seqs[0],
        "last_seq": seqs[-1],
        "dropped": sum(b - a + 1 for a, b in gaps),
        "missing": gaps,
    }


def _verdicts(evidence: Evidence, seqs: Sequence[Any]) -> dict[str, dict[str, Any]]:
    return {name: _shown(v, seqs) for name, v in judge(evidence).items()}


def _shown(verdict: Verdict, seqs: Sequence[Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {"state": verdict.state, "why": verdict.why}
    if verdict.state == "broken":
        shown["seqs"] = [seqs[i] for i in verdict.exchanges]
    return shown


def _client_report(
    name: str | None,
    exchanges: list[Entry],
    poll_floor: float,
    deadline: float,
    dropped: int,
) -> dict[str, Any]:
    seqs = [e.get("seq") for e in exchanges]
    verdicts = _verdicts(Evidence(exchanges, poll_floor, deadline), seqs)
    jobs = [
        _job_report(job, exchanges, poll_floor, deadline)
        for job in traffic.jobs(exchanges).values()
    ]
    unseen = [j["id"] for j in jobs if not j["submit_seen"]]
    incomplete = None
    if dropped and unseen:
        incomplete = (
            f"the journal's bound dropped {dropped} entries, among them the submit of "
            f"{len(unseen)} job(s) of this client: their verdicts may miss what happened "
            "first (raise --journal-size, or GET /__mock/report sooner)"
        )
    return {
        "client": name,
        "exchanges": len(exchanges),
        "first_seq": seqs[0] if seqs else None,
        "last_seq": seqs[-1] if seqs else None,
        "broken": any(v["state"] == "broken" for v in verdicts.values())
        or any(j["broken"] for j in jobs),
        "incomplete": incomplete,
        "properties": verdicts,
        "jobs": jobs,
    }


def _job_report(
    job: traffic.Job, exchanges: list[Entry], poll_floor: float, deadline: float
) -> dict[str, Any]:
    indexes = list(job.exchanges)
    if job.submit is not None:  # the refused submits that led to it belong to it too
        before = job.submit - 1
        while before >= 0 and _refused_submit(exchanges[before]):
            indexes.insert(0, before)
            before -= 1
    own = [exchanges[i] for i in sorted(indexes)]
    seqs = [e.get("seq") for e in own]
    verdicts = _verdicts(Evidence(own, poll_floor, deadline), seqs)
    return {
        "id": job.id,
        "submit_seen": job.submit is not None,
        "end": _end(job, exchanges),
        "seqs": seqs,
        "broken": any(v["state"] == "broken" for v in verdicts.values()),
        "properties": verdicts,
    }


def _refused_submit(entry: Entry) -> bool:
    return traffic.step(entry) == "submit" and entry.get("job_id") is None


def _end(job: traffic.Job, exchanges: list[Entry]) -> str | None:
    """How the job ended for the client: SUCCESS, FAILURE, gone (404 or 410), or None."""
    if job.final is not None:
        return traffic.job_status(exchanges[job.final])
    return None if job.gone is None else "gone"
