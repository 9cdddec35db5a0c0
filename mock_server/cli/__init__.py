"""The ``ipmock`` command line: ``main`` reads the arguments (``options``) and runs the
subcommand (``serve``, ``worker``, ``toolkit``'s verify and conformance)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from mock_server.cli.checks import UsageError

__all__ = ["UsageError", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """``ipmock ARGV``: the subcommand's exit status; SystemExit 2 (with the subcommand's
    usage) for a value argparse or the settings refuse."""
    from mock_server.cli import toolkit
    from mock_server.cli.options import parse, settings_from

    command, args = parse(argv)
    if args.command is None:
        command.print_help(sys.stderr)
        return 2
    if args.command == "serve":
        from mock_server.cli.serve import serve

        try:
            settings = settings_from(args)
        except ValueError as exc:
            command.error(str(exc))
        return serve(settings, args)
    if args.command == "worker":
        from mock_server.cli.worker import work

        return work(args)
    return toolkit.run(args)
