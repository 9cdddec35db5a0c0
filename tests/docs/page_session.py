"""One docs page's examples run as a reader runs them, in order, in one fresh folder.

The folder holds links to the repository's ``.venv``, ``examples`` and ``bench``, so a
command runs as written from the repository root. A TOML block whose first line is
``# NAME.toml`` is written there as NAME.toml. A shell line that starts ``ipmock serve``
or ``ipmock worker`` (in a ``sh`` block, or ending in ``&`` in a ``console`` block) is
started in the background, as the reader leaves it running; a serve gets ``--port 0`` and
its address from its banner, and the page's ``127.0.0.1:8000`` and ``localhost:8000``
point at it. A page that calls port 8000 before starting a server gets a plain
``ipmock serve``. Redis's port 6379 becomes a free one, shut down at the end.

``sh`` blocks run with ``bash -euo pipefail``: every command must succeed. In a
``console`` block each ``$ `` command's expected lines must appear in its output, in
order, ``...`` standing for anything. ``python`` blocks run with the venv's Python, or
with pytest when they hold tests (every test must pass, none skipped).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from docs.examples import Example
from tests.conftest import REPO

LINKED = (".venv", "examples", "bench")
BATCH_TIMEOUT = 420.0
SERVER_START = 180.0
_SERVER = re.compile(r"^(?:\S*/)?ipmock (serve|worker)\b")
_SEPARATOR = "@@ ipmock docs example @@"
_LOCAL = re.compile(r"(127\.0\.0\.1|localhost):8000\b")


class ExampleFailed(AssertionError):
    """An example did not do what its page says; the message names it and shows why."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def logical_lines(code: str) -> Iterator[str]:
    """The block's shell lines, a line ending in a backslash joined with the next."""
    pending = ""
    for line in code.splitlines():
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


