"""Builds SDXL and the four IP-Adapters with random weights, in the layouts real weights use.

``build_random_model_dir(size, path)`` writes ``path/sdxl-base`` (diffusers' layout, as in
stabilityai/stable-diffusion-xl-base-1.0) and ``path/ip-adapter`` (h94/IP-Adapter's layout:
``sdxl_models/*.safetensors``, ``sdxl_models/image_encoder`` (ViT-bigG) and
``models/image_encoder`` (ViT-H)). Nothing is downloaded: architectures come from the
configs in ``reference_impl/configs``, the tokenizer vocabulary from instant-clip-tokenizer.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mock_server.cli import progress
from reference_impl import adapters as ip
from reference_impl.architectures import (
    IMAGE_ENCODERS,
    IP_ADAPTER_FOLDER,
    SDXL_COMPONENTS,
    SDXL_FOLDER,
    Size,
    build_model,
    config_root,
    image_encoder_config,
    resampler_shape,
    sdxl_config,
)
from reference_impl.random_weights import (
    DEFAULT_SHARD_BYTES,
    Shard,
    default_workers,
    plan_safetensors,
    specs_for_model,
    write_shards,
)
from reference_impl.tokenizer_files import write_tokenizer_files

if TYPE_CHECKING:
    import torch

MODEL_FOLDER = "sdxl-base"
ADAPTER_FOLDER = "ip-adapter"
MARKER = "ipmock-random-weights.json"
"""Written last: a folder holding it with the same parameters is complete and is reused."""


@dataclass(frozen=True)
class ModelDirs:
    """Where a built (or real) SDXL model and IP-Adapter release lie."""

    model_dir: Path
    ip_adapter_dir: Path


def build_random_model_dir(
    size: Size,
    path: Path | str,
    *,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
    workers: int | None = None,
    time_limit: float | None = None,
) -> ModelDirs:
    """Write the SDXL model folder and the IP-Adapter folder under ``path``, random weights.

    ``dtype`` defaults to float32 for ``tiny`` (CPU) and float16 for ``full`` (the size
    of the published fp16 files). A folder already built with the same size, seed and
    dtype is returned as is. The weight files are written by ``workers`` processes
    (default: ``default_workers``, one per core at full size, one for tiny), with the same
    bytes whatever their number; past ``time_limit`` seconds, TimeoutError (and the folder
    is not marked built). Progress is shown on stdout (``mock_server.cli.progress``), by
    size written, each file named as it is done.
    """
    import torch

    dtype = dtype or (torch.float32 if size == "tiny" else torch.float16)
    root = Path(path)
    dirs = ModelDirs(root / MODEL_FOLDER, root / ADAPTER_FOLDER)
    params = {"size": size, "seed": seed, "dtype": str(dtype).removeprefix("torch.")}
    marker = root / MARKER
    if marker.is_file() and json.loads(marker.read_text())["params"] == params:
        return dirs
    started = time.monotonic()
    for folder in (dirs.model_dir, dirs.ip_adapter_dir):
        if folder.exists():
            shutil.rmtree(folder)
    marker.unlink(missing_ok=True)

    # SDXL: configs as kept in the repo, then weights and tokenizer vocabularies.
    shutil.copytree(config_root(size) / SDXL_FOLDER, dirs.model_dir)
    shards: list[Shard] = []
    unet = None
    for component in SDXL_COMPONENTS:
        model = build_model(component, sdxl_config(size, component.folder))
        if component.folder == "unet":
            unet = model
        shards += plan_safetensors(
            specs_for_model(model, component.checkpoint_prefix),
            dirs.model_dir / component.folder,
            component.weights_stem,
            seed=seed,
            dtype=dtype,
            namespace=f"sdxl/{component.folder}",
            max_shard_bytes=max_shard_bytes,
        )
    for tokenizer in ("tokenizer", "tokenizer_2"):
        write_tokenizer_files(dirs.model_dir / tokenizer)

    # IP-Adapter: the two image encoders, then the four adapter files.
    assert unet is not None
    for encoder in IMAGE_ENCODERS:
        config = image_encoder_config(size, encoder.folder)
        folder = dirs.ip_adapter_dir / encoder.folder
        folder.mkdir(parents=True)
        shutil.copy(config_root(size) / IP_ADAPTER_FOLDER / encoder.folder / "config.json", folder)
        shards += plan_safetensors(
            specs_for_model(build_model(encoder, config)),
            folder,
            encoder.weights_stem,
            seed=seed,
            dtype=dtype,
            namespace=f"ip-adapter/{encoder.folder}",
            max_shard_bytes=max_shard_bytes,
        )
    resampler = resampler_shape(size)
    for spec in ip.ADAPTERS.values():
        specs = ip.adapter_tensor_specs(
            spec, unet, image_encoder_config(size, spec.image_encoder_folder), resampler
        )
        # One file per adapter, never sharded: load_ip_adapter reads exactly weight_name.
        shards += plan_safetensors(
            specs,
            dirs.ip_adapter_dir / ip.WEIGHTS_SUBFOLDER,
            spec.weight_name.removesuffix(".safetensors"),
            seed=seed,
            dtype=dtype,
            namespace=f"ip-adapter/{spec.name}",
            max_shard_bytes=1 << 62,
        )
    workers = workers or default_workers(shards)
    item_bytes = torch.empty((), dtype=dtype).element_size()
    unit, scale = ("GB", 1e9) if sum(s.numel for s in shards) * item_bytes >= 1e9 else ("MB", 1e6)
    total = sum(s.numel for s in shards) * item_bytes / scale
    processes = f"{workers} process" + ("es" if workers > 1 else "")
    label = f"random {size} weights ({len(shards)} files, {processes})"
    with progress.steps(total, label, unit=unit) as work:
        write_shards(
            shards,
            workers=workers,
            time_limit=time_limit,
            started=started,
            on_written=lambda shard: work.advance(
                shard.numel * item_bytes / scale, note=str(shard.path.relative_to(root))
            ),
        )
    seconds = round(time.monotonic() - started, 1)
    marker.write_text(
        json.dumps({"params": params, "seconds": seconds, "workers": workers}, indent=2) + "\n"
    )
    return dirs
