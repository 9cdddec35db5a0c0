"""Fixed outcomes for the inputs the fast paths of mock_server.validation decide around.

parse skips work where it can (the depth walk when the text holds too few brackets,
the lone-surrogate regex when it holds no backslash, the utf-8-sig codec, a decoder per
call) and normalise uses a plan worked out once from the schema. The outcomes below
were recorded from the code before those shortcuts; each test sits on the edge of one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.support.bodies import SUBMIT_BODY
from mock_server.validation import MAX_DEPTH, Accepted, InvalidRequest, validate

BOM = b"\xef\xbb\xbf"


def outcome(raw: bytes) -> Accepted | InvalidRequest:
    try:
        return validate(raw)
    except InvalidRequest as exc:
        return exc


def refusal(raw: bytes) -> list[tuple[str, str]]:
    result = outcome(raw)
    assert isinstance(result, InvalidRequest), f"accepted {raw[:100]!r}"
    return [(e.field, e.message) for e in result.errors]


def warnings(raw: bytes) -> list[tuple[str, str]]:
    result = outcome(raw)
    assert isinstance(result, Accepted), [e.to_json() for e in result.errors]
    return [(w.field, w.message) for w in result.warnings]


def nested_lists(depth: int) -> bytes:
    """A body of depth ``depth``, as _depth counts (the body 1, the innermost 1 its
    depth), with the fewest brackets: depth - 1."""
    n = depth - 2
    return ('{"prompt": "a cat", "x": ' + "[" * n + "1" + "]" * n + "}").encode()


def nested_objects(depth: int) -> bytes:
    n = depth - 2
    return ('{"prompt": "a cat", "x": ' + '{"k":' * n + "1" + "}" * n + "}").encode()


# -- parse ----------------------------------------------------------------------------


def test_one_bom_is_skipped() -> None:
    assert warnings(BOM + b'{"prompt": "a cat"}') == []


def test_a_second_bom_is_what_json_loads_says_of_one() -> None:
    assert refusal(BOM + BOM + b'{"prompt": "a cat"}') == [
        (
            "",
            "the body is not valid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig) "
            "at line 1 column 1",
        )
    ]


def test_a_bom_alone_is_no_json() -> None:
    assert refusal(BOM) == [("", "the body is not valid JSON: Expecting value at line 1 column 1")]


@pytest.mark.parametrize("prefix", [b"", BOM], ids=["plain", "after-a-bom"])
def test_a_bad_utf8_byte_is_counted_after_the_bom(prefix: bytes) -> None:
    assert refusal(prefix + b'{"prompt": "caf\xe9"}') == [
        ("", "the body is not valid UTF-8 (byte 15)")
    ]


SEED = "seed must be an integer from -1 to 4294967295, got "


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        ("NaN", SEED + "NaN, which is not valid JSON"),
        ("-Infinity", SEED + "-Infinity, which is not valid JSON"),
        ("1e400", SEED + "1e400, a number out of range (beyond about 1.8e308)"),
    ],
)
def test_unusable_numbers(literal: str, message: str) -> None:
    assert refusal(f'{{"prompt": "a cat", "seed": {literal}}}'.encode()) == [("seed", message)]


def test_an_integer_of_5000_digits() -> None:
    assert refusal(('{"prompt": "a cat", "seed": ' + "9" * 5000 + "}").encode()) == [
        ("seed", SEED + "an integer of 5000 digits (at most 4300 are read)")
    ]


def test_extra_data() -> None:
    assert refusal(b'{"prompt": "a cat"} {"samples": 2}') == [
        ("", "the body is not valid JSON: Extra data at line 1 column 21")
    ]


@pytest.mark.parametrize("nested", [nested_lists, nested_objects], ids=["lists", "objects"])
def test_depth_at_the_limit_with_the_fewest_brackets(nested: Any) -> None:
    assert warnings(nested(MAX_DEPTH)) == [("x", "unknown field x is ignored")]
    assert refusal(nested(MAX_DEPTH + 1)) == [("", f"the body is nested deeper than {MAX_DEPTH}")]


def test_many_brackets_in_strings_are_not_depth() -> None:
    raw = json.dumps({"prompt": "[" * 40, "negative_prompt": "{" * 40}).encode()
    assert warnings(raw) == []


def test_many_shallow_arrays_are_not_depth() -> None:
    raw = json.dumps({"prompt": "a cat", "x": [[[]] for _ in range(MAX_DEPTH)]}).encode()
    assert warnings(raw) == [("x", "unknown field x is ignored")]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"prompt": "a cat \\ud800"}',
        b'{"prompt": "a cat \\uDBFF"}',
        b'{"prompt": "a cat", "\\udc00": 1}',
        b'{"prompt": "a cat", "x": ["\\udfff"]}',
    ],
)
def test_lone_surrogate_escapes(raw: bytes) -> None:
    assert refusal(raw) == [
        (
            "",
            "the body is not valid Unicode: it escapes a lone surrogate "
            "(\\ud800-\\udfff without its pair)",
        )
    ]


def test_paired_surrogate_escapes_and_an_escaped_backslash() -> None:
    paired = outcome(b'{"prompt": "a cat \\uD83D\\uDE42"}')
    assert isinstance(paired, Accepted) and paired.request.prompt == "a cat \U0001f642"
    escaped = outcome(b'{"prompt": "a cat \\\\ud800"}')
    assert isinstance(escaped, Accepted) and escaped.request.prompt == "a cat \\ud800"


# -- normalise, warnings, defaults ----------------------------------------------------


def test_every_spelling_and_the_default_order() -> None:
    raw = json.dumps(
        {
            "prompt": "a cat",
            "ip_adapter": "ip-adapter_sdxl, ip-adapter-plus_sdxl_vit-h",
            "ip_adapter_scale": " 0.5 ,1",
            "ip_adapter_image": "https://x.test/a.png",
            "ip_adapter_style_images": "data:image/png;base64,AA==",
            "lora_models": "a, b",
            "lora_weights": 0.5,
            "refiner": "true",
            "base64": "false",
            "seed": 2.0,
            "width": 512.0,
            "promt": "x",
            "scheduler": "ddim",
        }
    ).encode()
    result = outcome(raw)
    assert isinstance(result, Accepted)
    assert list(result.request.body.items()) == [
        ("prompt", "a cat"),
        ("ip_adapter", ["ip-adapter_sdxl", "ip-adapter-plus_sdxl_vit-h"]),
        ("ip_adapter_scale", [0.5, 1.0]),
        ("ip_adapter_image", "https://x.test/a.png"),
        ("ip_adapter_style_images", ["data:image/png;base64,AA=="]),
        ("lora_models", ["a", "b"]),
        ("lora_weights", [0.5]),
        ("refiner", True),
        ("base64", False),
        ("seed", 2),
        ("width", 512),
        ("promt", "x"),
        ("scheduler", "ddim"),
        ("model_id", "sdxl"),
        ("negative_prompt", ""),
        ("num_inference_steps", 20),
        ("samples", 1),
        ("guidance_scale", 7.5),
        ("height", 1024),
    ]
    assert type(result.request.seed) is int and type(result.request.width) is int
    assert [(w.field, w.message) for w in result.warnings] == [
        ("promt", "unknown field promt is ignored (did you mean prompt?)"),
        (
            "lora_weights",
            "lora_weights has 1 value(s) but lora_models names 2: give one weight per model; "
            "the extra ones are ignored",
        ),
    ]


def test_a_number_list_string_off_its_pattern_is_left_for_the_schema() -> None:
    raw = json.dumps(
        {
            "prompt": "a cat",
            "ip_adapter": "ip-adapter_sdxl",
            "ip_adapter_scale": "0.5,,2",
            "ip_adapter_image": "https://x.test/a.png",
        }
    ).encode()
    assert refusal(raw) == [
        (
            "ip_adapter_scale",
            "ip_adapter_scale must be numbers from 0 to 1, one per adapter, as an array, "
            'a comma-separated string or a single number, got "0.5,,2"',
        )
    ]


def test_at_most_twenty_unknown_fields_are_named() -> None:
    raw = json.dumps({"prompt": "a cat", **{f"extra{i}": i for i in range(22)}}).encode()
    assert warnings(raw) == [
        *((f"extra{i}", f"unknown field extra{i} is ignored") for i in range(20)),
        ("", "2 more unknown fields are ignored"),
    ]


def test_the_benchmark_body() -> None:
    raw = SUBMIT_BODY if isinstance(SUBMIT_BODY, bytes) else json.dumps(SUBMIT_BODY).encode()
    result = outcome(raw)
    assert isinstance(result, Accepted)
    assert [(w.field, w.message) for w in result.warnings] == []
    expected: dict[str, Any] = {
        "model_id": "sdxl",
        "num_inference_steps": 20,
        "guidance_scale": 7.5,
        "width": 1024,
        "height": 1024,
        "samples": 1,
        "seed": -1,
        "strength": None,
        "ip_adapter": ("ip-adapter-plus_sdxl_vit-h",),
        "ip_adapter_scale": (0.6,),
        "ip_adapter_image": "https://example.com/face.jpg",
        "ip_adapter_style_images": (),
    }
    assert {name: getattr(result.request, name) for name in expected} == expected
    assert list(result.request.body)[-1:] == ["seed"]  # the one default filled in
