"""The ``ipmock`` argument parser: serve's options built from the Settings table
(``settings.HELP``), worker's and the model options, each read from its IPMOCK_* variable
when not given."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mock_server.cli import fuzz, toolkit
from mock_server.cli.models import DEFAULT_WEIGHTS_CACHE
from mock_server.settings import (
    HELP,
    PARSERS,
    REDIS_FORMS,
    Settings,
    checked,
    choice,
    environ_name,
    environ_values,
    flag_name,
    is_redis_url,
    seconds,
)
from mock_server.words import closest

DESCRIPTION = """\
ipmock: a local stand-in for the ImagePipeline SDXL text-to-image API (with IP-Adapters).

Point any client at `ipmock serve` and get every documented flow (SUCCESS, PENDING,
FAILURE) on demand, without credits. Choose a flow per request with a test API key
(test_<scenario>, e.g. test_success), the X-Ipmock-Scenario header, the admin queue,
or rules in a config file.
"""

REAL_IMAGES = "real images (--backend diffusers; needs the gpu extra: pip install '.[gpu]')"
WORKER_STORE = f"the redis:// URL that `ipmock serve --store` uses ({REDIS_FORMS})"


def argtype(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser of ``mock_server.settings`` (the one check of a value,
    for its flag and its IPMOCK_ variable): argparse prints its message after the flag."""

    def type_(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return type_


def _version() -> str:
    try:
        return version("ipmock")
    except PackageNotFoundError:
        return "(not installed)"


def _shown(value: object) -> str:
    """A default as help says it: 3600, not 3600.0."""
    return f"{value:g}" if isinstance(value, float) else str(value)


DEFAULTS: dict[str, object] = {
    each.name: each.default for each in fields(Settings) if each.default is not MISSING
}


def add_setting(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    name: str,
    default: object = None,
) -> argparse.Action:
    """The flag of a setting, as ``settings.HELP`` describes it. ``default`` None: the flag
    left out is None, so that its IPMOCK_ variable, then the field's default, apply."""
    about = HELP[name]
    options: dict[str, Any] = {
        "help": about.text.format(default=_shown(DEFAULTS[name])),
        "dest": name,
        "default": default,
    }
    if isinstance(DEFAULTS[name], bool):  # the flag turns the default around
        options.update(action="store_const", const=not DEFAULTS[name])
    else:
        parse = about.each or PARSERS[name]
        options.update(type=argtype(parse), metavar=about.metavar, choices=about.choices)
        if about.each is not None:
            options["action"] = "append"
    return parser.add_argument(flag_name(name), **options)


MODEL_OPTIONS: dict[str, dict[str, Any]] = {
    "model_dir": {
        "type": Path,
        "metavar": "DIR",
        "help": "SDXL in diffusers' layout (local folder)",
    },
    "ip_adapter_dir": {
        "type": Path,
        "metavar": "DIR",
        "help": "IP-Adapters in h94/IP-Adapter's layout (local folder)",
    },
    "random_weights": {
        "type": argtype(choice("tiny", "full")),
        "choices": ["tiny", "full"],
        "help": "instead of --model-dir: build SDXL + IP-Adapters with random weights "
        "(tiny: seconds, for CPU tests; full: real sizes, for GPU timing)",
    },
    "weights_cache": {
        "type": Path,
        "metavar": "DIR",
        "help": "where --random-weights builds (reused when built before; "
        "default ~/.cache/ipmock/weights)",
    },
    "device": {"help": "torch device (default: cuda if available, else cpu)"},
    "allow_image_network": {
        "action": "append",
        "metavar": "CIDR",
        "help": "let ip_adapter_image URLs reach this network, otherwise refused as private "
        "(repeatable, or IPMOCK_ALLOW_IMAGE_NETWORK=CIDR,CIDR; e.g. 127.0.0.0/8 in tests)",
    },
}
"""The model options of serve and worker (not settings: the generator's), each read from
its IPMOCK_ variable when not given (IPMOCK_MODEL_DIR, ...)."""


def add_model_options(group: argparse._ArgumentGroup) -> None:
    """The model options, in ``group``."""
    for name, options in MODEL_OPTIONS.items():
        group.add_argument("--" + name.replace("_", "-"), **options)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ipmock",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve the mock API (default 127.0.0.1:8000)",
        description="Serve the mock API. Every option may also be set as IPMOCK_<OPTION> "
        "in the environment (IPMOCK_PORT=9000, IPMOCK_STRICT=1, IPMOCK_API_KEY=KEY1,KEY2); "
        "options on the command line win.",
    )
    real = serve.add_argument_group(REAL_IMAGES)  # listed after the serving options
    for name, about in HELP.items():
        if about.flag:
            add_setting(real if about.models else serve, name)
    add_model_options(real)
    worker = commands.add_parser(
        "worker",
        help="generate the jobs of `ipmock serve --backend workers` (one per GPU)",
        description="Take jobs from the Redis store that `ipmock serve --store URL --backend "
        "workers` fills, generate them, store the images beside the job. At least once: a "
        "worker that dies leaves its job to another after --lease seconds; a job is settled "
        "once. Without a model option the images are placeholders (tests, demos). --store "
        "and the model options may also be set as IPMOCK_<OPTION> in the environment "
        "(IPMOCK_STORE, IPMOCK_MODEL_DIR, ...), as for `ipmock serve`; the command line wins.",
    )
    worker.add_argument(
        "--store",
        type=argtype(checked(str, is_redis_url, WORKER_STORE)),
        metavar="URL",
        help="redis://HOST:PORT/DB, the --store of `ipmock serve` (required)",
    )
    worker.add_argument(
        "--lease",
        type=argtype(seconds()),
        default=30.0,
        metavar="SECONDS",
        help="how long a silent worker keeps its job before another takes it over (default 30)",
    )
    worker.add_argument("--name", help="this worker's name in Redis (default HOST-PID)")
    worker.add_argument(
        "--placeholder-seconds",
        type=argtype(seconds(zero=True)),
        default=0.0,
        metavar="SECONDS",
        help="with placeholder images: pretend each job takes this long (default 0)",
    )
    add_setting(worker, "log_level", default=DEFAULTS["log_level"])
    add_model_options(worker.add_argument_group("real images (needs the gpu extra)"))
    toolkit.add_commands(commands, argtype)
    return parser


