"""Who a client is in the journal and the report: a stable id of its API key, never the key."""

from __future__ import annotations

import hashlib

_SHOWN_FROM = 12
"""Keys at least this long show their first 4 and last 2 characters; shorter ones none."""


def client_id(api_key: str | None) -> str | None:
    """A stable, non-reversible id of ``api_key`` (``test…ss·3fa1c2``): a few of its
    characters (none for a short key) and the first 6 hex digits of its SHA-256; None
    for no key. ``ipmock report --api-key KEY`` finds a client by computing this."""
    if not api_key:
        return None
    digest = hashlib.sha256(api_key.encode("utf-8", "surrogateescape")).hexdigest()[:6]
    if len(api_key) < _SHOWN_FROM:
        return f"…·{digest}"
    return f"{_printable(api_key[:4])}…{_printable(api_key[-2:])}·{digest}"


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() and c.isascii() else "?" for c in text)
