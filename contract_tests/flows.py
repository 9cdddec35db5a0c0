"""A server flow: the answers a contract-true server gives one client's generation.

A flow becomes mock scenarios (refused submits first, then the job's own), so the same
engine that serves ``ipmock serve`` plays it. Flows print as JSON, and ``Flow.from_json``
replays one exactly; ``repr`` shows the fields that differ from a plain flow.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from mock_server.config import ConfigError, scenario_from_json
from mock_server.exceptions import IpmockError
from mock_server.faults import REFUSING_FAULT_KINDS, SLOW_FAULT_KINDS, Fault
from mock_server.scenarios import REFUSALS, Scenario
from mock_server.words import did_you_mean, shorten

SUBMIT_REFUSALS = {kind: REFUSALS[kind] for kind in ("rate-limited", "busy")}
"""The refusals a submit may get before its job is made (REFUSING_FAULT_KINDS)."""


class FlowError(IpmockError, ValueError):
    """A flow's JSON (``Flow.from_json``) is not a flow: says which field and why."""


@dataclass(frozen=True)
class Flow:
    """One generation as the server plays it.

    ``submit_refusals`` answer the first submits ((kind, Retry-After) each, no job made);
    then the job answers PENDING at submit and to ``pending_polls`` polls (None: forever),
    with ``faults`` replacing chosen answers (its submit's, status requests', downloads'),
    and ends in ``outcome``.
    """

    submit_refusals: tuple[tuple[str, int], ...] = ()
    """(kind, Retry-After) of each refused submit; kind is a key of SUBMIT_REFUSALS."""
    pending_polls: int | None = 1
    faults: tuple[Fault, ...] = ()
    outcome: Literal["success", "failure"] = "success"
    error: str = "generation failed: the worker ran out of GPU memory"
    samples: int = 1
    extra_fields: bool = False
    url_ttl: float | None = None
    request: dict[str, Any] = field(default_factory=lambda: {"prompt": "a lighthouse at dusk"})

    @property
    def stuck(self) -> bool:
        return self.pending_polls is None

    @property
    def submit_lost(self) -> bool:
        """Whether the accepted submit's answer never reaches the client whole: the job
        exists, but the client cannot know its id (nor should it submit again)."""
        return any(
            f.on == "submit" and f.kind not in SLOW_FAULT_KINDS | REFUSING_FAULT_KINDS
            for f in self.faults
        )

    def __repr__(self) -> str:
        plain = Flow()
        changed = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(plain, f.name)
        ]
        return f"Flow({', '.join(changed)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """What hypothesis prints for a flow (its own printer showed ``flow=,``)."""
        printer.text(repr(self))

    def scenarios(self) -> list[Scenario]:
        refusals = [
            Scenario(
                f"flow-refusal-{i}",
                refusal=replace(SUBMIT_REFUSALS[kind], retry_after=retry_after),
            )
            for i, (kind, retry_after) in enumerate(self.submit_refusals)
        ]
        job = Scenario(
            "flow",
            pending_polls=self.pending_polls,
            outcome=self.outcome,
            error=self.error,
            faults=self.faults,
            extra_fields=self.extra_fields,
            url_ttl=self.url_ttl,
        )
        return [*refusals, job]

    def body(self) -> dict[str, Any]:
        """The request the client sends for this flow."""
        return {**self.request, "samples": self.samples}

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Flow:
        """The flow ``to_json`` printed. A key left out takes its default (a replay line
        from an older ipmock keeps working); an unknown key or a bad value is a FlowError
        naming it."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise FlowError(f"a flow must be JSON: {exc}") from None
        if not isinstance(data, dict):
            raise FlowError(f"a flow must be a JSON object, got {json.dumps(shorten(data))}")
        known = [f.name for f in fields(cls)]
        unknown = [key for key in data if key not in known]
        if unknown:
            named = ", ".join(f"{shorten(k)!r}{did_you_mean(k, known)}" for k in unknown)
            raise FlowError(f"unknown flow field(s) {named}; known: {', '.join(known)}")
        values = dict(data)
        for name, value in data.items():
            checked = _FLOW_CHECKS[name](value)
            if checked is None:
                wanted = _FLOW_WANTED[name]
                raise FlowError(f"flow {name}: {json.dumps(shorten(value))} is not {wanted}")
            values[name] = checked[0]
        return cls(**values)

    def _fault_words(self, fault: Fault) -> str:
        detail = {
            "rate-limited": f"429 (Retry-After {fault.retry_after})",
            "busy": f"503 (Retry-After {fault.retry_after})",
            "server-error": "500",
            "drop": "connection dropped",
            "delay": f"answer {fault.seconds:g} s late",
            "dribble": f"answer sent slowly over {fault.seconds:g} s",
        }.get(fault.kind, f"connection broken ({fault.kind})")  # the socket faults
        if fault.on == "submit":
            if fault.kind in SLOW_FAULT_KINDS | REFUSING_FAULT_KINDS:
                return f"submit: {detail}"
            return f"submit accepted, then {detail}: the answer is lost"
        step = "status request" if fault.on == "poll" else "download request"
        return f"{step} {fault.at_request}: {detail}"

    def describe(self) -> str:
        """The flow in one line, for a person reading a failure."""
        steps = [
            f"submit {SUBMIT_REFUSALS[k].http_status} (Retry-After {r})"
            for k, r in self.submit_refusals
        ]
        at_once = not self.stuck and not self.pending_polls
        submit = [f for f in self.faults if f.on == "submit"]
        steps += [self._fault_words(f) for f in submit]
        if not self.submit_lost:
            steps.append("submit accepted: " + (self.outcome.upper() if at_once else "PENDING"))
        order = {"submit": 0, "poll": 1, "download": 2}
        later = sorted(
            (f for f in self.faults if f.on != "submit"), key=lambda f: (order[f.on], f.at_request)
        )
        steps += [self._fault_words(f) for f in later]
        if self.stuck:
            steps.append("PENDING forever")
        elif not at_once:
            steps.append(f"PENDING for {self.pending_polls} poll(s), then {self.outcome.upper()}")
        steps.append(
            f"{self.samples} sample(s)"
            + (", unknown extra fields" if self.extra_fields else "")
            + (f", URLs expire {self.url_ttl:g} s after SUCCESS" if self.url_ttl else "")
        )
        return "; ".join(steps)


