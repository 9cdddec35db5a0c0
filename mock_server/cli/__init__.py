"""The ``ipmock`` command line."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import logging
import os
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from ipaddress import ip_network
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from jsonschema import Draft202012Validator

from mock_server.clock import Clock
from mock_server.config import ConfigError, load_book
from mock_server.contract import request_schema
from mock_server.exceptions import IpmockError
from mock_server.faults import quiet_drops
from mock_server.generators import GENERATE, Generator
from mock_server.scenarios import (
    BUILT_IN,
    FAULT_KINDS,
    SLOW_FAULT_KINDS,
    TEST_KEY_PREFIX,
    ScenarioBook,
)
from mock_server.settings import (
    BACKENDS,
    LOG_LEVELS,
    PARSERS,
    REDIS_FORMS,
    Settings,
    api_key,
    checked,
    choice,
    environ_values,
    is_http_url,
    is_redis_url,
    seconds,
    whole,
)
from mock_server.words import describe

if TYPE_CHECKING:
    from reference_impl.server import DiffusersGenerator

DESCRIPTION = """\
ipmock: a local stand-in for the ImagePipeline SDXL text-to-image API (with IP-Adapters).

Point any client at `ipmock serve` and get every documented flow (SUCCESS, PENDING,
FAILURE) on demand, without credits. Choose a flow per request with a test API key
(test_<scenario>, e.g. test_success), the X-Ipmock-Scenario header, the admin queue,
or rules in a config file.
"""


DEFAULT_WEIGHTS_CACHE = Path("~/.cache/ipmock/weights")
GPU_EXTRA = ("torch", "diffusers", "transformers", "safetensors")
MODEL_OPTIONS = (
    "model_dir", "ip_adapter_dir", "random_weights", "weights_cache", "device",
    "allow_image_network",
)  # fmt: skip
WORKER_STORE = f"the redis:// URL that `ipmock serve --store` uses ({REDIS_FORMS})"


class UsageError(IpmockError):
    """A serve option that cannot work; printed, exit status 2."""


def _argtype(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser of ``mock_server.settings`` (the one check of a value,
    for its flag and its IPMOCK_ variable): argparse prints its message after the flag."""

    def type_(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return type_


def _setting(name: str) -> Callable[[str], Any]:
    return _argtype(PARSERS[name])


def _version() -> str:
    try:
        return version("ipmock")
    except PackageNotFoundError:
        return "(not installed)"


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
    serve.add_argument(
        "--host", help="address to bind (default 127.0.0.1; 0.0.0.0 for every interface)"
    )
    serve.add_argument(
        "--port", type=_setting("port"), help="port to bind, 0 for any free one (default 8000)"
    )
    serve.add_argument(
        "--config",
        type=_setting("config"),
        metavar="FILE",
        help="TOML file with extra scenarios, rules and a chaos mix (README: Choosing a scenario)",
    )
    serve.add_argument(
        "--seed",
        type=_setting("seed"),
        metavar="N",
        help="seed for the chaos mix and for random image seeds (default: random)",
    )
    serve.add_argument(
        "--chaos",
        action="store_true",
        default=None,
        help="pick scenarios at random (seeded) when nothing else picks one, and fault "
        "about 1 status request in 10 (429, 503, 500, delays, broken connections)",
    )
    serve.add_argument(
        "--public-url",
        type=_setting("public_url"),
        metavar="URL",
        help="base of download URLs, an http(s) URL (default: the scheme and Host the client used)",
    )
    serve.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="refuse unknown fields, over-long prompts and model UUIDs "
        "instead of accepting them with a warning",
    )
    serve.add_argument(
        "--refuse-model-uuid",
        action="store_true",
        default=None,
        help='accept only model_id "sdxl", not a model UUID',
    )
    serve.add_argument(
        "--api-key",
        action="append",
        type=_argtype(api_key),
        metavar="KEY",
        dest="api_keys",
        help="accept only this API key (repeat for more; IPMOCK_API_KEY=KEY1,KEY2; test_ keys "
        "always work); default: any key",
    )
    serve.add_argument(
        "--admin-token",
        type=_setting("admin_token"),
        metavar="TOKEN",
        help="require this token for the admin API (then open off loopback too)",
    )
    serve.add_argument(
        "--cors-origins",
        type=_setting("cors_origins"),
        metavar="ORIGINS",
        help="browser pages that may call the mock: * (default: any page; the admin API "
        "only for origins named), none (no CORS headers), or origins joined by commas "
        "(https://app.example.com,http://localhost:3000)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=_setting("max_body_bytes"),
        metavar="N",
        help=f"largest request body in bytes; larger ones get 413 "
        f"(default {Settings.max_body_bytes}, 8 MiB)",
    )
    serve.add_argument(
        "--max-in-flight",
        type=_setting("max_in_flight"),
        metavar="N",
        help="PENDING jobs one API key may have at once; more submits get 429 "
        "(default 1000; 0: no cap)",
    )
    serve.add_argument(
        "--store",
        type=_setting("store"),
        metavar="URL",
        help="where jobs, the admin queue, the clock and the journal live: memory (default, "
        "this process) or redis://HOST:PORT/DB, shared by every worker and host using it",
    )
    serve.add_argument(
        "--workers",
        type=_setting("workers"),
        metavar="N",
        help="server processes on the one port (default 1; more need --store redis://...)",
    )
    serve.add_argument(
        "--redis-connections",
        type=_setting("redis_connections"),
        metavar="N",
        help="connections each server process holds to the --store Redis at most; a "
        f"request waits for a free one (default {Settings.redis_connections})",
    )
    serve.add_argument(
        "--job-ttl",
        type=_setting("job_ttl"),
        metavar="SECONDS",
        help="seconds a job can be polled (default 3600)",
    )
    serve.add_argument(
        "--url-ttl",
        type=_setting("url_ttl"),
        metavar="SECONDS",
        help="seconds a download URL works after SUCCESS (default 3600)",
    )
    serve.add_argument(
        "--log-level", type=_setting("log_level"), choices=LOG_LEVELS, help="(default info)"
    )
    real = serve.add_argument_group(
        "real images (--backend diffusers; needs the gpu extra: pip install '.[gpu]')"
    )
    real.add_argument(
        "--backend",
        type=_setting("backend"),
        choices=BACKENDS,
        help="mock: labelled placeholder images (default); diffusers: generate with "
        "SDXL + IP-Adapters in this process, each job PENDING while the model works; "
        "workers: put each job on the --store Redis for `ipmock worker` processes",
    )
    _add_model_options(real)
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
        type=_argtype(checked(str, is_redis_url, WORKER_STORE)),
        metavar="URL",
        help="redis://HOST:PORT/DB, the --store of `ipmock serve` (required)",
    )
    worker.add_argument(
        "--lease",
        type=_argtype(seconds()),
        default=30.0,
        metavar="SECONDS",
        help="how long a silent worker keeps its job before another takes it over (default 30)",
    )
    worker.add_argument("--name", help="this worker's name in Redis (default HOST-PID)")
    worker.add_argument(
        "--placeholder-seconds",
        type=_argtype(seconds(zero=True)),
        default=0.0,
        metavar="SECONDS",
        help="with placeholder images: pretend each job takes this long (default 0)",
    )
    worker.add_argument(
        "--log-level",
        type=_setting("log_level"),
        choices=LOG_LEVELS,
        default="info",
        help="(default info)",
    )
    _add_model_options(worker.add_argument_group("real images (needs the gpu extra)"))
    verify = commands.add_parser(
        "verify",
        help="check a server (this mock, the reference, the real API) against the contract",
        description="Walk one generation (submit, poll, download) checking every answer "
        "against the response schemas, auth and isolation, then run schemathesis over the "
        "contract with all its checks. Exit 0 when the server keeps the contract. Against "
        "the real API each run spends credits: use --no-fuzz or a small --max-examples.",
    )
    verify.add_argument(
        "--base-url",
        required=True,
        type=_argtype(checked(str, is_http_url, "an http:// or https:// URL with a host")),
        metavar="URL",
        help="the server, e.g. http://127.0.0.1:8000 (exit status 2 when nothing answers there)",
    )
    verify.add_argument(
        "--api-key",
        default="ipmock-verify",
        metavar="KEY",
        help="the API key to send (default ipmock-verify, which only a mock started without "
        "--api-key accepts: give the key the server accepts; a refused key is said first and "
        "exits 2)",
    )
    verify.add_argument("--junit-xml", type=Path, metavar="PATH", help="write JUnit XML here")
    verify.add_argument(
        "--record",
        type=Path,
        metavar="DIR",
        help="keep the exchanges (keys redacted), the departures from the "
        "schema, and an ipmock.toml that replays the flow on the mock",
    )
    verify.add_argument(
        "--max-examples",
        type=_argtype(whole(1)),
        default=30,
        metavar="N",
        help="schemathesis examples per operation and phase (default 30)",
    )
    verify.add_argument(
        "--seed", type=_setting("seed"), metavar="N", help="schemathesis seed, to replay a run"
    )
    verify.add_argument("--no-fuzz", action="store_true", help="the flow checks only")
    verify.add_argument(
        "--poll-interval",
        type=_argtype(seconds()),
        default=2.0,
        metavar="SECONDS",
        help="seconds between status polls while the job is PENDING (default 2)",
    )
    conform = commands.add_parser(
        "conformance",
        help="serve the reference (real images) and check its images and the contract",
        description="Start ipmock serve --backend diffusers (random weights, or your folders), "
        "check the images through the API (count, size, determinism, the adapter's effect, "
        "scale 0, growth with the scale), then run ipmock verify against it. Prints a report; "
        "exit 0 when all pass. On a GPU at full size: docs/gpu.md.",
    )
    conform.add_argument(
        "--size",
        choices=["tiny", "full"],
        help="random weights: full has SDXL's real sizes, for a GPU (14 GB of weights); tiny "
        "takes seconds on any machine (default: full where CUDA is available, else tiny)",
    )
    conform.add_argument("--model-dir", type=Path, metavar="DIR", help="your SDXL folder instead")
    conform.add_argument(
        "--ip-adapter-dir", type=Path, metavar="DIR", help="your IP-Adapter folder instead"
    )
    conform.add_argument(
        "--weights-cache",
        type=Path,
        metavar="DIR",
        default=DEFAULT_WEIGHTS_CACHE,
        help="where --size builds (default ~/.cache/ipmock/weights)",
    )
    conform.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    request = request_schema()["properties"]
    for flag, field in (
        ("--width", "width"),
        ("--height", "height"),
        ("--steps", "num_inference_steps"),
    ):
        rule = request[field]  # the API's own rule for it
        conform.add_argument(
            flag,
            type=_argtype(checked(int, Draft202012Validator(rule).is_valid, describe(rule))),
            default=rule["default"],
            metavar="N",
            help=f"the requests' {field}: {describe(rule)} (default {rule['default']})",
        )
    conform.add_argument("--junit-xml", type=Path, metavar="PATH", help="write JUnit XML here")
    conform.add_argument(
        "--max-examples",
        type=_argtype(whole(1)),
        default=30,
        metavar="N",
        help="schemathesis examples per operation and phase (default 30)",
    )
    conform.add_argument("--no-fuzz", action="store_true", help="no schemathesis")
    return parser


