"""Settings built in Python take the values a user writes, each checked as its flag is."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest

from mock_server import Settings
from mock_server.settings import BACKENDS, HELP, LOG_LEVELS, PARSERS, Secret, cors_origins


def test_plain_values_become_the_fields_types(tmp_path: Path) -> None:
    config = tmp_path / "ipmock.toml"
    config.touch()
    settings = Settings(
        api_keys=["sk-a", Secret("sk-b")],
        admin_token="tok",
        config=str(config),
        job_ttl=5,
        port="9000",
    )  # type: ignore[arg-type]
    assert settings.api_keys == (Secret("sk-a"), Secret("sk-b"))
    assert settings.admin_token == Secret("tok")
    assert settings.config == config and isinstance(settings.config, Path)
    assert (settings.job_ttl, settings.port) == (5.0, 9000)
    assert Settings(api_keys="sk-only").api_keys == (Secret("sk-only"),)  # type: ignore[arg-type]
    assert Settings(api_keys=("k",)).api_keys == (Secret("k"),)  # type: ignore[arg-type]
    assert Settings(admin_token=Secret("t")).admin_token == Secret("t")
    # Travels to worker processes as the CLI's settings do.
    assert Settings.from_environ(settings.to_environ()) == settings


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"job_ttl": -5}, "job_ttl must be a number of seconds, more than 0, got '-5'"),
        ({"url_ttl": float("inf")}, "url_ttl must be a number of seconds, more than 0"),
        ({"port": 70000}, "port must be a port number (0 to 65535), got '70000'"),
        ({"port": True}, "port must be a port number (0 to 65535), got 'True'"),
        ({"workers": 2.5}, "workers must be a whole number of at least 1, got '2.5'"),
        ({"max_in_flight": -1}, "max_in_flight must be a whole number, 0 (no cap) or more"),
        ({"strict": "yes"}, "strict must be True or False, got 'yes'"),
        ({"chaos": 1}, "chaos must be True or False, got 1"),
        ({"api_keys": 5}, "api_keys must be a key or a list of keys, got int"),
        ({"api_keys": [""]}, "api_keys must be a key, not empty and without commas"),
        ({"api_keys": ["a,b"]}, "api_keys must be a key, not empty and without commas"),
        ({"api_keys": [3]}, "api_keys must be a key (str or Secret), got int"),
        ({"admin_token": ""}, "admin_token must not be empty"),
        ({"admin_token": 7}, "admin_token must be a str or Secret, got int"),
        ({"config": "no/such.toml"}, "config no/such.toml does not exist"),
        ({"config": 3}, "config must be a file path (str or Path), got int"),
        ({"host": 5}, "host must be a string, got 5"),
        ({"log_level": "loud"}, "log_level must be one of critical, error, warning, info"),
        ({"log_level": 3}, "log_level must be a string, got 3"),
        ({"backend": "gpu"}, "backend must be one of mock, diffusers, workers, got 'gpu'"),
        ({"public_url": "cdn"}, "public_url must be an absolute http:// or https:// URL"),
        ({"store": "mysql://db"}, "store must be memory or a Redis URL"),
    ],
)
def test_a_bad_value_is_refused_naming_the_field(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as refused:
        Settings(**values)
    assert str(refused.value).startswith(message)


def test_a_refused_key_is_never_shown() -> None:
    with pytest.raises(ValueError) as refused:
        Settings(api_keys=["sk-secret,"])  # type: ignore[arg-type]
    assert "sk-secret" not in str(refused.value)


def test_every_setting_has_a_parser() -> None:
    assert set(PARSERS) == set(Settings.__dataclass_fields__)


def test_closed_settings_are_literals_that_their_flags_list() -> None:
    hints = get_type_hints(Settings)
    assert get_args(hints["backend"]) == BACKENDS == HELP["backend"].choices
    assert get_args(hints["log_level"]) == LOG_LEVELS == HELP["log_level"].choices
    assert hints["store"] is str  # memory or any Redis URL: not a closed set


def test_a_long_cors_origin_is_echoed_shortened_with_its_length() -> None:
    with pytest.raises(ValueError, match=r"'ftp://x+\.\.\. \(300 characters\)' is not an origin"):
        cors_origins("ftp://" + "x" * 294)
