"""The server's settings: one immutable object, built from arguments or an environment."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args
from urllib.parse import urlsplit

from mock_server.words import shorten

Backend = Literal["mock", "diffusers", "workers"]
"""Who makes the images: labelled placeholders, SDXL in this process, or ``ipmock worker``
processes over the --store Redis."""
LogLevel = Literal["critical", "error", "warning", "info", "debug"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)
LOG_LEVELS: tuple[LogLevel, ...] = get_args(LogLevel)


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
    """What ``ipmock serve`` runs with. Each field's meaning, flag, ``IPMOCK_*`` variable and
    parser: ``HELP`` and ``PARSERS`` below (``ipmock serve --help`` shows them)."""

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    config: Path | None = None
    seed: int | None = None
    chaos: bool = False
    strict: bool = False
    accept_model_uuid: bool = True
    admin_token: Secret | None = field(default=None)
    api_keys: tuple[Secret, ...] = ()
    max_body_bytes: int = 8 * 1024 * 1024
    job_ttl: float = 3600.0
    url_ttl: float = 3600.0
    max_jobs: int = 10_000
    max_in_flight: int = 1000
    store: str = "memory"
    """``memory`` or a Redis URL (``is_redis_url``): an open set, so a str."""
    workers: int = 1
    redis_connections: int = 16
    backend: Backend = "mock"
    journal_size: int = 1000
    log_level: LogLevel = "info"
    cors_origins: str = "*"

    def __post_init__(self) -> None:
        # Flags and IPMOCK_* values are checked as they are read (PARSERS below, naming the
        # flag or variable). Settings built in Python (the pytest plugin's marker) take the
        # values a user writes (a str or a Secret for a key or token, a str or a Path for the
        # config, a list or tuple of keys), every field checked by the same parsers.
        for each in fields(self):
            value = getattr(self, each.name)
            if value is None and str(each.type).endswith("| None"):
                continue
            try:
                object.__setattr__(self, each.name, _coerce(each.name, str(each.type), value))
            except ValueError as exc:
                raise ValueError(f"{each.name} {exc}") from None
        if self.workers > 1 and self.store == "memory":
            raise ValueError(
                "several workers need a shared store: add --store redis://HOST:PORT/DB "
                "(each worker would otherwise know only its own jobs)"
            )
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

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``IPMOCK_*`` variables (``IPMOCK_PORT=9000``, ``IPMOCK_STRICT=1``)."""
        return cls(**environ_values(environ))  # type: ignore[arg-type]  # parsed to each type

    def to_environ(self) -> dict[str, str]:
        """The ``IPMOCK_*`` variables that ``from_environ`` reads back as these settings
        (how ``--workers`` hands them to each worker process)."""
        env: dict[str, str] = {}
        for name in PARSERS:
            value = getattr(self, name)
            if name == "accept_model_uuid":
                value = not value  # the variable of --refuse-model-uuid
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
            env[environ_name(name)] = text
        return env


def environ_name(name: str) -> str:
    """The variable of a setting: the name of its flag (IPMOCK_API_KEY for --api-key)."""
    return "IPMOCK_" + _FLAG_NAMES.get(name, name).upper()


