"""The examples runner fails an example that does not do what its page says: a command
that fails, an output unlike the one shown, a Python test that fails; and it points the
page's port 8000 at a real server it started."""

from __future__ import annotations

from pathlib import Path

import pytest

from docs.examples import page_examples
from tests.docs.page_session import ExampleFailed, PageSession


def _run(tmp_path: Path, text: str) -> None:
    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir(parents=True)
    page.write_text(text, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    session = PageSession(work, text)
    try:
        for example in page_examples(page, page.parent):
            session.run(example)
    finally:
        session.close()


SUBMIT = (
    "$ curl -s -X POST http://127.0.0.1:8000/sdxl/text2image/v1 -H 'API-Key: test_success' "
    """-d '{"prompt": "a cat"}'\n"""
)


@pytest.mark.socket
def test_a_console_output_is_compared_with_the_page(tmp_path: Path) -> None:
    _run(tmp_path / "right", f'```console\n{SUBMIT}{{"status":"SUCCESS",...}}\n```\n')
    with pytest.raises(ExampleFailed, match="expected a line like"):
        _run(tmp_path / "wrong", f'```console\n{SUBMIT}{{"status":"PENDING",...}}\n```\n')


def test_a_failing_command_fails_its_example(tmp_path: Path) -> None:
    with pytest.raises(ExampleFailed, match=r"page.md:1: exit status 1"):
        _run(tmp_path, "```sh\ntrue\nfalse\necho never\n```\n")


def test_a_failing_python_test_fails_its_example(tmp_path: Path) -> None:
    with pytest.raises(ExampleFailed, match=r"page.md:1: exit status 1(.|\n)*1 failed"):
        _run(tmp_path, "```python\ndef test_it():\n    assert 1 == 2\n```\n")


def test_a_named_file_is_written_for_the_commands(tmp_path: Path) -> None:
    _run(tmp_path, '```toml\n# a.toml\nx = 1\n```\n\n```sh\ngrep -q "x = 1" a.toml\n```\n')
