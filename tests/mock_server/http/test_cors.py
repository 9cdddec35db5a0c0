"""CORS through the app (the ASGI path): any page by default, origins by name, or none;
preflights answered 204 with what a page may send; Retry-After readable by the page; the
admin API reached only from pages named. The served in-place path:
test_cors_served.py beside it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from mock_server.settings import Settings

pytestmark = pytest.mark.anyio

SUBMIT = "/sdxl/text2image/v1"
BODY = {"model_id": "sdxl", "prompt": "a cat", "width": 64, "height": 64}
PAGE = "http://localhost:3000"
PREFLIGHT = {
    "Origin": PAGE,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "api-key, content-type, x-ipmock-scenario",
}


async def test_any_page_may_read_answers_by_default(client: httpx.AsyncClient) -> None:
    submitted = await client.post(SUBMIT, json=BODY, headers={"Origin": PAGE})
    assert submitted.status_code == 202
    assert submitted.headers["access-control-allow-origin"] == "*"
    status_url = f"{SUBMIT}/status/{submitted.json()['id']}"
    polled = await client.get(status_url, headers={"Origin": PAGE})
    assert polled.headers["access-control-allow-origin"] == "*"
    contract = await client.get("/openapi.json", headers={"Origin": PAGE})
    assert contract.headers["access-control-allow-origin"] == "*"


async def test_a_page_may_read_retry_after(client: httpx.AsyncClient) -> None:
    limited = await client.post(
        SUBMIT, json=BODY, headers={"Origin": PAGE, "API-Key": "test_rate-limited"}
    )
    assert limited.status_code == 429 and limited.headers["retry-after"]
    exposed = [
        h.strip().lower() for h in limited.headers["access-control-expose-headers"].split(",")
    ]
    assert "retry-after" in exposed and "etag" in exposed


async def test_a_preflight_is_answered_204(client: httpx.AsyncClient) -> None:
    response = await client.options(SUBMIT, headers=PREFLIGHT)
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == "*"
    methods = response.headers["access-control-allow-methods"]
    assert {"GET", "POST", "OPTIONS"} <= {m.strip() for m in methods.split(",")}
    assert response.headers["access-control-allow-headers"] == (
        "api-key, content-type, x-ipmock-scenario"
    )
    assert int(response.headers["access-control-max-age"]) > 0
    assert (await client.get("/__mock/journal")).json()["entries"] == []  # not a client call


async def test_a_preflight_naming_no_headers_gets_the_mocks_own(client: httpx.AsyncClient) -> None:
    preflight = {"Origin": PAGE, "Access-Control-Request-Method": "GET"}
    response = await client.options(f"{SUBMIT}/status/abc", headers=preflight)
    assert response.status_code == 204
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"API-Key", "Content-Type", "X-Ipmock-Scenario"} <= allowed


async def test_request_header_names_that_are_not_tokens_are_not_echoed(
    client: httpx.AsyncClient,
) -> None:
    preflight = {**PREFLIGHT, "Access-Control-Request-Headers": "api-key, bad header\x7f"}
    response = await client.options(SUBMIT, headers=preflight)
    assert response.status_code == 204
    assert "bad" not in response.headers["access-control-allow-headers"]


async def test_an_options_that_is_no_preflight_is_still_405(client: httpx.AsyncClient) -> None:
    response = await client.options(SUBMIT)
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]


async def test_listed_origins_only(make_client: Callable[..., httpx.AsyncClient]) -> None:
    listed = "https://app.example.com, HTTP://LOCALHOST:3000/"
    async with make_client(cors_origins=listed) as client:
        mine = await client.post(SUBMIT, json=BODY, headers={"Origin": PAGE})
        assert mine.headers["access-control-allow-origin"] == PAGE
        assert mine.headers["vary"] == "Origin"
        other = await client.post(SUBMIT, json=BODY, headers={"Origin": "https://evil.test"})
        assert other.status_code == 202
        assert "access-control-allow-origin" not in other.headers
        assert other.headers["vary"] == "Origin"
        refused = await client.options(SUBMIT, headers={**PREFLIGHT, "Origin": "https://evil.test"})
        assert refused.status_code == 403
        assert refused.json()["error"] == (
            "CORS: origin 'https://evil.test' may not call this mock; origins allowed by name "
            "(--cors-origins): https://app.example.com, http://localhost:3000"
        )
        admin = await client.get("/__mock/jobs", headers={"Origin": PAGE})
        assert admin.headers["access-control-allow-origin"] == PAGE


async def test_none_sends_no_cors_headers(make_client: Callable[..., httpx.AsyncClient]) -> None:
    async with make_client(cors_origins="none") as client:
        submitted = await client.post(SUBMIT, json=BODY, headers={"Origin": PAGE})
        assert not [h for h in submitted.headers if h.startswith("access-control-")]
        assert (await client.options(SUBMIT, headers=PREFLIGHT)).status_code == 405


async def test_any_page_does_not_reach_the_admin_api(client: httpx.AsyncClient) -> None:
    jobs = await client.get("/__mock/jobs", headers={"Origin": PAGE})
    assert jobs.status_code == 200
    assert "access-control-allow-origin" not in jobs.headers
    preflight = {**PREFLIGHT, "Access-Control-Request-Method": "DELETE"}
    refused = await client.options("/__mock/journal", headers=preflight)
    assert refused.status_code == 403
    assert refused.json()["error"].startswith(
        "CORS: origin 'http://localhost:3000' may not call the admin API"
    )


@pytest.mark.parametrize(
    "value", ["ftp://files.test", "https://app.test/path", "app.test", "https://*.test", ""]
)
def test_what_is_not_an_origin_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"^cors_origins must be \*, none, or origins joined"):
        Settings(cors_origins=value)


async def test_a_public_page_may_reach_the_mock_on_a_private_address(
    client: httpx.AsyncClient,
) -> None:
    # Chrome asks before a page on a public address calls 127.0.0.1 (Private Network Access)
    asked = await client.options(
        SUBMIT, headers={**PREFLIGHT, "Access-Control-Request-Private-Network": "true"}
    )
    assert asked.status_code == 204
    assert asked.headers["access-control-allow-private-network"] == "true"
    plain = await client.options(SUBMIT, headers=PREFLIGHT)
    assert "access-control-allow-private-network" not in plain.headers
