"""Seeded random tensors for a model's state dict, written as (sharded) safetensors files.

Each tensor is drawn from its own generator, seeded from (seed, file, key), so a value
does not depend on the order of keys or on how files are sharded. Values follow PyTorch's
default initialisation for the layer that owns them (uniform +-1/sqrt(fan_in) for linear
and convolution layers, ones and zeros for normalisation layers), which keeps
activations finite at full size in float16. Files are written shard by shard, so memory
stays near one shard even for SDXL's 2.6 B-parameter UNet.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import queue
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch
    from torch import nn

Init = Literal["uniform", "ones", "zeros", "normal"]
DEFAULT_SHARD_BYTES = 2 << 30
"""2 GiB: below what a shard costs in memory while it is written."""
SERIAL_BELOW_BYTES = 256 << 20
"""Builds smaller than this (the tiny size) are written in one process."""


@dataclass(frozen=True)
class TensorSpec:
    """A tensor to write: its key, shape and how its random values are drawn."""

    key: str
    shape: tuple[int, ...]
    init: Init
    scale: float = 1.0
    """Bound of ``uniform``, standard deviation of ``normal``."""

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def linear(key: str, out_features: int, in_features: int, *, bias: bool) -> list[TensorSpec]:
    """Specs of an ``nn.Linear`` named ``key`` (without ``.weight``)."""
    bound = 1 / math.sqrt(in_features)
    specs = [TensorSpec(f"{key}.weight", (out_features, in_features), "uniform", bound)]
    if bias:
        specs.append(TensorSpec(f"{key}.bias", (out_features,), "uniform", bound))
    return specs


def layer_norm(key: str, dim: int) -> list[TensorSpec]:
    return [TensorSpec(f"{key}.weight", (dim,), "ones"), TensorSpec(f"{key}.bias", (dim,), "zeros")]


def specs_for_model(model: nn.Module, prefix: str = "") -> list[TensorSpec]:
    """One spec per state-dict entry of ``model`` (usually built on the meta device)."""
    from torch import nn

    specs: list[TensorSpec] = []
    for key, tensor in model.state_dict().items():
        owner_name, _, attr = key.rpartition(".")
        owner = model.get_submodule(owner_name)
        shape = tuple(tensor.shape)
        init: Init
        scale = 1.0
        if isinstance(owner, nn.LayerNorm | nn.GroupNorm) or "norm" in type(owner).__name__.lower():
            init = "ones" if attr == "weight" else "zeros"
        elif isinstance(owner, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
            weight = owner.weight
            fan_in = math.prod(weight.shape[1:])
            init, scale = "uniform", 1 / math.sqrt(fan_in)
        elif isinstance(owner, nn.Embedding):
            init, scale = "normal", 0.02  # CLIP's own initialisation of its embeddings
        else:  # bare parameters: class embeddings, resampler latents
            init, scale = "normal", 1 / math.sqrt(shape[-1]) if shape else 1.0
        specs.append(TensorSpec(prefix + key, shape, init, scale))
    return specs


def _generator_seed(seed: int, namespace: str, key: str) -> int:
    digest = hashlib.sha256(f"{seed}\0{namespace}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def make_tensor(spec: TensorSpec, *, seed: int, namespace: str, dtype: torch.dtype) -> torch.Tensor:
    """The tensor ``spec`` describes, deterministic in (seed, namespace, key)."""
    import torch

    if spec.init == "ones":
        return torch.ones(spec.shape, dtype=dtype)
    if spec.init == "zeros":
        return torch.zeros(spec.shape, dtype=dtype)
    generator = torch.Generator().manual_seed(_generator_seed(seed, namespace, spec.key))
    values = torch.empty(spec.shape, dtype=torch.float32)
    if spec.init == "uniform":
        values.uniform_(-spec.scale, spec.scale, generator=generator)
    else:
        values.normal_(0.0, spec.scale, generator=generator)
    return values.to(dtype)


def _shards(specs: Sequence[TensorSpec], item_bytes: int, limit: int) -> list[list[TensorSpec]]:
    shards: list[list[TensorSpec]] = [[]]
    size = 0
    for spec in specs:
        nbytes = spec.numel * item_bytes
        if shards[-1] and size + nbytes > limit:
            shards.append([])
            size = 0
        shards[-1].append(spec)
        size += nbytes
    return shards


@dataclass(frozen=True)
class Shard:
    """One safetensors file to write: its tensors, each drawn from (seed, namespace, key)."""

    path: Path
    specs: tuple[TensorSpec, ...]
    seed: int
    namespace: str
    dtype: torch.dtype

    @property
    def numel(self) -> int:
        return sum(s.numel for s in self.specs)


def plan_safetensors(
    specs: Iterable[TensorSpec],
    folder: Path,
    stem: str,
    *,
    seed: int,
    dtype: torch.dtype,
    namespace: str,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
) -> list[Shard]:
    """The files of ``stem``: ``stem``.safetensors, or shards whose index
    (``stem``.safetensors.index.json) is written now, into ``folder``.

    The names are the ones diffusers (``diffusion_pytorch_model``) and transformers
    (``model``) look for, so ``from_pretrained`` finds them either way. Each shard is
    written by ``write_shard``, in any order or process: its values do not depend on it.
    """
    specs = list(specs)
    keys = [s.key for s in specs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate keys among the tensors of {stem}")
    folder.mkdir(parents=True, exist_ok=True)
    item_bytes = _dtype_bytes(dtype)
    shards = _shards(specs, item_bytes, max_shard_bytes)
    names = (
        [f"{stem}.safetensors"]
        if len(shards) == 1
        else [f"{stem}-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)]
    )
    if len(shards) > 1:
        index = {
            "metadata": {"total_size": sum(s.numel for s in specs) * item_bytes},
            "weight_map": {
                s.key: name for name, shard in zip(names, shards, strict=True) for s in shard
            },
        }
        (folder / f"{stem}.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return [
        Shard(folder / name, tuple(shard), seed, namespace, dtype)
        for name, shard in zip(names, shards, strict=True)
    ]


def write_shard(shard: Shard) -> Path:
    """Draw the shard's tensors and write its file; memory stays near the shard's size."""
    from safetensors.torch import save_file

    tensors = {
        s.key: make_tensor(s, seed=shard.seed, namespace=shard.namespace, dtype=shard.dtype)
        for s in shard.specs
    }
    save_file(tensors, str(shard.path), metadata={"format": "pt"})
    return shard.path


def write_safetensors(
    specs: Iterable[TensorSpec],
    folder: Path,
    stem: str,
    *,
    seed: int,
    dtype: torch.dtype,
    namespace: str,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
) -> list[Path]:
    """``plan_safetensors``' files, written here one after the other."""
    shards = plan_safetensors(
        specs,
        folder,
        stem,
        seed=seed,
        dtype=dtype,
        namespace=namespace,
        max_shard_bytes=max_shard_bytes,
    )
    return [write_shard(shard) for shard in shards]


