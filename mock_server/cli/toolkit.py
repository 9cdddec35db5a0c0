"""``ipmock verify`` and ``ipmock conformance``: their options, and the toolkit's checks
they run (``contract_tests``); ``ipmock fuzz`` and ``ipmock report`` are hooked in from
``mock_server.cli.fuzz`` and ``mock_server.cli.report``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from mock_server.cli import fuzz, models, report
from mock_server.cli.checks import UsageError, output_file, output_folder
from mock_server.contract import request_schema
from mock_server.settings import PARSERS, checked, is_http_url, seconds, whole
from mock_server.words import describe

COMMANDS = ("verify", "conformance", "fuzz", "report")


def add_commands(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    argtype: Callable[[Callable[[str], Any]], Callable[[str], Any]],
) -> None:
    """The verify and conformance subcommands (``argtype``: argparse's type of a parser)."""
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
        type=argtype(checked(str, is_http_url, "an http:// or https:// URL with a host")),
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
        type=argtype(whole(1)),
        default=30,
        metavar="N",
        help="schemathesis examples per operation and phase (default 30)",
    )
    verify.add_argument(
        "--seed",
        type=argtype(PARSERS["seed"]),
        metavar="N",
        help="schemathesis seed, to replay a run",
    )
    verify.add_argument("--no-fuzz", action="store_true", help="the flow checks only")
    verify.add_argument(
        "--poll-interval",
        type=argtype(seconds()),
        default=2.0,
        metavar="SECONDS",
        help="seconds between status polls while the job is PENDING (default 2)",
    )
    conform = commands.add_parser(
        "conformance",
        help="serve the reference (real images) and check its images and the contract",
        description="Start ipmock serve --backend diffusers (random weights, or your folders), "
        "check the images through the API (count, size, determinism, the adapter's effect, "
        "scale 0, growth with the scale), then run ipmock verify against it. Shows its "
        "progress and ends with a summary table; exit 0 when all pass. On a GPU at full size: "
        "docs/gpu.md.",
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
        default=models.DEFAULT_WEIGHTS_CACHE,
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
            type=argtype(checked(int, Draft202012Validator(rule).is_valid, describe(rule))),
            metavar="N",
            help=f"the requests' {field}: {describe(rule)} (default {rule['default']}, "
            f"or {TINY_REQUEST[field]} with tiny random weights)",
        )
    conform.add_argument("--junit-xml", type=Path, metavar="PATH", help="write JUnit XML here")
    conform.add_argument(
        "--max-examples",
        type=argtype(whole(1)),
        default=30,
        metavar="N",
        help="schemathesis examples per operation and phase (default 30)",
    )
    conform.add_argument("--no-fuzz", action="store_true", help="no schemathesis")
    fuzz.add_command(commands, argtype)
    report.add_command(commands, argtype)


TINY_REQUEST = {"width": 128, "height": 128, "num_inference_steps": 4}
"""What conformance asks of tiny random weights by default: the API's 1024 x 1024 at 20
steps took 44 s a job on 2 busy CPU cores; this takes seconds, and checks the same."""


def cuda_available() -> bool:
    """Whether torch (the gpu extra) is installed and sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def run(args: argparse.Namespace) -> int:
    """Run verify, conformance or fuzz (``args.command``); its exit status."""
    if args.command == "fuzz":
        return fuzz.run(args)
    if args.command == "report":
        return report.run(args)
    try:  # refuse what would break them once they have run
        output_file("--junit-xml", args.junit_xml)
        if args.command == "verify":
            output_folder("--record", args.record)
        elif args.model_dir is not None and args.ip_adapter_dir is not None:
            models.refuse_missing_folders(args)  # a lone one: conformance says to give both
    except UsageError as exc:
        print(f"ipmock {args.command}: {exc}", file=sys.stderr)
        return 2
    try:  # the toolkit's dependencies come with ipmock; a broken install is said in one line
        if args.command == "verify":
            from contract_tests.verify import verify
        else:
            from reference_impl.conformance import Options, conformance
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
    missing = models.missing_gpu_extra()
    if missing:
        print(
            f"ipmock conformance: the reference needs {', '.join(missing)}: install the gpu "
            f'extra (pip install ".[gpu]" or pip install "ipmock[gpu]")',
            file=sys.stderr,
        )
        return 2
    if args.size is None:
        args.size = "full" if cuda_available() else "tiny"
        if args.model_dir is None:  # the size is that of the random weights
            cuda = "CUDA is available here" if args.size == "full" else "no CUDA here"
            print(f"ipmock conformance: --size {args.size} ({cuda})", flush=True)
    tiny = args.size == "tiny" and args.model_dir is None
    request = request_schema()["properties"]
    for name, field in (("width", "width"), ("height", "height"), ("steps", "num_inference_steps")):
        if getattr(args, name) is None:  # the API's default, or seconds' worth on tiny weights
            setattr(args, name, TINY_REQUEST[field] if tiny else request[field]["default"])
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
