"""Schemathesis (v4) against the mock in process: every built-in check, positive and negative data.

The schema is what the app itself serves at ``/openapi.json`` (the bundled contract), loaded
through the ASGI app: no network, no server process. Three runs:

* ``test_positive`` / ``test_negative``: one pytest item per operation, each running the
  examples, coverage and fuzzing phases with schema-valid (resp. schema-violating) data and
  every built-in check (status code, content type, response schema and headers conformance,
  not a server error, positive data acceptance, negative data rejection, missing required
  header, ignored auth, unsupported method, ...).
* ``test_stateful``: submit -> poll -> poll again -> download, following OpenAPI links, with
  schema-valid data (negative steps break the chains and starve Schemathesis' step scheduler,
  which then ends a scenario with Hypothesis' "No progress can be made").
* ``test_pinned_request_verdicts_agree``: bodies the runs above found to split the request
  schema and the server, replayed on every run.

The API key goes in through the ``ApiKey`` security scheme (an ``API-Key`` header), so
Schemathesis also knows how to take it away or spoil it for the auth checks.

Runs are derandomized (the same examples every time) and bounded; set
``IPMOCK_SCHEMATHESIS_EXAMPLES`` to explore more (e.g. 500) and ``IPMOCK_SCHEMATHESIS_RANDOM=1``
for fresh examples on each run.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any, ClassVar

import anyio
import httpx
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import settings

from mock_server import Secret, Settings, create_app

KEY = "sk-test-schemathesis"
SUBMIT = "/sdxl/text2image/v1"
STATUS = "/sdxl/text2image/v1/status/{id}"
IMAGE = "/images/{job_id}/{file_name}"

MAX_EXAMPLES = int(os.environ.get("IPMOCK_SCHEMATHESIS_EXAMPLES", "100"))
DETERMINISTIC = os.environ.get("IPMOCK_SCHEMATHESIS_RANDOM", "") not in ("1", "true", "yes")


def _app() -> Any:
    """The mock knowing one key, so that a made-up key is refused (the ignored-auth check)."""
    return create_app(Settings(api_keys=(Secret(KEY),)))


def _config(mode: str, max_examples: int = MAX_EXAMPLES) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "auth": {"openapi": {"ApiKey": {"api_key": KEY}}},
            "checks": {"enabled": True},
            "generation": {
                "mode": mode,
                "max-examples": max_examples,
                "deterministic": DETERMINISTIC,
                "database": "none",
            },
        }
    )


def _served_document(app: Any) -> dict[str, Any]:
    """GET /openapi.json from the app, in process."""

    async def fetch() -> dict[str, Any]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://mock.test"
        ) as client:
            response = await client.get("/openapi.json")
            response.raise_for_status()
            document: dict[str, Any] = response.json()
            return document

    return anyio.run(fetch)


# -- positive and negative data, every operation, every check --------------------------------

positive = schemathesis.openapi.from_asgi("/openapi.json", _app(), config=_config("positive"))
# The image download takes two free-form path strings: no value of it breaks the schema, so
# it has no negative cases (schemathesis would skip it); every other operation has.
negative = schemathesis.openapi.from_asgi(
    "/openapi.json", _app(), config=_config("negative")
).exclude(path=IMAGE)


def _labels(schema: Any) -> set[str]:
    return {f"{r.ok().method.upper()} {r.ok().path}" for r in schema.get_all_operations()}


def test_document_loads_and_covers_every_operation() -> None:
    """The served document is valid for Schemathesis, and every operation gets tested.

    ``from_asgi`` leaves out the operation that serves the document itself (GET /openapi.json);
    the stateful run, loaded from the same document, covers it.
    """
    positive.validate()
    assert _labels(positive) == {f"POST {SUBMIT}", f"GET {STATUS}", f"GET {IMAGE}"}
    assert _labels(stateful) == _labels(positive) | {"GET /openapi.json"}


@positive.parametrize()
def test_positive(case: schemathesis.Case) -> None:
    case.call_and_validate()


@negative.parametrize()
@pytest.mark.slow
def test_negative(case: schemathesis.Case) -> None:
    case.call_and_validate()


# -- stateful: submit -> status -> status -> image -------------------------------------------


def _stateful_schema() -> Any:
    app = _app()
    schema = schemathesis.openapi.from_dict(_served_document(app), config=_config("positive"))
    schema.app = app  # what from_asgi does: calls go to the app in process
    return schema


stateful = _stateful_schema()
STATEFUL_EXAMPLES = max(10, MAX_EXAMPLES // 2)


class Workflow(stateful.as_state_machine()):  # type: ignore[misc]
    seen: ClassVar[Counter[tuple[str, str, int]]] = Counter()

    def setup(self) -> None:
        """Each scenario starts from an empty mock, so that replays see the same answers."""
        state = stateful.app.state.mock
        anyio.run(state.store.clear)
        state.book.reset()

    def after_call(self, response: Any, case: schemathesis.Case) -> None:
        Workflow.seen[(case.method.upper(), case.operation.path, response.status_code)] += 1


@pytest.mark.slow
def test_stateful() -> None:
    """Chains of calls through the links the contract declares, every check on every step."""
    assert stateful.statistic.transitions.total >= 3, "no links to follow"
    Workflow.seen.clear()
    Workflow.run(
        settings=settings(
            Workflow.TestCase.settings,  # Schemathesis' defaults for state machines
            max_examples=STATEFUL_EXAMPLES,
            derandomize=DETERMINISTIC,
            database=None,
        )
    )
    reached = {key for key in Workflow.seen if key[2] < 300}
    assert ("POST", SUBMIT, 202) in reached, Workflow.seen
    assert ("GET", STATUS, 200) in reached, Workflow.seen
    assert ("GET", IMAGE, 200) in reached, f"no image was downloaded via the links: {Workflow.seen}"


# -- pinned requests: the schema's verdict and the server's must agree -------------------------
#
# Each body below once split the two (found by the runs above). The test does not encode which
# side is right: it asserts that a body the bundled request schema accepts is accepted by the
# server (2xx: the default scenario answers 202) and that a body it refuses is refused with 400.

IMG = "https://example.com/face.png"
ONE = {"ip_adapter": "ip-adapter_sdxl", "ip_adapter_image": IMG}
PINNED: dict[str, dict[str, Any]] = {
    # comma-string spellings whose pieces break the item rules
    "scale string with an empty first piece": {**ONE, "ip_adapter_scale": ",0.5"},
    "scale string out of range": {**ONE, "ip_adapter_scale": "5"},
    "scale string with a sign": {**ONE, "ip_adapter_scale": "+0.5"},
    "scale string in exponent form": {**ONE, "ip_adapter_scale": "1e-1"},
    "scale string negative zero": {**ONE, "ip_adapter_scale": "-0"},
    "scale string with 5 numbers": {**ONE, "ip_adapter_scale": "0.1,0.2,0.3,0.4,0.5"},
    "adapters string naming one twice": {
        "ip_adapter": "ip-adapter_sdxl, ip-adapter_sdxl",
        "ip_adapter_image": IMG,
        "ip_adapter_style_images": [IMG],
    },
    "embeddings string with an empty piece": {"embeddings": "a,,b"},
    "embeddings string with a 201-character id": {"embeddings": "x" * 201},
    "embeddings string with 11 ids": {"embeddings": ",".join("abcdefghijk")},
    "lora_models string with a blank piece": {"lora_models": "a, ", "lora_weights": [0.5, 0.5]},
    "lora_weights string with 11 numbers": {"lora_weights": ",".join(["0.5"] * 11)},
    "style image string with a newline": {
        "ip_adapter": "ip-adapter_sdxl, ip-adapter_sdxl_vit-h",
        "ip_adapter_image": IMG,
        "ip_adapter_style_images": "https://example.com/a.png\nmore",
    },
    # cross-field rules (one scale / style image per adapter, an image, one weight per LoRA)
    "adapter without ip_adapter_image": {"ip_adapter": ["ip-adapter_sdxl"]},
    "adapter with an empty ip_adapter_image": {
        "ip_adapter": ["ip-adapter_sdxl"],
        "ip_adapter_image": "",
    },
    "two adapters without style images": {
        "ip_adapter": ["ip-adapter_sdxl", "ip-adapter_sdxl_vit-h"],
        "ip_adapter_image": IMG,
    },
    "one adapter with a style image": {**ONE, "ip_adapter_style_images": [IMG]},
    "one adapter with two scales": {**ONE, "ip_adapter_scale": [0.1, 0.2]},
    "two adapters with one scale number": {
        "ip_adapter": ["ip-adapter_sdxl", "ip-adapter_sdxl_vit-h"],
        "ip_adapter_image": IMG,
        "ip_adapter_style_images": [IMG],
        "ip_adapter_scale": 0.5,
    },
    "one LoRA with two weights": {"lora_models": "a", "lora_weights": "0.1,0.2"},
    # agreements, kept so that a fix on one side does not break the other
    "one adapter, all fields right": {
        **ONE,
        "ip_adapter_scale": "0.5",
        "ip_adapter_style_images": [],
    },
    "two adapters, all fields right": {
        "ip_adapter": "ip-adapter_sdxl, ip-adapter_sdxl_vit-h",
        "ip_adapter_image": IMG,
        "ip_adapter_style_images": "data:image/png;base64,AAAA",
        "ip_adapter_scale": [1, 0.25],
    },
    "two LoRAs, two weights": {"lora_models": "a, b", "lora_weights": "0.5, 1"},
    "no adapter, empty strings": {
        "ip_adapter": "",
        "ip_adapter_scale": "",
        "ip_adapter_style_images": "",
    },
    "image URL with a final newline": {**ONE, "ip_adapter_image": IMG + "\n"},
    # whitespace that Python's str.strip() removes but JSON Schema's \s (ECMA-262) does not match
    "adapters string with U+001C after the name": {**ONE, "ip_adapter": "ip-adapter_sdxl\x1c"},
    "embeddings string with a U+001C piece": {"embeddings": "a,\x1c"},
}


@pytest.fixture(scope="module")
def request_validator() -> Any:
    """The submit body schema exactly as the served document declares it.

    Checked with jsonschema-rs, whose regular expressions follow ECMA-262 as JSON Schema says
    (Python's ``re`` differs: its ``$`` also matches before a final newline).
    """
    document = _served_document(_app())
    pointer = "/paths/~1sdxl~1text2image~1v1/post/requestBody/content/application~1json/schema"
    return jsonschema_rs.Draft202012Validator({**document, "$ref": f"#{pointer}"})


@pytest.mark.parametrize("name", list(PINNED))
@pytest.mark.anyio
async def test_pinned_request_verdicts_agree(name: str, request_validator: Any) -> None:
    body = {"prompt": "a cat on a mat", **PINNED[name]}
    schema_errors = [e.message for e in request_validator.iter_errors(body)]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_app(), raise_app_exceptions=False),
        base_url="http://mock.test",
        headers={"API-Key": KEY},
    ) as client:
        response = await client.post(SUBMIT, json=body)
    assert response.status_code < 500, f"{json.dumps(body)[:300]} -> {response.status_code}"
    shown = json.dumps(body)[:300]
    if schema_errors:
        assert response.status_code == 400, (
            f"the request schema refuses {shown} ({schema_errors[:3]}) but the server answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    else:
        assert 200 <= response.status_code < 300, (
            f"the request schema accepts {shown} but the server answered {response.status_code}: "
            f"{[e['message'] for e in response.json().get('errors', [])] or response.text[:300]}"
        )
