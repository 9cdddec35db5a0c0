"""Scenarios (what a job does: refuse, succeed, fail, stay pending) and how one is chosen.

A scenario is data. The built-in catalogue covers the documented flows; a config file
may add more and rules that pick them by request fields. ``ScenarioBook.choose`` picks
the scenario of each submit: the first source that names one wins (the request header,
the API key ``test_<name>``, the admin queue, the config rules, the seeded chaos mix,
the default). A scenario's faults, or a seeded fault mix, replace the answers to chosen
requests of a job: its submit, its status requests or its image downloads.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from mock_server.exceptions import IpmockError
from mock_server.faults import Fault, FaultMix, FaultStep
from mock_server.words import did_you_mean, shorten

if TYPE_CHECKING:
    from mock_server.state import ScenarioQueue

SCENARIO_HEADER = "x-ipmock-scenario"
TEST_KEY_PREFIX = "test_"
DEFAULT_SCENARIO = "pending-then-success"
SCENARIO_SCOPE_KEY = "ipmock.scenario"
"""Where a request's scope names the scenario chosen for (or playing) its job, for the
journal."""


class UnknownScenario(IpmockError, LookupError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        shown, hint = shorten(name), did_you_mean(name, self.known)
        super().__init__(
            f"unknown scenario {shown!r}{hint}; known scenarios: {', '.join(self.known)}"
        )


@dataclass(frozen=True)
class Refusal:
    """The request is refused outright with an HTTP error and no job.

    ``retry_after`` is sent as the Retry-After header, in seconds, on any status (a mock
    may simulate an odd server); left out, a 429 or 503 sends 1, as the API's contract
    requires, and any other status sends none."""

    http_status: int
    code: str
    error: str
    retry_after: int | None = None

    def __post_init__(self) -> None:
        if self.retry_after is None and self.http_status in RETRY_AFTER_STATUSES:
            object.__setattr__(self, "retry_after", 1)


RETRY_AFTER_STATUSES = frozenset({429, 503})
"""The statuses the API's contract (schema/openapi.json) sends with Retry-After."""


REFUSALS: Mapping[str, Refusal] = {
    "no-credits": Refusal(
        402, "insufficient_credits", "insufficient credits: top up your balance to generate images"
    ),
    "busy": Refusal(503, "busy", "the service is busy: try again later", 5),
    "rate-limited": Refusal(429, "rate_limited", "rate limit exceeded: slow down", 2),
    "unauthorized": Refusal(401, "unauthorized", "invalid API key"),
    "server-error": Refusal(500, "server_error", "internal server error (simulated)"),
    "image-gone": Refusal(410, "expired", "this image is no longer kept by the server"),
}
"""The refusals of the built-in scenarios of these names, the faults of the same kinds
(rate-limited, busy, server-error), the API's own answer to a key it does not know
(unauthorized) and a generator's to a download of an image it no longer keeps
(image-gone): the only copy of their texts. A fault sends its own Retry-After."""