def _add_model_options(group: argparse._ArgumentGroup) -> None:
    """The model options; ``parse`` reads each from its IPMOCK_* variable when not given
    (IPMOCK_MODEL_DIR, ...)."""
    group.add_argument(
        "--model-dir", type=Path, metavar="DIR", help="SDXL in diffusers' layout (local folder)"
    )
    group.add_argument(
        "--ip-adapter-dir",
        type=Path,
        metavar="DIR",
        help="IP-Adapters in h94/IP-Adapter's layout (local folder)",
    )
    group.add_argument(
        "--random-weights",
        type=_argtype(choice("tiny", "full")),
        choices=["tiny", "full"],
        help="instead of --model-dir: build SDXL + IP-Adapters with random weights "
        "(tiny: seconds, for CPU tests; full: real sizes, for GPU timing)",
    )
    group.add_argument(
        "--weights-cache",
        type=Path,
        metavar="DIR",
        help="where --random-weights builds (reused when built before; "
        "default ~/.cache/ipmock/weights)",
    )
    group.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    group.add_argument(
        "--allow-image-network",
        action="append",
        metavar="CIDR",
        help="let ip_adapter_image URLs reach this network, otherwise refused as "
        "private (repeatable, or IPMOCK_ALLOW_IMAGE_NETWORK=CIDR,CIDR; e.g. 127.0.0.0/8 in "
        "tests)",
    )


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
        names = MODEL_OPTIONS + (("store",) if args.command == "worker" else ())
        _options_from_environ(command, args, names)
        args.weights_cache = args.weights_cache or DEFAULT_WEIGHTS_CACHE
        args.allow_image_network = args.allow_image_network or []
    if args.command == "worker" and args.store is None:
        command.error("--store is required (or IPMOCK_STORE): the Redis URL of `ipmock serve`")
    return command, args


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
    flags = {
        "host": args.host,
        "port": args.port,
        "config": args.config,
        "seed": args.seed,
        "chaos": args.chaos,
        "public_url": args.public_url,
        "strict": args.strict,
        "admin_token": args.admin_token,
        "api_keys": tuple(args.api_keys) if args.api_keys else None,
        "max_body_bytes": args.max_body_bytes,
        "max_in_flight": args.max_in_flight,
        "store": args.store,
        "workers": args.workers,
        "redis_connections": args.redis_connections,
        "backend": args.backend,
        "job_ttl": args.job_ttl,
        "url_ttl": args.url_ttl,
        "log_level": args.log_level,
        "accept_model_uuid": False if args.refuse_model_uuid else None,
        "cors_origins": args.cors_origins,
    }
    values = environ_values(environ)
    values.update({k: v for k, v in flags.items() if v is not None})
    return Settings(**values)  # type: ignore[arg-type]  # each value parsed to its field's type


