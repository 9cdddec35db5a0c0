"""Checks a subcommand makes before it starts, that argparse cannot: a reachable Redis,
writable report files; ``UsageError`` for what fails them (exit status 2)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from mock_server.exceptions import IpmockError


class UsageError(IpmockError):
    """A serve option that cannot work; printed, exit status 2."""


def redacted(url: str) -> str:
    """A store URL fit for the banner: any password replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def check_redis(url: str, said: str = "--store") -> None:
    """Fail at start, clearly, when the Redis store cannot be reached (``said``: the flag or
    variable that gave it)."""
    import redis

    try:
        with redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3) as client:
            client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise UsageError(f"{said} {redacted(url)}: cannot use this Redis: {exc}") from None


def output_file(flag: str, path: Path | None) -> None:
    """Refuse, before any check runs, a report file that cannot be written."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give a file, e.g. {path / 'report.xml'}")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.open("a").close()
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write this file ({exc.strerror})") from None
    if not existed:
        path.unlink()


def output_folder(flag: str, path: Path | None) -> None:
    """Make, before any check runs, the folder a record goes to."""
    if path is None:
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"{flag} {path} is a file; give a folder") from None
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot make this folder ({exc.strerror})") from None