@dataclass(frozen=True)
class Scenario:
    """What happens to one submitted request.

    With a refusal the submit (and, for a scenario chosen by key, every call) answers
    that error. Otherwise a job is made: it answers PENDING until it has been polled
    more than ``pending_polls`` times *and* ``pending_seconds`` have passed on the
    mock's clock, then ends in ``outcome``. ``pending_polls=None`` never ends.
    A job expires ``expires_after`` seconds after it was made (None: the server's TTL);
    its download URLs work ``url_ttl`` seconds (None: the server's). ``faults`` replace
    the answers to chosen requests (submit, status requests, downloads); ``extra_fields``
    adds fields no client knows to every answer, as a server is free to do.
    """

    name: str
    description: str = ""
    refusal: Refusal | None = None
    pending_polls: int | None = 0
    pending_seconds: float = 0.0
    outcome: Literal["success", "failure"] = "success"
    error: str = "generation failed: the model could not produce an image"
    expires_after: float | None = None
    url_ttl: float | None = None
    faults: tuple[Fault, ...] = ()
    extra_fields: bool = False

    def fault_at(self, request: int, on: FaultStep = "poll") -> Fault | None:
        if not self.faults:
            return None
        return next((f for f in self.faults if f.at_request == request and f.on == on), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Scenario:
        values = dict(data)
        if isinstance(values.get("refusal"), Mapping):
            values["refusal"] = Refusal(**values["refusal"])
        values["faults"] = tuple(
            f if isinstance(f, Fault) else Fault(**f) for f in values.get("faults", ())
        )
        return cls(**values)


BUILT_IN: tuple[Scenario, ...] = (
    Scenario("success", "SUCCESS at once, with the download URLs."),
    Scenario(
        "pending-then-success", "PENDING at submit and for one poll, then SUCCESS.", pending_polls=1
    ),
    Scenario(
        "pending-3-then-success",
        "PENDING at submit and for three polls, then SUCCESS.",
        pending_polls=3,
    ),
    Scenario(
        "pending-10s-then-success",
        "PENDING until 10 seconds have passed on the mock's clock, then SUCCESS.",
        pending_seconds=10.0,
    ),
    Scenario(
        "pending-then-failure",
        "PENDING at submit and for one poll, then FAILURE.",
        pending_polls=1,
        outcome="failure",
        error="generation failed: the worker ran out of GPU memory",
    ),
    Scenario("failure", "FAILURE at once: the generation failed (HTTP 200).", outcome="failure"),
    Scenario("stuck", "PENDING forever.", pending_polls=None),
    Scenario(
        "expired",
        "PENDING at submit; the job has expired by the first poll (410).",
        pending_polls=1,
        expires_after=0.0,
    ),
    Scenario(
        "no-credits",
        "Refused: insufficient credits (402).",
        refusal=REFUSALS["no-credits"],
    ),
    Scenario(
        "busy",
        "Refused: the service is busy (503 with Retry-After).",
        refusal=REFUSALS["busy"],
    ),
    Scenario(
        "rate-limited",
        "Refused: rate limited (429 with Retry-After).",
        refusal=REFUSALS["rate-limited"],
    ),
    Scenario(
        "unauthorized",
        "Refused: the API key is not valid (401).",
        refusal=REFUSALS["unauthorized"],
    ),
    Scenario(
        "server-error",
        "Refused: an internal server error (500).",
        refusal=REFUSALS["server-error"],
    ),
)

CHAOS_WEIGHTS: Mapping[str, float] = {
    "success": 4,
    "pending-then-success": 4,
    "pending-3-then-success": 2,
    "pending-then-failure": 1,
    "failure": 1,
    "busy": 1,
    "rate-limited": 1,
}


@dataclass(frozen=True)
class Match:
    """One field condition of a rule: equals, contains (substring or list item), matches."""

    field: str
    equals: Any = None
    contains: Any = None
    matches: str | None = None

    def test(self, body: Mapping[str, Any]) -> bool:
        if self.field not in body:
            return False
        value = body[self.field]
        if self.equals is not None and value != self.equals:
            return False
        if self.contains is not None:
            if isinstance(value, str) and isinstance(self.contains, str):
                if self.contains not in value:
                    return False
            elif not isinstance(value, list) or self.contains not in value:
                return False
        return self.matches is None or (
            isinstance(value, str) and re.search(self.matches, value) is not None
        )


@dataclass(frozen=True)
class Rule:
    scenario: str
    matches: tuple[Match, ...]

    def test(self, body: Mapping[str, Any]) -> bool:
        return all(m.test(body) for m in self.matches)


@dataclass
class ScenarioBook:
    """Every known scenario, and the state that picks one for each submit."""

    scenarios: dict[str, Scenario] = field(default_factory=lambda: {s.name: s for s in BUILT_IN})
    rules: list[Rule] = field(default_factory=list)
    default: str = DEFAULT_SCENARIO
    chaos_weights: Mapping[str, float] | None = None
    seed: int | None = None
    fault_mix: FaultMix | None = None
    fault_rng: random.Random = field(init=False, repr=False)
    """Draws the fault mix, delay jitter and garbage bytes; seeded apart from the scenario
    mix, so turning faults on changes no scenario choice."""

    def __post_init__(self) -> None:
        for name in [self.default, *(r.scenario for r in self.rules), *(self.chaos_weights or {})]:
            self.get(name)
        self._rng = random.Random(self.seed)
        self.fault_rng = self._fault_random()
        weights = self.chaos_weights or {}
        self._chaos_names = list(weights)
        self._chaos_cumulative = list(itertools.accumulate(weights.values()))

    def _fault_random(self) -> random.Random:
        return random.Random(None if self.seed is None else f"{self.seed}:faults")

    def get(self, name: str) -> Scenario:
        try:
            return self.scenarios[name]
        except KeyError:
            raise UnknownScenario(name, self.scenarios) from None

    def named_by_request(self, headers: Mapping[str, str], api_key: str) -> Scenario | None:
        """Sources 1 and 2 of ``choose``: the scenario the request names by its header, else
        by a ``test_<name>`` API key; None when it names none. UnknownScenario for a name
        the book does not know."""
        if name := headers.get(SCENARIO_HEADER):
            return self.get(name.strip())
        if api_key.startswith(TEST_KEY_PREFIX):
            return self.get(api_key[len(TEST_KEY_PREFIX) :])
        return None

    async def choose(
        self, named: Scenario | None, queue: ScenarioQueue, body: Mapping[str, Any]
    ) -> Scenario:
        """The scenario of one valid submit: the first of these that names one wins.

        1. the request header ``X-Ipmock-Scenario: <name>``;
        2. the API key ``test_<name>``;
        3. the admin queue (``POST /__mock/queue``), one scenario per valid submit, first in
           first out;
        4. rules in the config file, matching request fields;
        5. the seeded random mix (``--chaos --seed 7``, or weights in the config file);
        6. the default, ``pending-then-success``.

        (docs/scenarios.md's list, word for word. Of the rules the first that matches wins; the
        default is the config file's ``default_scenario`` when it names one.) 1 and 2 come
        in as ``named``, from ``named_by_request``: the API asks for them before it reads
        the body, so that an unknown name (400) or a refusing scenario refuses without
        reading it. The caller validates the body first, so an invalid submit takes
        nothing off the queue.
        """
        if named is not None:  # 1, 2
            return named
        queued = await queue.pop()  # 3
        if queued is not None:
            return queued
        for rule in self.rules:  # 4
            if rule.test(body):
                return self.get(rule.scenario)
        if self.chaos_weights:  # 5
            drawn = self._rng.choices(self._chaos_names, cum_weights=self._chaos_cumulative)
            return self.get(drawn[0])
        return self.get(self.default)  # 6

    def fault_for(self, scenario: Scenario, request: int, on: FaultStep = "poll") -> Fault | None:
        """The fault for a job's ``request``-th request on step ``on``: the scenario's own,
        else a draw from the fault mix; a delay's jitter is settled here (seeded)."""
        fault = scenario.fault_at(request, on)
        if fault is None and self.fault_mix is not None:
            fault = self.fault_mix.draw(self.fault_rng, request, on)
        if fault is not None and fault.jitter > 0:
            extra = self.fault_rng.uniform(0.0, fault.jitter)
            fault = replace(fault, seconds=fault.seconds + extra, jitter=0.0)
        return fault

    def faults_on(self, scenario: Scenario, on: FaultStep) -> bool:
        """Whether a job of ``scenario`` can meet a fault on step ``on`` (so its requests
        there are worth counting)."""
        mix = self.fault_mix
        return (mix is not None and on in mix.on) or any(f.on == on for f in scenario.faults)

    def reset(self) -> None:
        self._rng = random.Random(self.seed)
        self.fault_rng = self._fault_random()
