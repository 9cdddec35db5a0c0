"""Settings from the environment, the command line, and config files."""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
from dataclasses import fields
from pathlib import Path

import pytest

from mock_server import ConfigError, Settings
from mock_server.cli import main
from mock_server.cli.options import MODEL_OPTIONS, build_parser, parse, settings_from
from mock_server.cli.serve import GC_THRESHOLDS, banner, prepare_to_serve
from mock_server.config import load_book
from mock_server.settings import HELP, Secret, flag_name
from mock_server.state import MemoryQueue


def test_defaults_serve_on_loopback_8000() -> None:
    settings = Settings.from_environ({})
    assert (settings.host, settings.port, settings.strict) == ("127.0.0.1", 8000, False)


def test_environment() -> None:
    settings = Settings.from_environ(
        {
            "IPMOCK_PORT": "9001",
            "IPMOCK_STRICT": "yes",
            "IPMOCK_ADMIN_TOKEN": "t0k",
            "IPMOCK_JOB_TTL": "1.5",
            "IPMOCK_SEED": "",
        }
    )
    assert (settings.port, settings.strict, settings.job_ttl, settings.seed) == (
        9001,
        True,
        1.5,
        None,
    )
    assert settings.admin_token == Secret("t0k")
    assert "t0k" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        (
            {"IPMOCK_PORT": "eighty"},
            "IPMOCK_PORT: must be a port number (0 to 65535), got 'eighty'",
        ),
        ({"IPMOCK_STRICT": "maybe"}, "IPMOCK_STRICT: must be 1/0, true/false, yes/no or on/off"),
    ],
)
def test_bad_environment_is_named(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ValueError, match=re.escape(needle)):
        Settings.from_environ(env)


def test_command_line_wins_over_environment() -> None:
    environ = {"IPMOCK_PORT": "9001", "IPMOCK_HOST": "::1"}
    args = build_parser().parse_args(["serve", "--port", "9002", "--strict", "--refuse-model-uuid"])
    settings = settings_from(args, environ)
    assert (settings.host, settings.port, settings.strict, settings.accept_model_uuid) == (
        "::1",
        9002,
        True,
        False,
    )


def test_a_variable_and_a_flag_that_go_together_are_checked_together() -> None:
    args = build_parser().parse_args(["serve", "--store", "redis://h:1/0"])
    settings = settings_from(args, {"IPMOCK_WORKERS": "2"})
    assert (settings.workers, settings.store) == (2, "redis://h:1/0")


def test_settings_travel_to_worker_processes_through_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "x.toml"
    config.touch()
    settings = Settings(
        api_keys=(Secret("a"), Secret("b")),
        admin_token=Secret("t"),
        config=config,
        chaos=True,
        seed=3,
        store="redis://h:1/0",
        workers=2,
        backend="workers",
        accept_model_uuid=False,
        public_url="https://cdn.test/m",
        job_ttl=1.5,
    )
    environ = settings.to_environ()
    assert (environ["IPMOCK_API_KEY"], environ["IPMOCK_REFUSE_MODEL_UUID"]) == ("a,b", "1")
    assert Settings.from_environ(environ) == settings


