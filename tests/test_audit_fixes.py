"""The fixes of issue 13's README audit: each test fails without its fix."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import httpx
import pytest

from contract_tests.flows import Flow, FlowError
from contract_tests.server import running_server
from mock_server import IpmockError
from mock_server.cli.options import parse, warn_unknown_variables
from mock_server.config import ConfigError, load_book
from mock_server.faults import Fault
from mock_server.scenarios import Refusal

REPO = Path(__file__).resolve().parent.parent
SUBMIT = "/sdxl/text2image/v1"
BODY = json.dumps({"prompt": "a lighthouse at dusk", "width": 64, "height": 64})

REFUSING = """\
[[scenarios]]
name = "r429"
refusal = { http_status = 429, code = "rate_limited", error = "x" }

[[scenarios]]
name = "r503"
refusal = { http_status = 503, code = "busy", error = "x" }

[[scenarios]]
name = "r503-wait"
refusal = { http_status = 503, code = "busy", error = "x", retry_after = 7 }

[[scenarios]]
name = "r402"
refusal = { http_status = 402, code = "insufficient_credits", error = "x" }

[[scenarios]]
name = "r500-wait"
refusal = { http_status = 500, code = "server_error", error = "x", retry_after = 3 }
"""

EXPECTED_RETRY_AFTER = {"r429": "1", "r503": "1", "r503-wait": "7", "r402": None, "r500-wait": "3"}


# --- 1. a custom 429/503 refusal sends Retry-After ---------------------------------


def test_a_refusal_of_429_or_503_defaults_to_retry_after_1() -> None:
    assert Refusal(429, "rate_limited", "x").retry_after == 1
    assert Refusal(503, "busy", "x").retry_after == 1
    assert Refusal(503, "busy", "x", retry_after=0).retry_after == 0
    assert Refusal(402, "insufficient_credits", "x").retry_after is None


@pytest.fixture(scope="module")
def refusing_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = tmp_path_factory.mktemp("refusals") / "ipmock.toml"
    config.write_text(REFUSING, encoding="utf-8")
    with running_server("--config", str(config)) as url:
        yield url


def _raw_submit(base_url: str, key: str) -> tuple[int, dict[str, str]]:
    """A submit over a raw socket, as the in-place protocol answers it."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    body = BODY.encode()
    head = (
        f"POST {SUBMIT} HTTP/1.1\r\nHost: mock\r\nAPI-Key: {key}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head_text = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status_line, *lines = head_text.split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers


@pytest.mark.parametrize("name", sorted(EXPECTED_RETRY_AFTER))
@pytest.mark.socket
def test_a_config_refusal_sends_retry_after_in_place(refusing_url: str, name: str) -> None:
    status, headers = _raw_submit(refusing_url, f"test_{name}")
    assert status == int(name[1:4])
    assert headers.get("retry-after") == EXPECTED_RETRY_AFTER[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_RETRY_AFTER))
@pytest.mark.socket
def test_a_config_refusal_sends_retry_after_through_asgi(refusing_url: str, name: str) -> None:
    # A query string keeps a poll off the in-place path: uvicorn and the ASGI app answer
    # it (the key's refusal answers every call).
    response = httpx.get(
        f"{refusing_url}{SUBMIT}/status/nope?via=asgi",
        headers={"API-Key": f"test_{name}"},
        timeout=10,
    )
    assert response.status_code == int(name[1:4])
    assert response.headers.get("retry-after") == EXPECTED_RETRY_AFTER[name]


