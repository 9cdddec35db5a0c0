"""What refusals say: an unusable number is named by the field that holds it, and strict
mode's refusals of what lenient mode only warns about say that it is not allowed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mock_server.validation import InvalidRequest, validate

SUBMIT = "/sdxl/text2image/v1"


def errors(raw: bytes, **options: Any) -> list[dict[str, Any]]:
    with pytest.raises(InvalidRequest) as refused:
        validate(raw, **options)
    return [e.to_json() for e in refused.value.errors]


# -- unusable numbers -----------------------------------------------------------------


def test_an_infinite_number_is_named_by_its_field() -> None:
    [error] = errors(b'{"prompt": "p", "samples": 1e400}')
    assert error["field"] == "samples"
    assert "1e400" in error["message"] and "out of range" in error["message"]
    assert error["allowed"] == "an integer from 1 to 4"


def test_an_integer_of_too_many_digits_says_so_without_python_internals() -> None:
    [error] = errors(('{"prompt": "p", "seed": 1' + "0" * 5000 + "}").encode())
    assert error["field"] == "seed"
    assert "5001 digits" in error["message"] and "at most 4300" in error["message"]
    assert "sys." not in error["message"] and "int_max_str_digits" not in error["message"]
    assert error["allowed"] == "an integer from -1 to 4294967295"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"prompt": "p", "ip_adapter_scale": [0.5, -Infinity]}', "ip_adapter_scale.1"),
        (b'{"prompt": "p", "extra": {"deep": [NaN]}}', "extra.deep.0"),
    ],
)
def test_a_nested_unusable_number_is_named_by_its_path(raw: bytes, field: str) -> None:
    assert [e["field"] for e in errors(raw)] == [field]


def test_every_unusable_number_is_named_in_body_order() -> None:
    raw = b'{"prompt": "p", "seed": NaN, "samples": 1e400, "guidance_scale": -1e999}'
    assert [e["field"] for e in errors(raw)] == ["seed", "samples", "guidance_scale"]


def test_where_the_body_cannot_be_parsed_the_number_is_placed_by_line_and_column() -> None:
    # The number comes first, then a syntax error: no field can be told, only where.
    [error] = errors(b'{"prompt": "1e400",\n "samples": 1e400, }')
    assert error["field"] == ""
    assert "line 2 column 13" in error["message"] and "1e400" in error["message"]


def test_a_lone_unusable_number_is_not_an_object() -> None:
    assert errors(b"1e400") == [
        {"field": "", "message": "the body must be a JSON object, got a number"}
    ]


@pytest.mark.anyio
async def test_over_http_the_error_names_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(SUBMIT, content=b'{"prompt": "p", "samples": 1e400}')
    assert response.status_code == 400
    data = response.json()
    assert [e["field"] for e in data["errors"]] == ["samples"]
    assert data["error"].startswith("invalid request: samples must be an integer from 1 to 4")


# -- strict mode ----------------------------------------------------------------------


def test_strict_mode_says_an_unknown_field_is_not_allowed() -> None:
    [error] = errors(b'{"prompt": "p", "bogus": 1}', strict=True)
    assert error["field"] == "bogus"
    assert "is not allowed" in error["message"] and "not a documented field" in error["message"]
    assert "ignored" not in error["message"]


def test_strict_mode_keeps_the_suggestion_for_a_typo() -> None:
    [error] = errors(b'{"prompt": "p", "sampels": 2}', strict=True)
    assert error["message"] == (
        "unknown field sampels is not allowed: it is not a documented field (did you mean samples?)"
    )


def test_lenient_mode_still_says_ignored() -> None:
    accepted = validate(b'{"prompt": "p", "bogus": 1}')
    assert [w.message for w in accepted.warnings] == ["unknown field bogus is ignored"]


@pytest.mark.parametrize(
    ("fields", "word"),
    [
        ({"ip_adapter_scale": [0.5]}, "not allowed"),
        ({"lora_weights": [0.5]}, "not allowed"),
        ({"lora_models": ["a"], "lora_weights": [0.5, 0.5]}, "give one weight per model"),
        ({"model_id": "0b4e9a1c-5c3d-4f6e-8a7b-9c0d1e2f3a4b"}, "model UUID"),
        ({f"x{i}": i for i in range(25)}, "not allowed"),
        ({"prompt": "a cat " * 60}, "at most 75 are allowed"),
    ],
    ids=["adapter-scale", "lora-weights", "lora-mismatch", "model-uuid", "many-unknown", "tokens"],
)
def test_strict_refusals_never_say_what_lenient_mode_would_do(
    fields: dict[str, Any], word: str
) -> None:
    raw = json.dumps({"prompt": "p", **fields}).encode()
    messages = [e["message"] for e in errors(raw, strict=True)]
    assert any(word in m for m in messages), messages
    for message in messages:
        assert not any(w in message for w in ("ignored", "served as", "are used")), message


@pytest.mark.anyio
async def test_strict_server_says_not_allowed(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    async with make_client(strict=True) as client:
        response = await client.post(SUBMIT, json={"prompt": "p", "bogus": 1})
    assert response.status_code == 400
    data = response.json()
    assert "bogus is not allowed" in data["error"] and "ignored" not in data["error"]
