"""By hand: ``python -m reference_impl build|generate`` (random weights, then timed images).

    python -m reference_impl build full /data/ipmock-full [--workers N] [--time-limit S]
    python -m reference_impl generate /data/ipmock-full --request req.json \\
        --image face.jpg --out out/ --device cuda --dtype float16 --repeat 3

``generate`` validates the request with the mock server's own rules, resolves seed -1,
and prints one JSON line of timings (load, each generation, peak GPU memory). Both print
only that line on stdout; their progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import time
from dataclasses import replace
from pathlib import Path

from reference_impl.architectures import SIZES
from reference_impl.build import ADAPTER_FOLDER, MODEL_FOLDER, build_random_model_dir


def request_body(value: str) -> bytes:
    """``--request``: inline JSON (a value starting with "{") as is, else the bytes of the
    file it names; argparse's one-line error for a file that cannot be read."""
    if value.lstrip().startswith("{"):
        return value.encode()
    try:
        return Path(value).read_bytes()
    except OSError as exc:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither a readable JSON file ({exc.strerror}) nor inline JSON "
            "(a value starting with '{')"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reference_impl", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="write SDXL + IP-Adapter folders with random weights")
    build.add_argument("size", choices=SIZES)
    build.add_argument("path", type=Path)
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--dtype", choices=["float16", "float32", "bfloat16"])
    build.add_argument(
        "--workers",
        type=int,
        help="processes writing weight files (default: one per core at "
        "full size, as memory allows; one for tiny)",
    )
    build.add_argument(
        "--time-limit", type=float, metavar="SECONDS", help="give up after this long (exit 1)"
    )
    gen = commands.add_parser("generate", help="run one request through the real pipeline")
    gen.add_argument(
        "models", type=Path, help=f"a folder holding {MODEL_FOLDER}/ and {ADAPTER_FOLDER}/"
    )
    gen.add_argument("--model-dir", type=Path, help="SDXL folder, if not under MODELS")
    gen.add_argument("--ip-adapter-dir", type=Path, help="IP-Adapter folder, if not under MODELS")
    gen.add_argument(
        "--request",
        type=request_body,
        required=True,
        metavar="FILE|JSON",
        help="the request body: a JSON file, or the JSON itself (a value starting with '{')",
    )
    gen.add_argument("--image", type=Path, help="the primary adapter's image (ip_adapter_image)")
    gen.add_argument("--style-image", type=Path, action="append", default=[])
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--device", default="cuda")
    gen.add_argument("--dtype", default="float16", choices=["float16", "float32", "bfloat16"])
    gen.add_argument("--repeat", type=int, default=1, help="generations to time")
    return parser


def _generate(args: argparse.Namespace) -> dict[str, object]:
    from mock_server.validation import validate

    request = validate(args.request).request  # checked before the slow imports
    import torch
    from PIL import Image

    from reference_impl.pipeline import generate, load_pipeline

    if request.seed == -1:
        request = replace(request, seed=secrets.randbelow(2**32))
    paths = ([args.image] if args.image else []) + args.style_image
    images = [Image.open(p).convert("RGB") for p in paths]
    dtype = getattr(torch, args.dtype)
    started = time.perf_counter()
    pipeline = load_pipeline(
        args.model_dir or args.models / MODEL_FOLDER,
        args.ip_adapter_dir or args.models / ADAPTER_FOLDER,
        args.device,
        dtype,
    )
    loaded = time.perf_counter() - started
    cuda = torch.device(args.device).type == "cuda"
    seconds = []
    args.out.mkdir(parents=True, exist_ok=True)
    for run in range(args.repeat):
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        result = generate(pipeline, request, images)
        if cuda:
            torch.cuda.synchronize()
        seconds.append(round(time.perf_counter() - started, 3))
        for i, image in enumerate(result):
            image.save(args.out / f"run{run}-sample{i}.png")
    report: dict[str, object] = {
        "seed": request.seed,
        "size": [request.width, request.height],
        "steps": request.num_inference_steps,
        "samples": request.samples,
        "ip_adapter": list(request.ip_adapter),
        "load_s": round(loaded, 2),
        "generate_s": seconds,
        "adapter_loads": pipeline.adapters.loads,
    }
    if cuda:
        report["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return report


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # stdout is the one JSON line; progress (the weights written, the model loaded) and
    # the rest go to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            report = _run(args)
        except _Refused as exc:
            print(exc, file=sys.stderr)
            return exc.status
    print(json.dumps(report))
    return 0


class _Refused(Exception):
    """Said in one line on stderr, and the exit status it ends with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _run(args: argparse.Namespace) -> dict[str, object]:
    if args.command == "build":
        import torch

        dtype = getattr(torch, args.dtype) if args.dtype else None
        started = time.perf_counter()
        try:
            dirs = build_random_model_dir(
                args.size,
                args.path,
                seed=args.seed,
                dtype=dtype,
                workers=args.workers,
                time_limit=args.time_limit,
            )
        except TimeoutError as exc:
            raise _Refused(f"python -m reference_impl build: {exc}", 1) from None
        return {
            "model_dir": str(dirs.model_dir),
            "ip_adapter_dir": str(dirs.ip_adapter_dir),
            "seconds": round(time.perf_counter() - started, 1),
        }
    from mock_server.validation import InvalidRequest

    try:
        return _generate(args)
    except InvalidRequest as exc:  # the request, refused as the mock refuses it
        raise _Refused(f"python -m reference_impl generate: --request: {exc}", 2) from None


if __name__ == "__main__":
    sys.exit(main())
