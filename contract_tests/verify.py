"""`ipmock verify`: check any server (the mock, the reference, the real API) against the contract.

Two parts. The flow checks walk one generation as a client would (submit, poll, download)
and check every answer against the response schemas, plus auth and isolation between
keys. Then schemathesis runs over the bundled OpenAPI document with all its checks,
positive and negative data and the stateful links. Results: a readable summary, an
exit code, and JUnit XML; ``--record DIR`` keeps the flow's exchanges (keys redacted),
the departures from the schema, and a config file that makes the mock replay the flow.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from mock_server import contract
from mock_server.cli import progress

OTHER_KEY = "ipmock-verify-someone-else"
GENERATION = "submit, poll and download one generation"
FLOW_REQUEST: dict[str, Any] = {
    "model_id": "sdxl",
    "prompt": "ipmock verify: a lighthouse on a cliff at dusk, oil painting",
    "negative_prompt": "blurry, low quality",
    "num_inference_steps": 20,
    "guidance_scale": 7.5,
    "samples": 2,
    "width": 512,
    "height": 512,
}


@dataclass
class CheckResult:
    name: str
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    figures: str = ""
    """What was measured, for the report (empty when there is nothing to show)."""
    skipped: str = ""
    """Why the check did not run (empty when it ran): a check not run is never ok."""

    @property
    def ok(self) -> bool:
        return not self.problems and not self.skipped


class _Session:
    """An httpx client that journals every exchange (keys redacted) and checks bodies."""

    def __init__(self, base_url: str, api_key: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.http = httpx.Client(timeout=timeout)
        self.exchanges: list[dict[str, Any]] = []
        self.departures: list[str] = []
        self.check = ""  # the check now running, stamped on each exchange
        self.refused: int | None = None
        """The status (401) of the first answer that refused our key; None while none has."""

    def call(self, method: str, url: str, *, key: str | None, **kwargs: Any) -> httpx.Response:
        headers = {"API-Key": key} if key is not None else {}
        target = url if url.startswith("http") else self.base_url + url
        response = self.http.request(method, target, headers=headers, **kwargs)
        if key is not None and key == self.api_key and response.status_code == 401:
            self.refused = self.refused or response.status_code
        content_type = response.headers.get("content-type", "")
        if content_type.startswith("application/json") and response.content:
            shown: Any = response.json()
        else:
            shown = f"<{content_type or '?'}, {len(response.content)} bytes>"
        whose = None if key is None else ("<yours>" if key == self.api_key else "<other>")
        self.exchanges.append(
            {
                "check": self.check,
                "method": method,
                "url": target,
                "api_key": whose,
                "body": kwargs.get("json"),
                "status": response.status_code,
                "retry_after": response.headers.get("retry-after"),
                "response": shown,
            }
        )
        return response

    def expect(self, response: httpx.Response, definition: str, where: str) -> dict[str, Any]:
        """The body, parsed; departures from the response schema are noted."""
        try:
            body = response.json()
        except ValueError:
            self.departures.append(f"{where}: the answer is not JSON ({response.text[:80]!r})")
            return {}
        validator = Draft202012Validator(contract.response_schema(definition))
        for error in validator.iter_errors(body):
            path = "/".join(map(str, error.absolute_path)) or "(body)"
            self.departures.append(f"{where}: {path}: {error.message} (schema {definition})")
        return body if isinstance(body, dict) else {}


KEY_REFUSED = "not run: the server refused the API key"


class _NotRun(Exception):
    """Raised by a check that cannot run; its message says why."""


def _check(
    session: _Session,
    results: list[CheckResult],
    name: str,
    run: Callable[[], list[str]],
    *,
    needs_key: bool = True,
) -> None:
    """Run one check. One that needs an accepted key is not run once the key was refused,
    and one that met the refusal is reported not run, never passed nor failed."""
    session.check = name
    if needs_key and session.refused:
        results.append(CheckResult(name, skipped=KEY_REFUSED))
        return
    started = time.monotonic()
    try:
        problems = run()
    except _NotRun as exc:
        results.append(CheckResult(name, seconds=time.monotonic() - started, skipped=str(exc)))
        return
    except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
        problems = [f"{type(exc).__name__}: {exc}"]
    seconds = time.monotonic() - started
    if needs_key and session.refused:
        results.append(CheckResult(name, seconds=seconds, skipped=KEY_REFUSED))
    else:
        results.append(CheckResult(name, problems, seconds))


def _wait(response: httpx.Response, default: float) -> float:
    try:
        return max(default, float(response.headers.get("retry-after", default)))
    except ValueError:
        return default


def flow_request(*, width: int = 512, height: int = 512, steps: int = 20) -> dict[str, Any]:
    """The flow's generation request, at another size or number of steps."""
    return {**FLOW_REQUEST, "width": width, "height": height, "num_inference_steps": steps}


