"""Hostile request bodies, as raw submits: broken JSON, bad UTF-8, huge numbers, deep
nesting, huge strings, duplicate keys, non-finite numbers and odd content types."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from bench.hostile.probe import (
    RICH_BODY,
    Context,
    Probe,
    dumps,
    nested,
    request,
    some_body,
    with_headers,
)
from mock_server.contract import PNG_SIGNATURE
from mock_server.contract import SUBMIT_PATH as SUBMIT

_NOISE = b'{}[]",:\\ \t\r\n0123456789.eE+-truefalsenull\x00\xff\x7f'


def _bad_json(rng: random.Random, ctx: Context) -> Probe:
    fixed = [
        b"{prompt: 'a cat'}",
        b"{'prompt': 'a cat'}",
        b'{"prompt": "a cat",}',
        b'{"prompt" "a cat"}',
        b'{"prompt": "a cat"}}',
        b"{]",
        b"[1, 2",
        b"nul",
        b"tru",
        b'"unterminated',
        b'{"prompt": "a"}{"samples": 2}',
        b"// comment\n{}",
        b'{"prompt": "a\\q"}',
        b'{"prompt": "\\u12"}',
        b'{"prompt": "a\x01b"}',
        b'{"samples": 01, "prompt": "a"}',
        b'{"samples": 0x10, "prompt": "a"}',
        b"<xml><prompt>a cat</prompt></xml>",
        b"\x00" * 64,
        b"{" + b'"a":1,' * 2000 + b"}",
        b'{"prompt": "a cat" /* c */}',
        b"\xef\xbb\xbf\xef\xbb\xbf{}",
        b"=" * 100,
    ]
    choice = rng.randrange(3)
    if choice == 0:
        body = rng.choice(fixed)
    elif choice == 1:
        mutated = bytearray(dumps(some_body(rng)))
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(mutated))
            action = rng.randrange(3)
            if action == 0:
                del mutated[at]
            elif action == 1:
                mutated.insert(at, rng.choice(_NOISE))
            else:
                mutated[at] = rng.choice(_NOISE)
        body = bytes(mutated)
    else:
        body = rng.randbytes(rng.randint(1, 4096))
    return request(ctx, "bad json", "POST", SUBMIT, body)


def _truncated_json(rng: random.Random, ctx: Context) -> Probe:
    full = dumps(some_body(rng))
    return request(ctx, "truncated json", "POST", SUBMIT, full[: rng.randrange(1, len(full))])


_BAD_UTF8 = [
    b"\xff",
    b"\xfe",
    b"\xc3",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xf4\x90\x80\x80",
    b"\x80",
    b"\xe2\x82",
    b"\xc3\x28",
    b"\xe9",
]


def _bad_utf8(rng: random.Random, ctx: Context) -> Probe:
    body = some_body(rng)
    choice = rng.randrange(5)
    if choice == 0:  # invalid bytes inside a string value
        text = dumps(body)
        at = text.index(b'"prompt": "') + len(b'"prompt": "') + rng.randrange(5)
        raw = text[:at] + rng.choice(_BAD_UTF8) * rng.randint(1, 3) + text[at:]
    elif choice == 1:  # in a key
        raw = b'{"pr' + rng.choice(_BAD_UTF8) + b'ompt": "a cat"}'
    elif choice == 2:  # another encoding
        codec = rng.choice(["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252"])
        raw = json.dumps({**body, "prompt": "caf\u00e9 \u00fc"}, ensure_ascii=False).encode(
            codec, "replace"
        )
    elif choice == 3:  # lone surrogate escapes (valid JSON, not valid Unicode)
        escape = rng.choice([b"\\ud800", b"\\udfff", b"\\ud83d", b"\\udc00\\ud800"])
        raw = b'{"prompt": "a cat ' + escape + b'", "' + escape + b'": 1}'
    else:  # random high bytes
        raw = b'{"prompt": "' + bytes(rng.randrange(128, 256) for _ in range(64)) + b'"}'
    return request(ctx, "bad utf-8", "POST", SUBMIT, raw)


_HUGE_NUMBERS = [
    "1e400",
    "-1e400",
    "1e-400",
    "1" + "0" * 5000,
    "-" + "9" * 5000,
    "9" * 100_000,
    "1.5e99999999999",
    "0." + "0" * 5000 + "1",
    "1" * 4300,
    "1" * 4301,
    "2e308",
    "123456789012345678901234567890",
    "-0",
    "1e308",
    "1E+9999",
    "5e-324",
]
_NUMBER_FIELDS = [
    "samples",
    "seed",
    "width",
    "height",
    "guidance_scale",
    "strength",
    "num_inference_steps",
    "ip_adapter_scale",
    "x_unknown",
    "lora_weights",
]


def _with_literal(field_name: str, literal: str, *, in_list: bool = False) -> bytes:
    value = f"[{literal}]" if in_list else literal
    return f'{{"prompt": "a cat", "{field_name}": {value}}}'.encode()


def _huge_numbers(rng: random.Random, ctx: Context) -> Probe:
    literal = rng.choice(_HUGE_NUMBERS)
    raw = _with_literal(rng.choice(_NUMBER_FIELDS), literal, in_list=rng.random() < 0.3)
    return request(ctx, "huge numbers", "POST", SUBMIT, raw)


def _deep_nesting(rng: random.Random, ctx: Context) -> Probe:
    depth = rng.choice([33, 100, 1000, 10_000, 100_000, 100_000, 100_000])
    deep = nested(rng.choice(["arrays", "objects", "mixed"]), depth)
    where = rng.randrange(4)
    if where == 0:
        raw = deep
    elif where == 3:
        raw = b'{"prompt": "a cat", "x": ' + deep[: len(deep) // 2]  # never closed
    else:
        field_name = rng.choice(["ip_adapter", "x_unknown", "prompt", "ip_adapter_scale"])
        raw = b'{"prompt": "a cat", "' + field_name.encode() + b'": ' + deep + b"}"
    return request(ctx, "deep nesting", "POST", SUBMIT, raw)


def _huge_strings(rng: random.Random, ctx: Context) -> Probe:
    size = rng.choice([10_001, 100_000, 1_000_000])
    unit = rng.choice(["a", "cat ", "\u00e9", "\U0001f642", "\u732b", "\\u0000", "\\n"])
    text = (unit * (size // len(unit) + 1))[:size]
    choice = rng.randrange(6)
    if choice == 0:
        raw = b'{"prompt": "' + text.encode() + b'"}'
    elif choice == 1:
        raw = b'{"prompt": "a cat", "negative_prompt": "' + text.encode() + b'"}'
    elif choice == 2:
        raw = b'{"prompt": "a cat", "' + text.encode() + b'": 1}'
    elif choice == 3:
        fields = rng.choice([1000, 10_000, 50_000])
        raw = b"{" + b",".join(b'"f%d": 1' % i for i in range(fields)) + b', "prompt": "a"}'
    elif choice == 4:
        items = rng.choice([1000, 100_000])
        name = rng.choice([b"ip_adapter_scale", b"lora_models", b"ip_adapter", b"x"])
        item = rng.choice([b"0.5", b'"a"', b"null", b"[]"])
        raw = b'{"prompt": "a cat", "' + name + b'": [' + b",".join([item] * items) + b"]}"
    else:
        data_url = "data:image/png;base64," + "A" * size
        raw = dumps({**RICH_BODY, "ip_adapter_image": data_url})
    return request(ctx, "huge strings", "POST", SUBMIT, raw)


def _duplicate_keys(rng: random.Random, ctx: Context) -> Probe:
    choice = rng.randrange(5)
    if choice == 0:
        raw = b'{"prompt": "a cat", "prompt": 5}'
    elif choice == 1:
        raw = b'{"samples": 1, "prompt": "a cat", "samples": 9}'
    elif choice == 2:
        raw = b'{"prompt": "a", ' + b'"samples": 1, ' * rng.choice([10, 1000, 20_000]) + b'"x": 1}'
    elif choice == 3:
        raw = b'{"prompt": "a cat", "Prompt": 1, "PROMPT": [], "prompt ": {}}'
    else:
        raw = b'{"prompt": "a cat", "ip_adapter": [], "ip_adapter": ["ip-adapter_sdxl"]}'
    return request(ctx, "duplicate keys", "POST", SUBMIT, raw)


_NON_FINITE = ["NaN", "Infinity", "-Infinity", "nan", "inf", "+Infinity", "-NaN", "Inf"]


def _nan_infinity(rng: random.Random, ctx: Context) -> Probe:
    literal = rng.choice(_NON_FINITE)
    raw = _with_literal(rng.choice(_NUMBER_FIELDS), literal, in_list=rng.random() < 0.3)
    return request(ctx, "nan infinity", "POST", SUBMIT, raw)


def _content_types(rng: random.Random, ctx: Context) -> Probe:
    types: list[bytes | None] = [
        None,
        b"application/x-www-form-urlencoded",
        b"multipart/form-data; boundary=xyz",
        b"multipart/form-data",
        b"text/plain",
        b"text/plain; charset=utf-16",
        b"application/json; charset=latin-1",
        b"application/json; charset=nonsense",
        b"application/json" * 100,
        b"",
        b"*/*",
        b"image/png",
        b";;;==;",
        b"\xe9t\xe9/json",
    ]
    content_type = rng.choice(types)
    choice = rng.randrange(3)
    if choice == 0:
        body = dumps(some_body(rng))
    elif choice == 1:
        body = b"prompt=a+cat&samples=2&width=256&prompt=%ff%00"
    else:
        body = (
            b'--xyz\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na cat\r\n'
            b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n"
            + PNG_SIGNATURE
            + rng.randbytes(256)
            + b"\r\n--xyz--\r\n"
        )
    probe = request(ctx, "content types", "POST", SUBMIT, body, content_type=None)
    if content_type is None:
        return probe
    return with_headers(probe, [(b"Content-Type", content_type)])


CATEGORIES: dict[str, tuple[int, Callable[[random.Random, Context], Probe]]] = {
    "bad json": (10, _bad_json),
    "truncated json": (6, _truncated_json),
    "bad utf-8": (6, _bad_utf8),
    "huge numbers": (6, _huge_numbers),
    "deep nesting": (5, _deep_nesting),
    "huge strings": (4, _huge_strings),
    "duplicate keys": (4, _duplicate_keys),
    "nan infinity": (5, _nan_infinity),
    "content types": (6, _content_types),
}
"""The body categories: (weight, builder)."""