_STEP_NAMES = {"submit": "submits", "poll": "status requests", "download": "downloads"}


def _randomness(settings: Settings, book: ScenarioBook, *, seed_drawn: bool) -> str:
    """The banner's lines on the config file, the seed, and the chaos and fault mixes:
    what a run under chaos needs to be told, to be run again."""
    if settings.config is None:
        config = "none (built-in scenarios only)"
    else:
        own = [n for n in book.scenarios if n not in {s.name for s in BUILT_IN} | {GENERATE.name}]
        config = (
            f"{settings.config} ({len(own)} scenario{'s' * (len(own) != 1)} of its own, "
            f"{len(book.rules)} rule{'s' * (len(book.rules) != 1)})"
        )
    seed = f"{settings.seed}"
    if seed_drawn:
        seed += f" (drawn at random; --seed {settings.seed} replays this run's draws)"
    chaos = "off"
    if book.chaos_weights:
        weights = ", ".join(f"{n} {w:g}" for n, w in book.chaos_weights.items())
        chaos = f"on, scenarios by weight: {weights}"
    mix = book.fault_mix
    faults = "off"
    if mix is not None:
        steps = " and ".join(_STEP_NAMES[step] for step in mix.on)
        kinds = "every kind" if set(mix.kinds) == set(FAULT_KINDS) else ", ".join(mix.kinds)
        details = [kinds]
        if SLOW_FAULT_KINDS & set(mix.kinds):
            details.append(f"slow ones {mix.seconds:g} s + up to {mix.jitter:g} s")
        if {"busy", "rate-limited"} & set(mix.kinds):
            details.append(f"Retry-After {mix.retry_after}")
        faults = f"{mix.rate:.0%} of {steps} ({'; '.join(details)})"
    return f"  config: {config}\n  seed: {seed}\n  chaos: {chaos}\n  faults: {faults}\n"