def flow_checks(
    session: _Session,
    *,
    poll_interval: float = 2.0,
    deadline: float = 300.0,
    request: dict[str, Any] | None = None,
) -> list[CheckResult]:
    """One generation walked end to end, and the refusals around it.

    ``request``: the generation to submit (default ``FLOW_REQUEST``, 512 x 512, 20 steps).
    """
    results: list[CheckResult] = []
    wanted = request or FLOW_REQUEST
    size = (wanted["width"], wanted["height"])
    job: dict[str, Any] = {}

    def missing_key() -> list[str]:
        response = session.call("POST", contract.SUBMIT_PATH, key=None, json=wanted)
        session.expect(response, "Failure", "submit without API-Key")
        return [] if response.status_code == 401 else [f"answered {response.status_code}, not 401"]

    def invalid_request() -> list[str]:
        response = session.call(
            "POST", contract.SUBMIT_PATH, key=session.api_key, json={**wanted, "samples": 9}
        )
        body = session.expect(response, "Failure", "invalid submit")
        problems = (
            [] if response.status_code == 400 else [f"answered {response.status_code}, not 400"]
        )
        if "errors" in body and "samples" not in [e.get("field") for e in body["errors"]]:
            problems.append(f"errors do not name samples: {body['errors']}")
        return problems

    def generation() -> list[str]:
        started = time.monotonic()
        while True:
            response = session.call("POST", contract.SUBMIT_PATH, key=session.api_key, json=wanted)
            if response.status_code not in (429, 503):
                break
            time.sleep(_wait(response, 1.0))
        answer = session.expect(response, "SubmitResponse", "submit")
        expected = {"PENDING": 202, "SUCCESS": 200, "FAILURE": 200}.get(answer.get("status", ""))
        problems = []
        if response.status_code != expected:
            problems.append(
                f"submit answered {answer.get('status')} with HTTP "
                f"{response.status_code}, not {expected}"
            )
        while answer.get("status") == "PENDING" and time.monotonic() - started < deadline:
            job["id"] = answer["id"]
            time.sleep(poll_interval)
            status_path = contract.STATUS_PATH.format(id=answer["id"])
            polled = session.call("GET", status_path, key=session.api_key)
            if polled.status_code == 429:
                time.sleep(_wait(polled, poll_interval))
                continue
            if polled.status_code != 200:
                return [*problems, f"status answered HTTP {polled.status_code}, not 200"]
            answer = session.expect(polled, "StatusResponse", "status")
        job["id"] = answer.get("id", job.get("id"))
        if answer.get("status") != "SUCCESS":
            return [*problems, f"the job ended {answer.get('status')}: {answer.get('error')}"]
        urls = answer.get("download_urls", [])
        if len(urls) != wanted["samples"]:
            problems.append(f"{len(urls)} download URLs for {wanted['samples']} samples")
        for url in urls:
            for key in (session.api_key, None):
                image = session.call("GET", url, key=key)
                if image.status_code != 200 or not image.content.startswith(contract.PNG_SIGNATURE):
                    problems.append(
                        f"{url} ({'with' if key else 'without'} API-Key): "
                        f"HTTP {image.status_code}, not a PNG"
                    )
                elif (got := _png_size(image.content)) != size:
                    problems.append(f"{url}: {got[0]}x{got[1]} pixels, not {size[0]}x{size[1]}")
        return problems

    def isolation() -> list[str]:
        if not job.get("id"):
            raise _NotRun("not run: the generation check made no job to read")
        response = session.call("GET", contract.STATUS_PATH.format(id=job["id"]), key=OTHER_KEY)
        session.expect(response, "Failure", "status with another key")
        if response.status_code not in (401, 403, 404):
            return [f"another key read the job: HTTP {response.status_code}"]
        return []

    def unknown_id() -> list[str]:
        response = session.call(
            "GET", contract.STATUS_PREFIX + "ipmock-verify-no-such-job", key=session.api_key
        )
        session.expect(response, "Failure", "status of an unknown id")
        return [] if response.status_code == 404 else [f"answered {response.status_code}, not 404"]

    checks: list[tuple[str, Callable[[], list[str]], bool]] = [
        ("submit without API-Key is refused (401)", missing_key, False),
        ("an invalid request is refused (400)", invalid_request, True),
        (GENERATION, generation, True),
        ("another key cannot read the job", isolation, True),
        ("an unknown id is not found (404)", unknown_id, True),
    ]
    with progress.steps(len(checks), "ipmock verify: flow checks") as work:
        for name, run, needs_key in checks:
            _check(session, results, name, run, needs_key=needs_key)
            work.advance(note=f"{_mark(results[-1]).strip()} {name}")
    departures = CheckResult("every answer matches the response schemas", session.departures)
    return [*results, departures]


