"""``ipmock report``: ask a running mock for its live report and print it as a table.

Exit status 0 when no property is broken, 1 when one is, 2 on a usage error or when no
ipmock server answers at the URL (one line, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from mock_server.cli.checks import UsageError, output_file
from mock_server.report.clients import client_id
from mock_server.report.render import junit_xml, plain, table
from mock_server.settings import checked, is_http_url, seconds

POLL_FLOOR = 1.0
DEADLINE = 300.0
_TIMEOUT = 30.0

_DESCRIPTION = """\
Judge what every client of a running ipmock serve did, from its journal: per API key
(shown as an id, never the key) and per job, each client property held, broken (with
the journal entries that broke it, by seq) or not judged (why: what the client returned
is not in the journal, or the occasion never arose). Works with the Redis store and
workers (their shared journal), and says when the journal's bound dropped entries.
Exit status: 0 nothing broken, 1 a property broken, 2 a usage error or no server.
"""


def add_command(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    argtype: Callable[[Callable[[str], Any]], Callable[[str], Any]],
) -> None:
    """The report subcommand (``argtype``: argparse's type of a value parser)."""
    report = commands.add_parser(
        "report",
        help="judge how the clients of a running mock behaved (the live report)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: ipmock report --base-url http://127.0.0.1:8000 --junit-xml report.xml",
    )
    report.add_argument(
        "--base-url",
        required=True,
        type=argtype(checked(str, is_http_url, "an http:// or https:// URL with a host")),
        metavar="URL",
        help="the running mock, e.g. http://127.0.0.1:8000",
    )
    report.add_argument(
        "--api-key",
        metavar="KEY",
        help="judge only the client that sent this key (it is turned into the client's id "
        "here, and never sent or printed)",
    )
    report.add_argument(
        "--poll-floor",
        type=argtype(seconds(zero=True)),
        default=POLL_FLOOR,
        metavar="S",
        help=f"seconds a client must leave between polls of a job (default {POLL_FLOOR:g})",
    )
    report.add_argument(
        "--deadline",
        type=argtype(seconds()),
        default=DEADLINE,
        metavar="S",
        help=f"seconds after which a client must stop asking about a job that never ends "
        f"(default {DEADLINE:g})",
    )
    report.add_argument(
        "--admin-token",
        metavar="TOKEN",
        help="the mock's --admin-token, when it was started with one (sent in "
        "X-Ipmock-Admin-Token)",
    )
    report.add_argument("--junit-xml", metavar="FILE", help="also write JUnit XML here")


def run(args: argparse.Namespace) -> int:
    """Run ``ipmock report``; its exit status."""
    junit = None if args.junit_xml is None else Path(args.junit_xml)
    try:
        output_file("--junit-xml", junit)
        report = fetch(
            args.base_url,
            poll_floor=args.poll_floor,
            deadline=args.deadline,
            api_key=args.api_key,
            admin_token=args.admin_token,
        )
    except UsageError as exc:
        print(f"ipmock report: {exc}", file=sys.stderr)
        return 2
    print(table(report, args.base_url))
    if args.api_key is not None and not report["clients"]:
        print(f"(no exchange of client {plain(client_id(args.api_key))} in the journal)")
    if junit is not None:
        junit_xml(report, junit)
    return 1 if report["broken"] else 0


def fetch(
    base_url: str,
    *,
    poll_floor: float = POLL_FLOOR,
    deadline: float = DEADLINE,
    api_key: str | None = None,
    admin_token: str | None = None,
) -> dict[str, Any]:
    """The live report's JSON from the mock at ``base_url``; UsageError saying what went
    wrong (nothing answers, not an ipmock, a refusal)."""
    params: dict[str, Any] = {"poll_floor": repr(poll_floor), "deadline": repr(deadline)}
    if api_key is not None:
        params["key"] = client_id(api_key)
    headers = {} if admin_token is None else {"X-Ipmock-Admin-Token": admin_token}
    url = base_url.rstrip("/") + "/__mock/report"
    try:
        response = httpx.get(url, params=params, headers=headers, timeout=_TIMEOUT)
    except httpx.HTTPError as exc:
        raise UsageError(f"no server answers at {base_url} ({type(exc).__name__}: {exc})") from None
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if response.status_code == 200 and isinstance(body, dict) and "clients" in body:
        return body
    said = body.get("error") if isinstance(body, dict) else None
    if said:
        raise UsageError(f"{base_url} refused the report: {response.status_code} {plain(said)}")
    raise UsageError(
        f"{base_url} answered {response.status_code} with no live report: is it ipmock serve "
        f"(this version or newer)? {plain(json.dumps(response.text[:120]))}"
    )