def banner(
    settings: Settings,
    book: ScenarioBook,
    url: str,
    backend: str = "mock",
    *,
    seed_drawn: bool = False,
) -> str:
    width = max(len(n) for n in book.scenarios) + len(TEST_KEY_PREFIX)
    keys = "\n".join(
        f"  {TEST_KEY_PREFIX + name:<{width}}  {s.description}"
        for name, s in book.scenarios.items()
    )
    mode = "strict" if settings.strict else "lenient (unknown fields are warnings)"
    store = "memory (this process)" if settings.store == "memory" else _redacted(settings.store)
    workers = f"{settings.workers} worker processes" if settings.workers > 1 else "1 process"
    keys_accepted = (
        f"only the {len(settings.api_keys)} given key(s) and test_ keys"
        if settings.api_keys
        else "any key"
    )
    return (
        f"ipmock serving the ImagePipeline SDXL text-to-image API at {url}\n"
        f"  submit   POST {url}/sdxl/text2image/v1   (header API-Key: {keys_accepted})\n"
        f"  poll     GET  {url}/sdxl/text2image/v1/status/{{id}}\n"
        f"  contract GET  {url}/openapi.json\n"
        f"  admin         {url}/__mock/   (reset, queue, clock, journal, jobs)\n"
        f"  backend: {backend}\n"
        f"  store: {store}; {workers}\n"
        f"  validation: {mode}; default scenario: {book.default}\n"
        f"{_randomness(settings, book, seed_drawn=seed_drawn)}"
        f"Test API keys pick a scenario with no code change:\n{keys}\n"
    )