def _mark(result: CheckResult) -> str:
    return "ok  " if result.ok else "skip" if result.skipped else "FAIL"


def _png_size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]
"""How schemathesis is run: the one installed beside ipmock, in this Python (a
``schemathesis`` on PATH may be another install, or none when the venv is not activated)."""


def schemathesis_missing() -> str | None:
    """One line saying what to install when schemathesis cannot run here, else None."""
    if importlib.util.find_spec("schemathesis") is None:
        return (
            f"schemathesis is not installed in {sys.executable}: `pip install ipmock` brings "
            "it (or `pip install schemathesis`); --no-fuzz runs the flow checks only"
        )
    return None


def run_schemathesis(
    base_url: str,
    api_key: str,
    *,
    max_examples: int,
    seed: int | None,
    junit: Path | None = None,
    junit_shown: Path | None = None,
) -> int:
    """schemathesis over the bundled contract: all checks, all modes, stateful links.

    ``junit``: where schemathesis writes its JUnit XML (none without it); ``junit_shown``:
    the file its report ends up in (verify merges it into its own), named in its place.
    Crash records are off: their ``st replay`` would need the contract's temporary copy,
    gone once this returns, so schemathesis suggests none (its curl lines reproduce a
    failure).
    """
    options = ["--report", "junit", "--report-junit-path", str(junit)] if junit else []
    shown = {str(junit): str(junit_shown)} if junit and junit_shown else {}
    code, output, _ = schemathesis_run(
        base_url, api_key, max_examples=max_examples, seed=seed, options=options, shown=shown
    )
    if code != 0 and _SCHEMATHESIS_STUCK in output and "Failures:" not in output:
        again = None if seed is None else seed + 1
        print(
            "\nschemathesis stopped on an error of its own, not a finding about the server: "
            f"its stateful phase allowed no next step ({_SCHEMATHESIS_STUCK!r}). "
            f"Once more, with seed {again if again is not None else '(new)'}:",
            flush=True,
        )
        code, _, _ = schemathesis_run(
            base_url,
            api_key,
            max_examples=max_examples,
            seed=again,
            options=options,
            shown=shown,
        )
    return code


def schemathesis_run(
    base_url: str,
    api_key: str,
    *,
    max_examples: int,
    seed: int | None,
    checks: str = "all",
    options: Sequence[str] = (),
    echo: bool = True,
    shown: dict[str, str] | None = None,
    timeout: float | None = None,
) -> tuple[int, str, list[str]]:
    """One schemathesis run over the bundled contract against ``base_url``.

    Returns its exit code, its output, and its command with the API key written
    ``<api_key>``. ``options`` go after schemathesis's own (a mode, reports, workers).
    ``echo`` prints the output as it comes, each key of ``shown`` written as its value;
    without it the output is only returned, and a run past ``timeout`` seconds is
    stopped, exit code -1 (the bench's hostile fuzz runs it so).
    """
    with tempfile.TemporaryDirectory() as scratch:
        document = Path(scratch) / "openapi.json"
        document.write_text(json.dumps(contract.openapi()))
        config = Path(scratch) / "schemathesis.toml"
        config.write_text("[cache]\nenabled = false\n")
        command = [
            *SCHEMATHESIS,
            "--config-file",
            str(config),
            "run",
            str(document),
            "--url",
            base_url,
            "-H",
            f"API-Key: {api_key}",
            "--checks",
            checks,
            "--max-examples",
            str(max_examples),
            "--output-sanitize",
            "true",
            *options,
            *(["--seed", str(seed)] if seed is not None else []),
        ]
        header = f"API-Key: {api_key}"
        hidden = ["API-Key: <api_key>" if part == header else part for part in command]
        if echo:
            code, output = _run_echoed(command, shown)
            return code, output, hidden
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            partial = exc.stdout or b""
            text = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
            return -1, f"schemathesis did not finish in {timeout:.0f} s\n{text}", hidden
        return done.returncode, done.stdout + done.stderr, hidden