@pytest.mark.anyio
async def test_a_queued_refusal_sends_retry_after(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    async with make_client() as client:
        refusal = {"http_status": 503, "code": "busy", "error": "x"}
        queued = await client.post("/__mock/queue", json={"scenarios": [{"refusal": refusal}]})
        assert queued.status_code == 200, queued.text
        response = await client.post(SUBMIT, content=BODY)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


# --- 2. Flow.from_json: missing keys default, bad ones are a clear IpmockError -------


def test_a_flow_without_every_key_takes_the_defaults() -> None:
    assert Flow.from_json("{}") == Flow()
    old_line = json.dumps({"pending_polls": 3, "faults": [{"at_request": 1, "kind": "reset"}]})
    flow = Flow.from_json(old_line)
    assert flow.pending_polls == 3
    assert flow.submit_refusals == ()
    assert flow.faults == (Fault(1, "reset"),)


def test_every_flow_field_round_trips() -> None:
    flow = Flow(
        submit_refusals=(("busy", 2),),
        pending_polls=None,
        faults=(Fault(1, "busy", retry_after=3, on="download"),),
        outcome="failure",
        samples=2,
        extra_fields=True,
        url_ttl=5.0,
    )
    assert Flow.from_json(flow.to_json()) == flow


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('{"pending_pols": 1}', "'pending_pols' (did you mean 'pending_polls'?)"),
        ('{"samples": 9}', "flow samples: 9 is not an integer from 1 to 4"),
        ('{"submit_refusals": [["slow", 1]]}', "flow submit_refusals"),
        ('{"faults": [{"at_request": 1, "kind": "rest"}]}', "faults.0.kind"),
        ('{"outcome": "maybe"}', 'flow outcome: "maybe" is not "success" or "failure"'),
        ("[1]", "a flow must be a JSON object"),
        ("{", "a flow must be JSON"),
    ],
)
def test_a_bad_flow_is_a_clear_ipmock_error(text: str, named: str) -> None:
    with pytest.raises(IpmockError) as caught:
        Flow.from_json(text)
    assert isinstance(caught.value, FlowError)
    assert named in str(caught.value)


# --- 4. a misspelt IPMOCK_ variable is named, not silently ignored -----------------


def test_a_misspelt_variable_gets_one_line_naming_the_right_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n.startswith("IPMOCK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("IPMOCK_PROT", "9000")
    monkeypatch.setenv("IPMOCK_STORE", "memory")  # a real one: no warning
    monkeypatch.setenv("IPMOCK_SCHEMATHESIS_EXAMPLES", "5")  # the test suite's: none
    _, args = parse(["serve"])
    assert args.port is None or args.port == 8000
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "ipmock: warning: IPMOCK_PROT is not an ipmock variable, ignored "
        "(did you mean IPMOCK_PORT?)"
    ]


def test_no_variable_the_docs_name_is_warned_about() -> None:
    named = set(re.findall(r"IPMOCK_[A-Z_]*[A-Z]", (REPO / "README.md").read_text("utf-8")))
    named -= {"IPMOCK_PROT"}  # the README's example of a misspelling
    assert named, "the README names IPMOCK_ variables"
    assert warn_unknown_variables(dict.fromkeys(named, "1"), io.StringIO()) == []


# --- 6. config messages: one per problem, did-you-mean for values, the why --------


