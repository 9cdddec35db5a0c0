"""Hostile and malformed requests, through HTTP in process: never a 500, always a FAILURE.

The clients here are built with ``raise_app_exceptions=False`` so that a crash in the app
shows up as the 500 a real client would see, not as an exception inside the test.
"""

from __future__ import annotations

import json
import string
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mock_server import Clock, Settings, create_app
from tests.support.docs_table import ADAPTERS, PROMPT, SUBMIT

KEY = "sk-test-hostile"
VALID = json.dumps({"prompt": PROMPT}).encode()
# Written out by hand: every field the docs (and their sibling pages) name.
KNOWN_FIELDS = [
    "model_id",
    "prompt",
    "negative_prompt",
    "num_inference_steps",
    "strength",
    "samples",
    "guidance_scale",
    "width",
    "height",
    "ip_adapter",
    "ip_adapter_scale",
    "ip_adapter_image",
    "ip_adapter_style_images",
    "seed",
    "scheduler",
    "refiner",
    "safety_checker",
    "base64",
    "lora_models",
    "lora_weights",
    "embeddings",
    "clip_skip",
    "webhook",
    "server_id",
]


def _client(clock: Clock, **options: Any) -> httpx.AsyncClient:
    app = create_app(Settings(**options), clock=clock)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://mock.test",
        headers={"API-Key": KEY},
    )


@pytest.fixture
def hostile(clock: Clock) -> Callable[..., httpx.AsyncClient]:
    def make(**options: Any) -> httpx.AsyncClient:
        return _client(clock, **options)

    return make


@pytest.fixture
async def api(hostile: Callable[..., httpx.AsyncClient]) -> AsyncIterator[httpx.AsyncClient]:
    async with hostile() as c:
        yield c


