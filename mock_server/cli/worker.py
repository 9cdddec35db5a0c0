"""``ipmock worker``: take the Redis store's jobs, generate their images, store them."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

from mock_server.cli import models
from mock_server.cli.checks import UsageError, check_redis, redacted
from mock_server.clock import Clock


def work(args: argparse.Namespace) -> int:
    """Generate the store's jobs until SIGINT/SIGTERM (the job in hand is finished first)."""
    from mock_server.generators import PlaceholderGenerator
    from mock_server.images import RenderedImage
    from mock_server.jobs import Job
    from mock_server.state.work_queue import run_worker

    logging.basicConfig(
        level=args.log_level.upper(), format="ipmock worker: %(message)s", stream=sys.stdout
    )
    try:
        check_redis(args.store, args.said["store"])
        model = models.names_a_model(args, required=False, user="ipmock worker")
        models.allowed_networks(args)
    except UsageError as exc:
        print(f"ipmock: {exc}", file=sys.stderr)
        return 2
    describe: Callable[[BaseException], str] = lambda exc: f"generation failed: {exc}"  # noqa: E731
    if model:
        from reference_impl.server import failure_message

        try:
            generator, what = models.diffusers_generator(args, Clock())
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

    print(f"ipmock worker: {what}, jobs from {redacted(args.store)}", flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        await run_worker(
            args.store,
            render,
            describe_failure=describe,
            consumer=args.name,
            lease=args.lease,
            stop=stop,
        )

    asyncio.run(main())
    return 0
