"""The rules beyond single-field bounds: spellings, cross-field rules, warnings, defaults."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mock_server import contract
from mock_server.validation import Accepted, GenerationRequest, InvalidRequest, validate
from tests.support.docs_table import ADAPTERS, IMAGE, PROMPT, STYLE, SUBMIT

DATA_URL = "data:image/png;base64,iVBORw0KGgo,AAAA,BBBB"
UUID = "123e4567-e89b-12d3-a456-426614174000"


def body(**fields: Any) -> dict[str, Any]:
    return {"prompt": PROMPT, **fields}


def check(fields: dict[str, Any], **options: Any) -> Accepted | InvalidRequest:
    try:
        return validate(json.dumps(fields).encode(), **options)
    except InvalidRequest as exc:
        return exc


def accepted(fields: dict[str, Any], **options: Any) -> Accepted:
    result = check(fields, **options)
    assert isinstance(result, Accepted), [e.to_json() for e in result.errors]
    return result


def refused(fields: dict[str, Any], **options: Any) -> InvalidRequest:
    result = check(fields, **options)
    assert isinstance(result, InvalidRequest), f"accepted {fields}"
    return result


def fields_of(result: InvalidRequest) -> list[str]:
    return [e.field for e in result.errors]


async def post(client: httpx.AsyncClient, fields: dict[str, Any]) -> httpx.Response:
    return await client.post(SUBMIT, content=json.dumps(fields).encode())


async def http_accepted(client: httpx.AsyncClient, fields: dict[str, Any]) -> dict[str, Any]:
    response = await post(client, fields)
    assert response.status_code in (200, 202), response.text
    data: dict[str, Any] = response.json()
    assert data["status"] in ("PENDING", "SUCCESS")
    return data


async def http_refused(client: httpx.AsyncClient, fields: dict[str, Any]) -> dict[str, Any]:
    response = await post(client, fields)
    assert response.status_code == 400, response.text
    data: dict[str, Any] = response.json()
    assert data["status"] == "FAILURE" and data["code"] == "invalid_request"
    assert data["errors"]
    return data


# -- ip_adapter / ip_adapter_scale spellings ------------------------------------------

SAME_ADAPTERS = [
    pytest.param({"ip_adapter": ADAPTERS[:2], "ip_adapter_scale": [0.6, 0.3]}, id="arrays"),
    pytest.param(
        {"ip_adapter": f"{ADAPTERS[0]},{ADAPTERS[1]}", "ip_adapter_scale": "0.6,0.3"},
        id="comma-strings",
    ),
    pytest.param(
        {"ip_adapter": f" {ADAPTERS[0]} , {ADAPTERS[1]} ", "ip_adapter_scale": " 0.6 ,  0.3 "},
        id="comma-strings-with-spaces",
    ),
    pytest.param(
        {"ip_adapter": ADAPTERS[:2], "ip_adapter_scale": "0.6, 0.3"}, id="array-and-string"
    ),
    pytest.param(
        {"ip_adapter": f"{ADAPTERS[0]}, {ADAPTERS[1]}", "ip_adapter_scale": [0.6, 0.3]},
        id="string-and-array",
    ),
]


@pytest.mark.parametrize("spelling", SAME_ADAPTERS)
@pytest.mark.anyio
async def test_adapter_spellings_give_the_same_request(
    client: httpx.AsyncClient, spelling: dict[str, Any]
) -> None:
    reference = accepted(
        body(
            ip_adapter=ADAPTERS[:2],
            ip_adapter_scale=[0.6, 0.3],
            ip_adapter_image=IMAGE,
            ip_adapter_style_images=[STYLE],
        )
    ).request
    fields = body(**spelling, ip_adapter_image=IMAGE, ip_adapter_style_images=[STYLE])
    result = accepted(fields)
    assert result.request == reference
    assert result.request.ip_adapter == tuple(ADAPTERS[:2])
    assert result.request.ip_adapter_scale == (0.6, 0.3)
    assert result.warnings == ()
    await http_accepted(client, fields)


@pytest.mark.parametrize("scale", [0.6, "0.6", " 0.6 ", [0.6], ".6", "0.60"])
def test_single_scale_spellings(scale: Any) -> None:
    request = accepted(
        body(ip_adapter=ADAPTERS[2], ip_adapter_scale=scale, ip_adapter_image=IMAGE)
    ).request
    assert request.ip_adapter == (ADAPTERS[2],)
    assert request.ip_adapter_scale == (0.6,)


def test_integer_scale_is_a_float_in_the_request() -> None:
    request = accepted(
        body(ip_adapter=ADAPTERS[0], ip_adapter_scale=1, ip_adapter_image=IMAGE)
    ).request
    assert request.ip_adapter_scale == (1.0,)
    assert all(isinstance(s, float) for s in request.ip_adapter_scale)


def test_scale_defaults_to_one_per_adapter() -> None:
    request = accepted(
        body(ip_adapter=ADAPTERS[:3], ip_adapter_image=IMAGE, ip_adapter_style_images=[STYLE] * 2)
    ).request
    assert request.ip_adapter_scale == (1.0, 1.0, 1.0)


@pytest.mark.parametrize("empty", ["", "   ", []])
def test_empty_adapter_means_no_adapter(empty: Any) -> None:
    result = accepted(body(ip_adapter=empty))
    assert result.request.ip_adapter == ()
    assert result.request.ip_adapter_scale == ()
    assert result.warnings == ()


# The published schema says a scale string matches
#   ^\s*(\d+(\.\d*)?|\.\d+)?(\s*,\s*(\d+(\.\d*)?|\.\d+))*\s*$
# (ECMA-262 \d is ASCII only). Anything else is not a scale string the contract allows.
@pytest.mark.parametrize("text", ["0.0_1", "+0.5", "1e-1", "-0", "\uff10.\uff15", "0.5;", "nan"])
def test_scale_string_outside_the_schema_pattern_is_refused(text: str) -> None:
    pattern = contract.request_schema()["properties"]["ip_adapter_scale"]["pattern"]
    assert not re.fullmatch(pattern, text, flags=re.ASCII)
    result = refused(body(ip_adapter=ADAPTERS[0], ip_adapter_scale=text, ip_adapter_image=IMAGE))
    assert all(f.startswith("ip_adapter_scale") for f in fields_of(result))


# -- ip_adapter names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("adapters", "bad"),
    [
        ([ADAPTERS[0], "ip-adapter_sd15"], 1),
        (["bogus"], 0),
        (f"{ADAPTERS[0]}, {ADAPTERS[1]}, IP-ADAPTER_SDXL", 2),
        ([ADAPTERS[0], ADAPTERS[1] + " "], 1),
    ],
)
@pytest.mark.anyio
async def test_unknown_adapter_names_its_position(
    client: httpx.AsyncClient, adapters: Any, bad: int
) -> None:
    n = len(adapters) if isinstance(adapters, list) else adapters.count(",") + 1
    fields = body(
        ip_adapter=adapters,
        ip_adapter_image=IMAGE,
        ip_adapter_style_images=[STYLE] * (n - 1),
    )
    result = refused(fields)
    assert fields_of(result) == [f"ip_adapter.{bad}"]
    error = result.errors[0]
    for name in ADAPTERS:
        assert name in error.allowed
    data = await http_refused(client, fields)
    assert [e["field"] for e in data["errors"]] == [f"ip_adapter.{bad}"]


@pytest.mark.parametrize("adapters", [[ADAPTERS[0], ADAPTERS[0]], f"{ADAPTERS[1]}, {ADAPTERS[1]}"])
@pytest.mark.anyio
async def test_duplicate_adapter_is_refused(client: httpx.AsyncClient, adapters: Any) -> None:
    fields = body(ip_adapter=adapters, ip_adapter_image=IMAGE, ip_adapter_style_images=[STYLE])
    result = refused(fields)
    assert fields_of(result) == ["ip_adapter"]
    assert "once" in result.errors[0].allowed
    data = await http_refused(client, fields)
    assert [e["field"] for e in data["errors"]] == ["ip_adapter"]


@pytest.mark.parametrize(
    ("adapters", "scales"),
    [
        (ADAPTERS[:1], [0.5, 0.5]),
        (ADAPTERS[:2], [0.5]),
        (ADAPTERS[:2], "0.5"),
        (ADAPTERS[:2], 0.5),
        (ADAPTERS[:3], "0.1, 0.2, 0.3, 0.4"),
    ],
)
@pytest.mark.anyio
async def test_scale_count_must_match_adapter_count(
    client: httpx.AsyncClient, adapters: list[str], scales: Any
) -> None:
    fields = body(
        ip_adapter=adapters,
        ip_adapter_scale=scales,
        ip_adapter_image=IMAGE,
        ip_adapter_style_images=[STYLE] * (len(adapters) - 1),
    )
    result = refused(fields)
    assert fields_of(result) == ["ip_adapter_scale"]
    assert str(len(adapters)) in result.errors[0].message
    data = await http_refused(client, fields)
    assert [e["field"] for e in data["errors"]] == ["ip_adapter_scale"]


@pytest.mark.parametrize("image", [None, ""])
@pytest.mark.anyio
async def test_adapter_needs_an_image(client: httpx.AsyncClient, image: str | None) -> None:
    fields = body(ip_adapter=ADAPTERS[3], ip_adapter_scale=0.6)
    if image is not None:
        fields["ip_adapter_image"] = image
    result = refused(fields)
    assert fields_of(result) == ["ip_adapter_image"]
    assert ADAPTERS[3] in result.errors[0].message
    data = await http_refused(client, fields)
    assert [e["field"] for e in data["errors"]] == ["ip_adapter_image"]


@pytest.mark.parametrize("image", [IMAGE, "http://example.com/a.png", DATA_URL])
def test_adapter_image_forms(image: str) -> None:
    request = accepted(body(ip_adapter=ADAPTERS[0], ip_adapter_image=image)).request
    assert request.ip_adapter_image == image


@pytest.mark.parametrize("image", ["ftp://example.com/a.png", "example.com/a.png", "data:text/x,1"])
def test_adapter_image_must_be_a_url(image: str) -> None:
    result = refused(body(ip_adapter=ADAPTERS[0], ip_adapter_image=image))
    assert fields_of(result) == ["ip_adapter_image"]


# -- multi-adapter style images -------------------------------------------------------


@pytest.mark.parametrize("styles", [[STYLE], STYLE, [DATA_URL], DATA_URL])
@pytest.mark.anyio
async def test_two_adapters_take_one_style_image(client: httpx.AsyncClient, styles: Any) -> None:
    fields = body(
        ip_adapter=ADAPTERS[:2],
        ip_adapter_scale=[0.6, 0.4],
        ip_adapter_image=IMAGE,
        ip_adapter_style_images=styles,
    )
    request = accepted(fields).request
    expected = styles if isinstance(styles, list) else [styles]
    assert request.ip_adapter_style_images == tuple(expected)
    await http_accepted(client, fields)


def test_data_url_with_commas_is_one_image() -> None:
    """A data: URL holds commas; the style list is never split at them."""
    request = accepted(
        body(ip_adapter=ADAPTERS[:2], ip_adapter_image=IMAGE, ip_adapter_style_images=DATA_URL)
    ).request
    assert DATA_URL.count(",") == 3
    assert request.ip_adapter_style_images == (DATA_URL,)


@pytest.mark.parametrize("styles", [None, [], [STYLE, STYLE], ""])
@pytest.mark.anyio
async def test_two_adapters_without_exactly_one_style_image(
    client: httpx.AsyncClient, styles: Any
) -> None:
    fields = body(ip_adapter=ADAPTERS[:2], ip_adapter_image=IMAGE)
    if styles is not None:
        fields["ip_adapter_style_images"] = styles
    result = refused(fields)
    assert fields_of(result) == ["ip_adapter_style_images"]
    data = await http_refused(client, fields)
    assert [e["field"] for e in data["errors"]] == ["ip_adapter_style_images"]


def test_four_adapters_take_three_style_images() -> None:
    request = accepted(
        body(ip_adapter=ADAPTERS, ip_adapter_image=IMAGE, ip_adapter_style_images=[STYLE] * 3)
    ).request
    assert len(request.ip_adapter_style_images) == 3
    result = refused(
        body(ip_adapter=ADAPTERS, ip_adapter_image=IMAGE, ip_adapter_style_images=[STYLE] * 2)
    )
    assert fields_of(result) == ["ip_adapter_style_images"]


# -- adapter fields without an adapter ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ip_adapter_scale", [0.6]),
        ("ip_adapter_scale", 0.6),
        ("ip_adapter_scale", "0.6"),
        ("ip_adapter_image", IMAGE),
        ("ip_adapter_style_images", [STYLE]),
    ],
)
@pytest.mark.anyio
async def test_adapter_field_without_adapter_warns(
    make_client: Callable[..., httpx.AsyncClient], name: str, value: Any
) -> None:
    fields = body(**{name: value})
    result = accepted(fields)
    assert [w.field for w in result.warnings] == [name]
    assert result.request.ip_adapter == ()
    assert result.request.ip_adapter_scale == ()
    async with make_client() as client:
        data = await http_accepted(client, fields)
        assert len(data["warnings"]) == 1 and name in data["warnings"][0]
    strict = refused(fields, strict=True)
    assert fields_of(strict) == [name]
    async with make_client(strict=True) as client:
        data = await http_refused(client, fields)
        assert [e["field"] for e in data["errors"]] == [name]


# -- LoRA -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("models", "weights", "ok"),
    [
        (["a", "b"], [0.5, 0.7], True),
        ("a, b", "0.5, 0.7", True),
        (["a"], 0.5, True),
        (["a", "b"], [0.5], False),
        ("a,b,c", "0.1,0.2", False),
        (["a"], [0.5, 0.5], False),
    ],
)
@pytest.mark.anyio
async def test_lora_weight_per_model(
    client: httpx.AsyncClient, models: Any, weights: Any, ok: bool
) -> None:
    """One weight per LoRA model; a mismatch is a warning (JSON Schema cannot say it), a
    refusal under strict."""
    fields = body(lora_models=models, lora_weights=weights)
    result = accepted(fields)
    data = await http_accepted(client, fields)
    if ok:
        assert result.warnings == ()
        assert "warnings" not in data
    else:
        assert [w.field for w in result.warnings] == ["lora_weights"]
        assert any("one weight per model" in w for w in data["warnings"])
        assert fields_of(refused(fields, strict=True)) == ["lora_weights"]


# -- booleans -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["refiner", "safety_checker", "base64"])
@pytest.mark.parametrize(
    ("value", "meaning"), [(True, True), (False, False), ("true", True), ("false", False)]
)
def test_boolean_spellings(name: str, value: Any, meaning: bool) -> None:
    result = accepted(body(**{name: value}))
    assert result.request.body[name] is meaning
    assert result.warnings == ()


@pytest.mark.parametrize("name", ["refiner", "safety_checker", "base64"])
@pytest.mark.parametrize("value", ["yes", "no", "True", "FALSE", "1", 1, 0, None, "", []])
@pytest.mark.anyio
async def test_boolean_other_values_refused(
    client: httpx.AsyncClient, name: str, value: Any
) -> None:
    fields = body(**{name: value})
    result = refused(fields)
    assert {e.field for e in result.errors} == {name}
    assert "true" in result.errors[0].allowed and "false" in result.errors[0].allowed
    data = await http_refused(client, fields)
    assert {e["field"] for e in data["errors"]} == {name}


# -- unknown fields -------------------------------------------------------------------


@pytest.mark.anyio
async def test_unknown_field_is_accepted_with_a_warning(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    fields = body(colour_grading="teal")
    result = accepted(fields)
    assert [w.field for w in result.warnings] == ["colour_grading"]
    assert "colour_grading" in result.warnings[0].message
    assert "did you mean" not in result.warnings[0].message
    assert result.request.body["colour_grading"] == "teal"
    async with make_client() as client:
        data = await http_accepted(client, fields)
        assert len(data["warnings"]) == 1 and "colour_grading" in data["warnings"][0]


def test_a_huge_unknown_field_name_is_shortened_in_its_warning() -> None:
    name = "x" * 100_000
    (warning,) = accepted(body(**{name: 1})).warnings
    assert len(warning.message) < 200 and "100000 characters" in warning.message


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("sampels", "samples"),
        ("negative_promt", "negative_prompt"),
        ("guidance", "guidance_scale"),
        ("ip_adapter_scales", "ip_adapter_scale"),
        ("widht", "width"),
    ],
)
@pytest.mark.anyio
async def test_misspelt_field_gets_a_suggestion(
    client: httpx.AsyncClient, typo: str, meant: str
) -> None:
    fields = body(**{typo: 2})
    result = accepted(fields)
    assert [w.field for w in result.warnings] == [typo]
    assert f"did you mean {meant}" in result.warnings[0].message
    data = await http_accepted(client, fields)
    assert any(f"did you mean {meant}" in w for w in data["warnings"])


@pytest.mark.anyio
async def test_strict_refuses_unknown_fields(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    fields = body(sampels=2, colour_grading="teal")
    result = refused(fields, strict=True)
    assert sorted(fields_of(result)) == ["colour_grading", "sampels"]
    async with make_client(strict=True) as client:
        data = await http_refused(client, fields)
        assert sorted(e["field"] for e in data["errors"]) == ["colour_grading", "sampels"]
        assert any("did you mean samples" in e["message"] for e in data["errors"])


# -- model_id -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_model_id_sdxl(make_client: Callable[..., httpx.AsyncClient]) -> None:
    for options in ({}, {"strict": True}, {"accept_model_uuid": False}):
        result = accepted(body(model_id="sdxl"), **options)
        assert result.request.model_id == "sdxl" and result.warnings == ()
        async with make_client(**options) as client:
            await http_accepted(client, body(model_id="sdxl"))


def test_model_id_defaults_to_sdxl() -> None:
    assert accepted(body()).request.model_id == "sdxl"


@pytest.mark.parametrize("uuid", [UUID, UUID.upper()])
@pytest.mark.anyio
async def test_model_uuid_is_accepted_with_a_warning(
    make_client: Callable[..., httpx.AsyncClient], uuid: str
) -> None:
    fields = body(model_id=uuid)
    result = accepted(fields)
    assert [w.field for w in result.warnings] == ["model_id"]
    assert uuid in result.warnings[0].message
    async with make_client() as client:
        data = await http_accepted(client, fields)
        assert len(data["warnings"]) == 1 and "model_id" in data["warnings"][0]
    for options in ({"strict": True}, {"accept_model_uuid": False}):
        assert fields_of(refused(fields, **options)) == ["model_id"]
        async with make_client(**options) as client:
            data = await http_refused(client, fields)
            assert [e["field"] for e in data["errors"]] == ["model_id"]


@pytest.mark.parametrize(
    "model_id",
    [
        "SDXL",
        "sdxl ",
        "sdxl\n",
        "",
        "sdxl-turbo",
        "stable-diffusion-xl",
        UUID + "\n",
        UUID[:-1],
        UUID.replace("-", ""),
        "{" + UUID + "}",
        5,
        None,
    ],
)
@pytest.mark.anyio
async def test_other_model_ids_refused(client: httpx.AsyncClient, model_id: Any) -> None:
    fields = body(model_id=model_id)
    result = refused(fields)
    assert fields_of(result) == ["model_id"]
    assert "sdxl" in result.errors[0].allowed
    data = await http_refused(client, fields)
    assert [e["field"] for e in data["errors"]] == ["model_id"]


# -- all errors at once ---------------------------------------------------------------


@pytest.mark.anyio
async def test_every_error_is_reported_at_once(client: httpx.AsyncClient) -> None:
    fields = body(samples=9, width=1001, guidance_scale=0, num_inference_steps=0)
    result = refused(fields)
    expected = ["guidance_scale", "num_inference_steps", "samples", "width"]
    assert sorted(fields_of(result)) == expected
    data = await http_refused(client, fields)
    assert sorted(e["field"] for e in data["errors"]) == expected
    for name in expected:
        assert name in data["error"]


@pytest.mark.anyio
async def test_schema_and_cross_field_errors_together(client: httpx.AsyncClient) -> None:
    fields = {
        "samples": 0,
        "ip_adapter": [ADAPTERS[0], "nope"],
        "lora_models": ["a", "b"],
        "lora_weights": [0.5],
        "refiner": "yes",
    }
    result = refused(fields)
    assert sorted(fields_of(result)) == sorted(
        [
            "prompt",
            "samples",
            "ip_adapter.1",
            "refiner",
            "ip_adapter_image",
            "ip_adapter_style_images",
        ]
    )
    data = await http_refused(client, fields)
    assert len(data["errors"]) == len(result.errors)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"prompt": ""}, id="empty-prompt"),
        pytest.param(body(width=1024.5), id="fractional-width"),
        pytest.param(body(width=-7), id="negative-odd-width"),
        pytest.param(body(refiner=1), id="number-refiner"),
        pytest.param(body(ip_adapter=5), id="number-adapter"),
        pytest.param(body(samples=5.5), id="fractional-samples"),
    ],
)
def test_one_field_one_message(fields: dict[str, Any]) -> None:
    """A value that breaks two keywords of one field must not list the same line twice."""
    result = refused(fields)
    seen = [(e.field, e.message) for e in result.errors]
    assert len(seen) == len(set(seen)), f"duplicate errors: {seen}"


# -- prompt ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_prompt_is_required(client: httpx.AsyncClient) -> None:
    for fields in ({}, {"negative_prompt": "blurry"}, {"samples": 2}):
        result = refused(fields)
        assert fields_of(result) == ["prompt"]
        assert "required" in result.errors[0].message
        data = await http_refused(client, fields)
        assert [e["field"] for e in data["errors"]] == ["prompt"]


@pytest.mark.parametrize("blank", ["", " ", "   ", "\t\n", "\u00a0\u3000", "\r\n \t"])
@pytest.mark.anyio
async def test_blank_prompt_is_refused(client: httpx.AsyncClient, blank: str) -> None:
    result = refused({"prompt": blank})
    assert {e.field for e in result.errors} == {"prompt"}
    data = await http_refused(client, {"prompt": blank})
    assert {e["field"] for e in data["errors"]} == {"prompt"}


@pytest.mark.parametrize("prompt", [None, 5, ["a cat"], {"text": "a cat"}, True])
def test_prompt_must_be_a_string(prompt: Any) -> None:
    assert {e.field for e in refused({"prompt": prompt}).errors} == {"prompt"}


def test_blank_negative_prompt_is_fine() -> None:
    assert accepted(body(negative_prompt="")).request.negative_prompt == ""
    assert accepted(body(negative_prompt="  ")).warnings == ()


# -- defaults -------------------------------------------------------------------------


def test_defaults_are_filled() -> None:
    result = accepted({"prompt": PROMPT})
    request = result.request
    assert result.warnings == ()
    assert request == GenerationRequest(
        model_id="sdxl",
        prompt=PROMPT,
        negative_prompt="",
        num_inference_steps=20,
        guidance_scale=7.5,
        width=1024,
        height=1024,
        samples=1,
        seed=-1,
        strength=None,
        ip_adapter=(),
        ip_adapter_scale=(),
        ip_adapter_image=None,
        ip_adapter_style_images=(),
        body={},
    )
    for name, value in {
        "model_id": "sdxl",
        "negative_prompt": "",
        "num_inference_steps": 20,
        "guidance_scale": 7.5,
        "width": 1024,
        "height": 1024,
        "samples": 1,
        "seed": -1,
    }.items():
        assert request.body[name] == value, name


def test_given_values_are_kept() -> None:
    request = accepted(
        body(
            samples=3,
            width=512,
            height=768,
            num_inference_steps=30,
            guidance_scale=12,
            seed=42,
            negative_prompt="blurry",
            strength=0.3,
        )
    ).request
    assert (request.samples, request.width, request.height) == (3, 512, 768)
    assert (request.num_inference_steps, request.guidance_scale, request.seed) == (30, 12.0, 42)
    assert (request.negative_prompt, request.strength) == ("blurry", 0.3)


@pytest.mark.anyio
async def test_seed_minus_one_is_random_but_kept_in_the_request(client: httpx.AsyncClient) -> None:
    assert accepted(body(seed=-1)).request.seed == -1
    await http_accepted(client, body(seed=-1))