def default_workers(shards: Sequence[Shard]) -> int:
    """Processes for ``write_shards``: one for small builds (a process costs a second or
    two to start); else one per core, as many as memory holds at about three times the
    largest shard each (its float32 draws, its tensors, their bytes while saved)."""
    if not shards:
        return 1
    item_bytes = max(_dtype_bytes(s.dtype) for s in shards)
    total = sum(s.numel for s in shards) * item_bytes
    if total < SERIAL_BELOW_BYTES:
        return 1
    largest = max(s.numel for s in shards) * max(item_bytes, 4)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(1, min(os.cpu_count() or 1, memory // (3 * largest), len(shards)))


def write_shards(
    shards: Sequence[Shard],
    *,
    workers: int = 1,
    time_limit: float | None = None,
    started: float | None = None,
    on_written: Callable[[Shard], None] = lambda shard: None,
) -> None:
    """Write every shard, over ``workers`` processes (the largest first), within
    ``time_limit`` seconds from ``started`` (``time.monotonic()``; default now): past it,
    TimeoutError, the workers stopped. ``on_written`` is called here, in this process,
    as each file is done (for progress)."""
    ordered = sorted(shards, key=lambda s: -s.numel)
    started = time.monotonic() if started is None else started
    deadline = None if time_limit is None else started + time_limit

    def left() -> float | None:
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    def too_long(done: int) -> TimeoutError:
        return TimeoutError(
            f"random weights not written within {time_limit:g} s "
            f"({done} of {len(ordered)} files done)"
        )

    if workers <= 1:
        for done, shard in enumerate(ordered):
            if left() == 0.0:
                raise too_long(done)
            write_shard(shard)
            on_written(shard)
        return
    # Each process gets a share of about equal size (the largest shard to the least loaded).
    shares: list[list[Shard]] = [[] for _ in range(min(workers, len(ordered)))]
    for shard in ordered:
        min(shares, key=lambda share: sum(s.numel for s in share)).append(shard)
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    written: multiprocessing.Queue[int] = context.Queue()  # indexes into ordered, as done
    index = {id(shard): i for i, shard in enumerate(ordered)}
    processes = [
        context.Process(target=_write_share, args=(share, [index[id(s)] for s in share], written))
        for share in shares
    ]
    for process in processes:
        process.start()
    try:
        done = 0
        while done < len(ordered):
            if left() == 0.0:
                raise too_long(done)
            try:
                on_written(ordered[written.get(timeout=min(left() or 1.0, 1.0))])
                done += 1
                continue
            except queue.Empty:
                pass
            failed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if failed:
                raise RuntimeError(f"a process writing random weights failed (exit {failed[0]})")
            if all(p.exitcode == 0 for p in processes) and written.empty():
                raise RuntimeError("the processes writing random weights ended with files unsaid")
        for process in processes:
            process.join(left())
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
        written.close()


def _write_share(
    shards: list[Shard], indexes: list[int], written: multiprocessing.Queue[int]
) -> None:
    _one_thread()
    for shard, i in zip(shards, indexes, strict=True):
        write_shard(shard)
        written.put(i)


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)  # one process per core already


def _dtype_bytes(dtype: torch.dtype) -> int:
    import torch

    return torch.empty((), dtype=dtype).element_size()
