"""The peers' inputs: the documented answers they give, Prism's document with an
example on every answer, and WireMock's stub mappings."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from mock_server import contract
from mock_server.contract import STATUS_PATH, SUBMIT_PATH

# The documented answers the peers give. The ids have the shape of ipmock's (24
# URL-safe characters) so that every server sends bodies of about the same size.
PEER_JOB_ID = "C9ZO0PRnx9lkJpBiKwEtMJu3"
PENDING_BODY: dict[str, Any] = {"status": "PENDING", "id": PEER_JOB_ID}
FAILURE_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    402: "insufficient_credits",
    404: "not_found",
    410: "expired",
    413: "payload_too_large",
    429: "rate_limited",
    500: "server_error",
    503: "busy",
}


def success_body(base: str, job_id: str = PEER_JOB_ID) -> dict[str, Any]:
    """The SUCCESS a poll answers, with one download URL on the server's own origin."""
    return {
        "status": "SUCCESS",
        "id": job_id,
        "download_urls": [f"{base}{contract.IMAGE_PREFIX}{job_id}/0.png"],
    }


def failure_body(status: int, error: str) -> dict[str, Any]:
    return {"status": "FAILURE", "error": error, "code": FAILURE_CODES[status]}


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def prism_document(openapi: Mapping[str, Any], base: str) -> dict[str, Any]:
    """The bundled OpenAPI document with an example on every JSON response.

    The schemas, and so Prism's request validation, are untouched. Without examples
    Prism in static mode builds each body from the schema (``"download_urls":
    ["string"]``, which breaks the pattern), so its answers would be neither the
    documented ones nor schema-valid, and slower to make.
    """
    doc = copy.deepcopy(dict(openapi))
    for path, item in doc["paths"].items():
        for operation in item.values():
            for code, response in operation.get("responses", {}).items():
                media = response.get("content", {}).get("application/json")
                if media is None or path == "/openapi.json":
                    continue
                status = int(code)
                if status == 202:
                    media["example"] = PENDING_BODY
                elif status == 200:
                    media["example"] = success_body(base)
                else:
                    media["example"] = failure_body(status, response["description"])
    return doc


def wiremock_mappings(request_schema: Mapping[str, Any], base: str) -> dict[str, Any]:
    """WireMock stub mappings for the submit and poll workloads (one mappings file).

    - submit: ``POST /sdxl/text2image/v1`` with an ``API-Key`` header and a body that
      ``matchesJsonSchema`` the request schema (draft 2020-12: WireMock 3's
      ``schemaVersion: V202012``) answers 202 with the documented PENDING body;
    - poll: ``GET /sdxl/text2image/v1/status/{id}`` with a key answers 200 SUCCESS;
    - no key: 401; any other submit (the schema refused it): 400 FAILURE. Both are
      ordinary stubs of lower priority, as a mock of this API would have them (without
      them WireMock answers 404 and computes a near-miss report).
    """
    key = {"API-Key": {"matches": ".+"}}
    no_key = {"API-Key": {"absent": True}}
    json_type = {"Content-Type": "application/json"}

    def answer(status: int, body: Any) -> dict[str, Any]:
        return {"status": status, "headers": json_type, "body": compact(body)}

    return {
        "mappings": [
            {
                "name": "submit (valid body)",
                "priority": 1,
                "request": {
                    "method": "POST",
                    "urlPath": SUBMIT_PATH,
                    "headers": key,
                    "bodyPatterns": [
                        {
                            "matchesJsonSchema": compact(request_schema),
                            "schemaVersion": "V202012",
                        }
                    ],
                },
                "response": answer(202, PENDING_BODY),
            },
            {
                "name": "poll",
                "priority": 1,
                "request": {"method": "GET", "urlPathTemplate": STATUS_PATH, "headers": key},
                "response": answer(200, success_body(base)),
            },
            *(
                {
                    "name": f"{method} without a key",
                    "priority": 5,
                    "request": {"method": method, "urlPathPattern": pattern, "headers": no_key},
                    "response": answer(401, failure_body(401, "missing API key")),
                }
                for method, pattern in (
                    ("POST", SUBMIT_PATH),
                    ("GET", SUBMIT_PATH + "/status/[^/]+"),
                )
            ),
            {
                "name": "submit (invalid body)",
                "priority": 10,
                "request": {"method": "POST", "urlPath": SUBMIT_PATH},
                "response": answer(400, failure_body(400, "invalid request")),
            },
        ]
    }
