"""The server's settings: one immutable object, built from arguments or an environment."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


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
    journal_size: int = 1000
    log_level: str = "info"

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
    "journal_size": int,
    "log_level": str,
}
