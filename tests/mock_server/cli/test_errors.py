"""Bad values for the `ipmock` command line are refused before anything starts: exit 2,
a message naming the flag (or the IPMOCK_ variable) and what is allowed, no traceback."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from mock_server import Settings
from mock_server.cli import main
from mock_server.cli.options import MODEL_OPTIONS, parse, settings_from
from mock_server.cli.serve import banner
from mock_server.config import load_book
from mock_server.settings import PARSERS, Secret, environ_name

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # refused at once: nothing listens on port 1
DEAD_SERVER = "http://127.0.0.1:9/"


@pytest.fixture(autouse=True)
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """No IPMOCK_ variable of the caller's; a server, verify or conformance that would
    start fails the test instead."""
    for name in list(os.environ):
        if name.startswith("IPMOCK_"):
            monkeypatch.delenv(name)

    def started(*args: object, **kwargs: object) -> None:
        pytest.fail("it started instead of refusing the value")

    monkeypatch.setattr("mock_server.http.server.run", started)
    monkeypatch.setattr("mock_server.cli.supervisor.serve_workers", started)
    monkeypatch.setattr("contract_tests.verify.verify", started)
    monkeypatch.setattr("reference_impl.conformance.conformance", started)


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What `ipmock ARGV` printed on stderr, having exited 2 (argparse's way or main's)."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("variable", "value", "needle"),
    [
        # 1, 2, 6: values that crashed or wrapped, now checked as their flags are
        ("IPMOCK_LOG_LEVEL", "loud", "IPMOCK_LOG_LEVEL: must be one of critical, error,"),
        ("IPMOCK_MAX_JOBS", "0", "IPMOCK_MAX_JOBS: must be a whole number of at least 1"),
        ("IPMOCK_JOURNAL_SIZE", "-1", "IPMOCK_JOURNAL_SIZE: must be a whole number of at least"),
        ("IPMOCK_PORT", "99999", "IPMOCK_PORT: must be a port number (0 to 65535), got '99999'"),
        ("IPMOCK_JOB_TTL", "nan", "IPMOCK_JOB_TTL: must be a number of seconds, more than 0"),
        ("IPMOCK_PUBLIC_URL", "notaurl", "IPMOCK_PUBLIC_URL: must be an absolute http://"),
        ("IPMOCK_STORE", "redis://127.0.0.1:1/abc", "IPMOCK_STORE: must be memory or a Redis URL"),
        ("IPMOCK_API_KEY", "a,,b", "IPMOCK_API_KEY: must be a key, not empty"),
        ("IPMOCK_RANDOM_WEIGHTS", "huge", "IPMOCK_RANDOM_WEIGHTS: must be one of tiny, full"),
    ],
)
def test_bad_serve_variables_are_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    needle: str,
) -> None:
    monkeypatch.setenv(variable, value)
    err = refused(["serve", "--port", "0"], capsys)
    assert needle in err
    assert "usage: ipmock serve" in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        # 7
        (["--max-body-bytes", "-1"], "--max-body-bytes: must be a number of bytes, at least 1"),
        (["--max-body-bytes", "0"], "--max-body-bytes: must be a number of bytes, at least 1"),
        # 8
        (["--job-ttl", "-5"], "--job-ttl: must be a number of seconds, more than 0, got '-5'"),
        (["--job-ttl", "nan"], "--job-ttl: must be a number of seconds, more than 0, got 'nan'"),
        (["--url-ttl", "-5"], "--url-ttl: must be a number of seconds, more than 0, got '-5'"),
        (["--url-ttl", "inf"], "--url-ttl: must be a number of seconds, more than 0"),
        # 9
        (["--public-url", "notaurl"], "--public-url: must be an absolute http:// or https://"),
        (["--public-url", "ftp://h/x"], "--public-url: must be an absolute http:// or https://"),
        # 10
        (["--api-key", ""], "--api-key: must be a key, not empty"),
        (["--admin-token", ""], "--admin-token: must not be empty"),
        # 14
        (["--store", "redis://127.0.0.1:6379/abc"], "--store: must be memory or a Redis URL"),
        # 15, 16
        (["--port", "abc"], "--port: must be a port number (0 to 65535), got 'abc'"),
        (["--config", "/"], "--config: / is not a file"),
        # 18
        (["--workers", "0"], "--workers: must be a whole number of at least 1, got '0'"),
        (["--max-in-flight", "-1"], "--max-in-flight: must be a whole number, 0 (no cap)"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--workers", "2"], "several workers need a shared store"),
    ],
)
def test_bad_serve_flags_are_refused_with_serves_usage(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    err = refused(["serve", "--port", "0", *argv], capsys)
    assert needle in err
    assert "usage: ipmock serve" in err


def test_a_model_variable_is_named_as_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("IPMOCK_MODEL_DIR", str(tmp_path))
    err = refused(["serve", "--port", "0"], capsys)
    assert "IPMOCK_MODEL_DIR needs --backend diffusers" in err  # 19
    monkeypatch.setenv("IPMOCK_MODEL_DIR", "")
    monkeypatch.setenv("IPMOCK_ALLOW_IMAGE_NETWORK", "10.0.0.0/33")
    assert "IPMOCK_ALLOW_IMAGE_NETWORK: " in refused(["serve", "--port", "0"], capsys)


def test_only_the_variables_of_the_running_subcommand_are_read(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran: list[str] = []
    monkeypatch.setattr("contract_tests.verify.verify", lambda url, *a, **k: ran.append(url) or 0)
    monkeypatch.setenv("IPMOCK_PORT", "abc")  # 19: verify has no use for it
    assert main(["verify", "--base-url", DEAD_SERVER, "--no-fuzz"]) == 0
    assert ran == [DEAD_SERVER]
    assert "IPMOCK_PORT" not in capsys.readouterr().err


def test_every_serve_option_has_its_variable() -> None:
    command, _ = parse(["serve"])
    read = {environ_name(name) for name in PARSERS}
    for action in command._actions:
        if action.dest == "help":
            continue
        variable = "IPMOCK_" + action.option_strings[-1][2:].upper().replace("-", "_")
        assert variable in read or action.dest in MODEL_OPTIONS, variable  # 20


def test_api_key_and_refuse_model_uuid_variables_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IPMOCK_API_KEY", "k1, k2")
    monkeypatch.setenv("IPMOCK_REFUSE_MODEL_UUID", "1")
    settings = settings_from(parse(["serve"])[1])
    assert settings.api_keys == (Secret("k1"), Secret("k2"))
    assert settings.accept_model_uuid is False


def test_the_banner_says_which_keys_are_accepted() -> None:
    book = load_book(None)
    url = "http://127.0.0.1:8000"
    assert "(header API-Key: any key)" in banner(Settings(), book, url)
    text = banner(Settings(api_keys=(Secret("secret"),)), book, url)
    assert "any key" not in text and "only the 1 given key(s) and test_ keys" in text  # 10
    assert "secret" not in text


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        # 5
        (["--lease", "-1"], "--lease: must be a number of seconds, more than 0, got '-1'"),
        (["--lease", "0"], "--lease: must be a number of seconds, more than 0, got '0'"),
        (["--lease", "nan"], "--lease: must be a number of seconds, more than 0, got 'nan'"),
        # 14
        (["--placeholder-seconds", "-1"], "--placeholder-seconds: must be a number of seconds, 0"),
        (["--store", "redis://127.0.0.1:6379/abc"], "--store: must be the redis:// URL"),
        # 17
        (["--store", "bogus://x"], "--store: must be the redis:// URL that `ipmock serve --store`"),
        (["--store", "memory"], "--store: must be the redis:// URL that `ipmock serve --store`"),
        # 21
        (["--log-level", "loud"], "--log-level: must be one of critical, error, warning, info"),
    ],
)
def test_bad_worker_flags_are_refused(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    err = refused(["worker", "--store", UNREACHABLE_REDIS, *argv], capsys)
    assert needle in err
    assert "usage: ipmock worker" in err


@pytest.mark.socket
def test_the_worker_reads_ipmock_store(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IPMOCK_STORE", UNREACHABLE_REDIS)  # 20
    assert f"IPMOCK_STORE {UNREACHABLE_REDIS}: cannot use this Redis" in refused(["worker"], capsys)
    monkeypatch.setenv("IPMOCK_STORE", "memory")
    assert "IPMOCK_STORE: must be the redis:// URL" in refused(["worker"], capsys)
    monkeypatch.delenv("IPMOCK_STORE")
    assert "--store is required (or IPMOCK_STORE)" in refused(["worker"], capsys)


def test_record_and_junit_xml_that_cannot_be_written_are_refused_before_verify_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("mine")
    verify = ["verify", "--base-url", DEAD_SERVER, "--no-fuzz"]
    assert f"--record {afile} is a file" in refused([*verify, "--record", str(afile)], capsys)
    err = refused([*verify, "--record", str(afile / "sub")], capsys)  # 3
    assert f"--record {afile / 'sub'}: cannot make this folder" in err
    err = refused([*verify, "--junit-xml", str(tmp_path)], capsys)  # 4
    assert f"--junit-xml {tmp_path} is a folder" in err
    err = refused([*verify, "--junit-xml", str(afile / "report.xml")], capsys)
    assert f"--junit-xml {afile / 'report.xml'}: cannot write this file" in err
    assert afile.read_text() == "mine"
    err = refused(["conformance", "--junit-xml", str(tmp_path)], capsys)
    assert f"--junit-xml {tmp_path} is a folder" in err


def test_writable_outputs_are_accepted_and_left_as_they_were(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("contract_tests.verify.verify", lambda *a, **k: 0)
    junit, record = tmp_path / "new" / "verify.xml", tmp_path / "recorded"
    verify = ["verify", "--base-url", DEAD_SERVER, "--no-fuzz"]
    assert main([*verify, "--junit-xml", str(junit), "--record", str(record)]) == 0
    assert not junit.exists() and record.is_dir()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        # 11
        (["--poll-interval", "-1"], "--poll-interval: must be a number of seconds, more than 0"),
        (["--poll-interval", "nan"], "--poll-interval: must be a number of seconds, more than 0"),
        (["--max-examples", "-1"], "--max-examples: must be a whole number of at least 1"),
        (["--max-examples", "0"], "--max-examples: must be a whole number of at least 1"),
    ],
)
def test_bad_verify_flags_are_refused(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    err = refused(["verify", "--base-url", DEAD_SERVER, *argv], capsys)
    assert needle in err
    assert "usage: ipmock verify" in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        # 12: the request schema's own rules
        (["--width", "-1"], "--width: must be an integer from 64 to 2048, a multiple of 8"),
        (["--height", "100"], "--height: must be an integer from 64 to 2048, a multiple of 8"),
        (["--width", "4096"], "--width: must be an integer from 64 to 2048, a multiple of 8"),
        (["--steps", "0"], "--steps: must be an integer from 1 to 100, got '0'"),
        (["--steps", "x"], "--steps: must be an integer from 1 to 100, got 'x'"),
        (["--max-examples", "-1"], "--max-examples: must be a whole number of at least 1"),
    ],
)
def test_bad_conformance_flags_are_refused_before_anything_is_built(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], needle: str
) -> None:
    cache = tmp_path / "weights"
    argv = ["conformance", "--size", "tiny", "--weights-cache", str(cache), *argv]
    err = refused(argv, capsys)
    assert needle in err
    assert "usage: ipmock conformance" in err
    assert not cache.exists()


def test_conformance_refuses_missing_model_folders_up_front(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model, adapter = tmp_path / "nonexist", tmp_path / "nonexist2"
    argv = ["conformance", "--model-dir", str(model), "--ip-adapter-dir", str(adapter)]
    err = refused(argv, capsys)  # 13
    assert err == f"ipmock conformance: --model-dir {model} is not a folder\n"
    model.mkdir()
    err = refused(argv, capsys)
    assert err == f"ipmock conformance: --ip-adapter-dir {adapter} is not a folder\n"


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (
            ["serve"],
            [
                "--max-body-bytes N largest request body in bytes",
                "(default 8388608",
                "--seed N seed",
                "(default: random)",
                "(default info)",
                "--host HOST address to bind (default 127.0.0.1",
            ],
        ),
        (["verify"], ["--poll-interval SECONDS seconds between status polls", "(default 2)"]),
        (
            ["conformance"],
            [
                "--width N the requests' width: an integer from 64 to 2048",
                "(default 1024, or 128 with tiny random weights)",
                "to 100 (default 20, or 4 with tiny random weights)",
                "phase (default 30)",
                "(default: full where CUDA is available, else tiny)",
            ],
        ),
        (
            ["worker"],
            ["--log-level {critical,error,warning,info,debug} (default info)", "IPMOCK_STORE"],
        ),
    ],
)
def test_help_says_what_each_option_takes_and_its_default(
    capsys: pytest.CaptureFixture[str], argv: list[str], needles: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere
    assert [n for n in needles if n not in text] == []  # 21


def test_version_and_no_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"ipmock {version('ipmock')}\n"
    assert "usage: ipmock" in refused([], capsys)


@pytest.mark.socket
def test_an_address_it_cannot_listen_on_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = refused(["serve", "--port", str(port)], capsys)
    assert f"cannot listen on --host 127.0.0.1 --port {port}: Address already in use" in err
    err = refused(["serve", "--host", "999.1.1.1", "--port", "0"], capsys)
    assert "cannot listen on --host 999.1.1.1 --port 0" in err
