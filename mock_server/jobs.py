"""Jobs and their lifecycle along a scenario."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Literal

from mock_server.scenarios import Scenario

JOB_SCOPE_KEY = "ipmock.job"
"""Where a request's scope names the job it made or asked about, for the journal."""

State = Literal["PENDING", "SUCCESS", "FAILURE"]


@lru_cache(maxsize=1024)
def key_fingerprint(api_key: str) -> str:
    """What a job keeps of its owner's key: enough to compare, useless to steal."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:32]


_ID_BYTES = 18  # 144 random bits: 24 URL-safe characters
_ID_CHARS = 24
_IDS_PER_DRAW = 256
_id_pool: list[str] = []


def new_job_id() -> str:
    """An unguessable job id: 18 bytes from the OS's CSPRNG, URL-safe base64 encoded.

    The bytes of 256 ids are read and encoded at once: 18 bytes are a whole number of
    base64 groups, so the encoding of the lot is the ids' encodings end to end."""
    if not _id_pool:
        text = base64.urlsafe_b64encode(os.urandom(_ID_BYTES * _IDS_PER_DRAW)).decode("ascii")
        _id_pool.extend(text[i : i + _ID_CHARS] for i in range(0, len(text), _ID_CHARS))
    return _id_pool.pop()


def _forget_id_pool() -> None:
    _id_pool.clear()  # a forked child must never hand out its parent's ids


os.register_at_fork(after_in_child=_forget_id_pool)


@dataclass(slots=True)
class Job:
    id: str
    owner: str
    scenario: Scenario
    request: dict[str, Any]
    seed: int
    created_at: float
    expires_at: float
    forget_at: float
    """When the store may drop the job: past its expiry and its download URLs' lifetime."""
    warnings: tuple[str, ...] = ()
    polls: int = 0
    """Status requests answered as usual (faulted ones aside): what pending_polls counts."""
    status_requests: int = 0
    downloads: int = 0
    """Image download requests, counted only while a fault may hit one (on="download")."""
    state: State = "PENDING"
    finished_at: float | None = None
    error: str | None = None
    """Why the job failed, when its generator says (else the scenario's error)."""
    answer: tuple[State, str, bytes] | None = field(default=None, repr=False, compare=False)
    """The job's last answer body, encoded, with the state and base URL it was made for:
    this process's cache (a job's answer changes only with those two), never stored."""

    def settle(self, now: float) -> None:
        """Reach the scenario's outcome once its pending polls and seconds are spent.

        A scenario with ``pending_polls=k`` answers PENDING at submit and to k polls;
        the poll after them sees the outcome. With k=0 and no pending seconds the
        submit itself answers the outcome.
        """
        s = self.scenario
        if self.state != "PENDING" or s.pending_polls is None:
            return
        polls_spent = self.polls > s.pending_polls if self.polls else s.pending_polls == 0
        if polls_spent and now - self.created_at >= s.pending_seconds:
            self.state = "SUCCESS" if s.outcome == "success" else "FAILURE"
            self.finished_at = now

    def poll(self, now: float) -> None:
        self.polls += 1
        self.settle(now)

    @property
    def samples(self) -> int:
        return int(self.request.get("samples", 1))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["answer"]
        data["scenario"] = self.scenario.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        return cls(
            **{
                **data,
                "scenario": Scenario.from_json(data["scenario"]),
                "request": {
                    k: tuple(v) if isinstance(v, list) else v for k, v in data["request"].items()
                },
                "warnings": tuple(data.get("warnings", ())),
            }
        )
