"""The raw client: each probe's bytes sent over a socket of its own, the answers read as
HTTP/1.1 (heads parsed, bodies skipped by their framing), and the outcome judged."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench.hostile.probe import DEFAULT_BODY_LIMIT, Context, Probe
from bench.hostile.probes import build_probe
from bench.hostile.report import Finding

_SEND_PIECE = 256 * 1024
_READ_PIECE = 64 * 1024
_HEAD_LIMIT = 1024 * 1024


class _BrokenAnswer(Exception):
    """The server started an answer and broke it off, or sent something not HTTP."""


@dataclass
class _Outcome:
    statuses: list[int] = field(default_factory=list)
    closed: bool = False
    hang: bool = False
    broken: str = ""
    connect_error: str = ""


async def _exchange(host: str, port: int, probe: Probe, timeout: float) -> _Outcome:
    outcome = _Outcome()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            try:
                reader, writer = await asyncio.open_connection(host, port, limit=_HEAD_LIMIT)
            except OSError as exc:
                outcome.connect_error = f"{type(exc).__name__}: {exc}"
                return outcome
            sending = asyncio.create_task(_send(writer, probe.wire()))
            try:
                await _receive(reader, writer, probe, sending, outcome)
            finally:
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await sending
    except TimeoutError:
        outcome.hang = True
    except _BrokenAnswer as exc:
        outcome.broken = str(exc)
    except OSError:  # reset while reading: the server dropped the connection
        outcome.closed = True
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
    return outcome


async def _send(writer: asyncio.StreamWriter, wire: bytes) -> None:
    with contextlib.suppress(OSError):  # the server may stop reading and close: fine
        for start in range(0, len(wire), _SEND_PIECE):
            writer.write(wire[start : start + _SEND_PIECE])
            await writer.drain()


async def _receive(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    probe: Probe,
    sending: asyncio.Task[None],
    outcome: _Outcome,
) -> None:
    head_only = probe.method == b"HEAD"
    for _ in range(probe.answers):
        status = await _read_answer(reader, head_only)
        if status is None:
            outcome.closed = True
            return
        outcome.statuses.append(status)
    if not probe.shut:
        return
    await sending
    with contextlib.suppress(OSError):
        if writer.can_write_eof() and not writer.is_closing():
            writer.write_eof()
    while (status := await _read_answer(reader, head_only)) is not None:
        outcome.statuses.append(status)
    if not outcome.statuses:
        outcome.closed = True


async def _read_answer(reader: asyncio.StreamReader, head_only: bool) -> int | None:
    """The status of the next answer (its body read and dropped), or None at a clean close."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                return None
            raise _BrokenAnswer(
                f"the answer broke off in its head: {exc.partial[:200]!r}"
            ) from None
        except asyncio.LimitOverrunError:
            raise _BrokenAnswer("an answer head over 1 MiB") from None
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise _BrokenAnswer(f"not an HTTP answer: {lines[0][:200]!r}")
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200 and status != 101:
            continue  # 100 Continue: the real answer follows
        if head_only or status in (101, 204, 304):
            return status
        await _skip_body(reader, headers)
        return status


async def _skip_body(reader: asyncio.StreamReader, headers: dict[bytes, bytes]) -> None:
    try:
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                await _skip_bytes(reader, size + 2)
                if size == 0:
                    return
        elif (length := headers.get(b"content-length")) is not None:
            await _skip_bytes(reader, int(length))
        else:
            while await reader.read(_READ_PIECE):
                pass
    except (asyncio.IncompleteReadError, ValueError) as exc:
        raise _BrokenAnswer(f"the answer's body broke off: {exc}") from None


async def _skip_bytes(reader: asyncio.StreamReader, n: int) -> None:
    while n > 0:
        piece = await reader.readexactly(min(n, _READ_PIECE))
        n -= len(piece)


def _judge(
    probe: Probe, outcome: _Outcome, documented: Collection[int], api_key: str
) -> tuple[list[str], list[Finding]]:
    """The outcome's labels for the counts, and its findings."""
    labels = [str(s) for s in outcome.statuses]
    found: list[tuple[str, str, int | None]] = []
    if outcome.connect_error:
        labels.append("connect error")
        found.append(("connection error", f"could not connect: {outcome.connect_error}", None))
    elif outcome.hang:
        labels.append("hang")
        found.append(("hang", "no answer and no close within the timeout", None))
    elif outcome.broken:
        labels.append("broken answer")
        found.append(("connection error", outcome.broken, None))
    elif len(outcome.statuses) < probe.answers:
        labels.append("closed")
        if probe.must_answer:
            owed = f"closed after {len(outcome.statuses)} of {probe.answers} owed answer(s)"
            found.append(("connection error", owed, None))
    elif not outcome.statuses:
        labels.append("closed")
    for status in outcome.statuses:
        if status >= 500 and status not in documented:
            found.append(("5xx", f"answered HTTP {status}", status))
    findings = [
        Finding(kind, "raw", probe.category, detail, status, probe.reproducer(api_key))
        for kind, detail, status in found
    ]
    return labels, findings


async def run_raw(
    base_url: str,
    *,
    count: int,
    seed: int,
    api_key: str,
    timeout: float = 10.0,
    concurrency: int = 8,
    body_limit: int = DEFAULT_BODY_LIMIT,
    job_id: str | None = None,
    documented_faults: Collection[int] = (),
) -> tuple[Counter[str], dict[str, Counter[str]], list[Finding]]:
    """Send ``count`` seeded raw probes, ``concurrency`` at a time.

    Returns the probes sent by category, the outcomes by category (statuses, "closed",
    "hang", ...), and the findings.
    """
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    ctx = Context(api_key, f"{host}:{port}".encode(), body_limit, job_id)
    sent: Counter[str] = Counter()
    outcomes: dict[str, Counter[str]] = {}
    findings: list[Finding] = []
    indices: Iterator[int] = iter(range(count))

    async def worker() -> None:
        for index in indices:
            probe = build_probe(seed, index, ctx)
            outcome = await _exchange(host, port, probe, timeout)
            labels, found = _judge(probe, outcome, documented_faults, api_key)
            sent[probe.category] += 1
            outcomes.setdefault(probe.category, Counter()).update(labels)
            findings.extend(found)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return sent, outcomes, findings
