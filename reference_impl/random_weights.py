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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch
    from torch import nn

Init = Literal["uniform", "ones", "zeros", "normal"]
DEFAULT_SHARD_BYTES = 2 << 30
"""2 GiB: below what a shard costs in memory while it is written."""


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
    """Write ``stem``.safetensors, or shards plus ``stem``.safetensors.index.json, into ``folder``.

    The names are the ones diffusers (``diffusion_pytorch_model``) and transformers
    (``model``) look for, so ``from_pretrained`` finds them either way.
    """
    from safetensors.torch import save_file

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
    written = []
    for name, shard in zip(names, shards, strict=True):
        tensors = {
            s.key: make_tensor(s, seed=seed, namespace=namespace, dtype=dtype) for s in shard
        }
        save_file(tensors, str(folder / name), metadata={"format": "pt"})
        written.append(folder / name)
        del tensors
    if len(shards) > 1:
        index = {
            "metadata": {"total_size": sum(s.numel for s in specs) * item_bytes},
            "weight_map": {
                s.key: name for name, shard in zip(names, shards, strict=True) for s in shard
            },
        }
        (folder / f"{stem}.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return written


def _dtype_bytes(dtype: torch.dtype) -> int:
    import torch

    return torch.empty((), dtype=dtype).element_size()
