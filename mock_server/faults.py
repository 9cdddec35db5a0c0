"""Faults as data: the closed set of kinds (``FaultKind``), the steps of a job they hit
(``FaultStep``), one scripted fault (``Fault``) and a seeded random mix (``FaultMix``);
the mark a faulted request's scope carries for the journal, and the exception a
deliberate drop raises.

A scenario lists its faults and ``ScenarioBook.fault_for`` draws them
(``mock_server.scenarios``); how a fault is delivered, on a socket or in an ASGI
answer, is ``mock_server.fault_answers``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal, get_args

from mock_server.exceptions import IpmockError

FaultKind = Literal[
    "rate-limited",
    "busy",
    "server-error",
    "drop",
    "delay",
    "dribble",
    "reset",
    "empty",
    "malformed-chunk",
    "garbage",
]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
SOCKET_FAULT_KINDS: frozenset[FaultKind] = frozenset(
    {"reset", "empty", "malformed-chunk", "garbage"}
)
"""Faults played on the raw connection; in process each one is a dropped connection."""
SLOW_FAULT_KINDS: frozenset[FaultKind] = frozenset({"delay", "dribble"})
"""Faults that still give the usual answer (late or slowly); they count as polls."""
REFUSING_FAULT_KINDS: frozenset[FaultKind] = frozenset({"rate-limited", "busy"})
"""Faults that say "not done, try later": on a submit they refuse before any job is made.
Every other kind on a submit comes after the job exists: the job runs, its answer is lost."""

FaultStep = Literal["submit", "poll", "download"]
"""Which request of a job a fault hits: its submit, a status request, an image download."""
FAULT_STEPS: tuple[FaultStep, ...] = get_args(FaultStep)


@dataclass(frozen=True)
class Fault:
    """What the ``at_request``-th request of a job on step ``on`` gets instead of its
    answer: its status requests (``poll``, the default), its submit (``submit``: only
    ``at_request=1`` exists) or its image downloads (``download``: every URL of the job
    counts, 1 = the first download request).

    rate-limited: 429 with Retry-After; busy: 503 with Retry-After; server-error: 500;
    drop: the connection closes mid-answer; delay: the usual answer, ``seconds`` late;
    dribble: the usual answer a few bytes at a time over about ``seconds`` (both plus a
    seeded random 0 to ``jitter`` seconds more); reset: the connection is reset (RST), no answer;
    empty: the connection closes with no answer; malformed-chunk: a chunked answer whose
    chunk framing breaks; garbage: random bytes instead of HTTP, then close.
    A faulted request does not count as a poll, except a delayed or dribbled one. On a
    submit, rate-limited and busy refuse before the job is made; any other kind comes
    after the job exists (REFUSING_FAULT_KINDS).
    """

    at_request: int
    kind: FaultKind
    retry_after: int = 1
    seconds: float = 0.0
    jitter: float = 0.0
    on: FaultStep = "poll"

    def __post_init__(self) -> None:
        if self.on not in FAULT_STEPS:
            raise ValueError(f"fault on {self.on!r}: must be one of {', '.join(FAULT_STEPS)}")


@dataclass(frozen=True)
class FaultMix:
    """A seeded random mix of faults over the requests of the steps ``on`` (status
    requests only, by default): each gets a fault with probability ``rate``, its kind
    drawn evenly from ``kinds``; delay and dribble take ``seconds`` plus 0 to ``jitter``
    more, 429 and 503 say Retry-After ``retry_after``.
    """

    rate: float
    kinds: tuple[FaultKind, ...] = FAULT_KINDS
    seconds: float = 1.0
    jitter: float = 1.0
    retry_after: int = 1
    on: tuple[FaultStep, ...] = ("poll",)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"faults.rate must be from 0 to 1, got {self.rate}")
        if not self.kinds:
            raise ValueError("faults.kinds must name at least one fault kind")
        unknown = [k for k in self.kinds if k not in FAULT_KINDS]
        if unknown:
            raise ValueError(
                f"faults.kinds: unknown fault kind(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(FAULT_KINDS)}"
            )
        steps = [s for s in self.on if s not in FAULT_STEPS]
        if not self.on or steps:
            raise ValueError(
                f"faults.on: {', '.join(map(repr, steps)) or 'nothing'} given; "
                f"name one or more of {', '.join(FAULT_STEPS)}"
            )

    def draw(self, rng: random.Random, request: int, on: FaultStep = "poll") -> Fault | None:
        """One draw for a job's ``request``-th request on step ``on``: a fault, or None.
        A step the mix leaves alone draws nothing (the sequence of the others is kept)."""
        if on not in self.on or rng.random() >= self.rate:
            return None
        kind = rng.choice(self.kinds)
        return Fault(
            request,
            kind,
            retry_after=self.retry_after,
            seconds=self.seconds if kind in SLOW_FAULT_KINDS else 0.0,
            jitter=self.jitter if kind in SLOW_FAULT_KINDS else 0.0,
            on=on,
        )


CHAOS_FAULTS = FaultMix(rate=0.1, seconds=1.0, jitter=1.0, retry_after=1)
"""The fault mix ``--chaos`` turns on when the config file sets none: every kind, on
status requests (``[chaos] faults`` with ``on`` reaches submits and downloads)."""


FAULT_SCOPE_KEY = "ipmock.fault"
"""Where a faulted request's scope names its fault kind, for the journal."""


class ConnectionDropped(IpmockError):
    """Raised mid-answer on purpose. A server closes the connection; an in-process
    transport (``contract_tests``) turns it into the client's own transport error."""
