"""The switches that make CUDA generations repeat bit for bit, set where a model is loaded.

The conformance asserts that the same seed gives byte-identical PNGs. On CUDA that rests
on the kernels torch picks: cuDNN may choose among convolution algorithms (some
nondeterministic) per call, recent torch prefers cuDNN's attention for
``scaled_dot_product_attention``, and cuBLAS needs a fixed workspace to repeat its sums.
``make_deterministic`` sets, for the whole process:

* ``torch.backends.cudnn.deterministic = True`` and ``cudnn.benchmark = False``;
* cuDNN's attention backend off (flash or memory-efficient attention instead, both
  deterministic in the forward pass);
* ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (unless already set), read when cuBLAS starts, so
  before the first CUDA matrix product;
* ``torch.use_deterministic_algorithms(True, warn_only=True)``: an operation with no
  deterministic kernel warns instead of failing a job.

What they cost on a GPU is not measured yet (there was none to measure on):
``bench/gpu_generation.py --nondeterministic`` gives the figures without them.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import dataclass

CUBLAS_WORKSPACE_CONFIG = ":4096:8"


@dataclass(frozen=True)
class Switches:
    """The process's state of each switch, as ``read`` finds it."""

    cudnn_deterministic: bool
    cudnn_benchmark: bool
    cudnn_attention: bool
    deterministic_algorithms: bool
    warn_only: bool
    cublas_workspace: str | None


def read(environ: MutableMapping[str, str] | None = None) -> Switches:
    import torch

    env = os.environ if environ is None else environ
    return Switches(
        cudnn_deterministic=bool(torch.backends.cudnn.deterministic),
        cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
        cudnn_attention=torch.backends.cuda.cudnn_sdp_enabled(),  # type: ignore[no-untyped-call]
        deterministic_algorithms=torch.are_deterministic_algorithms_enabled(),
        warn_only=torch.is_deterministic_algorithms_warn_only_enabled(),
        cublas_workspace=env.get("CUBLAS_WORKSPACE_CONFIG"),
    )


def apply(switches: Switches, environ: MutableMapping[str, str] | None = None) -> None:
    """Set every switch as ``switches`` says (``read``'s result restores a former state)."""
    import torch

    env = os.environ if environ is None else environ
    torch.backends.cudnn.deterministic = switches.cudnn_deterministic
    torch.backends.cudnn.benchmark = switches.cudnn_benchmark
    torch.backends.cuda.enable_cudnn_sdp(switches.cudnn_attention)
    torch.use_deterministic_algorithms(
        switches.deterministic_algorithms, warn_only=switches.warn_only
    )
    if switches.cublas_workspace is None:
        env.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        env["CUBLAS_WORKSPACE_CONFIG"] = switches.cublas_workspace


def make_deterministic(environ: MutableMapping[str, str] | None = None) -> Switches:
    """Set the switches for repeatable CUDA results; returns the state before, for ``apply``."""
    env = os.environ if environ is None else environ
    before = read(env)
    apply(
        Switches(
            cudnn_deterministic=True,
            cudnn_benchmark=False,
            cudnn_attention=False,
            deterministic_algorithms=True,
            warn_only=True,
            cublas_workspace=env.get("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG),
        ),
        env,
    )
    return before
