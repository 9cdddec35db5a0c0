"""The client properties: one registry that judges a client's journal, whoever ran it.

Three judges use it: the in-process fuzzer (``contract_tests.check_client``),
``ipmock fuzz`` (any program, any language) and the live report (``GET /__mock/report``,
``ipmock report``). Each property reads the exchanges (the server's answers say what
each job did) and, where it needs it, what the client handed back (``ClientResult``);
the live report has no result, so such a property answers ``not_judged`` there, never
``held``. A property whose occasion never arose (no FAILURE to surface, no Retry-After
to honour) is ``not_judged`` too, with why.

    returns_every_sample   SUCCESS gives exactly the images served, as PNG bytes; an
                           error only when the server gave a reason (a failed download, ...)
    surfaces_failure       FAILURE raises an error carrying the server's message
    surfaces_lost_submit   a submit whose answer was lost raises an error
    honours_retry_after    no request before Retry-After has passed
    respects_poll_floor    polls of one job at least ``poll_floor`` seconds apart
    gives_up_at_deadline   a job that never ends: no asking past the deadline, an error
    submits_once           no second submit of a request while the job it made was not yet
                           followed to its end (a resubmission: paid twice)
    fetches_every_image    every image URL of a SUCCESS fetched
    no_poll_after_final    no poll of a job after its final answer
    no_poll_after_gone     no poll of a job after a 404 or 410 for it
    sends_its_key          every status request carries the API key (none refused 401)
    no_duplicate_submit    no submit of the same body while its first job was never
                           followed to its end (a likely double charge)
    finishes               the harness did not have to stop it

Add your own with ``@client_property(name, description)`` over a function from
``Evidence`` to ``Verdict``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

from mock_server.contract import PNG_SIGNATURE
from mock_server.report import traffic
from mock_server.words import did_you_mean

_EPSILON = 1e-6

NEEDS_RESULT = "needs what the client returned; run it under ipmock fuzz or check_client"


@dataclass(frozen=True)
class ClientResult:
    """What the client handed back to its caller: known to the in-process fuzzer and to
    ``ipmock fuzz``, never to the live report."""

    images: list[bytes] | None
    """The images it returned or wrote; None if it failed."""
    error: str | None = None
    """Its error text (the exception's repr, or the tail of its stderr)."""
    stopped: str | None = None
    """Why the harness stopped it (too long, too many requests)."""


@dataclass(frozen=True)
class Evidence:
    """One client's traffic, and what it returned when that is known."""

    exchanges: Sequence[Mapping[str, Any]]
    """Journal entries (the ``/__mock/journal`` format), oldest first."""
    poll_floor: float = 1.0
    deadline: float = 300.0
    result: ClientResult | None = None
    """None: the traffic alone (the live report)."""


@dataclass(frozen=True)
class Verdict:
    state: Literal["held", "broken", "not_judged"]
    why: str = ""
    """For broken: what happened; for not_judged: why not."""
    exchanges: tuple[int, ...] = ()
    """Indexes into ``Evidence.exchanges`` of the exchanges that broke it."""


Judge = Callable[[Evidence], Verdict]


@dataclass(frozen=True)
class ClientProperty:
    name: str
    description: str
    judge: Judge


PROPERTIES: dict[str, ClientProperty] = {}
"""Every client property, built-in ones first, in the order they are reported."""


def client_property(name: str, description: str) -> Callable[[Judge], Judge]:
    """Register a property (a later one of the same name replaces it); the built-in
    ones use this too."""

    def register(judge: Judge) -> Judge:
        PROPERTIES[name] = ClientProperty(name, description, judge)
        return judge

    return register


def judge(evidence: Evidence, names: Iterable[str] | None = None) -> dict[str, Verdict]:
    """Each property's verdict on ``evidence`` (all of them, or those ``names``), in
    registry order; ValueError naming a property that is not registered."""
    chosen = list(PROPERTIES) if names is None else list(names)
    for name in chosen:
        if name not in PROPERTIES:
            raise ValueError(
                f"no client property {name!r}{did_you_mean(name, PROPERTIES)}; "
                f"known: {', '.join(PROPERTIES)}"
            )
    return {name: PROPERTIES[name].judge(evidence) for name in chosen}


def _held(why: str = "") -> Verdict:
    return Verdict("held", why)


def _broken(why: str, *exchanges: int) -> Verdict:
    return Verdict("broken", why, tuple(sorted(set(exchanges))))


def _not_judged(why: str) -> Verdict:
    return Verdict("not_judged", why)


def _shown(images: list[bytes] | None) -> str:
    return "nothing" if images is None else f"{len(images)} image(s)"


def _last_success(evidence: Evidence) -> int | None:
    successes = [i for i, e in enumerate(evidence.exchanges) if traffic.job_status(e) == "SUCCESS"]
    return successes[-1] if successes else None


@client_property(
    "returns_every_sample",
    "SUCCESS gives exactly the images served, as PNG bytes; an error only when the "
    "server gave a reason (a failed download, FAILURE, a lost submit, the deadline, ...)",
)
def _returns_every_sample(evidence: Evidence) -> Verdict:
    result = evidence.result
    if result is None:
        return _not_judged(NEEDS_RESULT)
    if result.stopped:
        return _not_judged("the harness stopped it (finishes says why)")
    exchanges = evidence.exchanges
    success = _last_success(evidence)
    if success is None:
        if result.error is None:
            return _not_judged("no job succeeded")
        reason = traffic.reason_to_fail(exchanges, evidence.deadline, evidence.poll_floor)
        if reason is not None:
            return _not_judged(f"no job succeeded: {reason}")
        last = len(exchanges) - 1
        said = outcome(exchanges[last]) if exchanges else "no request at all"
        return _broken(
            f"raised {result.error} though the server gave no reason to fail "
            f"(last answer: {said}, not tried again)",
            *([last] if exchanges else []),
        )
    if result.error is not None:
        if traffic.gave_up_on_a_download(exchanges):
            return _held("a failed download, surfaced")
        return _broken(f"raised {result.error} on a job that succeeded", success)
    wanted = len(traffic.image_paths(exchanges[success]))
    images = result.images
    if images is None or len(images) != wanted:
        return _broken(f"returned {_shown(images)} for {wanted} sample(s)", success)
    if not all(isinstance(i, bytes) and i.startswith(PNG_SIGNATURE) for i in images):
        return _broken("returned something other than the PNG bytes served", success)
    return _held()


@client_property("surfaces_failure", "FAILURE raises an error carrying the server's message")
def _surfaces_failure(evidence: Evidence) -> Verdict:
    failures = [i for i, e in enumerate(evidence.exchanges) if traffic.job_status(e) == "FAILURE"]
    if not failures:
        return _not_judged("no job ended in FAILURE")
    result = evidence.result
    if result is None:
        return _not_judged(NEEDS_RESULT)
    if result.stopped:
        return _not_judged("the harness stopped it (finishes says why)")
    failure = failures[-1]
    if result.error is None:
        return _broken(f"returned {_shown(result.images)} on a job that ended in FAILURE", failure)
    message = (traffic.answered(evidence.exchanges[failure]) or {}).get("error")
    if isinstance(message, str) and message not in result.error:
        return _broken(f"raised {result.error}, without the server's message {message!r}", failure)
    return _held()


@client_property("surfaces_lost_submit", "a submit whose answer was lost raises an error")
def _surfaces_lost_submit(evidence: Evidence) -> Verdict:
    lost = [i for i, e in enumerate(evidence.exchanges) if traffic.is_lost_submit(e)]
    if not lost:
        return _not_judged("no submit's answer was lost")
    result = evidence.result
    if result is None:
        return _not_judged(NEEDS_RESULT)
    if result.stopped:
        return _not_judged("the harness stopped it (finishes says why)")
    if result.error is None:
        return _broken(
            f"returned {_shown(result.images)} though the submit's answer was lost "
            "(the job may exist: say so, do not guess)",
            lost[0],
        )
    return _held()


@client_property("honours_retry_after", "no request before Retry-After has passed")
def _honours_retry_after(evidence: Evidence) -> Verdict:
    waits = 0
    broke: list[int] = []
    why = ""
    for index, (before, after) in enumerate(pairwise(evidence.exchanges)):
        wait = traffic.retry_after(before)
        if wait is None:
            continue
        waits += 1
        gap = after["at"] - before["at"]
        if gap < wait - _EPSILON:
            why = why or (
                f"sent {after['method']} {after['path']} {gap:g} s after a "
                f"{before['status']} with Retry-After {wait:g}"
            )
            broke += [index, index + 1]
    if broke:
        return _broken(why, *broke)
    return _held() if waits else _not_judged("no answer with Retry-After was followed by a request")


@client_property("respects_poll_floor", "polls of one job at least poll_floor seconds apart")
def _respects_poll_floor(evidence: Evidence) -> Verdict:
    last_poll: dict[str, int] = {}
    pairs = 0
    broke: list[int] = []
    why = ""
    floor = evidence.poll_floor
    for index, entry in enumerate(evidence.exchanges):
        if traffic.step(entry) != "poll":
            continue
        before = last_poll.get(entry["path"])
        last_poll[entry["path"]] = index
        if before is None:
            continue
        pairs += 1
        gap = entry["at"] - evidence.exchanges[before]["at"]
        if gap < floor - _EPSILON:
            why = why or f"polled {gap:g} s after the previous poll (floor {floor:g} s)"
            broke += [before, index]
    if broke:
        return _broken(why, *broke)
    return _held() if pairs else _not_judged("no job was polled twice")


@client_property(
    "gives_up_at_deadline",
    "a job that never ends: no asking past the deadline, and an error for it",
)
def _gives_up_at_deadline(evidence: Evidence) -> Verdict:
    exchanges, result = evidence.exchanges, evidence.result
    unended = [
        job
        for job in traffic.jobs(exchanges).values()
        if job.final is None
        and job.gone is None
        and job.submit is not None
        and not traffic.is_lost_submit(exchanges[job.submit])
        and traffic.job_status(exchanges[job.exchanges[-1]]) == "PENDING"
    ]
    if not unended:
        return _not_judged("no job it followed was left PENDING")
    limit = evidence.deadline + evidence.poll_floor + _EPSILON
    for job in unended:
        start = exchanges[job.submit]["at"] if job.submit is not None else 0.0
        span = exchanges[job.exchanges[-1]]["at"] - start
        if span > limit:
            why = f"kept going {span:g} s, past its {evidence.deadline:g} s deadline"
            if result is not None and result.stopped:
                why += ", until the harness stopped it (is ctx.deadline passed to the client?)"
            late = [i for i in job.exchanges if exchanges[i]["at"] - start > limit]
            return _broken(why, *late)
    if result is None or result.stopped:
        return _held("stopped asking within its deadline")
    if result.error is None:
        return _broken(f"returned {_shown(result.images)} for a job that never ended")
    return _held()


@client_property(
    "submits_once",
    "no second submit of a request while the job it made was not yet followed to its end",
)
def _submits_once(evidence: Evidence) -> Verdict:
    """One generation sends one request; another body is another generation (a client may
    run several under one key), and is judged on its own."""
    exchanges = evidence.exchanges
    jobs = traffic.jobs(exchanges)
    made = False
    open_jobs: dict[str, int] = {}  # body -> the submit of its job, not yet followed to its end
    for index, entry in enumerate(exchanges):
        if traffic.step(entry) != "submit":
            continue
        body = _body_key(entry)
        earlier = open_jobs.get(body)
        if earlier is not None:
            first = exchanges[earlier]
            if not traffic.ended_by(jobs[first["job_id"]], exchanges, index, evidence.deadline):
                if traffic.is_lost_submit(first):
                    answer = "was lost" if first.get("dropped") else f"was a {first['status']}"
                    why = (
                        f"submitted again after a submit whose answer {answer} had made job "
                        f"{first['job_id']}: the job would be paid twice"
                    )
                else:
                    why = (
                        "submitted again after a submit was accepted, before its job ended: "
                        "the job would be paid twice"
                    )
                return _broken(why, earlier, index)
        if entry.get("job_id") is not None:  # a job made, even when its answer was lost
            made = True
            open_jobs[body] = index
    return _held() if made else _not_judged("no submit made a job")


@client_property("fetches_every_image", "every image URL of a SUCCESS fetched")
def _fetches_every_image(evidence: Evidence) -> Verdict:
    exchanges = evidence.exchanges
    successes = [i for i, e in enumerate(exchanges) if traffic.job_status(e) == "SUCCESS"]
    if not successes:
        return _not_judged("no job succeeded")
    if evidence.result is not None and evidence.result.stopped:
        return _not_judged("the harness stopped it (finishes says why)")
    if traffic.gave_up_on_a_download(exchanges):
        return _not_judged("a download failed on its last try: the rest may be given up")
    fetched = {e["path"] for e in exchanges if traffic.step(e) == "download"}
    for index in successes:
        paths = traffic.image_paths(exchanges[index])
        missing = [p for p in paths if p not in fetched]
        if missing:
            return _broken(
                f"fetched {len(paths) - len(missing)} of the {len(paths)} images of a "
                f"SUCCESS (never {missing[0]})",
                index,
            )
    return _held()


@client_property("no_poll_after_final", "no poll of a job after its final answer")
def _no_poll_after_final(evidence: Evidence) -> Verdict:
    return _no_poll_after(evidence, "final", "its final answer")


@client_property("no_poll_after_gone", "no poll of a job after a 404 or 410 for it")
def _no_poll_after_gone(evidence: Evidence) -> Verdict:
    return _no_poll_after(evidence, "gone", "a 404 or 410 for it")


@client_property("sends_its_key", "every status request carries the API key (none refused 401)")
def _sends_its_key(evidence: Evidence) -> Verdict:
    polls = [i for i, e in enumerate(evidence.exchanges) if traffic.step(e) == "poll"]
    if not polls:
        return _not_judged("no status request")
    keyless = [
        i
        for i in polls
        if evidence.exchanges[i].get("client") is None or evidence.exchanges[i]["status"] == 401
    ]
    if keyless:
        return _broken(f"sent {len(keyless)} status request(s) without its API key", *keyless)
    return _held()


def _no_poll_after(evidence: Evidence, mark: Literal["final", "gone"], words: str) -> Verdict:
    exchanges = evidence.exchanges
    occasions = 0
    for job in traffic.jobs(exchanges).values():
        end = job.final if mark == "final" else job.gone
        if end is None:
            continue
        occasions += 1
        after = [
            i
            for i in job.exchanges
            if i > end
            and traffic.step(exchanges[i]) == "poll"
            and exchanges[i]["at"] >= exchanges[end]["at"]
        ]
        if after:
            return _broken(f"polled job {job.id} {len(after)} time(s) after {words}", end, *after)
    if occasions:
        return _held()
    return _not_judged("no job had a final answer" if mark == "final" else "no poll got 404 or 410")


@client_property(
    "no_duplicate_submit",
    "no submit of the same body while its first job was never followed to its end",
)
def _no_duplicate_submit(evidence: Evidence) -> Verdict:
    exchanges = evidence.exchanges
    jobs = traffic.jobs(exchanges)
    first_by_body: dict[str, int] = {}
    made = False
    for index, entry in enumerate(exchanges):
        if traffic.step(entry) != "submit":
            continue
        body = _body_key(entry)
        first = first_by_body.get(body)
        if first is not None:
            job = jobs[exchanges[first]["job_id"]]
            if not traffic.ended_by(job, exchanges, len(exchanges), evidence.deadline):
                return _broken(
                    f"submitted the same body again while job {job.id} was never followed "
                    "to its end: a likely double charge",
                    first,
                    index,
                )
        if entry.get("job_id") is not None:
            made = True
            first_by_body.setdefault(body, index)
    return _held() if made else _not_judged("no submit made a job")


def _body_key(entry: Mapping[str, Any]) -> str:
    """A submit's body, compared as JSON when it is JSON (key order aside)."""
    parsed = entry.get("json")
    if parsed is not None:
        return json.dumps(parsed, sort_keys=True)
    return str(entry.get("body", ""))


@client_property("finishes", "the harness did not have to stop it (too many requests, too long)")
def _finishes(evidence: Evidence) -> Verdict:
    if evidence.result is None:
        return _not_judged(NEEDS_RESULT)
    if evidence.result.stopped:
        return _broken(evidence.result.stopped)
    return _held()


def outcome(entry: Mapping[str, Any]) -> str:
    """An answer in a few words, as reports show it: 200 PENDING, 429, dropped (with the
    fault that did it)."""
    if entry.get("dropped"):
        said = "dropped"
    else:
        said = str(entry.get("status"))
        status = (traffic.answered(entry) or {}).get("status")
        if isinstance(status, str):
            said += f" {status}"
    fault = entry.get("fault")
    return said + (f" [{fault}]" if fault else "")