def failure(response: httpx.Response, status: int, code: str, *words: str) -> dict[str, Any]:
    """A JSON FAILURE body with the given status and code, its message holding ``words``."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    data: dict[str, Any] = response.json()
    assert data["status"] == "FAILURE"
    assert data["code"] == code
    assert isinstance(data["error"], str) and data["error"]
    for word in words:
        assert word.lower() in data["error"].lower(), (word, data["error"])
    return data


def body_error(response: httpx.Response, *words: str) -> dict[str, Any]:
    """A 400 about the body as a whole (field "")."""
    data = failure(response, 400, "invalid_request", *words)
    assert [e["field"] for e in data["errors"]] == [""], data
    return data


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 202), (response.status_code, response.text[:500])
    data: dict[str, Any] = response.json()
    assert data["status"] in ("PENDING", "SUCCESS")
    return data


async def send(client: httpx.AsyncClient, raw: bytes, **headers: str) -> httpx.Response:
    return await client.post(SUBMIT, content=raw, headers=headers)


# -- bodies that are not a JSON object ------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b" ", b"\r\n\t  \n"])
@pytest.mark.anyio
async def test_empty_body(api: httpx.AsyncClient, raw: bytes) -> None:
    body_error(await send(api, raw), "empty")


@pytest.mark.parametrize(
    "raw",
    [
        b"prompt=a+cat&samples=2",
        b"{prompt: 'a cat'}",
        b"{'prompt': 'a cat'}",
        b'{"prompt": "a cat"',
        b'{"prompt": "a cat"}}',
        b'{"prompt": "a cat",}',
        b'{"prompt": "a cat"} {"samples": 2}',
        b"<xml/>",
        b"\x00\x00\x00",
        b'{"prompt": "a\x01cat"}',
        b'{"prompt": "a cat", "samples": 01}',
        b'{"prompt": "a cat", "samples": +1}',
        b'{"prompt": "a cat", "samples": 0x1}',
        b'{"prompt": "a cat", "samples": .5}',
        b'{"prompt": "a cat\\x41"}',
    ],
)
@pytest.mark.anyio
async def test_not_json(api: httpx.AsyncClient, raw: bytes) -> None:
    body_error(await send(api, raw), "not valid JSON")


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json",
        "application/json; charset=utf-8",
        "application/octet-stream",
        "image/png",
        "nonsense",
    ],
)
@pytest.mark.anyio
async def test_json_is_parsed_whatever_the_content_type(
    api: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await send(api, json.dumps({"prompt": PROMPT, "samples": 2}).encode(), **headers)
    if content_type is None:
        assert "content-type" not in response.request.headers
    ok(response)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"prompt": "caf\xe9"}',  # latin-1
        b'{"prompt": "\xc3"}',  # truncated sequence
        b'{"prompt": "\xed\xa0\x80"}',  # an encoded surrogate
        b'{"prompt": "\xf8\x88\x80\x80\x80"}',  # five-byte form
        b"\xff\xfe{\x00}\x00",  # UTF-16 with its BOM
        b'{"prompt": "a cat", "x": "\xc0\xaf"}',  # overlong
    ],
)
@pytest.mark.anyio
async def test_invalid_utf8(api: httpx.AsyncClient, raw: bytes) -> None:
    body_error(await send(api, raw), "UTF-8")


@pytest.mark.anyio
async def test_utf8_bom_is_accepted(api: httpx.AsyncClient) -> None:
    ok(await send(api, b"\xef\xbb\xbf" + VALID))
    ok(await send(api, b"\xef\xbb\xbf" + json.dumps({"prompt": "caf\u00e9"}).encode()))


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"[]", "array"),
        (b'[{"prompt": "a cat"}]', "array"),
        (b'"a cat"', "string"),
        (b"5", "number"),
        (b"-0.5", "number"),
        (b"null", "null"),
        (b"true", "boolean"),
        (b"false", "boolean"),
    ],
)
@pytest.mark.anyio
async def test_top_level_must_be_an_object(api: httpx.AsyncClient, raw: bytes, kind: str) -> None:
    body_error(await send(api, raw), "JSON object", kind)


# -- depth ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'{"prompt": "a cat", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"prompt": "a cat", "x": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
    ],
    ids=["arrays", "objects", "under-a-field", "5000-arrays"],
)
@pytest.mark.anyio
async def test_deep_nesting_is_refused(api: httpx.AsyncClient, raw: bytes) -> None:
    body_error(await send(api, raw), "nested")


def _nested_objects(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": 1}
    for i in range(depth - 1):
        node = {f"k{i}": node}
    return node


@pytest.mark.anyio
async def test_forty_nested_objects_under_an_unknown_field(api: httpx.AsyncClient) -> None:
    raw = json.dumps({"prompt": PROMPT, "extra": _nested_objects(40)}).encode()
    body_error(await send(api, raw), "nested")


@pytest.mark.anyio
async def test_modest_nesting_under_an_unknown_field_is_fine(api: httpx.AsyncClient) -> None:
    data = ok(
        await send(api, json.dumps({"prompt": PROMPT, "extra": _nested_objects(10)}).encode())
    )
    assert any("extra" in w for w in data["warnings"])


@pytest.mark.anyio
async def test_deep_nesting_in_a_known_field(api: httpx.AsyncClient) -> None:
    raw = json.dumps({"prompt": PROMPT, "ip_adapter": [[[[[["x"]]]]]]}).encode()
    data = failure(await send(api, raw), 400, "invalid_request")
    assert data["errors"][0]["field"].startswith("ip_adapter")


# -- numbers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "literal",
    [
        "9" * 5000,
        "-" + "9" * 5000,
        "1e999",
        "-1e999",
        "1" + "0" * 400 + ".0",
        "NaN",
        "Infinity",
        "-Infinity",
    ],
    ids=[
        "5000-digits",
        "minus-5000-digits",
        "1e999",
        "-1e999",
        "1e400-long",
        "NaN",
        "Infinity",
        "-Infinity",
    ],
)
@pytest.mark.parametrize("where", ["samples", "guidance_scale", "seed", "unknown_field"])
@pytest.mark.anyio
async def test_unusable_numbers(api: httpx.AsyncClient, literal: str, where: str) -> None:
    raw = f'{{"prompt": "a cat", "{where}": {literal}}}'.encode()
    data = failure(await send(api, raw), 400, "invalid_request")
    assert [e["field"] for e in data["errors"]] == [where]
    assert any(word in data["error"] for word in ("number", "JSON", "digits")), data["error"]
    assert "sys." not in data["error"] and len(data["error"]) < 400, data["error"]


@pytest.mark.parametrize("where", ["samples", "seed", "guidance_scale", "width", "strength"])
@pytest.mark.anyio
async def test_big_but_parsable_integer(api: httpx.AsyncClient, where: str) -> None:
    raw = f'{{"prompt": "a cat", "{where}": {"9" * 4000}}}'.encode()
    data = failure(await send(api, raw), 400, "invalid_request")
    assert [e["field"] for e in data["errors"]][:1] == [where]


@pytest.mark.parametrize("literal", ["1e308", "-1e308", "5e-324", "1E2", "0.0000000001", "20.0e0"])
@pytest.mark.anyio
async def test_extreme_floats_are_handled(api: httpx.AsyncClient, literal: str) -> None:
    raw = f'{{"prompt": "a cat", "guidance_scale": {literal}}}'.encode()
    response = await send(api, raw)
    if literal == "20.0e0":
        ok(response)
    else:
        data = failure(response, 400, "invalid_request", "guidance_scale")
        assert [e["field"] for e in data["errors"]] == ["guidance_scale"]


# -- wrong types, field by field ------------------------------------------------------

WRONG_TYPES: dict[str, list[Any]] = {
    "model_id": [5, [], {}, True, None],
    "prompt": [5, [], ["a cat"], {}, True, None],
    "negative_prompt": [5, [], {}, True],
    "num_inference_steps": ["20", 20.5, True, [20], None],
    "strength": ["0.5", True, [0.5], {}],
    "samples": ["2", 2.5, True, [2], {}],
    "guidance_scale": ["7.5", True, [7.5], None],
    "width": ["1024", 1024.5, True, [1024]],
    "height": ["1024", 1024.5, False, {}],
    "ip_adapter": [{}, 5, True, [5], [None], [[]]],
    "ip_adapter_scale": [{}, True, [True], ["x"], "x", [[0.5]]],
    "ip_adapter_image": [5, [], {}, True],
    "ip_adapter_style_images": [5, {}, [5], True],
    "seed": ["1", 1.5, True, [1]],
    "scheduler": [5, [], True, {}],
    "refiner": [1, "yes", [], {}],
    "safety_checker": [0, "no", [True], None],
    "base64": ["1", [], {}, 1.0],
    "lora_models": [5, {}, [5], True],
    "lora_weights": [{}, True, ["x"], "x"],
    "embeddings": [5, {}, [5], False],
    "clip_skip": ["2", 2.5, True, [2]],
    "webhook": [5, [], "ftp://example.com", True],
    "server_id": [5, [], {}, True],
}


def _wrong_type_cases() -> list[Any]:
    return [
        pytest.param(name, value, id=f"{name}={json.dumps(value)}")
        for name, values in WRONG_TYPES.items()
        for value in values
    ]


@pytest.mark.parametrize(("name", "value"), _wrong_type_cases())
@pytest.mark.anyio
async def test_wrong_type(api: httpx.AsyncClient, name: str, value: Any) -> None:
    fields: dict[str, Any] = {"prompt": PROMPT, name: value}
    if name == "ip_adapter":
        fields["ip_adapter_image"] = "https://example.com/face.jpg"
    elif name in ("ip_adapter_scale", "ip_adapter_style_images"):
        fields.update(ip_adapter=ADAPTERS[0], ip_adapter_image="https://example.com/face.jpg")
    data = failure(await send(api, json.dumps(fields).encode()), 400, "invalid_request", name)
    roots = {e["field"].split(".")[0] for e in data["errors"]}
    assert name in roots, data["errors"]
    for error in data["errors"]:
        assert error["message"]
        if error["field"].split(".")[0] == name:
            assert error.get("allowed"), error


# -- prompt length --------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["cat ", "a", "\u00e9", "\U0001f642", "\u732b"])
@pytest.mark.anyio
async def test_prompt_of_10000_characters(api: httpx.AsyncClient, unit: str) -> None:
    prompt = (unit * 10_000)[:10_000]
    assert len(prompt) == 10_000
    if prompt.strip() != prompt:
        prompt = prompt[:-1] + "x"
    data = ok(await send(api, json.dumps({"prompt": prompt}).encode()))
    assert any(w.startswith("prompt") for w in data["warnings"])
    raw = json.dumps({"prompt": prompt + "x"}).encode()
    refused = failure(await send(api, raw), 400, "invalid_request")
    assert {e["field"] for e in refused["errors"]} == {"prompt"}
    assert "10000" in refused["errors"][0]["allowed"]
    # The echoed value is shortened, not 10,001 characters of noise.
    assert len(refused["errors"][0].get("value", "")) < 200


@pytest.mark.anyio
async def test_negative_prompt_of_10001_characters(api: httpx.AsyncClient) -> None:
    raw = json.dumps({"prompt": PROMPT, "negative_prompt": "n" * 10_001}).encode()
    data = failure(await send(api, raw), 400, "invalid_request")
    assert {e["field"] for e in data["errors"]} == {"negative_prompt"}


# -- lone surrogates (valid JSON escapes, not valid Unicode) --------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"prompt": "\\ud800"}',
        b'{"prompt": "a cat \\udfff"}',
        b'{"prompt": "a cat", "negative_prompt": "\\ud83d"}',
        b'{"prompt": "a cat", "samples": "\\ud800"}',
        b'{"prompt": "a cat", "model_id": "\\ud800"}',
        b'{"prompt": "a cat", "\\ud800": 1}',
        b'{"prompt": "a cat", "x": ["\\udc00"]}',
    ],
    ids=["prompt", "prompt-tail", "negative_prompt", "samples", "model_id", "key", "nested"],
)
@pytest.mark.anyio
async def test_lone_surrogate_escapes(api: httpx.AsyncClient, raw: bytes) -> None:
    response = await send(api, raw)
    assert response.status_code in (200, 202, 400), (response.status_code, response.text[:300])
    data = response.json()
    if response.status_code == 400:
        assert data["status"] == "FAILURE" and data["errors"]


@pytest.mark.anyio
async def test_paired_surrogate_escape_is_an_emoji(api: httpx.AsyncClient) -> None:
    ok(await send(api, b'{"prompt": "a cat \\ud83d\\ude42"}'))


# -- body size ------------------------------------------------------------------------


def _padded(size: int) -> bytes:
    """A valid body of exactly ``size`` bytes (JSON allows trailing whitespace)."""
    raw = json.dumps({"prompt": PROMPT}).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


def _padded_prompt(size: int) -> bytes:
    """A valid body of exactly ``size`` bytes, all of it content."""
    head = json.dumps({"prompt": ""}).encode()
    words = ("cat " * size)[: size - len(head)]
    raw = json.dumps({"prompt": words[:-1] + "x"}).encode()
    assert len(raw) == size
    return raw


@pytest.mark.parametrize("make", [_padded, _padded_prompt])
@pytest.mark.anyio
async def test_body_at_the_limit_is_parsed(
    hostile: Callable[..., httpx.AsyncClient], make: Callable[[int], bytes]
) -> None:
    async with hostile(max_body_bytes=1000) as c:
        raw = make(1000)
        assert len(raw) == 1000
        ok(await send(c, raw))

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(raw), 100):
                yield raw[i : i + 100]

        response = await c.post(SUBMIT, content=chunks())
        assert "content-length" not in response.request.headers
        ok(response)


@pytest.mark.parametrize("make", [_padded, _padded_prompt])
@pytest.mark.anyio
async def test_body_over_the_limit_is_413(
    hostile: Callable[..., httpx.AsyncClient], make: Callable[[int], bytes]
) -> None:
    async with hostile(max_body_bytes=1000) as c:
        raw = make(1001)
        failure(await send(c, raw), 413, "payload_too_large", "1000")

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(raw), 7):
                yield raw[i : i + 7]

        response = await c.post(SUBMIT, content=chunks())
        assert "content-length" not in response.request.headers
        failure(response, 413, "payload_too_large")


@pytest.mark.anyio
async def test_garbage_over_the_limit_is_413_not_400(
    hostile: Callable[..., httpx.AsyncClient],
) -> None:
    async with hostile(max_body_bytes=1000) as c:
        failure(await send(c, b"\xff" * 5000), 413, "payload_too_large")


@pytest.mark.parametrize("declared", ["1001", "5000", "99999999999999999999"])
@pytest.mark.anyio
async def test_content_length_larger_than_the_limit(
    hostile: Callable[..., httpx.AsyncClient], declared: str
) -> None:
    async with hostile(max_body_bytes=1000) as c:
        response = await c.post(SUBMIT, content=VALID, headers={"Content-Length": declared})
        assert response.request.headers["content-length"] == declared
        failure(response, 413, "payload_too_large")


@pytest.mark.anyio
async def test_default_limit_allows_a_large_data_url(api: httpx.AsyncClient) -> None:
    image = "data:image/png;base64," + "A" * 1_000_000
    raw = json.dumps(
        {"prompt": PROMPT, "ip_adapter": ADAPTERS[0], "ip_adapter_image": image}
    ).encode()
    ok(await send(api, raw))


# -- routing and auth -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.anyio
async def test_wrong_method_on_submit(api: httpx.AsyncClient, method: str) -> None:
    response = await api.request(method, SUBMIT)
    failure(response, 405, "method_not_allowed", method, SUBMIT)


@pytest.mark.parametrize(
    "path",
    ["/nope", "/sdxl/text2image/v2", "/sdxl/text2image/v1/status/", "/sdxl/text2image/v1/x/y"],
)
@pytest.mark.anyio
async def test_unknown_path(api: httpx.AsyncClient, path: str) -> None:
    response = await api.post(path, content=VALID)
    assert response.status_code in (404, 405), response.text
    if response.status_code == 404:
        failure(response, 404, "not_found", path)
    else:
        failure(response, 405, "method_not_allowed")
    failure(await api.get("/no/such/thing"), 404, "not_found", "/no/such/thing")


@pytest.mark.anyio
async def test_trailing_slash_on_submit(api: httpx.AsyncClient) -> None:
    """Either a 404 FAILURE or a redirect to the real path; never a 500 or a silent 200."""
    response = await api.post(SUBMIT + "/", content=VALID)
    if response.status_code == 404:
        failure(response, 404, "not_found")
    else:
        assert response.status_code in (307, 308), response.text
        assert response.headers["location"].endswith(SUBMIT)


@pytest.mark.parametrize("key", [None, "", "   "])
@pytest.mark.anyio
async def test_missing_api_key(api: httpx.AsyncClient, key: str | None) -> None:
    submitted = ok(await send(api, VALID))
    headers = {"API-Key": key} if key is not None else {}
    for request in (
        api.build_request("GET", f"{SUBMIT}/status/{submitted['id']}"),
        api.build_request("GET", f"{SUBMIT}/status/no-such-job"),
        api.build_request("POST", SUBMIT, content=VALID),
    ):
        if key is None:
            del request.headers["API-Key"]
        else:
            request.headers.update(headers)
        response = await api.send(request)
        failure(response, 401, "unauthorized", "API-Key")


@pytest.mark.anyio
async def test_missing_api_key_wins_over_a_bad_body(api: httpx.AsyncClient) -> None:
    request = api.build_request("POST", SUBMIT, content=b"not json")
    del request.headers["API-Key"]
    failure(await api.send(request), 401, "unauthorized")


# -- property: random JSON values under known fields ----------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from([*ADAPTERS, "true", "false", "sdxl", "https://e.com/a.png", "0.5, 0.7"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(string.ascii_letters, max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)

# Plausible values per field as well, so that many bodies get past the JSON Schema and
# into the cross-field rules and the job itself.
_URLS = st.sampled_from(["https://e.com/a.png", "data:image/png;base64,A,B"])
_UNIT = st.floats(0, 1)
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "model_id": st.sampled_from(["sdxl", "123e4567-e89b-12d3-a456-426614174000", "SDXL"]),
    "prompt": st.text(min_size=1, max_size=40),
    "negative_prompt": st.text(max_size=40),
    "num_inference_steps": st.integers(0, 101),
    "strength": st.floats(-0.1, 1.1),
    "samples": st.integers(0, 5),
    "guidance_scale": st.floats(0.5, 20.5),
    "width": st.integers(7, 257).map(lambda n: n * 8),
    "height": st.integers(60, 2060),
    "ip_adapter": st.lists(st.sampled_from(ADAPTERS), max_size=4, unique=True)
    | st.lists(st.sampled_from(ADAPTERS), max_size=3).map(", ".join),
    "ip_adapter_scale": st.lists(_UNIT, max_size=4)
    | _UNIT
    | st.lists(_UNIT.map(str), max_size=4).map(",".join),
    "ip_adapter_image": _URLS,
    "ip_adapter_style_images": st.lists(_URLS, max_size=3) | _URLS,
    "seed": st.integers(-2, 2**32),
    "scheduler": st.text(max_size=10),
    "refiner": st.sampled_from([True, False, "true", "false", "yes"]),
    "safety_checker": st.sampled_from([True, False, "true", "false"]),
    "base64": st.booleans(),
    "lora_models": st.lists(st.text("abc", min_size=1, max_size=3), max_size=3),
    "lora_weights": st.lists(_UNIT, max_size=3) | _UNIT,
    "embeddings": st.lists(st.text("xyz", min_size=1, max_size=3), max_size=3),
    "clip_skip": st.integers(-1, 13),
    "webhook": st.sampled_from(["https://e.com/hook", "ftp://e.com", ""]),
    "server_id": st.text(max_size=5),
}
assert set(PLAUSIBLE) == set(KNOWN_FIELDS)


@st.composite
def extra_fields(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(KNOWN_FIELDS), max_size=7, unique=True))
    return {name: draw(json_values | PLAUSIBLE[name]) for name in names}


@pytest.mark.anyio
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(extra=extra_fields())
async def test_random_values_never_crash(api: httpx.AsyncClient, extra: dict[str, Any]) -> None:
    fields = {"prompt": PROMPT, **extra}
    raw = json.dumps(fields).encode()  # NaN and Infinity go out as their literals
    response = await send(api, raw)
    event(f"HTTP {response.status_code}")
    assert response.status_code in (200, 202, 400), (response.status_code, response.text[:500])
    data = response.json()
    if response.status_code == 400:
        assert data["status"] == "FAILURE" and data["code"] == "invalid_request"
        assert data["errors"], data
        for error in data["errors"]:
            root = error["field"].split(".")[0]
            assert error["message"]
            if root == "":
                # Only the body as a whole: numbers JSON cannot carry.
                assert "NaN" in raw.decode() or "Infinity" in raw.decode(), data
            elif root not in fields:
                # A field that is missing: it must say so, and be a documented one.
                assert root in KNOWN_FIELDS and "required" in error["message"], error
    else:
        assert data["status"] in ("PENDING", "SUCCESS")
        assert "errors" not in data