def _names_a_model(
    args: argparse.Namespace, *, required: bool, user: str, allowed: bool = True
) -> bool:
    """Whether the model options name a model; UsageError when they cannot work."""
    given = [
        args.said[option]
        for option in ("model_dir", "ip_adapter_dir", "random_weights")
        if getattr(args, option) is not None
    ]
    if given and not allowed:
        raise UsageError(
            f"{given[0]} needs --backend diffusers "
            "(with --backend workers the model options go to `ipmock worker`)"
        )
    if not given:
        if required:
            raise UsageError(
                f"{user} needs a model: --model-dir DIR (SDXL, diffusers layout) and "
                "--ip-adapter-dir DIR (h94/IP-Adapter layout), or --random-weights tiny|full"
            )
        return False
    missing = [name for name in GPU_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(
            f"{given[0]} needs {', '.join(missing)}: install the gpu extra "
            f'(pip install ".[gpu]" or pip install "ipmock[gpu]")'
        )
    if args.random_weights is not None:
        if args.model_dir is not None or args.ip_adapter_dir is not None:
            raise UsageError("give either --random-weights or --model-dir/--ip-adapter-dir")
        return True
    if args.model_dir is None or args.ip_adapter_dir is None:
        raise UsageError(f"{user} needs both --model-dir and --ip-adapter-dir")
    _refuse_missing_folders(args)
    return True


def _refuse_missing_folders(args: argparse.Namespace) -> None:
    """UsageError when --model-dir or --ip-adapter-dir, given, is not a folder (named as
    the flag or variable that gave it)."""
    said = getattr(args, "said", {})  # serve and worker read the variables too
    for option in ("model_dir", "ip_adapter_dir"):
        path = getattr(args, option)
        if path is not None and not path.is_dir():
            flag = said.get(option, "--" + option.replace("_", "-"))
            raise UsageError(f"{flag} {path} is not a folder")


def _allowed_networks(args: argparse.Namespace) -> None:
    """Check and normalise --allow-image-network (UsageError naming the bad one)."""
    try:
        args.allow_image_network = [
            str(ip_network(n, strict=False)) for n in args.allow_image_network
        ]
    except ValueError as exc:
        raise UsageError(f"{args.said['allow_image_network']}: {exc}") from None


def _diffusers_generator(args: argparse.Namespace, clock: Clock) -> tuple[DiffusersGenerator, str]:
    """The reference generator for the model options, its model loaded."""
    from reference_impl.server import load_generator

    return load_generator(
        model_dir=args.model_dir,
        ip_adapter_dir=args.ip_adapter_dir,
        random_weights=args.random_weights,
        weights_cache=args.weights_cache,
        device=args.device,
        allowed_networks=args.allow_image_network,
        clock=clock,
    )


def serve(settings: Settings, args: argparse.Namespace | None = None) -> int:
    import uvicorn

    from mock_server.app import create_app, prepare_to_serve

    args = args or parse(["serve"])[1]
    seed_drawn = settings.seed is None  # drawn now, so that the banner can say it
    if seed_drawn:
        settings = dataclasses.replace(settings, seed=secrets.randbelow(2**32))
    diffusers = settings.backend == "diffusers"
    try:
        _names_a_model(args, required=diffusers, allowed=diffusers, user="--backend diffusers")
        _allowed_networks(args)
        book = load_book(
            settings.config,
            seed=settings.seed,
            chaos=settings.chaos,
            generating=settings.backend != "mock",
        )
    except (ConfigError, UsageError) as exc:
        print(f"ipmock: {exc}", file=sys.stderr)
        return 2
    clock = Clock()
    generator: Generator | None = None
    backend = {
        "mock": "mock (labelled placeholder images)",
        "workers": "workers (jobs wait in the store for `ipmock worker` processes)",
    }.get(settings.backend, settings.backend)
    if diffusers:
        try:
            generator, backend = _diffusers_generator(args, clock)
        except Exception as exc:
            print(f"ipmock: cannot load the model: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
    if settings.store != "memory":
        try:
            _check_redis(settings.store, "--store" if args.store else "IPMOCK_STORE")
        except UsageError as exc:
            print(f"ipmock: {exc}", file=sys.stderr)
            return 2
    logging.getLogger("uvicorn.error").addFilter(quiet_drops)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.log_level == "debug",
        "server_header": False,
        "http": "mock_server.connection:MockHttpProtocol",  # socket faults need it
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
    }
    try:
        sock = _listen(settings.host, settings.port)
    except UsageError as exc:
        print(f"ipmock: {exc}", file=sys.stderr)
        return 2
    if settings.workers > 1:
        return _serve_workers(settings, book, backend, options, sock, seed_drawn=seed_drawn)
    app = create_app(settings, book=book, clock=clock, generator=generator)
    server = uvicorn.Server(uvicorn.Config(app, **options))

    async def announce() -> None:
        sockets = [s for server_ in server.servers for s in server_.sockets]
        print(banner(settings, book, _url(sockets[0]), backend, seed_drawn=seed_drawn), flush=True)

    original_startup = server.startup

    async def startup(sockets: object = None) -> None:
        await original_startup(sockets=sockets)  # type: ignore[arg-type]
        if server.started:
            await announce()

    server.startup = startup  # type: ignore[method-assign]
    prepare_to_serve()
    server.run(sockets=[sock])
    return 0 if server.started else 1


def _listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything starts; UsageError saying why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError:
            sock.close()
            raise
    except OSError as exc:  # socket.gaierror too: a name that does not resolve
        raise UsageError(
            f"cannot listen on --host {host} --port {port}: {exc.strerror or exc}"
        ) from None
    sock.set_inheritable(True)  # --workers processes serve on it
    return sock


def work(args: argparse.Namespace) -> int:
    """``ipmock worker``: generate the store's jobs until SIGINT/SIGTERM (the job in hand
    is finished first)."""
    import asyncio
    import signal

    from mock_server.generators import PlaceholderGenerator
    from mock_server.images import RenderedImage
    from mock_server.jobs import Job
    from mock_server.work_queue import run_worker

    logging.basicConfig(
        level=args.log_level.upper(), format="ipmock worker: %(message)s", stream=sys.stdout
    )
    try:
        _check_redis(args.store, args.said["store"])
        model = _names_a_model(args, required=False, user="ipmock worker")
        _allowed_networks(args)
    except UsageError as exc:
        print(f"ipmock: {exc}", file=sys.stderr)
        return 2
    describe: Callable[[BaseException], str] = lambda exc: f"generation failed: {exc}"  # noqa: E731
    if model:
        from reference_impl.server import failure_message

        try:
            generator, what = _diffusers_generator(args, Clock())
        except Exception as exc:
            print(f"ipmock: cannot load the model: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
        render: Callable[[Job], Awaitable[list[RenderedImage]]] = generator.render
        describe = failure_message
    else:
        placeholders = PlaceholderGenerator()
        what = "placeholder images"

        async def render(job: Job) -> list[RenderedImage]:
            await asyncio.sleep(args.placeholder_seconds)
            return [await placeholders.image(job, i) for i in range(job.samples)]

    print(f"ipmock worker: {what}, jobs from {_redacted(args.store)}", flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        await run_worker(
            args.store, render, describe_failure=describe, consumer=args.name,
            lease=args.lease, stop=stop,
        )  # fmt: skip

    asyncio.run(main())
    return 0


def _serve_workers(
    settings: Settings,
    book: ScenarioBook,
    backend: str,
    options: dict[str, Any],
    sock: socket.socket,
    *,
    seed_drawn: bool = False,
) -> int:
    """Several uvicorn processes on one socket, each building its app from IPMOCK_*;
    the banner once every worker answers."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    class Workers(Multiprocess):
        def init_processes(self) -> None:
            super().init_processes()
            timeout = self.config.timeout_worker_healthcheck * 6
            if all(p.wait_until_ready(timeout, self.should_exit) for p in self.processes):
                print(
                    banner(settings, book, _url(sock), backend, seed_drawn=seed_drawn),
                    flush=True,
                )
            else:
                logging.getLogger("uvicorn.error").error("a worker did not start; stopping")
                self.should_exit.set()

    os.environ.update(settings.to_environ())
    config = uvicorn.Config(
        "mock_server.app:app_from_environ", factory=True, workers=settings.workers, **options
    )
    Workers(config, sockets=[sock]).run()
    return 0


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _redacted(url: str) -> str:
    """A store URL fit for the banner: any password replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _check_redis(url: str, said: str = "--store") -> None:
    """Fail at start, clearly, when the Redis store cannot be reached (``said``: the flag or
    variable that gave it)."""
    import redis

    try:
        with redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3) as client:
            client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise UsageError(f"{said} {_redacted(url)}: cannot use this Redis: {exc}") from None


def _output_file(flag: str, path: Path | None) -> None:
    """Refuse, before any check runs, a report file that cannot be written."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give a file, e.g. {path / 'report.xml'}")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.open("a").close()
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write this file ({exc.strerror})") from None
    if not existed:
        path.unlink()


def _output_folder(flag: str, path: Path | None) -> None:
    """Make, before any check runs, the folder a record goes to."""
    if path is None:
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"{flag} {path} is a file; give a folder") from None
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot make this folder ({exc.strerror})") from None


def _cuda_available() -> bool:
    """Whether torch (the gpu extra) is installed and sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def main(argv: Sequence[str] | None = None) -> int:
    command, args = parse(argv)
    if args.command is None:
        command.print_help(sys.stderr)
        return 2
    if args.command == "serve":
        try:
            settings = settings_from(args)
        except ValueError as exc:
            command.error(str(exc))
        return serve(settings, args)
    if args.command == "worker":
        return work(args)
    try:  # verify and conformance: refuse what would break them once they have run
        _output_file("--junit-xml", args.junit_xml)
        if args.command == "verify":
            _output_folder("--record", args.record)
        elif args.model_dir is not None and args.ip_adapter_dir is not None:
            _refuse_missing_folders(args)  # a lone one: conformance says to give both
    except UsageError as exc:
        print(f"ipmock {args.command}: {exc}", file=sys.stderr)
        return 2
    try:  # the toolkit's dependencies come with ipmock; a broken install is said in one line
        if args.command == "verify":
            from contract_tests.verify import verify
        else:
            from contract_tests.conformance import Options, conformance
    except ModuleNotFoundError as exc:
        print(
            f"ipmock {args.command}: the Python package {exc.name!r} is missing from "
            f"{sys.executable}: reinstall ipmock with its dependencies (`pip install ipmock`)",
            file=sys.stderr,
        )
        return 2
    if args.command == "verify":
        return verify(
            args.base_url,
            args.api_key,
            junit_xml=args.junit_xml,
            record=args.record,
            max_examples=args.max_examples,
            seed=args.seed,
            fuzz=not args.no_fuzz,
            poll_interval=args.poll_interval,
        )
    missing = [name for name in GPU_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"ipmock conformance: the reference needs {', '.join(missing)}: install the gpu "
            f'extra (pip install ".[gpu]" or pip install "ipmock[gpu]")',
            file=sys.stderr,
        )
        return 2
    if args.size is None:
        args.size = "full" if _cuda_available() else "tiny"
        if args.model_dir is None:  # the size is that of the random weights
            cuda = "CUDA is available here" if args.size == "full" else "no CUDA here"
            print(f"ipmock conformance: --size {args.size} ({cuda})", flush=True)
    return conformance(
        Options(
            size=args.size,
            model_dir=args.model_dir,
            ip_adapter_dir=args.ip_adapter_dir,
            weights_cache=args.weights_cache,
            device=args.device,
            width=args.width,
            height=args.height,
            steps=args.steps,
            junit_xml=args.junit_xml,
            max_examples=args.max_examples,
            fuzz=not args.no_fuzz,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
