"""The SDXL + IP-Adapter architectures, read from the configs kept in ``reference_impl/configs``.

Two sizes share one layout: ``full`` is SDXL base 1.0 and the h94/IP-Adapter image encoders
at their published shapes (real weights load into it); ``tiny`` keeps every class and block
type but shrinks widths and depths so a 64x64 image at 2 steps runs in seconds on a CPU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from torch import nn

Size = Literal["tiny", "full"]
SIZES: tuple[Size, ...] = ("tiny", "full")
CONFIGS = Path(__file__).resolve().parent / "configs"

SDXL_FOLDER = "sdxl"
"""Inside a size's config folder: the diffusers-layout SDXL model (configs only)."""
IP_ADAPTER_FOLDER = "ip_adapter"
"""Inside a size's config folder: the h94/IP-Adapter layout (image encoder configs)."""
VIT_H_FOLDER = "models/image_encoder"
"""OpenCLIP ViT-H/14 image encoder, used by the three ``_vit-h`` adapters."""
VIT_BIGG_FOLDER = "sdxl_models/image_encoder"
"""OpenCLIP ViT-bigG/14 image encoder, used by ``ip-adapter_sdxl``."""


@dataclass(frozen=True)
class Component:
    """One weight-bearing part of the layout: where it lives and which class builds it."""

    folder: str  # relative to the SDXL or IP-Adapter root
    library: Literal["diffusers", "transformers"]
    class_name: str
    checkpoint_prefix: str = ""
    """Prefix of the keys in published checkpoints that the current class no longer has."""

    @property
    def weights_stem(self) -> str:
        return "diffusion_pytorch_model" if self.library == "diffusers" else "model"


SDXL_COMPONENTS: tuple[Component, ...] = (
    Component("unet", "diffusers", "UNet2DConditionModel"),
    Component("vae", "diffusers", "AutoencoderKL"),
    # Published CLIPTextModel checkpoints name keys text_model.*; transformers 5 drops the
    # wrapper but still loads that spelling, and older versions need it.
    Component("text_encoder", "transformers", "CLIPTextModel", checkpoint_prefix="text_model."),
    Component("text_encoder_2", "transformers", "CLIPTextModelWithProjection"),
)
IMAGE_ENCODERS: tuple[Component, ...] = (
    Component(VIT_H_FOLDER, "transformers", "CLIPVisionModelWithProjection"),
    Component(VIT_BIGG_FOLDER, "transformers", "CLIPVisionModelWithProjection"),
)


@dataclass(frozen=True)
class ResamplerShape:
    """IP-Adapter Plus's perceiver resampler (the original repo's ``Resampler`` arguments)."""

    hidden_dims: int
    heads: int
    dim_head: int
    depth: int
    ff_mult: int
    num_queries: int


def config_root(size: Size) -> Path:
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}: expected one of {', '.join(SIZES)}")
    return CONFIGS / size


def load_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def sdxl_config(size: Size, folder: str) -> dict[str, Any]:
    """The config of one SDXL component (``unet``, ``vae``, ``text_encoder``, ...)."""
    name = "scheduler_config.json" if folder == "scheduler" else "config.json"
    return load_json(config_root(size) / SDXL_FOLDER / folder / name)


def image_encoder_config(size: Size, folder: str) -> dict[str, Any]:
    return load_json(config_root(size) / IP_ADAPTER_FOLDER / folder / "config.json")


def resampler_shape(size: Size) -> ResamplerShape:
    return ResamplerShape(**load_json(config_root(size) / IP_ADAPTER_FOLDER / "resampler.json"))


def build_model(component: Component, config: dict[str, Any], *, meta: bool = True) -> nn.Module:
    """Instantiate ``component`` from ``config``; on the meta device (no memory) by default."""
    import torch

    device = torch.device("meta") if meta else torch.device("cpu")
    with device:
        if component.library == "diffusers":
            import diffusers

            cls = getattr(diffusers, component.class_name)
            model: nn.Module = cls.from_config(config)
        else:
            import transformers

            cls = getattr(transformers, component.class_name)
            config_cls = cls.config_class
            model = cls(config_cls.from_dict(config))
    return model
