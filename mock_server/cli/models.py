"""The model options of ``serve`` and ``worker`` (real images): what they must name, and
the reference generator they load."""

from __future__ import annotations

import argparse
import importlib.util
from ipaddress import ip_network
from pathlib import Path
from typing import TYPE_CHECKING

from mock_server.cli.checks import UsageError
from mock_server.clock import Clock

if TYPE_CHECKING:
    from reference_impl.server import DiffusersGenerator

DEFAULT_WEIGHTS_CACHE = Path("~/.cache/ipmock/weights")
GPU_EXTRA = ("torch", "diffusers", "transformers", "safetensors")


def missing_gpu_extra() -> list[str]:
    """The gpu extra's packages that are not installed."""
    return [name for name in GPU_EXTRA if importlib.util.find_spec(name) is None]


def names_a_model(
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
    missing = missing_gpu_extra()
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
    refuse_missing_folders(args)
    return True


def refuse_missing_folders(args: argparse.Namespace) -> None:
    """UsageError when --model-dir or --ip-adapter-dir, given, is not a folder (named as
    the flag or variable that gave it)."""
    said = getattr(args, "said", {})  # serve and worker read the variables too
    for option in ("model_dir", "ip_adapter_dir"):
        path = getattr(args, option)
        if path is not None and not path.is_dir():
            flag = said.get(option, "--" + option.replace("_", "-"))
            raise UsageError(f"{flag} {path} is not a folder")


def allowed_networks(args: argparse.Namespace) -> None:
    """Check and normalise --allow-image-network (UsageError naming the bad one)."""
    try:
        args.allow_image_network = [
            str(ip_network(n, strict=False)) for n in args.allow_image_network
        ]
    except ValueError as exc:
        raise UsageError(f"{args.said['allow_image_network']}: {exc}") from None


def diffusers_generator(args: argparse.Namespace, clock: Clock) -> tuple[DiffusersGenerator, str]:
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
