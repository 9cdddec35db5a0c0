"""What answers copy from a request: a long id is shortened in a 404, and download URLs
are built only from a Host header that is a host[:port]."""

from __future__ import annotations

import httpx
import pytest

from mock_server.api import _origin

pytestmark = pytest.mark.anyio

SUBMIT = "/sdxl/text2image/v1"
SUCCESS = {"API-Key": "test_success"}


async def test_a_long_status_id_is_shortened_in_the_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{SUBMIT}/status/{'a' * 20_000}")
    assert response.status_code == 404
    error = response.json()["error"]
    assert "a" * 60 + "... (20000 characters)" in error
    assert len(error) < 200


async def test_a_short_status_id_is_echoed_whole(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{SUBMIT}/status/nope")
    assert response.json()["error"] == "no job with id 'nope' for this API key"


@pytest.mark.parametrize(
    "path",
    [f"/nope/{'x' * 20_000}", f"/images/{'j' * 20_000}/0.png", f"/__mock/jobs/{'j' * 20_000}"],
    ids=["unknown-path", "image", "admin-job"],
)
async def test_other_long_paths_are_shortened_in_their_404(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert len(response.json()["error"]) < 300


@pytest.mark.parametrize(
    "host", ['a b"<>', "user@evil.test", "evil.test/path", "a.test:port", "a.test:123456", ""]
)
async def test_a_host_unfit_for_a_url_gives_the_servers_own_address(
    client: httpx.AsyncClient, host: str
) -> None:
    response = await client.post(SUBMIT, json={"prompt": "p"}, headers={**SUCCESS, "Host": host})
    [url] = response.json()["download_urls"]
    assert url.startswith("http://mock.test/images/"), url


@pytest.mark.parametrize(
    "host", ["images.alias.test:8443", "localhost", "127.0.0.1:8000", "[::1]:8080", "A-b_c.test"]
)
async def test_a_valid_host_shapes_the_urls(client: httpx.AsyncClient, host: str) -> None:
    response = await client.post(SUBMIT, json={"prompt": "p"}, headers={**SUCCESS, "Host": host})
    [url] = response.json()["download_urls"]
    assert url.startswith(f"http://{host}/images/"), url


def test_a_host_is_checked_once() -> None:
    _origin.cache_clear()
    assert _origin("http", "a.test", "") == "http://a.test"
    assert _origin("http", 'a b"<>', "") is None
    _origin("http", "a.test", "")
    assert _origin.cache_info().hits == 1


async def test_a_long_unknown_scenario_name_is_shortened(client: httpx.AsyncClient) -> None:
    response = await client.post(
        SUBMIT, json={"prompt": "p"}, headers={"X-Ipmock-Scenario": "s" * 20_000}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "(20000 characters)" in error and len(error) < 600