def parse(argv: Sequence[str] | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The subcommand's parser (the top one when none is given) and its arguments, with
    the IPMOCK_ variables of serve's model options and of worker's options read; SystemExit 2
    with the subcommand's usage when one is wrong."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        return parser, args
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = subparsers.choices[args.command]
    if extra:
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command in ("serve", "worker"):
        warn_unknown_variables(os.environ)
        names = tuple(MODEL_OPTIONS) + (("store",) if args.command == "worker" else ())
        _options_from_environ(command, args, names)
        args.weights_cache = args.weights_cache or DEFAULT_WEIGHTS_CACHE
        args.allow_image_network = args.allow_image_network or []
    if args.command == "worker" and args.store is None:
        command.error("--store is required (or IPMOCK_STORE): the Redis URL of `ipmock serve`")
    return command, args


OTHER_VARIABLES = frozenset(
    {"IPMOCK_MODELS", "IPMOCK_SCHEMATHESIS_EXAMPLES", "IPMOCK_SCHEMATHESIS_RANDOM"}
)
"""ipmock's variables that are no option of serve or worker: the test suite's (a GPU
test's weights folder, the schemathesis run's size and randomness)."""


def known_variables() -> frozenset[str]:
    """Every IPMOCK_ variable ipmock reads: serve's settings, the model options, the
    worker's store, OTHER_VARIABLES, and those ``ipmock fuzz`` sets for its client."""
    options = {"IPMOCK_" + name.upper() for name in MODEL_OPTIONS}
    named = {environ_name(name) for name in PARSERS} | options | OTHER_VARIABLES
    return frozenset(named | set(fuzz.PROTOCOL_VARIABLES))


def warn_unknown_variables(environ: Mapping[str, str], stream: Any = None) -> list[str]:
    """One line on stderr for each IPMOCK_ variable ipmock does not read (a misspelling
    would otherwise be silently ignored), with the closest known name; the lines."""
    known = known_variables()
    lines = []
    for variable in sorted(environ):
        if variable.startswith("IPMOCK_") and variable not in known:
            # Matched after the prefix, which every name shares (else any name is close).
            close = closest(variable.removeprefix("IPMOCK_"), [k[7:] for k in known])
            hint = f" (did you mean IPMOCK_{close}?)" if close else ""
            lines.append(f"ipmock: warning: {variable} is not an ipmock variable, ignored{hint}")
    for line in lines:
        print(line, file=stream or sys.stderr)
    return lines


def _options_from_environ(
    command: argparse.ArgumentParser, args: argparse.Namespace, names: Sequence[str]
) -> None:
    """Each option of ``names`` not given on the command line from its IPMOCK_ variable
    (IPMOCK_MODEL_DIR for --model-dir; a repeatable one comma-separated), checked as the
    flag is; ``args.said[name]``: the flag or the variable, for messages."""
    args.said = {}
    for action in command._actions:
        if action.dest not in names:
            continue
        flag = action.option_strings[-1]
        variable = "IPMOCK_" + flag.lstrip("-").upper().replace("-", "_")
        args.said[action.dest] = flag
        raw = os.environ.get(variable, "")
        if getattr(args, action.dest) is not None or not raw:
            continue
        convert = action.type if callable(action.type) else str
        try:
            if isinstance(action, argparse._AppendAction):
                value: Any = [convert(v.strip()) for v in raw.split(",") if v.strip()]
            else:
                value = convert(raw)
        except (argparse.ArgumentTypeError, ValueError) as exc:
            command.error(f"{variable}: {exc}")
        setattr(args, action.dest, value)
        args.said[action.dest] = variable


def settings_from(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """serve's settings: its flags, else their IPMOCK_ variables (ValueError naming the
    variable, or the options that do not go together)."""
    values = environ_values(environ)
    for name, about in HELP.items():
        given = getattr(args, name) if about.flag else None
        if given is not None:
            values[name] = tuple(given) if about.each is not None else given
    return Settings(**values)  # type: ignore[arg-type]  # each value parsed to its field's type
