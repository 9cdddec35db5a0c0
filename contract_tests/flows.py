"""A server flow: the answers a contract-true server gives one client's generation.

A flow becomes mock scenarios (refused submits first, then the job's own), so the same
engine that serves ``ipmock serve`` plays it. Flows print as JSON, and ``Flow.from_json``
replays one exactly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mock_server.scenarios import Fault, Refusal, Scenario

SUBMIT_REFUSALS = {
    "rate-limited": (429, "rate_limited", "rate limit exceeded: slow down"),
    "busy": (503, "busy", "the service is busy: try again later"),
}


@dataclass(frozen=True)
class Flow:
    """One generation as the server plays it.

    ``submit_refusals`` answer the first submits ((kind, Retry-After) each, no job made);
    then the job answers PENDING at submit and to ``pending_polls`` polls (None: forever),
    with ``faults`` replacing chosen status answers, and ends in ``outcome``.
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

    def scenarios(self) -> list[Scenario]:
        refusals = [
            Scenario(
                f"flow-refusal-{i}",
                refusal=Refusal(*SUBMIT_REFUSALS[kind], retry_after=retry_after),
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
        data = json.loads(text)
        data["submit_refusals"] = tuple(tuple(r) for r in data["submit_refusals"])
        data["faults"] = tuple(Fault(**f) for f in data["faults"])
        return cls(**data)

    def describe(self) -> str:
        """The flow in one line, for a person reading a failure."""
        steps = [
            f"submit {SUBMIT_REFUSALS[k][0]} (Retry-After {r})" for k, r in self.submit_refusals
        ]
        at_once = not self.stuck and not self.pending_polls
        steps.append("submit accepted: " + (self.outcome.upper() if at_once else "PENDING"))
        for f in sorted(self.faults, key=lambda f: f.at_request):
            detail = {
                "rate-limited": f"429 (Retry-After {f.retry_after})",
                "busy": f"503 (Retry-After {f.retry_after})",
                "server-error": "500",
                "drop": "connection dropped",
                "delay": f"answer {f.seconds:g} s late",
            }[f.kind]
            steps.append(f"status request {f.at_request}: {detail}")
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