def _refusals(value: Any) -> tuple[tuple[tuple[str, int], ...]] | None:
    if not isinstance(value, list):
        return None
    pairs = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and item[0] in SUBMIT_REFUSALS):
            return None
        if not _is_int(item[1]) or not 0 <= item[1] <= 3600:
            return None
        pairs.append((item[0], item[1]))
    return (tuple(pairs),)


def _faults(value: Any) -> tuple[tuple[Fault, ...]] | None:
    if not isinstance(value, list):
        return None
    try:
        return (scenario_from_json({"faults": value}, "flow").faults,)
    except ConfigError as exc:
        raise FlowError(str(exc)) from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


_FLOW_CHECKS: dict[str, Any] = {
    "submit_refusals": _refusals,
    "pending_polls": lambda v: (v,) if v is None or (_is_int(v) and v >= 0) else None,
    "faults": _faults,
    "outcome": lambda v: (v,) if v in ("success", "failure") else None,
    "error": lambda v: (v,) if isinstance(v, str) and v else None,
    "samples": lambda v: (v,) if _is_int(v) and 1 <= v <= 4 else None,
    "extra_fields": lambda v: (v,) if isinstance(v, bool) else None,
    "url_ttl": lambda v: (v,) if v is None or _number(v) else None,
    "request": lambda v: (v,) if isinstance(v, dict) else None,
}
"""Each field's check: its value wrapped in a 1-tuple (faults and refusals as the flow
holds them), or None for a value the field cannot take (FlowError: _FLOW_WANTED)."""

_FLOW_WANTED = {
    "submit_refusals": 'a list of [kind, retry_after] pairs, kind "rate-limited" or "busy", '
    "retry_after an integer from 0 to 3600",
    "pending_polls": "an integer of at least 0 or null (PENDING forever)",
    "faults": "a list of faults",
    "outcome": '"success" or "failure"',
    "error": "a non-empty string",
    "samples": "an integer from 1 to 4",
    "extra_fields": "true or false",
    "url_ttl": "a number of at least 0 or null",
    "request": "a JSON object (the request body)",
}
