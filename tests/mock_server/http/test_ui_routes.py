"""The dashboard's routes (mock_server.http.ui), in process: the page and its files, who
may load them, the security headers, and the guarded thumbnail images. The page itself,
in a browser: tests/mock_server/http/test_dashboard.py."""

from __future__ import annotations

import httpx
import pytest

from mock_server import Settings, create_app
from mock_server.contract import PNG_SIGNATURE, SUBMIT_PATH
from mock_server.http.ui import CONTENT_SECURITY_POLICY
from mock_server.settings import Secret

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-dashboard"


def client_from(host: str, **settings: object) -> httpx.AsyncClient:
    app = create_app(Settings(**settings))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app, client=(host, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://mock.test")


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/__mock/ui", "text/html"),
        ("/__mock/ui/ui.js", "text/javascript"),
        ("/__mock/ui/journal.js", "text/javascript"),
        ("/__mock/ui/ui.css", "text/css"),
        ("/__mock/ui/favicon.svg", "image/svg+xml"),
    ],
)
async def test_files_served_with_a_policy_that_forbids_inline_script(
    path: str, media_type: str
) -> None:
    async with client_from("127.0.0.1") as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_page_carries_the_contract_paths_and_no_inline_script() -> None:
    async with client_from("127.0.0.1") as client:
        page = (await client.get("/__mock/ui")).text
    assert f'data-submit-path="{SUBMIT_PATH}"' in page
    assert "{submit_path}" not in page
    assert '<script type="module" src="/__mock/ui/ui.js"></script>' in page
    assert page.count("<script") == 1
    assert " on" + "click=" not in page.lower()


async def test_unknown_file_is_a_404_naming_the_files() -> None:
    async with client_from("127.0.0.1") as client:
        response = await client.get("/__mock/ui/secrets.txt")
    assert response.status_code == 404
    assert response.json()["error"] == (
        "no dashboard file 'secrets.txt' (one of ui.js, dom.js, journal.js, jobs.js, report.js, "
        "ui.css, favicon.svg)"
    )


async def test_page_refused_off_loopback_without_token() -> None:
    async with client_from("10.0.0.5") as client:
        response = await client.get("/__mock/ui")
    assert response.status_code == 403
    assert "--admin-token" in response.json()["error"]


async def test_with_a_token_the_page_is_served_but_holds_no_token() -> None:
    async with client_from("10.0.0.5", admin_token=Secret(TOKEN)) as client:
        page = await client.get("/__mock/ui")
        script = await client.get("/__mock/ui/ui.js")
        data = await client.get("/__mock/journal")
    assert page.status_code == script.status_code == 200
    assert TOKEN not in page.text and TOKEN not in script.text
    assert data.status_code == 403  # the data stays behind the token


async def test_ui_is_not_journaled() -> None:
    async with client_from("127.0.0.1") as client:
        await client.get("/__mock/ui")
        await client.get("/__mock/ui/ui.js")
        entries = (await client.get("/__mock/journal")).json()["entries"]
    assert entries == []


async def _success_job(client: httpx.AsyncClient, samples: int = 2) -> str:
    body = {"prompt": "a cat", "width": 256, "height": 192, "samples": samples}
    answer = await client.post(SUBMIT_PATH, json=body, headers={"API-Key": "test_success"})
    assert answer.json()["status"] == "SUCCESS", answer.text
    job_id: str = answer.json()["id"]
    return job_id


async def test_thumbnail_is_the_png_and_no_download() -> None:
    async with client_from("127.0.0.1") as client:
        job_id = await _success_job(client)
        image = await client.get(f"/__mock/ui/thumbnails/{job_id}/1.png")
        paths = [e["path"] for e in (await client.get("/__mock/journal")).json()["entries"]]
        job = (await client.get(f"/__mock/jobs/{job_id}")).json()
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(PNG_SIGNATURE)
    assert paths == [SUBMIT_PATH]  # the journal shows the client's traffic only
    assert job["downloads"] == 0


@pytest.mark.parametrize(
    ("file_name", "error"),
    [
        ("2.png", "no image '2.png' for job '{id}' (0.png to 1.png)"),
        ("x.png", "no image 'x.png' for job '{id}' (0.png to 1.png)"),
        ("0.jpg", "no image '0.jpg' for job '{id}' (0.png to 1.png)"),
    ],
)
async def test_thumbnail_of_no_such_sample(file_name: str, error: str) -> None:
    async with client_from("127.0.0.1") as client:
        job_id = await _success_job(client)
        response = await client.get(f"/__mock/ui/thumbnails/{job_id}/{file_name}")
    assert response.status_code == 404
    assert response.json()["error"] == "admin API: " + error.format(id=job_id)


async def test_thumbnail_of_a_pending_or_unknown_job() -> None:
    async with client_from("127.0.0.1") as client:
        body = {"prompt": "a cat"}
        pending = await client.post(SUBMIT_PATH, json=body, headers={"API-Key": "k"})
        job_id = pending.json()["id"]
        not_yet = await client.get(f"/__mock/ui/thumbnails/{job_id}/0.png")
        unknown = await client.get("/__mock/ui/thumbnails/nope/0.png")
    assert not_yet.status_code == 404
    assert not_yet.json()["error"] == f"admin API: job {job_id!r} is PENDING, not SUCCESS"
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "admin API: no job 'nope'"


async def test_thumbnail_needs_the_token_when_set() -> None:
    async with client_from("127.0.0.1", admin_token=Secret(TOKEN)) as client:
        job_id = await _success_job(client)
        refused = await client.get(f"/__mock/ui/thumbnails/{job_id}/0.png")
        allowed = await client.get(
            f"/__mock/ui/thumbnails/{job_id}/0.png", headers={"X-Ipmock-Admin-Token": TOKEN}
        )
    assert refused.status_code == 403
    assert allowed.status_code == 200
