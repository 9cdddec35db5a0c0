"""Hostile HTTP messages around the body: lying framing, broken chunking, oversize
bodies, hostile headers, paths, methods and API keys, admin calls and protocol garbage."""

from __future__ import annotations

import random
from collections.abc import Callable

from bench.hostile.probe import (
    VALID_BODY,
    Context,
    Headers,
    Probe,
    dumps,
    framed,
    job_path,
    nested,
    request,
    some_body,
    with_headers,
)
from mock_server.contract import IMAGE_PREFIX as IMAGES
from mock_server.contract import STATUS_PREFIX as STATUS
from mock_server.contract import SUBMIT_PATH as SUBMIT

_BAD_LENGTHS = [
    b"abc",
    b"-1",
    b"1e3",
    b"+5",
    b"0x10",
    b"5, 6",
    b"",
    b" " * 10,
    b"99999999999999999999999999",
    b"\xff",
]


def _content_length_lies(rng: random.Random, ctx: Context) -> Probe:
    body = dumps(some_body(rng))
    base = request(ctx, "content-length lies", "POST", SUBMIT, length=False)
    choice = rng.randrange(4)
    if choice == 0:  # shorter: the rest is read as the next request
        declared = str(rng.randrange(0, len(body))).encode()
        return framed(base, ((b"Content-Length", declared),), body, shut=True)
    if choice == 1:  # longer, then shut our side: no answer is owed
        declared = str(len(body) + rng.choice([1, 100, 10_000, 1_000_000])).encode()
        return framed(
            base, ((b"Content-Length", declared),), body, answers=0, must_answer=False, shut=True
        )
    if choice == 2:  # not a number: invalid framing
        length = ((b"Content-Length", rng.choice(_BAD_LENGTHS)),)
        return framed(base, length, body, must_answer=False, shut=True)
    # two Content-Length headers that disagree: invalid framing
    lengths = (
        (b"Content-Length", str(len(body)).encode()),
        (b"Content-Length", str(len(body) // 2).encode()),
    )
    return framed(base, lengths, body, must_answer=False, shut=True)


def _chunks(data: bytes, size: int) -> bytes:
    pieces = [
        b"%x\r\n" % len(data[i : i + size]) + data[i : i + size] + b"\r\n"
        for i in range(0, len(data), size)
    ]
    return b"".join(pieces) + b"0\r\n\r\n"


def _chunked(rng: random.Random, ctx: Context) -> Probe:
    data = dumps(some_body(rng))
    base = request(ctx, "broken chunked", "POST", SUBMIT, length=False)
    te: Headers = ((b"Transfer-Encoding", b"chunked"),)
    variants: list[tuple[bytes, Headers, bool, bool]] = [
        # body, extra headers, valid framing, complete
        (_chunks(data, rng.randint(1, 64)), te, True, True),
        (b"zz\r\n" + data + b"\r\n0\r\n\r\n", te, False, True),
        (b"-5\r\nhello\r\n0\r\n\r\n", te, False, True),
        (b"fffffffffffffffffffff\r\n" + data + b"\r\n0\r\n\r\n", te, False, True),
        (b"%x\r\n" % (len(data) + 50) + data + b"\r\n0\r\n\r\n", te, False, False),
        (b"%x\r\n" % len(data) + data + b"0\r\n\r\n", te, False, True),
        (b"%x\r\n" % len(data) + data + b"\r\n", te, True, False),
        (b"%x;ext=\x00\x01\r\n" % len(data) + data + b"\r\n0\r\n\r\n", te, False, True),
        (_chunks(data, 8) + b"X-Trailer: " + b"t" * 1000 + b"\r\n\r\n", te, False, True),
        (_chunks(data, 16), (*te, (b"Content-Length", str(len(data)).encode())), False, True),
        (_chunks(data, 16), ((b"Transfer-Encoding", b"chunked, gzip"),), False, True),
        (data, ((b"Transfer-Encoding", b"gzip"),), False, True),
        (_chunks(data, 16), te + te, False, True),
        (b"%x\r\n" % len(data) + data, te, True, False),
    ]
    body, extra, valid, complete = rng.choice(variants)
    return framed(
        base, extra, body, answers=1 if complete else 0, must_answer=valid and complete, shut=True
    )


def _oversize(rng: random.Random, ctx: Context) -> Probe:
    limit = ctx.body_limit
    prompt_size = limit + rng.choice([1, 1024, 1024 * 1024])
    body = b'{"prompt": "' + b"a" * prompt_size + b'"}'
    base = request(ctx, "oversize bodies", "POST", SUBMIT, length=False)
    choice = rng.randrange(3)
    if choice == 0:  # declared and sent in full
        return framed(base, ((b"Content-Length", str(len(body)).encode()),), body)
    if choice == 1:  # declared huge, a little sent, then our side shut: a 413 may come early
        declared = str(limit * rng.choice([2, 100, 10_000])).encode()
        return framed(
            base,
            ((b"Content-Length", declared),),
            body[:65536],
            answers=0,
            must_answer=False,
            shut=True,
        )
    return framed(base, ((b"Transfer-Encoding", b"chunked"),), _chunks(body, 1024 * 1024))


def _hostile_headers(rng: random.Random, ctx: Context) -> Probe:
    target = rng.choice([SUBMIT, job_path(ctx), "/openapi.json", IMAGES + "x/0.png"])
    method = "POST" if target == SUBMIT else "GET"
    body = dumps(VALID_BODY) if method == "POST" else b""
    probe = request(ctx, "hostile headers", method, target, body)
    choice = rng.randrange(9)
    valid = True
    if choice == 0:
        size = rng.choice([1000, 7000, 60_000, 300_000])
        extra = [(b"X-Huge", b"h" * size)]
        valid = size <= 7000
    elif choice == 1:
        n = rng.choice([50, 100, 1000, 5000])
        extra = [(b"X-Many-%d" % i, b"v") for i in range(n)]
        valid = n <= 100
    elif choice == 2:  # obs-text: UTF-8 and latin-1 bytes in values are valid HTTP
        extra = [(b"X-Name", "\u732b caf\u00e9 \U0001f642".encode()), (b"X-Latin", b"caf\xe9")]
    elif choice == 3:
        bad = rng.choice([b"a\x00b", b"a\x01b", b"a\x7fb", b"a\rb", b"\x1b[31mred"])
        extra = [(b"X-Control", bad)]
        valid = False
    elif choice == 4:
        name = rng.choice([b"X Space", b"X\x00Nul", b"\xe9t\xe9", b"", b"X:Colon", b"(x)"])
        extra = [(name, b"v")]
        valid = False
    elif choice == 5:
        value = rng.choice(
            [
                "no-such-scenario",
                "x" * 10_000,
                "\u732b",
                "server error ",
                "../../etc/passwd",
                "success;drop",
                "\t",
            ]
        )
        extra = [(b"X-Ipmock-Scenario", value.encode())]
        valid = len(value) < 7000
    elif choice == 6:
        extra = [
            rng.choice(
                [
                    (b"Expect", b"100-continue"),
                    (b"Expect", b"banana"),
                    (b"Connection", b"Upgrade"),
                    (b"Upgrade", b"h2c"),
                    (b"Range", b"bytes=-1,0-"),
                    (b"If-None-Match", b'"' + b"x" * 5000 + b'", *'),
                    (b"Accept-Encoding", b"x" * 3000),
                    (b"Host", b"evil.example:99999"),
                    (b"X-Forwarded-For", b"::1, 10.0.0.1, \xff"),
                ]
            )
        ]
    elif choice == 7:  # header continuation (obs-fold): deprecated, a 400 or a close
        raw = probe.wire().replace(b"\r\n\r\n", b"\r\nX-Fold: a\r\n  folded\r\n\r\n", 1)
        return with_headers(probe, [], raw=raw, must_answer=False)
    else:  # a header line with no colon
        raw = probe.wire().replace(b"\r\n\r\n", b"\r\nNoColonHere\r\n\r\n", 1)
        return with_headers(probe, [], raw=raw, must_answer=False)
    return with_headers(probe, extra, must_answer=valid)


def _bad_paths(rng: random.Random, ctx: Context) -> Probe:
    job = ctx.job_id or "no-such-job"
    size = rng.choice([1000, 7000, 60_000])
    valid_targets = [
        STATUS + "../../etc/passwd",
        STATUS + "..%2f..%2fopenapi.json",
        STATUS + "%00",
        STATUS + "a%00b",
        IMAGES + "%00/0.png",
        STATUS + "x" * size,
        IMAGES + "y" * size + "/0.png",
        STATUS + "%e7%8c%ab",
        STATUS + "%ff%fe",
        STATUS + "%",
        STATUS + "%zz",
        "//sdxl//text2image/v1",
        SUBMIT + "/",
        STATUS,
        STATUS + job + "/",
        STATUS + job + "?x=%zz&&&=&" + "q" * 1000,
        IMAGES + job + "/0.png%00",
        IMAGES + job + "/-1.png",
        IMAGES + job + "/99.png",
        IMAGES + job + "/0.PNG",
        IMAGES + job + "/0.png/..",
        IMAGES + job + "/%30.png",
        IMAGES + job + "/00.png",
        IMAGES + job + "/0.png?download=1",
        IMAGES + "../" + job,
        IMAGES + job,
        "/",
        "/openapi.json/../openapi.json",
        "/__mock/jobs/" + "j" * size,
        "/__mock/jobs/%00",
        "/__mock/journal?path=%00",
        "/__mock/journal?path=" + "p" * size,
        "/%2e%2e/%2e%2e/etc/passwd",
        "/sdxl/text2image/v1\\status\\x",
        "/sdxl;/text2image/v1",
        "http://evil.example/sdxl/text2image/v1/status/x",
        "/" + "a/" * 2000,
    ]
    invalid_targets = [
        STATUS + "\u732b",
        STATUS + "a b",
        STATUS + "a\tb",
        "",
        "*",
        STATUS + "\x00",
        STATUS + "#frag",
        "sdxl/text2image/v1",
    ]
    if rng.random() < 0.8:
        target, valid = rng.choice(valid_targets), True
    else:
        target, valid = rng.choice(invalid_targets), False
    method = "POST" if target.startswith(SUBMIT) and rng.random() < 0.3 else "GET"
    body = dumps(VALID_BODY) if method == "POST" else b""
    return request(ctx, "bad paths", method, target, body, must_answer=valid)


def _wrong_methods(rng: random.Random, ctx: Context) -> Probe:
    wrong_for = {
        SUBMIT: ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "HEAD"],
        job_path(ctx): ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"],
        IMAGES + (ctx.job_id or "x") + "/0.png": ["POST", "PUT", "DELETE", "PATCH"],
        "/openapi.json": ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"],
        "/__mock/reset": ["GET", "PUT", "DELETE", "PATCH"],
        "/__mock/queue": ["PUT", "PATCH"],
        "/__mock/clock": ["PUT", "DELETE", "PATCH"],
        "/__mock/journal": ["POST", "PUT", "PATCH"],
        "/__mock/jobs": ["POST", "DELETE"],
        "/__mock/scenarios": ["POST", "DELETE"],
    }
    target = rng.choice(list(wrong_for))
    if rng.random() < 0.8:
        method, valid = rng.choice(wrong_for[target]).encode(), True
    else:  # not a method any parser knows, or not a token: a 400 or a close
        method = rng.choice(
            [
                b"post",
                b"GeT",
                b"FOO",
                b"M" * 1000,
                b"PRO PFIND",
                b"G\x00ET",
                b"\xe9",
                b"CONNECT",
                b"PRI",
            ]
        )
        valid = False
    body = dumps(VALID_BODY) if rng.random() < 0.5 else b""
    probe = request(ctx, "wrong methods", method, target, body, must_answer=valid)
    if method == b"CONNECT":  # CONNECT needs an authority target
        return with_headers(probe, [], must_answer=False)
    return probe


def _hostile_keys(rng: random.Random, ctx: Context) -> Probe:
    valid_keys = [
        b"k" * 1000,
        b"k" * 7000,
        b"",
        b"   ",
        b"a\tb",
        b" padded ",
        "\u732b".encode(),
        b"caf\xe9",
        b"test_",
        b"test_no-such-scenario",
        b"test_" + b"x" * 5000,
        b"test_../../etc",
        b"TEST_SUCCESS",
        b"test_success ",
        b"' OR 1=1 --",
        b"${jndi:x}",
        b"%00",
        b"null",
    ]
    invalid_keys = [b"\x00", b"k\x01", b"k\x7f", b"\x1b[2J", b"k" * 70_000]
    if rng.random() < 0.8:
        key, valid = rng.choice(valid_keys), True
    else:
        key, valid = rng.choice(invalid_keys), False
    target = rng.choice([SUBMIT, job_path(ctx), IMAGES + (ctx.job_id or "x") + "/0.png"])
    method = "POST" if target == SUBMIT else "GET"
    body = dumps(VALID_BODY) if method == "POST" else b""
    probe = request(ctx, "hostile api keys", method, target, body, key=key, must_answer=valid)
    if rng.random() < 0.2:  # a second API-Key header
        return with_headers(probe, [(b"API-Key", rng.choice(valid_keys))])
    return probe


def _admin(rng: random.Random, ctx: Context) -> Probe:
    bodies = [
        b"{",
        b"\xff\xfe",
        nested("arrays", 100_000),
        nested("objects", 100_000),
        b'{"scenarios": ' + nested("arrays", 10_000) + b"}",
        b'{"scenarios": "nope"}',
        b'{"scenarios": [1e400]}',
        b'{"scenarios": [NaN]}',
        b'{"scenarios": ["no-such-one"]}',
        b'{"scenarios": [{"outcome": "explode"}]}',
        b'{"scenarios": [{"pending_polls": -1}]}',
        b'{"scenarios": [{"pending_polls": "x"}]}',
        b'{"scenarios": []}',
        b"[]",
        b"null",
        b'{"scenarios": [' + b'"no-such",' * 10_000 + b'"no"]}',
        b'{"scenarios": [["x"]]}',
        b'{"scenarios": [{"pending_polls": ' + b"9" * 5000 + b"}]}",
    ]
    clock_bodies = [
        b'{"advance": -1}',
        b'{"advance": 1e400}',
        b'{"advance": NaN}',
        b'{"advance": "10"}',
        b'{"advance": true}',
        b'{"advance": 10000000000}',
        b'{"advance": ' + b"9" * 5000 + b"}",
        b'{"advance": [1]}',
        b'{"advance": null}',
        b'{"advance": Infinity}',
        b"{",
        b"\xff",
        nested("objects", 100_000),
    ]
    choice = rng.randrange(4)
    if choice == 0:
        probe = request(ctx, "admin", "POST", "/__mock/queue", rng.choice(bodies))
    elif choice == 1:
        probe = request(ctx, "admin", "POST", "/__mock/clock", rng.choice(clock_bodies))
    elif choice == 2:
        target = rng.choice(
            [
                "/__mock/journal?path=" + "%ff" * 100,
                "/__mock/jobs/%00",
                "/__mock/scenarios",
                "/__mock/queue",
                "/__mock/clock",
            ]
        )
        probe = request(ctx, "admin", "GET", target)
    else:
        token = rng.choice([b"x" * 10_000, b"\xe9", b"", b"token"])
        probe = request(
            ctx, "admin", "GET", "/__mock/queue", headers=[(b"X-Ipmock-Admin-Token", token)]
        )
    return probe


def _pipelined(ctx: Context, n: int) -> bytes:
    head = [
        b"GET " + STATUS.encode() + b"no-such-job HTTP/1.1",
        b"Host: " + ctx.host,
        b"API-Key: " + ctx.api_key.encode(),
    ]
    return (b"\r\n".join(head) + b"\r\n\r\n") * n


def _garbage(rng: random.Random, ctx: Context) -> Probe:
    choice = rng.randrange(9)
    method, target = b"GET", b"/"
    if choice == 0:
        raw, answers, valid = rng.randbytes(rng.randint(1, 65536)), 0, False
    elif choice == 1:  # a TLS ClientHello on a plain port
        raw = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rng.randbytes(500)
        answers, valid = 0, False
    elif choice == 2:
        raw, answers, valid = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, False
    elif choice == 3:  # only the request line, then our side shut
        raw, answers, valid = b"GET /openapi.json HTTP/1.1\r\n", 0, False
    elif choice == 4:  # connect, send nothing, shut our side
        raw, answers, valid = b"", 0, False
    elif choice == 5:
        raw = rng.choice(
            [
                b"GET / HTTP/9.9\r\n\r\n",
                b"GET /\r\n",
                b"GET / http/1.1\r\n\r\n",
                b"\r\n\r\n\r\n",
                b"GET  /  HTTP/1.1\r\n\r\n",
                b"GET / HTTP/1.1\n\n",
            ]
        )
        answers, valid = 0, False
    elif choice == 6:  # HTTP/1.0, no Host: valid
        raw = b"GET /openapi.json HTTP/1.0\r\n\r\n"
        answers, valid, target = 1, True, b"/openapi.json"
    else:  # pipelined requests in one write: one answer each
        n = rng.choice([2, 10, 50])
        raw, answers, valid = _pipelined(ctx, n), n, True
        target = STATUS.encode() + b"no-such-job"
    return Probe(
        "protocol garbage",
        method,
        target,
        (),
        raw=raw,
        answers=answers,
        must_answer=valid,
        shut=True,
    )


CATEGORIES: dict[str, tuple[int, Callable[[random.Random, Context], Probe]]] = {
    "content-length lies": (6, _content_length_lies),
    "broken chunked": (6, _chunked),
    "oversize bodies": (1, _oversize),
    "hostile headers": (8, _hostile_headers),
    "bad paths": (8, _bad_paths),
    "wrong methods": (6, _wrong_methods),
    "hostile api keys": (8, _hostile_keys),
    "admin": (6, _admin),
    "protocol garbage": (6, _garbage),
}
"""The message categories: (weight, builder)."""