def environ_values(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """The settings the ``IPMOCK_*`` variables set (empty ones unset), each checked as its
    flag is; ValueError naming the variable."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, parse in PARSERS.items():
        raw = env.get(environ_name(name))
        if raw is None or raw == "":
            continue
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            raise ValueError(f"{environ_name(name)}: {exc}") from None
    return values


T = TypeVar("T")


def checked(kind: Callable[[str], T], ok: Callable[[T], bool], what: str) -> Callable[[str], T]:
    """A parser: ``kind(raw)`` when ``ok`` holds for it, else ValueError saying ``what`` is
    allowed."""

    def parse(raw: str) -> T:
        try:
            value = kind(raw)
        except ValueError:
            raise ValueError(f"must be {what}, got {raw!r}") from None
        if not ok(value):
            raise ValueError(f"must be {what}, got {raw!r}")
        return value

    return parse


def whole(low: int, what: str = "") -> Callable[[str], int]:
    return checked(int, lambda v: v >= low, what or f"a whole number of at least {low}")


def seconds(*, zero: bool = False) -> Callable[[str], float]:
    """Finite seconds, above 0 (or 0 too with ``zero``)."""
    return checked(
        float,
        lambda v: math.isfinite(v) and (v >= 0 if zero else v > 0),
        f"a number of seconds, {'0 or more' if zero else 'more than 0'}",
    )


def choice(*allowed: str) -> Callable[[str], str]:
    return checked(str, allowed.__contains__, "one of " + ", ".join(allowed))


def is_redis_url(url: str) -> bool:
    """redis://HOST:PORT/DB or rediss://... (DB, when given, a whole number), unix://PATH."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return bool(parts.path)
    try:
        parts.port  # noqa: B018  # raises ValueError when not a number
    except ValueError:
        return False
    return parts.scheme in ("redis", "rediss") and (
        parts.path in ("", "/") or parts.path[1:].isdigit()
    )


REDIS_FORMS = "redis://HOST:PORT/DB, rediss://HOST:PORT/DB or unix://PATH; DB a whole number"


def _flag(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be 1/0, true/false, yes/no or on/off, got {raw!r}")


def _file(raw: str) -> Path:
    path = Path(raw)
    if not path.exists():
        raise ValueError(f"{raw} does not exist")
    if not path.is_file():
        raise ValueError(f"{raw} is not a file")
    return path


def is_http_url(url: str) -> bool:
    """An absolute http:// or https:// URL with a host."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def api_key(raw: str) -> Secret:
    """One API key: not empty, no comma (IPMOCK_API_KEY separates keys with commas)."""
    if not raw.strip() or "," in raw:
        raise ValueError("must be a key, not empty and without commas")  # the key not shown
    return Secret(raw)


def _token(raw: str) -> Secret:
    if not raw:
        raise ValueError("must not be empty")
    return Secret(raw)


def cors_origins(raw: str) -> str:
    """``--cors-origins``, normalised: ``*``, ``none``, or origins (scheme://host[:port],
    lower case) joined by commas."""
    text = raw.strip()
    if text == "*" or text.lower() == "none":
        return text.lower()
    origins = [item.strip().rstrip("/") for item in text.split(",")]
    for origin in origins:
        if not _is_origin(origin):
            shown = shorten(origin)
            raise ValueError(
                "must be *, none, or origins joined by commas such as "
                f"https://app.example.com,http://localhost:3000; {shown!r} is not an "
                "origin (http:// or https://, a host, maybe a port, no path)"
            )
    return ",".join(dict.fromkeys(origin.lower() for origin in origins))


def _is_origin(text: str) -> bool:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  # raises ValueError when not a number
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not (parts.path or parts.query or parts.fragment or "@" in parts.netloc)
        and "*" not in text
    )


PARSERS: dict[str, Callable[[str], Any]] = {
    "host": str,
    "port": checked(int, lambda v: 0 <= v <= 65535, "a port number (0 to 65535)"),
    "public_url": checked(
        str,
        is_http_url,
        "an absolute http:// or https:// URL with a host, e.g. https://cdn.test/mock",
    ),
    "config": _file,
    "seed": checked(int, lambda v: True, "a whole number"),
    "chaos": _flag,
    "strict": _flag,
    "accept_model_uuid": lambda raw: not _flag(raw),  # IPMOCK_REFUSE_MODEL_UUID
    "admin_token": _token,
    "api_keys": lambda raw: tuple(api_key(k.strip()) for k in raw.split(",")),
    "max_body_bytes": whole(1, "a number of bytes, at least 1"),
    "job_ttl": seconds(),
    "url_ttl": seconds(),
    "max_jobs": whole(1),
    "max_in_flight": whole(0, "a whole number, 0 (no cap) or more"),
    "store": checked(
        str, lambda v: v == "memory" or is_redis_url(v), f"memory or a Redis URL ({REDIS_FORMS})"
    ),
    "workers": whole(1),
    "redis_connections": whole(1),
    "backend": choice(*BACKENDS),
    "journal_size": whole(1),
    "log_level": choice(*LOG_LEVELS),
    "cors_origins": cors_origins,
}
"""How each setting is read from text (a flag, an ``IPMOCK_*`` variable); ValueError
saying what is allowed."""


@dataclass(frozen=True)
class Help:
    """What a setting means, as ``ipmock serve --help`` says it beside its flag."""

    text: str
    """The help; ``{default}`` stands for the field's default."""
    metavar: str | None = None
    """The word for the flag's value (argparse's own, the name in capitals, when None)."""
    choices: tuple[str, ...] | None = None
    """The values listed in the usage line."""
    each: Callable[[str], Any] | None = None
    """A repeatable flag: the parser of one value (its variable takes them joined by
    commas, through ``PARSERS``)."""
    flag: bool = True
    """False: no flag, only the ``IPMOCK_*`` variable sets it."""
    models: bool = False
    """Shown among the model options (real images), not the serving ones."""


HELP: dict[str, Help] = {
    "host": Help("address to bind (default {default}; 0.0.0.0 for every interface)"),
    "port": Help("port to bind, 0 for any free one (default {default})"),
    "config": Help(
        "TOML file with extra scenarios, rules and a chaos mix (docs/scenarios.md)",
        metavar="FILE",
    ),
    "seed": Help(
        "seed for the chaos mix and for random image seeds (default: random)", metavar="N"
    ),
    "chaos": Help(
        "pick scenarios at random (seeded) when nothing else picks one, and fault about 1 "
        "status request in 10 (429, 503, 500, delays, broken connections)"
    ),
    "public_url": Help(
        "base of download URLs, an http(s) URL (default: the scheme and Host the client used)",
        metavar="URL",
    ),
    "strict": Help(
        "refuse unknown fields, over-long prompts and model UUIDs instead of accepting them "
        "with a warning"
    ),
    "accept_model_uuid": Help('accept only model_id "sdxl", not a model UUID'),
    "api_keys": Help(
        "accept only this API key (repeat for more; IPMOCK_API_KEY=KEY1,KEY2; test_ keys "
        "always work); default: any key",
        metavar="KEY",
        each=api_key,
    ),
    "admin_token": Help(
        "require this token for the admin API (then open off loopback too)", metavar="TOKEN"
    ),
    "cors_origins": Help(
        "browser pages that may call the mock: * (default: any page; the admin API only for "
        "origins named), none (no CORS headers), or origins joined by commas "
        "(https://app.example.com,http://localhost:3000)",
        metavar="ORIGINS",
    ),
    "max_body_bytes": Help(
        "largest request body in bytes; larger ones get 413 (default {default}, 8 MiB)",
        metavar="N",
    ),
    "max_in_flight": Help(
        "PENDING jobs one API key may have at once; more submits get 429 "
        "(default {default}; 0: no cap)",
        metavar="N",
    ),
    "store": Help(
        "where jobs, the admin queue, the clock and the journal live: memory (default, this "
        "process) or redis://HOST:PORT/DB, shared by every worker and host using it",
        metavar="URL",
    ),
    "workers": Help(
        "server processes on the one port (default {default}; more need --store redis://...)",
        metavar="N",
    ),
    # A request that finds them all busy waits up to state.redis.POOL_WAIT seconds, then 503.
    "redis_connections": Help(
        "connections each server process holds to the --store Redis at most; a request "
        "waits for a free one (default {default})",
        metavar="N",
    ),
    "job_ttl": Help("seconds a job can be polled (default {default})", metavar="SECONDS"),
    "url_ttl": Help(
        "seconds a download URL works after SUCCESS (default {default})", metavar="SECONDS"
    ),
    "log_level": Help("(default {default})", choices=LOG_LEVELS),
    "backend": Help(
        "mock: labelled placeholder images (default); diffusers: generate with SDXL + "
        "IP-Adapters in this process, each job PENDING while the model works; workers: put "
        "each job on the --store Redis for `ipmock worker` processes",
        choices=BACKENDS,
        models=True,
    ),
    "max_jobs": Help(
        "jobs the memory store keeps (least recently used dropped beyond it)", flag=False
    ),
    "journal_size": Help("exchanges the admin journal keeps (oldest dropped)", flag=False),
}
"""Each setting as the command line shows it, in the order of ``ipmock serve --help``: its
flag is ``flag_name``, its variable ``environ_name``, its parser ``PARSERS``, its default
the field's. A bool's flag turns its default around (--refuse-model-uuid sets
accept_model_uuid False)."""


def flag_name(name: str) -> str:
    """The flag of a setting: --api-key for api_keys, --refuse-model-uuid for
    accept_model_uuid."""
    return "--" + _FLAG_NAMES.get(name, name).replace("_", "-")


def _coerce(name: str, kind: str, value: object) -> object:
    """A Settings field's value as written in Python, checked by its parser and made its
    field's type; ValueError saying what is allowed (never showing a key)."""
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"must be True or False, got {value!r}")
        return value
    if name == "api_keys":
        keys = [value] if isinstance(value, str | Secret) else value
        if not isinstance(keys, list | tuple):
            raise ValueError(f"must be a key or a list of keys, got {type(value).__name__}")
        return tuple(api_key(_text(k, "a key (str or Secret)")) for k in keys)
    if kind.startswith("Secret"):
        return PARSERS[name](_text(value, "a str or Secret"))
    if kind.startswith("Path"):
        if not isinstance(value, str | os.PathLike):
            raise ValueError(f"must be a file path (str or Path), got {type(value).__name__}")
        return PARSERS[name](os.fspath(value))
    if kind.startswith("str") or kind in _CLOSED_SETS:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {value!r}")
        return PARSERS[name](value)
    # Numbers: the text of a real number (True is not one), or text as on the command line.
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    return PARSERS[name](value if isinstance(value, str) else str(value) if real else repr(value))


def _text(value: object, what: str) -> str:
    if isinstance(value, Secret):
        return value.reveal()
    if not isinstance(value, str):
        raise ValueError(f"must be {what}, got {type(value).__name__}")
    return value


_CLOSED_SETS = {"Backend": BACKENDS, "LogLevel": LOG_LEVELS}
"""The Literal types of Settings fields, by the name their annotation gives them."""

_FLAG_NAMES = {"api_keys": "api_key", "accept_model_uuid": "refuse_model_uuid"}
"""Settings named otherwise than their flag (and so their variable)."""