def _config_error(tmp_path: Path, toml: str) -> str:
    path = tmp_path / "ipmock.toml"
    path.write_text(f'[[scenarios]]\nname = "x"\n{toml}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_book(path)
    return str(caught.value).removeprefix(f"{path}: ")


def test_an_infinite_number_is_said_once(tmp_path: Path) -> None:
    said = _config_error(tmp_path, "pending_polls = 1e400")
    assert said == "scenarios.0.pending_polls: inf is not a finite number"


def test_a_misspelt_value_gets_did_you_mean(tmp_path: Path) -> None:
    said = _config_error(tmp_path, 'faults = [{ at_request = 1, kind = "rest" }]')
    assert said.startswith("scenarios.0.faults.0.kind: 'rest' is not one of ['rate-limited'")
    assert said.endswith("(did you mean 'reset'?)")
    said = _config_error(tmp_path, 'outcome = "sucess"')
    assert "(did you mean 'success'?)" in said


def test_a_second_submit_request_says_why_there_is_none(tmp_path: Path) -> None:
    said = _config_error(tmp_path, 'faults = [{ on = "submit", at_request = 2, kind = "reset" }]')
    assert said == (
        "scenarios.0.faults.0.at_request: 2 is not 1: a job has one submit, so a fault on "
        '"submit" is at_request 1'
    )


def test_the_readme_says_which_fault_fields_are_required() -> None:
    schema = json.loads((REPO / "mock_server" / "config.schema.json").read_text("utf-8"))
    required = schema["$defs"]["scenario"]["properties"]["faults"]["items"]["required"]
    readme = " ".join((REPO / "README.md").read_text("utf-8").split())
    assert "names its `kind` and its `at_request`, both required" in readme
    assert sorted(required) == ["at_request", "kind"]


# --- 7. reference_impl generate --request: a path or inline JSON --------------------


def test_request_takes_a_file_or_inline_json(tmp_path: Path) -> None:
    from reference_impl.__main__ import request_body

    body = '{"prompt": "a lighthouse at dusk"}'
    (tmp_path / "req.json").write_text(body, encoding="utf-8")
    assert request_body(str(tmp_path / "req.json")) == body.encode()
    assert request_body(body) == body.encode()


@pytest.mark.parametrize(
    ("request_text", "said"),
    [
        (
            "missing.json",
            "argument --request: 'missing.json' is neither a readable JSON file (No such "
            "file or directory) nor inline JSON (a value starting with '{')",
        ),
        ('{"prompt": ', "--request: the body is not valid JSON"),
        ('{"prompt": ""}', "--request: prompt must be a string"),
    ],
)
def test_a_bad_request_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], request_text: str, said: str
) -> None:
    from reference_impl.__main__ import main

    argv = ["generate", str(tmp_path), "--request", request_text, "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as exited:
        sys.exit(main(argv))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert said in err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("python -m reference_impl generate")


# --- 8. the gpu extra's known noise is silenced, and nothing else ---------------------


@pytest.mark.slow
def test_generate_prints_no_torchvision_or_upcast_vae_noise(tmp_path: Path) -> None:
    from reference_impl.build import build_random_model_dir

    build_random_model_dir("tiny", tmp_path / "models", seed=0)
    request = json.dumps({"prompt": "x", "width": 64, "height": 64, "num_inference_steps": 1})
    argv = ["generate", str(tmp_path / "models"), "--request", request, "--out"]
    argv += [str(tmp_path / "out"), "--device", "cpu", "--dtype", "float16"]  # float16: upcast
    done = subprocess.run(
        [sys.executable, "-m", "reference_impl", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["steps"] == 1
    for noise in ("requires torchvision", "upcast_vae"):
        assert noise not in done.stderr


def test_only_the_known_noise_is_silenced(caplog: pytest.LogCaptureFixture) -> None:
    from reference_impl.pipeline import quiet_known_noise

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_noise()
        warnings.warn("`upcast_vae` is deprecated and will be removed", FutureWarning, stacklevel=1)
        warnings.warn("`other_call` is deprecated and will be removed", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["`other_call` is deprecated and will be removed"]

    logger = logging.getLogger("transformers.utils.import_utils")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        logger.warning("`CLIPImageProcessor` requires torchvision (not installed); falling back")
        logger.warning("`SiglipImageProcessor` requires torchvision (not installed); falling back")
        logger.warning("`CLIPImageProcessor` something else entirely")
    assert caplog.messages == ["`CLIPImageProcessor` something else entirely"]


# --- 3 and 5. the example clients ride out the README's faults -----------------------

EXAMPLES = REPO / "examples"


def _readme_faults_toml() -> str:
    """The README's faults.toml, as a reader copies it."""
    readme = (REPO / "README.md").read_text("utf-8")
    found = re.search(r"```toml\n# faults\.toml\n(.*?)```", readme, re.S)
    assert found, "the README shows faults.toml"
    return found.group(1)


@pytest.fixture(scope="module")
def faults_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = tmp_path_factory.mktemp("faults") / "faults.toml"
    config.write_text(_readme_faults_toml(), encoding="utf-8")
    with running_server("--config", str(config), "--seed", "7") as url:
        yield url


@pytest.fixture(params=["python", "node"])
def example(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "python":
        return [sys.executable, str(EXAMPLES / "python_client.py")]
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (18 or later) is needed to run examples/js_client.mjs")
    return [node, str(EXAMPLES / "js_client.mjs")]


def _run(example: list[str], url: str, key: str, out: Path, *more: str) -> CompletedProcess[str]:
    argv = [*example, "--base-url", url, "--api-key", key, "--prompt", "a cat", "--out", str(out)]
    argv += ["--width", "64", "--height", "64", "--poll-interval", "0.05", "--timeout", "60"]
    return subprocess.run([*argv, *more], capture_output=True, text=True, timeout=120)


def _submits(url: str, scenario: str) -> list[dict[str, Any]]:
    journal = httpx.get(f"{url}/__mock/journal?path={SUBMIT}", timeout=10).json()["entries"]
    return [e for e in journal if e["method"] == "POST" and e["scenario"] == scenario]


@pytest.mark.socket
@pytest.mark.slow
def test_the_flaky_scenario_ends_in_success(
    example: list[str], faults_url: str, tmp_path: Path
) -> None:
    done = _run(example, faults_url, "test_flaky", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    [saved] = done.stdout.split()
    assert Path(saved).read_bytes().startswith(b"\x89PNG")


@pytest.mark.socket
def test_a_lost_submit_is_not_sent_again(
    example: list[str], faults_url: str, tmp_path: Path
) -> None:
    before = len(_submits(faults_url, "lost-submit"))
    done = _run(example, faults_url, "test_lost-submit", tmp_path / "out")
    assert done.returncode == 3, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: submit: the answer was lost (")
    assert "the job may exist, so it was not submitted again" in line
    assert len(_submits(faults_url, "lost-submit")) == before + 1  # one submit, not two


@pytest.mark.socket
def test_broken_polls_and_downloads_are_retried_and_then_named(
    example: list[str], faults_url: str, tmp_path: Path
) -> None:
    resets = [{"at_request": n, "kind": "reset"} for n in (1, 2, 3)]
    download_faults = [
        {"on": "download", "at_request": 1, "kind": "empty"},
        {"on": "download", "at_request": 2, "kind": "rate-limited", "retry_after": 0},
    ]
    queue = {"scenarios": [{"faults": resets + download_faults, "pending_polls": 1}]}
    queued = httpx.post(f"{faults_url}/__mock/queue", json=queue, timeout=10)
    assert queued.status_code == 200, queued.text
    done = _run(example, faults_url, "client-key", tmp_path / "out", "--max-retries", "8")
    assert done.returncode == 0, done.stderr

    queue = {"scenarios": [{"faults": resets, "pending_polls": 1}]}
    queued = httpx.post(f"{faults_url}/__mock/queue", json=queue, timeout=10)
    assert queued.status_code == 200, queued.text
    done = _run(example, faults_url, "client-key", tmp_path / "out", "--max-retries", "2")
    assert done.returncode == 1, done.stdout
    [line] = done.stderr.strip().splitlines()
    assert re.match(r"error: status request 1 of job \S+: failed 3 times, last: ", line), line


def test_help_shows_every_default(example: list[str]) -> None:
    done = subprocess.run([*example, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    for default in ("http://127.0.0.1:8000", "images", "low quality, blurry, deformed", "1024"):
        assert default in text
    assert re.search(r"--poll-interval SECONDS .*\(default:? 2", text)
    assert re.search(r"--timeout SECONDS .*\(default:? 300", text)


def test_a_misspelt_option_is_named_before_a_missing_one(example: list[str]) -> None:
    done = subprocess.run(
        [*example, "--api-key", "k", "--promt", "x"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stdout
    assert "--promt (did you mean --prompt?)" in done.stderr
    assert "required" not in done.stderr