def test_model_options_default_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPMOCK_MODEL_DIR", "/models/sdxl")
    monkeypatch.setenv("IPMOCK_DEVICE", "cuda:1")
    monkeypatch.setenv("IPMOCK_ALLOW_IMAGE_NETWORK", "127.0.0.0/8,::1/128")
    _, args = parse(["worker", "--store", "redis://h/0"])
    assert (args.model_dir, args.device) == (Path("/models/sdxl"), "cuda:1")
    assert args.allow_image_network == ["127.0.0.0/8", "::1/128"]
    _, args = parse(["serve", "--device", "cpu"])
    assert args.device == "cpu"  # the command line wins


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["serve", "--workers", "2"], "several workers need a shared store"),
        (["serve", "--store", "mysql://db/"], "--store: must be memory or a Redis URL"),
        (["serve", "--backend", "workers"], "--backend workers needs --store redis://"),
        (["serve", "--max-in-flight", "-1"], "--max-in-flight: must be a whole number, 0 (no cap)"),
        (["serve", "--port", "70000"], "--port: must be a port number (0 to 65535), got '70000'"),
        (
            ["serve", "--config", "/no/such/file.toml"],
            "--config: /no/such/file.toml does not exist",
        ),
        (["serve", "--log-level", "loud"], "--log-level: must be one of critical, error, warning"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert needle in capsys.readouterr().err


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: ipmock" in capsys.readouterr().err


def test_banner_lists_every_test_key() -> None:
    book = load_book(None)
    text = banner(Settings(), book, "http://127.0.0.1:8000")
    for name in book.scenarios:
        assert f"test_{name}" in text
    assert "POST http://127.0.0.1:8000/sdxl/text2image/v1" in text
    assert "dashboard     http://127.0.0.1:8000/__mock/ui\n" in text


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("default_scenario = 'nope'", "unknown scenario 'nope'"),
        ("[[rules]]\nscenario = 'success'\n", "'match' is a required property"),
        ("[[rules]]\nscenario = 'ghost'\n[rules.match]\nsamples = 4\n", "unknown scenario 'ghost'"),
        ("[[rules]]\nscenario = 'success'\n[rules.match]\nprompt = { matches = '(' }\n", "regex"),
        ("[[scenarios]]\nname = 'x'\noutcome = 'maybe'\n", "scenarios.0.outcome"),
        ("[chaos]\nweights = { success = -1 }\n", "chaos.weights.success"),
        ("colour = 'red'", "colour"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_config_errors_say_where_and_why(tmp_path: Path, toml: str, needle: str) -> None:
    path = tmp_path / "ipmock.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_book(path)


def test_config_adds_scenarios_and_weights(tmp_path: Path) -> None:
    path = tmp_path / "ipmock.toml"
    path.write_text(
        "default_scenario = 'slow'\n[[scenarios]]\nname = 'slow'\npending_polls = 5\n"
        "[chaos]\nweights = { slow = 1 }\n"
    )
    book = load_book(path, seed=1)
    assert book.get("slow").pending_polls == 5
    assert book.default == "slow"
    assert asyncio.run(book.choose(None, MemoryQueue(), {})).name == "slow"


def _actions(command: str) -> dict[str, argparse.Action]:
    parser, _ = parse([command, "--store", "redis://h/0"] if command == "worker" else [command])
    return {a.option_strings[-1]: a for a in parser._actions if a.option_strings}


def test_serves_flags_are_the_settings_table() -> None:
    """Every setting has one description (``settings.HELP``), and serve's flags are built
    from it: the flag, its help with the field's own default, its parser's choices."""
    defaults = {f.name: f.default for f in fields(Settings)}
    assert set(HELP) == set(defaults)
    actions = _actions("serve")
    flagged = {flag_name(name): name for name, about in HELP.items() if about.flag}
    assert set(flagged) <= set(actions)
    for flag, name in flagged.items():
        action, about = actions[flag], HELP[name]
        assert action.dest == name
        assert action.help is not None and "{default}" not in action.help
        if "{default}" in about.text:
            shown = f"{defaults[name]:g}" if isinstance(defaults[name], float) else defaults[name]
            assert f"default {shown}" in action.help, flag
        assert action.choices == about.choices
    model = {flag_name(name) for name in MODEL_OPTIONS}
    assert set(actions) - {"--help"} == set(flagged) | model  # nothing else, nothing less
    assert "--max-jobs" not in actions and "--journal-size" not in actions  # variables only


def test_a_flag_of_a_setting_that_is_on_by_default_turns_it_off() -> None:
    args = build_parser().parse_args(["serve", "--refuse-model-uuid", "--chaos"])
    assert (args.accept_model_uuid, args.chaos, args.strict) == (False, True, None)
    assert settings_from(args, {}).accept_model_uuid is False


def test_the_model_options_are_the_same_for_serve_and_worker() -> None:
    for command in ("serve", "worker"):
        actions = _actions(command)
        assert [actions[flag_name(name)].dest for name in MODEL_OPTIONS] == list(MODEL_OPTIONS)
    assert _actions("worker")["--log-level"].default == Settings.log_level


def test_serving_freezes_startup_objects_and_sets_the_collector_thresholds() -> None:
    before = gc.get_threshold()
    try:
        prepare_to_serve()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_each_worker_process_builds_its_app_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mock_server.cli import supervisor

    called: list[int] = []
    monkeypatch.setattr(supervisor, "prepare_to_serve", lambda: called.append(1))
    monkeypatch.setenv("IPMOCK_REFUSE_MODEL_UUID", "1")
    app = supervisor.app_from_environ()
    assert app.state.mock.settings.accept_model_uuid is False
    assert called == [1]
