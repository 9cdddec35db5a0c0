"""A client's id: stable, short, distinct per key, and never the key."""

from __future__ import annotations

import pytest

from mock_server.report import client_id


def test_a_long_key_shows_a_few_characters_and_a_hash() -> None:
    key = "sk-test-0123456789ab"
    shown = client_id(key)
    assert shown is not None
    assert shown.startswith("sk-t…ab·") and len(shown) == len("sk-t…ab·") + 6
    assert key not in shown and client_id(key) == shown


@pytest.mark.parametrize("key", ["z", "xyz", "short-key01"])
def test_a_short_key_shows_none_of_its_characters(key: str) -> None:
    shown = client_id(key)
    assert shown is not None and shown.startswith("…·")
    assert key not in shown


def test_keys_that_share_their_ends_still_differ() -> None:
    assert client_id("sk-test-AAAAAAAA-99") != client_id("sk-test-BBBBBBBB-99")


def test_no_key_is_no_client() -> None:
    assert client_id(None) is None and client_id("") is None


def test_characters_a_terminal_would_act_on_are_not_shown() -> None:
    shown = client_id("\x1b[31mred-key-with-escape\x07")
    assert shown is not None and "\x1b" not in shown and "\x07" not in shown
