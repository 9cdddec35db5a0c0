"""`ipmock report`: exit 0 with nothing broken, 1 with a property broken, 2 on a usage
error or with no server at the URL (one line, no traceback); keys never printed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mock_server.cli import main
from mock_server.report import client_id
from tests.conftest import running_server

SUBMIT = "/sdxl/text2image/v1"
HASTY_KEY = "sk-hasty-report-key-0123456789"


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with running_server() as url:
        yield url


def _hasty(url: str, key: str) -> None:
    """Careful but for the pause between polls."""
    with httpx.Client(base_url=url, headers={"API-Key": key}) as http:
        job = http.post(SUBMIT, json={"prompt": "a cat", "width": 64, "height": 64}).json()
        for _ in range(10):
            if job["status"] != "PENDING":
                break
            job = http.get(f"{SUBMIT}/status/{job['id']}").json()
        for image in job["download_urls"]:
            http.get(image).raise_for_status()


@pytest.mark.socket
def test_nothing_broken_is_0_and_a_broken_property_is_1(
    served: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    httpx.post(f"{served}/__mock/reset")
    assert main(["report", "--base-url", served]) == 0
    assert "no client in the journal" in capsys.readouterr().out
    _hasty(served, HASTY_KEY)
    junit = tmp_path / "report.xml"
    assert main(["report", "--base-url", served, "--junit-xml", str(junit)]) == 1
    out = capsys.readouterr().out
    assert f"client {client_id(HASTY_KEY)}" in out
    assert [line.split()[0] for line in out.splitlines() if "BROKEN" in line] == [
        "respects_poll_floor"
    ]
    assert HASTY_KEY not in out and HASTY_KEY not in junit.read_text(encoding="utf-8")
    assert main(["report", "--base-url", served, "--poll-floor", "0"]) == 0


@pytest.mark.socket
def test_api_key_selects_one_client(served: str, capsys: pytest.CaptureFixture[str]) -> None:
    httpx.post(f"{served}/__mock/reset")
    _hasty(served, HASTY_KEY)
    assert main(["report", "--base-url", served, "--api-key", "sk-someone-else-012345"]) == 0
    out = capsys.readouterr().out
    assert "no exchange of client" in out and "sk-someone-else-012345" not in out
    assert main(["report", "--base-url", served, "--api-key", HASTY_KEY]) == 1
    assert HASTY_KEY not in capsys.readouterr().out


@pytest.mark.socket
def test_no_server_at_the_url_is_2_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--base-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ipmock report: no server answers at http://127.0.0.1:9")
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["report"], "--base-url"),
        (["report", "--base-url", "ftp://x"], "an http:// or https:// URL"),
        (["report", "--base-url", "http://x", "--poll-floor", "soon"], "--poll-floor"),
        (["report", "--base-url", "http://x", "--deadline", "0"], "more than 0"),
    ],
)
def test_usage_errors_are_2(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert words in capsys.readouterr().err


def test_help_answers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["report", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "--api-key KEY" in out and "Exit status: 0 nothing broken, 1" in out