_SCHEMATHESIS_STUCK = "No progress can be made from state"
"""How schemathesis 4.32 ends a stateful run whose link scheduler leaves no rule allowed
(hypothesis's InvalidDefinition): it counts a transition as still possible when its source
operation has answered, though with another status than the link's (here a submit's 202,
where the 200 links wait for a 200)."""


def _run_echoed(command: list[str], shown: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``command``, its output echoed as it comes (each key of ``shown`` written as its
    value) and also returned."""
    lines: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            for text, instead in (shown or {}).items():
                line = line.replace(text, instead)
            sys.stdout.write(line)
            lines.append(line)
        sys.stdout.flush()
    return process.returncode, "".join(lines)


def write_junit(
    path: Path, suite_name: str, results: list[CheckResult], *, then: Path | None = None
) -> None:
    """One JUnit XML file: ``results`` as one suite, then the suites of the file ``then``."""
    root = ET.Element("testsuites")
    suite = ET.SubElement(
        root,
        "testsuite",
        name=suite_name,
        tests=str(len(results)),
        failures=str(sum(bool(r.problems) for r in results)),
        skipped=str(sum(bool(r.skipped) for r in results)),
    )
    for result in results:
        case = ET.SubElement(
            suite, "testcase", classname="ipmock", name=result.name, time=f"{result.seconds:.3f}"
        )
        if result.figures:
            ET.SubElement(case, "system-out").text = result.figures
        if result.skipped:
            ET.SubElement(case, "skipped", message=result.skipped)
        elif result.problems:
            ET.SubElement(case, "failure", message=result.problems[0]).text = "\n".join(
                result.problems
            )
    if then is not None and then.exists():
        theirs = ET.parse(then).getroot()
        root.extend(theirs.iter("testsuite") if theirs.tag == "testsuites" else [theirs])
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _record(session: _Session, directory: Path) -> None:
    """The exchanges, the departures, and a config that makes the mock replay the flow."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "exchanges.jsonl").open("w") as out:
        for exchange in session.exchanges:
            out.write(json.dumps(exchange) + "\n")
    (directory / "departures.json").write_text(json.dumps(session.departures, indent=2) + "\n")
    flow = [e for e in session.exchanges if e["check"] == GENERATION]
    pending = sum(
        1
        for e in flow
        if "/status/" in e["url"]
        and isinstance(e["response"], dict)
        and e["response"].get("status") == "PENDING"
    )
    final = next(
        (
            e["response"]
            for e in reversed(flow)
            if isinstance(e["response"], dict)
            and e["response"].get("status") in ("SUCCESS", "FAILURE")
        ),
        {},
    )
    outcome = "failure" if final.get("status") == "FAILURE" else "success"
    lines = [
        "# Made by `ipmock verify --record`: the mock replays the recorded generation.",
        "[[scenarios]]",
        'name = "recorded"',
        f"pending_polls = {pending}",
        f'outcome = "{outcome}"',
        *([f"error = {json.dumps(final['error'])}"] if final.get("error") else []),
        "",
        "[[rules]]",
        'scenario = "recorded"',
        "[rules.match]",
        f"prompt = {json.dumps(FLOW_REQUEST['prompt'])}",
        "",
    ]
    (directory / "ipmock.toml").write_text("\n".join(lines))


def verify(
    base_url: str,
    api_key: str,
    *,
    junit_xml: Path | None = None,
    record: Path | None = None,
    max_examples: int = 30,
    seed: int | None = None,
    fuzz: bool = True,
    poll_interval: float = 2.0,
    deadline: float = 300.0,
    request: dict[str, Any] | None = None,
    junit_shown: Path | None = None,
) -> int:
    """Check the server at ``base_url``; print a summary; 0 when it keeps the contract, 1
    when it does not, 2 when it could not be checked: nothing answers there, the server
    refused the API key (checks that need one are then reported not run, and schemathesis
    does not run), or schemathesis is not installed.

    ``request``: the flow's generation (default ``FLOW_REQUEST``; see ``flow_request``).
    ``junit_shown``: where the user finds the JUnit XML, when a caller merges ``junit_xml``
    into a file of its own (default ``junit_xml``); the output names it.
    """
    junit_shown = junit_shown or junit_xml
    if fuzz and (missing := schemathesis_missing()):
        print(f"ipmock verify: {missing}", file=sys.stderr)
        return 2
    session = _Session(base_url, api_key, timeout=30.0)
    print(f"ipmock verify: {base_url}")
    try:
        session.http.get(session.base_url + "/")  # any answer will do, a 404 too
    except httpx.TransportError as exc:
        print(f"ipmock verify: nothing answers at {base_url}: {exc!r}", file=sys.stderr)
        return 2
    results = flow_checks(session, poll_interval=poll_interval, deadline=deadline, request=request)
    refused = bool(session.refused)
    if refused:
        print(
            f"ipmock verify: the server refused the API key (HTTP {session.refused}); the "
            "checks that need an accepted key did not run, nor schemathesis. Give a key it "
            "accepts with --api-key (a mock started with --api-key KEY accepts KEY)."
        )
        fuzz = False
    for result in results:
        why = f" ({result.skipped})" if result.skipped else ""
        print(f"  {_mark(result)} {result.name}{why}")
        for problem in result.problems:
            print(f"         {problem}")
    fuzz_code = 0
    why = "not run: " + ("the server refused the API key" if refused else "--no-fuzz")
    schemathesis = CheckResult(_SCHEMATHESIS_ROW, skipped=why)
    with tempfile.TemporaryDirectory() as scratch:
        theirs = Path(scratch) / "schemathesis.xml" if junit_xml is not None else None
        if fuzz:
            print("\nschemathesis over the contract (all checks, positive and negative, stateful):")
            sys.stdout.flush()
            with progress.steps(None, "ipmock verify: schemathesis") as phase:
                fuzz_code = run_schemathesis(
                    base_url,
                    api_key,
                    max_examples=max_examples,
                    seed=seed,
                    junit=theirs,
                    junit_shown=junit_shown,
                )
            schemathesis = CheckResult(
                _SCHEMATHESIS_ROW,
                [] if fuzz_code == 0 else [f"exit {fuzz_code}: see its output above"],
                seconds=phase.elapsed,
            )
        if junit_xml is not None:
            write_junit(junit_xml, "ipmock verify: flow", results, then=theirs)
            parts = "the flow checks and schemathesis" if fuzz else "the flow checks"
            print(f"\nJUnit XML ({parts}): {junit_shown}")
    if record is not None:
        _record(session, record)
        print(f"\nrecorded {len(session.exchanges)} exchanges in {record}")
    print()
    _summary(f"ipmock verify: {base_url}", [*results, schemathesis])
    failed = [r for r in results if r.problems]
    skipped = [r for r in results if r.skipped]
    print(
        f"\nflow checks: {len(results) - len(failed) - len(skipped)} passed, {len(failed)} failed"
        + (f", {len(skipped)} not run" if skipped else "")
        + ("" if not fuzz else f"; schemathesis: {'passed' if fuzz_code == 0 else 'FAILED'}")
    )
    if refused:
        return 2
    return 1 if failed or skipped or fuzz_code else 0


_SCHEMATHESIS_ROW = "schemathesis over the contract"


def _summary(title: str, results: list[CheckResult]) -> None:
    """The table verify ends with: each check, its result, its time (- when not timed),
    its problems or why it did not run."""
    progress.summary(
        title,
        [
            progress.Row(
                r.name, _mark(r).strip(), r.seconds or None, r.skipped or "\n".join(r.problems)
            )
            for r in results
        ],
    )