class _Background:
    """A server or worker started from a page, its output kept for a failure message."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.argv = argv
        self.lines: list[str] = []
        self.url: str | None = None
        self.process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if self.url is None and " at http://" in line:
                self.url = line.split(" at ", 1)[1].split()[0]

    def wait_for_url(self) -> str:
        deadline = time.monotonic() + SERVER_START
        while self.url is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise ExampleFailed(
                    f"{shlex.join(self.argv)} did not start:\n{''.join(self.lines)[-3000:]}"
                )
            time.sleep(0.05)
        return self.url

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._reader.join(5)


class PageSession:
    """The examples of one page, run in order in ``folder``; ``close`` stops what they
    started."""

    def __init__(self, folder: Path, page_text: str) -> None:
        for tool in ("curl", "node", "go", "redis-server"):  # what the pages run besides ipmock
            if re.search(rf"^\s*(\$ )?{tool} ", page_text, re.M) and shutil.which(tool) is None:
                raise ExampleFailed(f"the page runs {tool}, which is not installed")
        self.folder = folder
        for name in LINKED:
            (folder / name).symlink_to(REPO / name)
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="100")
        self.env.pop("IPMOCK_PORT", None)
        self.server: _Background | None = None
        self.workers: list[_Background] = []
        self.redis_port = _free_port() if "6379" in page_text else None
        self.ran = 0

    # What a reader types, pointed at this session's server and Redis.

    def _localised(self, text: str) -> str:
        if self.redis_port is not None:
            text = text.replace("6379", str(self.redis_port))
        if self.server is None and _LOCAL.search(text):
            self._start(["ipmock", "serve"], "(a plain `ipmock serve`, as the page assumes)")
        if self.server is not None:
            address = (self.server.url or "").removeprefix("http://")
            text = _LOCAL.sub(address, text)
        return text

    def _start(self, argv: list[str], where: str) -> None:
        if argv[0] == "ipmock":
            argv[0] = str(self.folder / ".venv/bin/ipmock")
        if argv[1] == "worker":
            self.workers.append(_Background(argv, self.folder, self.env))
            return
        if self.server is not None:  # the reader stops the last one first
            self.server.stop()
        if "--port" in argv:
            argv[argv.index("--port") + 1] = "0"
        else:
            argv += ["--port", "0"]
        self.server = _Background(argv, self.folder, self.env)
        try:
            self.server.wait_for_url()
        except ExampleFailed as exc:
            raise ExampleFailed(f"{where}: {exc}") from None

    def _server_line(self, line: str, where: str) -> bool:
        """Start ``line`` in the background if it is a server or worker; whether it was."""
        words = line.strip()
        if not _SERVER.match(words):
            return False
        argv = shlex.split(words, comments=True)
        if argv and argv[-1] == "&":
            argv.pop()
        argv[0] = "ipmock" if argv[0].endswith("ipmock") else argv[0]
        self._start(argv, where)
        return True

    def _bash(self, script: str, where: str, *, strict: bool = True) -> str:
        """Run ``script`` in the folder (``strict``: ``set -euo pipefail``, and a failure is
        an ExampleFailed); stdout and stderr together."""
        try:
            done = subprocess.run(
                ["bash", "-c", ("set -euo pipefail\n" if strict else "") + script],
                cwd=self.folder,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=BATCH_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise ExampleFailed(f"{where}: no end after {BATCH_TIMEOUT:.0f} s:\n{script}") from None
        if strict and done.returncode != 0:
            raise ExampleFailed(
                f"{where}: exit status {done.returncode}\n{script}\n"
                f"--- output ---\n{done.stdout[-4000:]}"
            )
        return done.stdout

    # The kinds of block.

    def run(self, example: Example) -> None:
        where = str(example)
        if example.file_name:
            (self.folder / example.file_name).write_text(example.code, encoding="utf-8")
            return
        if not example.runs:
            return
        self.ran += 1
        if example.lang == "python":
            self._python(example, where)
        elif example.lang == "console":
            self._console(example, where)
        else:
            self._shell(example, where)

    def _shell(self, example: Example, where: str) -> None:
        batch: list[str] = []
        for line in logical_lines(example.code):
            if _SERVER.match(line.strip()):
                if batch:  # what came before runs first
                    self._bash("\n".join(batch), where)
                batch = []
                self._server_line(self._localised(line), where)
            else:
                batch.append(self._localised(line))
        if any(each.strip() and not each.lstrip().startswith("#") for each in batch):
            self._bash("\n".join(batch), where)

    def _console(self, example: Example, where: str) -> None:
        commands: list[tuple[str, list[str]]] = []
        for line in logical_lines(example.code):
            if line.startswith("$ "):
                commands.append((line[2:], []))
            elif commands and line.strip():
                commands[-1][1].append(line)
        batch: list[tuple[str, list[str]]] = []
        for command, expected in commands:
            localised = self._localised(command)
            if localised.rstrip().endswith("&") and self._server_line(localised, where):
                self._console_batch(batch, where)
                batch = []
            else:
                batch.append((command, expected))
        self._console_batch(batch, where)

    def _console_batch(self, batch: list[tuple[str, list[str]]], where: str) -> None:
        """Commands in one shell (a variable set by one is there for the next), each
        command's output checked against its expected lines."""
        if not batch:
            return
        script = "".join(
            f"printf '\\n{_SEPARATOR}\\n'\n{self._localised(command)}\n" for command, _ in batch
        )
        said = self._bash(script, where, strict=False).split(f"\n{_SEPARATOR}\n")[1:]
        for (command, expected), output in zip(batch, said, strict=True):
            _expect(output, [self._localised(each) for each in expected], f"{where}: $ {command}")

    def _python(self, example: Example, where: str) -> None:
        code = self._localised(example.code)
        python = str(self.folder / ".venv/bin/python")
        stem = f"example_{example.page.replace('/', '_').removesuffix('.md')}_{example.line}"
        stem = re.sub(r"\W", "_", stem)
        if re.search(r"^\s*(async )?def test_", code, re.MULTILINE):
            (self.folder / f"test_{stem}.py").write_text(code, encoding="utf-8")
            argv = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"test_{stem}.py"]
            said = self._run(argv, where)
            if " passed" not in said or re.search(r"\d+ (skipped|xfailed|failed|error)", said):
                raise ExampleFailed(f"{where}: its tests did not all pass:\n{said[-3000:]}")
        else:
            (self.folder / f"{stem}.py").write_text(code, encoding="utf-8")
            self._run([python, f"{stem}.py"], where)

    def _run(self, argv: list[str], where: str) -> str:
        done = subprocess.run(
            argv,
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=BATCH_TIMEOUT,
        )
        said = done.stdout + done.stderr
        if done.returncode != 0:
            raise ExampleFailed(f"{where}: exit status {done.returncode}\n{said[-4000:]}")
        return said

    def close(self) -> None:
        for each in [*self.workers, *([self.server] if self.server else [])]:
            each.stop()
        if self.redis_port is not None:
            subprocess.run(
                ["redis-cli", "-p", str(self.redis_port), "shutdown", "nosave"],
                capture_output=True,
                timeout=30,
                check=False,
            )


def _expect(said: str, expected: list[str], where: str) -> None:
    """Each expected line matches a line of ``said``, in order (``...``: anything)."""
    lines = [line.rstrip("\r") for line in said.splitlines()]
    at = 0
    for want in expected:
        pattern = re.compile(".*".join(re.escape(part) for part in want.strip().split("...")))
        while at < len(lines) and not pattern.fullmatch(lines[at].strip()):
            at += 1
        if at == len(lines):
            raise ExampleFailed(f"{where}\nexpected a line like:\n  {want}\nin:\n{said[-3000:]}")
        at += 1
