"""``ipmock serve``: the socket, the app on ipmock's own HTTP server
(``mock_server.http.server``), the process's garbage-collector tuning, and the banner."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import secrets
import socket
import sys

from mock_server.cli import models
from mock_server.cli.checks import UsageError, check_redis, redacted
from mock_server.clock import Clock
from mock_server.config import ConfigError, load_book
from mock_server.contract import STATUS_PATH, SUBMIT_PATH
from mock_server.faults import FAULT_KINDS, SLOW_FAULT_KINDS
from mock_server.generators import GENERATE, Generator
from mock_server.http import server as http_server
from mock_server.scenarios import BUILT_IN, TEST_KEY_PREFIX, ScenarioBook
from mock_server.settings import Settings
from mock_server.validation import InvalidRequest, validate

GC_THRESHOLDS = (50_000, 50, 100)
"""The collector's thresholds while serving. Python's (700, 10, 10) run a young
collection every few submits and a middle one every hundred or so, each a pause of
milliseconds with thousands of jobs stored; these run them a seventieth as often, so a
collection's pause is rare on the submit path's tail and memory is no less freed:
reference counting still frees all but cyclic garbage at once (the p99 and req/s
measured both ways: bench/README.md, "What changed")."""


def prepare_to_serve() -> None:
    """Build what the first request would (the compiled schema validator, the CLIP
    vocabulary), then freeze every object made so far out of the garbage collector's
    reach. They live as long as the server, so a full collection walks only what requests
    made (mostly the stored jobs), never the start-up objects. Collections then run at
    ``GC_THRESHOLDS``."""
    with contextlib.suppress(InvalidRequest):
        validate(b'{"model_id": "sdxl", "prompt": "warm up", "ip_adapter_scale": "0.5"}')
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve(settings: Settings, args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM: 0, 1 when the app did not start, 2 (said) when an
    option cannot work."""
    from mock_server.http.app import create_app

    seed_drawn = settings.seed is None  # drawn now, so that the banner can say it
    if seed_drawn:
        settings = dataclasses.replace(settings, seed=secrets.randbelow(2**32))
    diffusers = settings.backend == "diffusers"
    try:
        models.names_a_model(
            args, required=diffusers, allowed=diffusers, user="--backend diffusers"
        )
        models.allowed_networks(args)
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
            generator, backend = models.diffusers_generator(args, clock)
        except Exception as exc:
            print(f"ipmock: cannot load the model: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
    if settings.store != "memory":
        try:
            check_redis(settings.store, "--store" if args.store else "IPMOCK_STORE")
        except UsageError as exc:
            print(f"ipmock: {exc}", file=sys.stderr)
            return 2
    try:
        sock = _listen(settings.host, settings.port)
    except UsageError as exc:
        print(f"ipmock: {exc}", file=sys.stderr)
        return 2
    http_server.configure_logging(settings.log_level)
    if settings.workers > 1:
        from mock_server.cli.supervisor import serve_workers

        return serve_workers(settings, book, backend, sock, seed_drawn=seed_drawn)
    app = create_app(settings, book=book, clock=clock, generator=generator)

    def say_ready() -> None:  # the banner once it answers, where it listens
        print(banner(settings, book, url(sock), backend, seed_drawn=seed_drawn), flush=True)

    prepare_to_serve()
    try:
        return http_server.run(app, sock, on_ready=say_ready)
    finally:
        sock.close()


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


def url(sock: socket.socket) -> str:
    """The base URL of a listening socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


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
    """What ``ipmock serve`` prints once it answers: where, how, and every test key."""
    width = max(len(n) for n in book.scenarios) + len(TEST_KEY_PREFIX)
    keys = "\n".join(
        f"  {TEST_KEY_PREFIX + name:<{width}}  {s.description}"
        for name, s in book.scenarios.items()
    )
    mode = "strict" if settings.strict else "lenient (unknown fields are warnings)"
    store = "memory (this process)" if settings.store == "memory" else redacted(settings.store)
    workers = f"{settings.workers} worker processes" if settings.workers > 1 else "1 process"
    keys_accepted = (
        f"only the {len(settings.api_keys)} given key(s) and test_ keys"
        if settings.api_keys
        else "any key"
    )
    return (
        f"ipmock serving the ImagePipeline SDXL text-to-image API at {url}\n"
        f"  submit   POST {url}{SUBMIT_PATH}   (header API-Key: {keys_accepted})\n"
        f"  poll     GET  {url}{STATUS_PATH}\n"
        f"  contract GET  {url}/openapi.json\n"
        f"  admin         {url}/__mock/   (reset, queue, clock, journal, jobs, report)\n"
        f"  dashboard     {url}/__mock/ui\n"
        f"  backend: {backend}\n"
        f"  store: {store}; {workers}\n"
        f"  validation: {mode}; default scenario: {book.default}\n"
        f"{_randomness(settings, book, seed_drawn=seed_drawn)}"
        f"Test API keys pick a scenario with no code change:\n{keys}\n"
    )
