"""The dashboard (/__mock/ui) in a real browser: Debian's chromium, driven by Playwright,
against a real `ipmock serve` on 127.0.0.1. A client's traffic shows up without a reload,
thumbnails load, the controls change what the next submit gets and end a job PENDING by
time, hostile prompts stay text, and with --admin-token the page asks for the token and
never puts it in a URL or the page.

scripts/test.sh installs chromium (apt) and playwright (the test extra); Playwright never
downloads a browser here. One browser for the module; each test gets a fresh page (its own
sessionStorage) and a reset mock.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from contract_tests.server import running_server
from mock_server.contract import STATUS_PREFIX, SUBMIT_PATH
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.browser, pytest.mark.socket, pytest.mark.slow]

TOKEN = "dashboard-s3cret-token"
WAIT_MS = 10_000
"""How long the page may take to show something: the dashboard polls once a second."""

HOSTILE_PROMPTS = (
    "<img src=x onerror=\"window.__pwned='img';alert('img')\">",
    "<script>window.__pwned='script';alert('script')</script>",
    "</blockquote><svg onload=\"alert('svg')\"></svg><b id=injected>bold</b>",
)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail(
            "no chromium on PATH: scripts/test.sh installs Debian's (apt-get install chromium)"
        )
    browser = playwright.chromium.launch(executable_path=chromium)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with running_server() as url:
        yield url


@pytest.fixture
def mock(served: str) -> Iterator[httpx.Client]:
    """A client of the served mock, which is reset first."""
    with httpx.Client(base_url=served, timeout=10.0) as client:
        assert client.post("/__mock/reset").status_code == 200
        yield client


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: "Content Security Policy" in message.text and errors.append(message.text),
    )
    yield page
    context.close()
    assert errors == []  # the page's script threw nothing and kept to its own policy


def open_dashboard(page: Page, url: str) -> None:
    page.goto(url + "/__mock/ui")
    expect(page.locator("#connection")).to_contain_text("live", timeout=WAIT_MS)


def submit(mock: httpx.Client, key: str, **fields: Any) -> dict[str, Any]:
    body = {"prompt": "a lighthouse at dusk", "width": 256, "height": 192, **fields}
    answer: dict[str, Any] = mock.post(SUBMIT_PATH, json=body, headers={"API-Key": key}).json()
    return answer


def poll(mock: httpx.Client, key: str, job_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = mock.get(STATUS_PREFIX + job_id, headers={"API-Key": key}).json()
    return answer


def job_card(page: Page, job_id: str) -> Any:
    return page.locator(f'article.job[data-job="{job_id}"]')


def test_a_clients_traffic_appears_without_a_reload(page: Page, mock: httpx.Client) -> None:
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    open_dashboard(page, str(mock.base_url))
    expect(page.locator("#jobs")).to_contain_text("No jobs yet")

    job = submit(mock, "test_pending-then-success", prompt="a red kite over the fells")
    poll(mock, "test_pending-then-success", job["id"])
    mock.post(SUBMIT_PATH, json={"prompt": 5}, headers={"API-Key": "sk-refused"})

    card = job_card(page, job["id"])
    expect(card.locator("blockquote.prompt")).to_have_text("a red kite over the fells")
    expect(card.locator("ol.timeline")).to_contain_text("submit")
    expect(card.locator("ol.timeline")).to_contain_text("poll 1")
    rows = page.locator("#journal-rows tr.entry")
    expect(rows).to_have_count(3)
    # The refused submit's validation error is shown in full.
    expect(page.locator("#journal-rows tr.errors")).to_contain_text(
        "prompt must be a string with at least one non-space character"
    )
    # Filtering by path keeps the polls only.
    page.fill("#path-filter", STATUS_PREFIX)
    expect(rows).to_have_count(1)
    assert navigations == [str(mock.base_url) + "/__mock/ui"]  # one load, no reload


def test_the_journal_starts_over_when_a_test_resets_the_mock(
    page: Page, mock: httpx.Client
) -> None:
    open_dashboard(page, str(mock.base_url))
    rows = page.locator("#journal-rows tr.entry")
    first = submit(mock, "sk-any-client")
    expect(rows.locator("td:nth-child(9) button")).to_have_attribute("title", first["id"])
    mock.post("/__mock/reset")  # the same seq, 1, now numbers another exchange
    second = submit(mock, "sk-any-client")
    expect(rows.locator("td:nth-child(9) button")).to_have_attribute("title", second["id"])
    expect(rows).to_have_count(1)


def test_the_client_filter_picks_one_clients_exchanges_and_jobs(
    page: Page, mock: httpx.Client
) -> None:
    open_dashboard(page, str(mock.base_url))
    mine = submit(mock, "sk-test-first-client-0001", prompt="the first client's")
    poll(mock, "sk-test-first-client-0001", mine["id"])
    theirs = submit(mock, "sk-test-other-client-0002", prompt="the other client's")
    entries = mock.get("/__mock/journal").json()["entries"]
    first_client = entries[0]["client"]
    assert first_client and "sk-test-first-client-0001" not in first_client  # an id, not the key
    expect(page.locator("#journal-rows tr.entry")).to_have_count(3)

    page.select_option("#client-filter", first_client)
    expect(page.locator("#journal-rows tr.entry")).to_have_count(2)
    for cell in page.locator("#journal-rows tr.entry td:nth-child(8)").all():
        expect(cell).to_have_text(first_client)
    expect(page.locator("article.job")).to_have_count(1)
    expect(job_card(page, mine["id"])).to_be_visible()
    expect(job_card(page, theirs["id"])).to_have_count(0)
    expect(page.locator("#job-count")).to_have_text("(1 of 2 shown)")


def test_the_report_shows_a_hasty_client_broken_with_links_to_its_exchanges(
    page: Page, mock: httpx.Client
) -> None:
    open_dashboard(page, str(mock.base_url))
    hasty = "sk-hasty-client-0123456789"
    job = submit(mock, hasty)
    for _ in range(3):  # no pause between polls, and on after the final answer
        poll(mock, hasty, job["id"])
    entries = mock.get("/__mock/journal").json()["entries"]
    hasty_id = entries[0]["client"]

    panel = page.locator("#report-panel")
    part = panel.locator("details.report-part", has_text=hasty_id).first
    expect(part.locator("> summary .verdict")).to_have_text("broken")
    floor_row = part.locator("> table tr.verdict-row", has_text="respects_poll_floor")
    expect(floor_row.locator(".verdict")).to_have_text("broken")
    expect(floor_row).to_contain_text("after the previous poll (floor 1 s)")
    links = floor_row.locator("button.seq")
    expect(links).to_have_count(3)
    seq = links.first.text_content()
    assert seq == f"#{entries[1]['seq']}"  # the second poll, the first too soon

    links.first.click()  # opens that exchange in the journal
    row = page.locator(f'#journal-rows tr.entry[data-seq="{entries[1]["seq"]}"]')
    expect(row).to_have_class("entry open")
    expect(page.locator("#journal-rows tr.detail")).to_have_count(1)

    # What clients are held to comes from the panel; a bad value is refused in words.
    page.fill("#report-poll-floor", "0")
    page.locator("#report-poll-floor").dispatch_event("change")
    expect(floor_row.locator(".verdict")).to_have_text("held")
    page.fill("#report-poll-floor", "-1")
    page.locator("#report-poll-floor").dispatch_event("change")
    expect(page.locator("#report-error")).to_contain_text("poll_floor must be a number of seconds")


def test_thumbnails_of_a_success_load(page: Page, mock: httpx.Client) -> None:
    open_dashboard(page, str(mock.base_url))
    job = submit(mock, "test_success", samples=2)
    assert job["status"] == "SUCCESS"
    thumbnails = job_card(page, job["id"]).locator("img.thumbnail")
    expect(thumbnails).to_have_count(2)
    for i in range(2):
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=thumbnails.nth(i).element_handle()
        )
    widths = thumbnails.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    assert widths == [256, 256]
    # Looking is not downloading: the client's journal holds its one submit.
    assert [e["path"] for e in mock.get("/__mock/journal").json()["entries"]] == [SUBMIT_PATH]


def test_queueing_a_failure_from_the_page_fails_the_next_submit(
    page: Page, mock: httpx.Client
) -> None:
    open_dashboard(page, str(mock.base_url))
    page.select_option("#scenario-select", "failure")
    page.click("#queue-scenario")
    expect(page.locator("#queue-list")).to_have_text("failure")
    first = submit(mock, "sk-any-client")
    assert first["status"] == "FAILURE"

    # A JSON scenario, and a misspelt one refused in the admin API's words.
    page.fill("#scenario-json", '{"outcom": "failure"}')
    page.click("#queue-json")
    expect(page.locator("#control-message")).to_contain_text("'outcom'")
    expect(page.locator("#control-message")).to_contain_text("did you mean 'outcome'")
    page.fill("#scenario-json", '{"outcome": "failure", "error": "boom from the page"}')
    page.click("#queue-json")
    expect(page.locator("#queue-list")).to_have_text("inline")  # a queued object's name
    second = submit(mock, "sk-any-client")
    assert second["status"] == "FAILURE"
    assert "boom from the page" in second["error"]
    expect(job_card(page, second["id"]).locator("li.final")).to_contain_text("boom from the page")


def test_moving_the_clock_ends_a_job_pending_by_time(page: Page, mock: httpx.Client) -> None:
    open_dashboard(page, str(mock.base_url))
    key = "test_pending-10s-then-success"
    job = submit(mock, key)
    assert poll(mock, key, job["id"])["status"] == "PENDING"
    card = job_card(page, job["id"])
    expect(card.locator(".state")).to_have_text("PENDING")

    page.fill("#advance-seconds", "30")
    page.click("#advance")
    expect(page.locator("#control-message")).to_contain_text("The clock moved 30 s")
    assert poll(mock, key, job["id"])["status"] == "SUCCESS"
    expect(card.locator(".state")).to_have_text("SUCCESS")

    page.click("#freeze")
    expect(page.locator("#clock-state")).to_have_text("frozen")
    assert mock.get("/__mock/clock").json()["frozen"] is True

    page.fill("#set-time", "2030-01-01T00:00:00Z")
    page.click("#set-clock")
    expect(page.locator("#clock-time")).to_have_text("2030-01-01T00:00:00Z")
    page.fill("#set-time", "tomorrow")
    page.click("#set-clock")
    expect(page.locator("#control-message")).to_contain_text("admin API: set ")

    page.click("#reset")
    expect(page.locator("#jobs")).to_have_text("No jobs yet: submit one.")
    expect(page.locator("#clock-state")).to_have_text("running")
    assert mock.get("/__mock/jobs").json()["jobs"] == []


def test_hostile_prompts_stay_inert(page: Page, mock: httpx.Client) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_dashboard(page, str(mock.base_url))
    elements_before = page.evaluate("document.querySelectorAll('img, script, svg, b').length")

    jobs = [submit(mock, "test_success", prompt=prompt) for prompt in HOSTILE_PROMPTS]
    mock.get(
        "/sdxl/<img src=x onerror=alert('path')>",
        headers={"API-Key": "<script>alert('key')</script>", "X-Note": "<b id=injected>h</b>"},
    )
    for job, prompt in zip(jobs, HOSTILE_PROMPTS, strict=True):
        expect(job_card(page, job["id"]).locator("blockquote.prompt")).to_have_text(prompt)
    expect(page.locator("#journal-rows tr.entry")).to_have_count(4)
    expect(page.locator("#journal-rows")).to_contain_text("/sdxl/<img src=x onerror=alert('path')>")
    for row in page.locator("#journal-rows tr.entry").all():  # every body and header, drawn
        row.click()
    expect(page.locator("#journal-rows tr.detail")).to_have_count(4)
    expect(page.locator("#journal-rows")).to_contain_text("<b id=injected>h</b>")
    page.wait_for_timeout(1500)  # another poll or two: a late-firing handler would show now

    assert dialogs == []
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#injected").count() == 0
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("script").count() == 1  # the page's own
    thumbnails = page.locator("img.thumbnail").count()
    elements_after = page.evaluate("document.querySelectorAll('img, script, svg, b').length")
    assert elements_after == elements_before + thumbnails


@pytest.fixture(scope="module")
def served_with_token() -> Iterator[str]:
    with running_server("--admin-token", TOKEN) as url:
        yield url


def test_with_an_admin_token_the_page_asks_for_it_and_keeps_it_out_of_urls(
    page: Page, served_with_token: str
) -> None:
    urls: list[str] = []
    sent_token: list[bool] = []

    def note(request: Any) -> None:
        urls.append(request.url)
        if "/__mock/" in request.url and not request.url.endswith((".js", ".css", ".svg", "/ui")):
            sent_token.append(request.headers.get("x-ipmock-admin-token") == TOKEN)

    page.on("request", note)
    page.goto(served_with_token + "/__mock/ui")
    form = page.locator("#token-form")
    expect(form).to_be_visible()
    expect(page.locator("#dashboard")).to_be_hidden()

    page.fill("#token-input", "not-the-token")
    page.click("#token-submit")
    expect(page.locator("#token-error")).to_contain_text("refused that token")

    page.fill("#token-input", TOKEN)
    page.click("#token-submit")
    expect(page.locator("#connection")).to_contain_text("live")
    with httpx.Client(base_url=served_with_token) as client:
        job = submit(client, "test_success", prompt="behind a token")
    expect(job_card(page, job["id"]).locator("blockquote.prompt")).to_have_text("behind a token")
    expect(job_card(page, job["id"]).locator("img.thumbnail").first).to_have_js_property(
        "complete", True
    )

    assert page.evaluate("sessionStorage.getItem('ipmock.adminToken')") == TOKEN
    assert TOKEN not in page.content()
    assert not [u for u in urls if TOKEN in u]
    assert sent_token and all(sent_token[-5:])  # the data calls since carry it as a header


@pytest.mark.redis
def test_works_with_the_redis_store(page: Page, redis_server: RedisServer) -> None:
    with running_server("--store", redis_server.url) as url, httpx.Client(base_url=url) as mock:
        mock.post("/__mock/reset")
        open_dashboard(page, url)
        job = submit(mock, "test_success", prompt="kept in redis")
        card = job_card(page, job["id"])
        expect(card.locator("blockquote.prompt")).to_have_text("kept in redis")
        thumbnail = card.locator("img.thumbnail").first
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle()
        )
