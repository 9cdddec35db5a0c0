"""One raw probe: the bytes to send and the answers the server owes, and the helpers that
frame a request around a body."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from typing import Any

from bench.hostile.report import PREVIEW_BYTES, Reproducer, escaped, shown_headers
from mock_server.contract import STATUS_PREFIX as STATUS

DEFAULT_BODY_LIMIT = 8 * 1024 * 1024
"""The mock's default request body limit (``max_body_bytes``); oversize probes go past it."""
VALID_BODY: dict[str, Any] = {
    "model_id": "sdxl",
    "prompt": "hostile fuzz: a lighthouse at dusk",
    "width": 256,
    "height": 256,
    "samples": 1,
}
RICH_BODY: dict[str, Any] = {
    **VALID_BODY,
    "negative_prompt": "blurry, low quality",
    "num_inference_steps": 20,
    "guidance_scale": 7.5,
    "seed": 42,
    "ip_adapter": ["ip-adapter-plus_sdxl_vit-h"],
    "ip_adapter_scale": [0.6],
    "ip_adapter_image": "https://example.com/face.jpg",
}


Headers = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True)
class Probe:
    """One raw exchange: the bytes to send and what the server owes."""

    category: str
    method: bytes
    target: bytes
    headers: Headers
    body: bytes = b""
    raw: bytes | None = None
    """The exact bytes to send when they are not method, target, headers and body."""
    answers: int = 1
    """Answers the server owes (pipelined requests owe one each; abandoned ones none)."""
    must_answer: bool = True
    """A valid HTTP request: closing without the owed answers is a finding. Invalid
    framing may get a 400 or a closed connection."""
    shut: bool = False
    """After the owed answers, shut our sending side: the server must answer or close."""

    def wire(self) -> bytes:
        if self.raw is not None:
            return self.raw
        head = [self.method + b" " + self.target + b" HTTP/1.1\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in self.headers]
        return b"".join(head) + b"\r\n" + self.body

    def reproducer(self, api_key: str) -> Reproducer:
        wire = self.wire()
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.headers]
        after = (
            "shut its side after the answers and read to the end"
            if self.shut
            else f"waited for {self.answers} answer(s)"
        )
        return Reproducer(
            self.method.decode("latin-1"),
            escaped(self.target)[:2000],
            shown_headers(headers, api_key),
            escaped(self.body[:PREVIEW_BYTES]),
            len(self.body),
            escaped(wire[:PREVIEW_BYTES]).replace(api_key, "<api_key>"),
            len(wire),
            after,
        )


@dataclass
class Context:
    api_key: str
    host: bytes
    body_limit: int
    job_id: str | None


def request(
    ctx: Context,
    category: str,
    method: str | bytes,
    target: str | bytes,
    body: bytes = b"",
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    key: bytes | None = None,
    content_type: bytes | None = b"application/json",
    length: bool = True,
    must_answer: bool = True,
) -> Probe:
    """A well-framed request with Host, API-Key and Content-Length (unless told otherwise)."""
    head: list[tuple[bytes, bytes]] = [(b"Host", ctx.host)]
    head.append((b"API-Key", ctx.api_key.encode() if key is None else key))
    if content_type is not None and body:
        head.append((b"Content-Type", content_type))
    head += headers or []
    if length and (body or method in ("POST", b"POST")):
        head.append((b"Content-Length", str(len(body)).encode()))
    return Probe(
        category, as_bytes(method), as_bytes(target), tuple(head), body, must_answer=must_answer
    )


def as_bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8")


def dumps(body: Any) -> bytes:
    return json.dumps(body).encode()


def some_body(rng: random.Random) -> dict[str, Any]:
    return dict(rng.choice([VALID_BODY, RICH_BODY]))


def job_path(ctx: Context) -> str:
    return STATUS + (ctx.job_id or "no-such-job")


def with_headers(probe: Probe, extra: list[tuple[bytes, bytes]], **changes: Any) -> Probe:
    return replace(probe, headers=probe.headers + tuple(extra), **changes)


def framed(base: Probe, extra: Headers, body: bytes, **owed: Any) -> Probe:
    """``base`` with framing headers and a body of our choosing (no Content-Length added)."""
    return replace(base, headers=base.headers + extra, body=body, **owed)


def nested(kind: str, depth: int, leaf: bytes = b"1") -> bytes:
    """JSON nested ``depth`` deep: arrays, objects or both in turn, around ``leaf``."""
    if kind == "arrays":
        return b"[" * depth + leaf + b"]" * depth
    if kind == "objects":
        return b'{"a":' * depth + leaf + b"}" * depth
    return b'[{"a":' * (depth // 2) + leaf + b"}]" * (depth // 2)
