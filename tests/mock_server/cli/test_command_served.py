"""The `ipmock` command line: --config rules, bad config files, --help, the startup banner."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import running_server
from tests.support.served import Api, poll_until_done

RULES = """\
# Prompts that mention "explode" fail after one PENDING poll; everything else is default.
[[rules]]
scenario = "pending-then-failure"
match = { prompt = { contains = "explode" } }
"""


@pytest.fixture(scope="module")
def rules_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    config = tmp_path_factory.mktemp("config") / "ipmock.toml"
    config.write_text(RULES, encoding="utf-8")
    with running_server("--config", str(config)) as url:
        yield Api(url)


@pytest.mark.socket
def test_config_rule_fails_matching_prompts(rules_api: Api, small_body: dict[str, Any]) -> None:
    expected = rules_api.scenario("pending-then-failure")["error"]
    body = {**small_body, "prompt": "a firework about to explode over the bay"}
    submitted = rules_api.submit("client-key", body)
    assert submitted.status_code == 202, submitted.text
    polls = poll_until_done(rules_api, "client-key", submitted.json()["id"])
    assert [p["status"] for p in polls] == ["PENDING", "FAILURE"]
    assert polls[-1]["error"] == expected


@pytest.mark.socket
def test_config_rule_leaves_other_prompts_alone(rules_api: Api, small_body: dict[str, Any]) -> None:
    body = {**small_body, "prompt": "a calm lake at dawn"}
    submitted = rules_api.submit("client-key", body)
    assert submitted.status_code == 202, submitted.text
    polls = poll_until_done(rules_api, "client-key", submitted.json()["id"])
    assert [p["status"] for p in polls] == ["PENDING", "SUCCESS"]
    assert len(polls[-1]["download_urls"]) == 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rules = [\n", "not valid TOML"),
        (
            '[[rules]]\nscenario = "no-such-scenario"\nmatch = { prompt = "x" }\n',
            "no-such-scenario",
        ),
        ('colour = "red"\n', "colour"),
        ('[[rules]]\nscenario = "failure"\nmatch = { prompt = { matches = "(" } }\n', "regex"),
        ('[[scenarios]]\nname = "flaky"\noutcome = "maybe"\n', "maybe"),
        ('default_scenario = "nope"\n', "nope"),
    ],
    ids=[
        "not-toml",
        "unknown-rule-scenario",
        "unknown-key",
        "bad-regex",
        "bad-outcome",
        "unknown-default",
    ],
)
def test_bad_config_exits_2_naming_the_problem(
    ipmock_command: list[str], tmp_path: Path, text: str, problem: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text, encoding="utf-8")
    # A server that starts anyway never exits: the timeout fails the test.
    result = subprocess.run(
        [*ipmock_command, "serve", "--host", "127.0.0.1", "--port", "0", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert str(config) in result.stderr, result.stderr
    assert problem in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert "serving" not in result.stdout


def test_missing_config_file_exits_2(ipmock_command: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    result = subprocess.run(
        [*ipmock_command, "serve", "--host", "127.0.0.1", "--port", "0", "--config", str(missing)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert str(missing) in result.stderr
    assert "does not exist" in result.stderr


def test_help(ipmock_command: list[str]) -> None:
    top = subprocess.run([*ipmock_command, "--help"], capture_output=True, text=True, timeout=30)
    assert top.returncode == 0, top.stderr
    assert "usage: ipmock" in top.stdout
    assert "serve" in top.stdout

    serve = subprocess.run(
        [*ipmock_command, "serve", "--help"], capture_output=True, text=True, timeout=30
    )
    assert serve.returncode == 0, serve.stderr
    options = ["--host", "--port", "--config", "--seed", "--public-url", "--log-level", "--strict"]
    missing = [o for o in options if not re.search(rf"^\s+{o}\b", serve.stdout, re.MULTILINE)]
    assert not missing, f"serve --help does not document {missing}:\n{serve.stdout}"


@pytest.mark.socket
def test_startup_banner_lists_the_test_keys() -> None:
    output: list[str] = []
    with running_server(output=output) as url:
        names = [s["name"] for s in Api(url).admin("GET", "/__mock/scenarios").json()["scenarios"]]
    assert {"success", "pending-then-failure", "rate-limited"} <= set(names)
    banner = "".join(output)  # all of it: the server has stopped
    keys = [f"test_{n}" for n in names]  # every scenario the server knows is a test key
    missing = [k for k in keys if not re.search(rf"^\s+{re.escape(k)}\s", banner, re.MULTILINE)]
    assert not missing, f"banner lacks test keys {missing}:\n{banner}"
    assert f"{url}/sdxl/text2image/v1" in banner
    assert "API-Key" in banner


def _chaos_run(*args: str) -> tuple[str, list[tuple[int, str | None]]]:
    """A server's banner and what its chaos mix did to 30 submits (status, scenario)."""
    output: list[str] = []
    with running_server("--chaos", *args, output=output) as url:
        for _ in range(30):
            httpx.post(
                f"{url}/sdxl/text2image/v1", json={"prompt": "a cat"}, headers={"API-Key": "sk-any"}
            )
        entries = httpx.get(f"{url}/__mock/journal").json()["entries"]
    return "".join(output), [(e["status"], e["scenario"]) for e in entries]


@pytest.mark.socket
def test_a_drawn_seed_is_in_the_banner_and_replays_the_run() -> None:
    banner, draws = _chaos_run()
    found = re.search(r"^  seed: (\d+) \(drawn at random; --seed \1 replays", banner, re.M)
    assert found, banner
    assert len({scenario for _, scenario in draws}) > 1  # the chaos mix did draw
    replayed_banner, replayed = _chaos_run("--seed", found.group(1))
    assert replayed == draws
    assert re.search(rf"^  seed: {found.group(1)}$", replayed_banner, re.M)


@pytest.mark.socket
def test_the_banner_names_the_config_chaos_and_fault_mix(tmp_path: Path) -> None:
    config = tmp_path / "ipmock.toml"
    config.write_text(
        RULES + '[[scenarios]]\nname = "mine"\n[chaos]\n'
        'faults = { rate = 0.25, on = ["submit", "download"], kinds = ["busy", "delay"], '
        "seconds = 2, jitter = 0.5, retry_after = 3 }\n",
        encoding="utf-8",
    )
    output: list[str] = []
    with running_server("--config", str(config), "--seed", "11", output=output):
        pass
    banner = "".join(output)
    assert f"  config: {config} (1 scenario of its own, 1 rule)\n" in banner
    assert "  seed: 11\n" in banner
    assert "  chaos: off\n" in banner
    assert (
        "  faults: 25% of submits and downloads (busy, delay; slow ones 2 s + up to 0.5 s; "
        "Retry-After 3)\n"
    ) in banner


@pytest.mark.socket
def test_the_banner_says_when_nothing_is_random() -> None:
    output: list[str] = []
    with running_server(output=output):
        pass
    banner = "".join(output)
    assert "  config: none (built-in scenarios only)\n" in banner
    assert "  chaos: off\n  faults: off\n" in banner
    with_chaos, _ = _chaos_run("--seed", "3")
    assert "  chaos: on, scenarios by weight: success 4, pending-then-success 4," in with_chaos
    assert "  faults: 10% of status requests (every kind; slow ones 1 s + up to 1 s; " in with_chaos
