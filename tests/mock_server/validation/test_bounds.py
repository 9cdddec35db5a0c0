"""Every bound the public docs state, checked at and around the bound.

The tables below are written by hand from the docs page's parameter table (and, for the
fields documented only on sibling pages, from the project's stated reading of them), NOT
derived from schema/request.schema.json: the point is to catch a schema or a server that
drifts from the docs. Each case goes through ``validate`` directly and through HTTP.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mock_server.validation import Accepted, InvalidRequest, validate
from mock_server.validation.tokens import count_tokens
from tests.support.docs_table import ADAPTERS, IMAGE, PROMPT, STYLE, SUBMIT

# -- the docs, by hand ----------------------------------------------------------------
#
# field, lowest allowed, highest allowed, where the bound comes from
INTEGER_BOUNDS: list[tuple[str, int, int, str]] = [
    ("num_inference_steps", 1, 100, "docs table: int, [1-100]"),
    ("samples", 1, 4, "docs table: int, [1-4]; 'a maximum of 4 samples per API call'"),
    ("seed", -1, 4294967295, "sibling page: -1 is random, otherwise a 32-bit seed"),
    ("clip_skip", 0, 12, "sibling page: at most 12 (the schema adds minimum 0)"),
]
FLOAT_BOUNDS: list[tuple[str, float, float, str]] = [
    ("guidance_scale", 1, 20, "docs table: float, [1-20]"),
    ("strength", 0, 1, "docs table: float, [0-1]"),
]
STEP = 0.0001

# width/height: the docs say only "int ... lower than or equal to 1024 for best results";
# the project reads that as a multiple of 8 from 64 to 2048 (schema/INTERPRETATION.md).
SIZE_CASES: list[tuple[int, bool]] = [
    (-8, False),
    (0, False),
    (56, False),
    (63, False),
    (64, True),
    (65, False),
    (72, True),
    (1001, False),
    (1016, True),
    (1024, True),
    (1032, True),  # past "best results" but inside the project's reading
    (2040, True),
    (2047, False),
    (2048, True),
    (2049, False),
    (2056, False),
]


def _int_cases() -> list[Any]:
    cases = []
    for name, low, high, _source in INTEGER_BOUNDS:
        for value, ok in (
            (low - 1, False),
            (low, True),
            (low + 1, True),
            (high - 1, True),
            (high, True),
            (high + 1, False),
        ):
            cases.append(pytest.param(name, value, ok, low, high, id=f"{name}={value}"))
    return cases


def _float_cases() -> list[Any]:
    cases = []
    for name, low, high, _source in FLOAT_BOUNDS:
        for value, ok in (
            (low - STEP, False),
            (math.nextafter(low, -math.inf), False),
            (low, True),
            (float(low), True),
            (low + STEP, True),
            (high - STEP, True),
            (float(high), True),
            (high, True),
            (math.nextafter(high, math.inf), False),
            (high + STEP, False),
        ):
            cases.append(pytest.param(name, value, ok, low, high, id=f"{name}={value!r}"))
    return cases


def _size_cases() -> list[Any]:
    return [
        pytest.param(name, value, ok, id=f"{name}={value}")
        for name in ("width", "height")
        for value, ok in SIZE_CASES
    ]


# -- helpers --------------------------------------------------------------------------


def body(**fields: Any) -> dict[str, Any]:
    return {"prompt": PROMPT, **fields}


def check(fields: dict[str, Any], **options: Any) -> Accepted | InvalidRequest:
    try:
        return validate(json.dumps(fields).encode(), **options)
    except InvalidRequest as exc:
        return exc


def assert_accepted(result: Accepted | InvalidRequest) -> Accepted:
    assert isinstance(result, Accepted), (
        f"refused: {[e.to_json() for e in result.errors]}"  # type: ignore[union-attr]
    )
    return result


def assert_refused_on(
    result: Accepted | InvalidRequest, field: str, value: Any, *bounds: Any
) -> None:
    assert isinstance(result, InvalidRequest), f"accepted {field}={value!r}"
    assert {e.field for e in result.errors} == {field}, [e.to_json() for e in result.errors]
    assert_no_duplicates([e.to_json() for e in result.errors])
    error = result.errors[0]
    assert error.value == value
    shown = error.to_json()
    assert shown["value"] == value
    assert field.split(".")[0] in error.message
    for bound in bounds:
        assert _num(bound) in error.allowed, (bound, error.allowed)
        assert _num(bound) in error.message


def assert_no_duplicates(errors: list[dict[str, Any]]) -> None:
    """One entry per distinct problem: the same field and message twice says nothing new."""
    seen = [(e["field"], e["message"]) for e in errors]
    assert len(seen) == len(set(seen)), f"duplicate errors: {seen}"


def _num(bound: Any) -> str:
    """How a bound is written: 1 not 1.0, 4294967295 in full."""
    if isinstance(bound, float) and bound.is_integer():
        return str(int(bound))
    return str(bound)


async def post(client: httpx.AsyncClient, fields: dict[str, Any]) -> httpx.Response:
    return await client.post(SUBMIT, content=json.dumps(fields).encode())


async def assert_http_accepted(client: httpx.AsyncClient, fields: dict[str, Any]) -> dict[str, Any]:
    response = await post(client, fields)
    assert response.status_code in (200, 202), response.text
    data: dict[str, Any] = response.json()
    assert data["status"] in ("PENDING", "SUCCESS")
    return data


async def assert_http_refused_on(
    client: httpx.AsyncClient, fields: dict[str, Any], field: str
) -> dict[str, Any]:
    response = await post(client, fields)
    assert response.status_code == 400, response.text
    data: dict[str, Any] = response.json()
    assert data["status"] == "FAILURE"
    assert data["code"] == "invalid_request"
    assert field in [e["field"] for e in data["errors"]], data
    assert data["error"]
    return data


# -- integer and float bounds ---------------------------------------------------------


@pytest.mark.parametrize(("name", "value", "ok", "low", "high"), _int_cases())
@pytest.mark.anyio
async def test_integer_bound(
    client: httpx.AsyncClient, name: str, value: int, ok: bool, low: int, high: int
) -> None:
    fields = body(**{name: value})
    result = check(fields)
    if ok:
        accepted = assert_accepted(result)
        assert accepted.request.body[name] == value
        assert not accepted.warnings
        await assert_http_accepted(client, fields)
    else:
        assert_refused_on(result, name, value, low, high)
        data = await assert_http_refused_on(client, fields, name)
        assert {e["field"] for e in data["errors"]} == {name}
        assert_no_duplicates(data["errors"])
        assert data["errors"][0]["value"] == value


@pytest.mark.parametrize(("name", "value", "ok", "low", "high"), _float_cases())
@pytest.mark.anyio
async def test_float_bound(
    client: httpx.AsyncClient, name: str, value: float, ok: bool, low: float, high: float
) -> None:
    fields = body(**{name: value})
    result = check(fields)
    if ok:
        accepted = assert_accepted(result)
        assert getattr(accepted.request, name) == value
        assert not accepted.warnings
        await assert_http_accepted(client, fields)
    else:
        assert_refused_on(result, name, value, low, high)
        data = await assert_http_refused_on(client, fields, name)
        assert {e["field"] for e in data["errors"]} == {name}
        assert_no_duplicates(data["errors"])


@pytest.mark.parametrize(("name", "value", "ok"), _size_cases())
@pytest.mark.anyio
async def test_size_bound(client: httpx.AsyncClient, name: str, value: int, ok: bool) -> None:
    fields = body(**{name: value})
    result = check(fields)
    if ok:
        accepted = assert_accepted(result)
        assert getattr(accepted.request, name) == value
        await assert_http_accepted(client, fields)
    else:
        # The allowed text must state the whole rule: the range and the step.
        assert_refused_on(result, name, value, 64, 2048, 8)
        data = await assert_http_refused_on(client, fields, name)
        assert {e["field"] for e in data["errors"]} == {name}
        assert_no_duplicates(data["errors"])


@pytest.mark.anyio
async def test_width_and_height_refused_together(client: httpx.AsyncClient) -> None:
    result = check(body(width=1001, height=2056))
    assert isinstance(result, InvalidRequest)
    assert sorted(e.field for e in result.errors) == ["height", "width"]
    data = await assert_http_refused_on(client, body(width=1001, height=2056), "width")
    assert sorted(e["field"] for e in data["errors"]) == ["height", "width"]


# -- ip_adapter_scale: each value in [0, 1] -------------------------------------------

SCALE_CASES = [
    (-STEP, False),
    (math.nextafter(0.0, -math.inf), False),
    (0, True),
    (0.0, True),
    (STEP, True),
    (1 - STEP, True),
    (1, True),
    (1.0, True),
    (math.nextafter(1.0, math.inf), False),
    (1 + STEP, False),
]


@pytest.mark.parametrize(("value", "ok"), SCALE_CASES, ids=[repr(v) for v, _ in SCALE_CASES])
@pytest.mark.anyio
async def test_ip_adapter_scale_bound_one_adapter(
    client: httpx.AsyncClient, value: float, ok: bool
) -> None:
    fields = body(ip_adapter=[ADAPTERS[0]], ip_adapter_scale=[value], ip_adapter_image=IMAGE)
    result = check(fields)
    if ok:
        accepted = assert_accepted(result)
        assert accepted.request.ip_adapter_scale == (float(value),)
        await assert_http_accepted(client, fields)
    else:
        assert_refused_on(result, "ip_adapter_scale.0", value, 0, 1)
        await assert_http_refused_on(client, fields, "ip_adapter_scale.0")


@pytest.mark.parametrize(("value", "ok"), SCALE_CASES, ids=[repr(v) for v, _ in SCALE_CASES])
@pytest.mark.anyio
async def test_ip_adapter_scale_bound_each_of_four_adapters(
    client: httpx.AsyncClient, value: float, ok: bool
) -> None:
    """Every position is checked, not just the first."""
    for position in range(4):
        scales: list[float] = [0.5, 0.5, 0.5, 0.5]
        scales[position] = value
        fields = body(
            ip_adapter=ADAPTERS,
            ip_adapter_scale=scales,
            ip_adapter_image=IMAGE,
            ip_adapter_style_images=[STYLE] * 3,
        )
        result = check(fields)
        if ok:
            assert assert_accepted(result).request.ip_adapter_scale == tuple(map(float, scales))
            await assert_http_accepted(client, fields)
        else:
            assert_refused_on(result, f"ip_adapter_scale.{position}", value, 0, 1)
            await assert_http_refused_on(client, fields, f"ip_adapter_scale.{position}")


@pytest.mark.parametrize(
    ("value", "ok"),
    [(0, True), (1, True), (0.0001, True), (-0.0001, False), (1.0001, False), (1.5, False)],
)
def test_ip_adapter_scale_single_number_and_string_bounds(value: float, ok: bool) -> None:
    for scale in (value, str(value)):
        fields = body(ip_adapter=ADAPTERS[0], ip_adapter_scale=scale, ip_adapter_image=IMAGE)
        result = check(fields)
        if ok:
            assert assert_accepted(result).request.ip_adapter_scale == (float(value),)
        else:
            assert isinstance(result, InvalidRequest), scale
            assert [e.field for e in result.errors] in (
                ["ip_adapter_scale"],
                ["ip_adapter_scale.0"],
            ), [e.to_json() for e in result.errors]
            assert "0" in result.errors[0].allowed and "1" in result.errors[0].allowed


# -- samples: default and effect ------------------------------------------------------


def test_samples_default_is_one() -> None:
    accepted = assert_accepted(check(body()))
    assert accepted.request.samples == 1
    assert accepted.request.body["samples"] == 1


async def _finish(client: httpx.AsyncClient, fields: dict[str, Any]) -> dict[str, Any]:
    submitted = await assert_http_accepted(client, fields)
    for _ in range(5):
        if submitted["status"] != "PENDING":
            break
        response = await client.get(f"{SUBMIT}/status/{submitted['id']}")
        assert response.status_code == 200, response.text
        submitted = response.json()
    assert submitted["status"] == "SUCCESS", submitted
    return submitted


@pytest.mark.parametrize(("samples", "urls"), [(None, 1), (1, 1), (2, 2), (4, 4)])
@pytest.mark.anyio
async def test_samples_give_that_many_download_urls(
    client: httpx.AsyncClient, samples: int | None, urls: int
) -> None:
    fields = body() if samples is None else body(samples=samples)
    done = await _finish(client, fields)
    assert len(done["download_urls"]) == urls


# -- the 75-token prompt limit --------------------------------------------------------


def _prompt_of(tokens: int) -> str:
    text = " ".join(["cat"] * tokens)
    assert count_tokens("cat") == 1
    assert count_tokens(text) == tokens
    return text


@pytest.mark.parametrize("name", ["prompt", "negative_prompt"])
@pytest.mark.parametrize("tokens", [74, 75])
@pytest.mark.anyio
async def test_prompt_within_75_tokens_has_no_warning(
    make_client: Callable[..., httpx.AsyncClient], name: str, tokens: int
) -> None:
    fields = body(**{name: _prompt_of(tokens)})
    for strict in (False, True):
        accepted = assert_accepted(check(fields, strict=strict))
        assert accepted.warnings == ()
        assert getattr(accepted.request, name) == fields[name]
        async with make_client(strict=strict) as client:
            data = await assert_http_accepted(client, fields)
            assert "warnings" not in data or data["warnings"] == []


@pytest.mark.parametrize("name", ["prompt", "negative_prompt"])
@pytest.mark.anyio
async def test_prompt_of_76_tokens_is_accepted_with_a_warning(
    client: httpx.AsyncClient, name: str
) -> None:
    fields = body(**{name: _prompt_of(76)})
    accepted = assert_accepted(check(fields))
    assert [w.field for w in accepted.warnings] == [name]
    warning = accepted.warnings[0]
    assert name in warning.message and "76" in warning.message and "75" in warning.message
    data = await assert_http_accepted(client, fields)
    assert len(data["warnings"]) == 1
    assert name in data["warnings"][0] and "76" in data["warnings"][0]
    if name == "prompt":
        assert not data["warnings"][0].startswith("negative_prompt")


@pytest.mark.parametrize("name", ["prompt", "negative_prompt"])
@pytest.mark.anyio
async def test_prompt_of_76_tokens_is_refused_when_strict(
    make_client: Callable[..., httpx.AsyncClient], name: str
) -> None:
    fields = body(**{name: _prompt_of(76)})
    result = check(fields, strict=True)
    assert isinstance(result, InvalidRequest)
    assert [e.field for e in result.errors] == [name]
    assert "76" in result.errors[0].message and "75" in result.errors[0].allowed
    async with make_client(strict=True) as client:
        data = await assert_http_refused_on(client, fields, name)
        assert {e["field"] for e in data["errors"]} == {name}
        assert_no_duplicates(data["errors"])
        assert "76" in data["errors"][0]["message"]


@pytest.mark.anyio
async def test_both_prompts_over_the_limit_warn_separately(client: httpx.AsyncClient) -> None:
    fields = body(prompt=_prompt_of(80), negative_prompt=_prompt_of(76))
    accepted = assert_accepted(check(fields))
    assert sorted(w.field for w in accepted.warnings) == ["negative_prompt", "prompt"]
    data = await assert_http_accepted(client, fields)
    assert any(w.startswith("prompt") and "80" in w for w in data["warnings"])
    assert any(w.startswith("negative_prompt") and "76" in w for w in data["warnings"])
