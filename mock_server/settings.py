"""The server's settings: one immutable object, built from arguments or an environment."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class Secret:
    """A string kept out of reprs and logs."""

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    """Base of download URLs; by default the scheme and Host the client used."""
    config: Path | None = None
    seed: int | None = None
    """Seeds the chaos mix and the seeds picked for requests that ask for a random one."""
    chaos: bool = False
    strict: bool = False
    """Refuse what the docs do not promise (unknown fields, over-long prompts, UUID model ids)."""
    accept_model_uuid: bool = True
    admin_token: Secret | None = field(default=None)
    api_keys: tuple[Secret, ...] = ()
    """Keys the API accepts (test_ keys aside); empty: any non-empty key."""
    max_body_bytes: int = 8 * 1024 * 1024
    job_ttl: float = 3600.0
    url_ttl: float = 3600.0
    max_jobs: int = 10_000
    """Jobs the memory store keeps (least recently used dropped beyond it)."""
    max_in_flight: int = 1000
    """PENDING jobs one API key may have at once; more submits get 429. 0: no cap."""
    store: str = "memory"
    """Where state lives: "memory" (this process) or a redis:// URL shared by workers."""
    workers: int = 1
    """Server processes (more than one needs a shared store)."""
    backend: str = "mock"
    """What makes images: "mock" (placeholders), "diffusers" (a model in this process) or
    "workers" (``ipmock worker`` processes taking jobs from the Redis store)."""
    journal_size: int = 1000
    log_level: str = "info"

    def __post_init__(self) -> None:
        if self.store != "memory" and not self.store.startswith(_REDIS_SCHEMES):
            raise ValueError(
                f"store must be memory or a Redis URL (redis://HOST:PORT/DB, rediss://, "
                f"unix://PATH), got {self.store!r}"
            )
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.workers > 1 and self.store == "memory":
            raise ValueError(
                "several workers need a shared store: add --store redis://HOST:PORT/DB "
                "(each worker would otherwise know only its own jobs)"
            )
        if self.backend not in ("mock", "diffusers", "workers"):
            raise ValueError(f"backend must be mock, diffusers or workers, got {self.backend!r}")
        if self.backend == "workers" and self.store == "memory":
            raise ValueError(
                "--backend workers needs --store redis://HOST:PORT/DB: the workers take "
                "jobs from that Redis"
            )
        if self.backend == "diffusers" and self.workers > 1:
            raise ValueError(
                "--workers needs --backend mock or workers: one process owns the model "
                "(for several GPUs, run `ipmock worker` processes with --backend workers)"
            )
        if self.max_in_flight < 0:
            raise ValueError(f"max_in_flight must be 0 (no cap) or more, got {self.max_in_flight}")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``IPMOCK_*`` variables (``IPMOCK_PORT=9000``, ``IPMOCK_STRICT=1``)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, kind in _ENV_FIELDS.items():
            raw = env.get(f"IPMOCK_{name.upper()}")
            if raw is None or raw == "":
                continue
            try:
                values[name] = kind(raw)
            except ValueError:
                what = getattr(kind, "__name__", "value")
                raise ValueError(f"IPMOCK_{name.upper()}={raw!r} is not a valid {what}") from None
        return cls(**values)  # type: ignore[arg-type]  # each value parsed to its field's type

    def to_environ(self) -> dict[str, str]:
        """The ``IPMOCK_*`` variables that ``from_environ`` reads back as these settings
        (how ``--workers`` hands them to each worker process)."""
        env: dict[str, str] = {}
        for name in _ENV_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool):
                text = "1" if value else "0"
            elif isinstance(value, Secret):
                text = value.reveal()
            elif isinstance(value, tuple):
                text = ",".join(k.reveal() for k in value)
            else:
                text = str(value)
            env[f"IPMOCK_{name.upper()}"] = text
        return env


def _flag(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


_flag.__name__ = "boolean (1/0, true/false)"

_ENV_FIELDS: dict[str, Callable[[str], object]] = {
    "host": str,
    "port": int,
    "public_url": str,
    "config": Path,
    "seed": int,
    "chaos": _flag,
    "strict": _flag,
    "accept_model_uuid": _flag,
    "admin_token": Secret,
    "api_keys": lambda raw: tuple(Secret(k.strip()) for k in raw.split(",") if k.strip()),
    "max_body_bytes": int,
    "job_ttl": float,
    "url_ttl": float,
    "max_jobs": int,
    "max_in_flight": int,
    "store": str,
    "workers": int,
    "backend": str,
    "journal_size": int,
    "log_level": str,
}
