"""The compiled validator decides; every refusal it makes is explained field by field."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.validation import InvalidRequest, normalise, validate
from mock_server.validation.schema import explaining_validator, fast_validator, properties

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)

# Values near the contract's edges, so that both yes and no answers are common.
EDGY = st.sampled_from(
    [
        0,
        1,
        4,
        5,
        8,
        63,
        64,
        1024,
        1001,
        2048,
        2056,
        -1,
        4294967295,
        4294967296,
        0.5,
        1.0001,
        20,
        20.0001,
        "",
        " ",
        "sdxl",
        "SDXL",
        "12345678-1234-1234-1234-123456789abc",
        "ip-adapter_sdxl",
        "ip-adapter_sdxl, ip-adapter-plus_sdxl_vit-h",
        "0.6, 0.2",
        "0.6,,",
        "https://x.test/a.png",
        "data:image/png;base64,AA==",
        "ftp://x",
        "true",
        "yes",
        ["ip-adapter_sdxl"],
        ["ip-adapter_sdxl", "ip-adapter_sdxl"],
        [0.6],
        [1.5],
        [],
        ["data:image/png;base64,AA==", "https://x"],
        True,
        False,
        None,
        # Python's "$" also matches before a final newline; JSON Schema's does not.
        "12345678-1234-1234-1234-123456789abc\n",
        "https://x.test/a.png\n",
        "\n",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(properties())), EDGY | JSON_VALUES, max_size=6))
def test_refused_exactly_when_the_compiled_validator_says_no(fields: dict[str, Any]) -> None:
    body = {"prompt": "a cat", **fields}
    verdict = fast_validator().is_valid(normalise(body))
    try:
        validate(json.dumps(body).encode())
    except InvalidRequest as refused:
        assert not verdict, refused.errors
        assert all(e.message for e in refused.errors)
    else:
        assert verdict
        # Where the compiled validator says yes, the Python one never says no.
        assert not list(explaining_validator().iter_errors(normalise(body)))
