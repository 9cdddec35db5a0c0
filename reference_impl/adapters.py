"""The four IP-Adapters the API names: their files, image encoders, and tensor layouts.

Names and files follow the public h94/IP-Adapter release. Tensor keys and shapes are
the ones diffusers' ``load_ip_adapter`` reads from such a file: ``image_proj.*`` (a
linear projection + LayerNorm for the plain adapters, the perceiver ``Resampler`` for the
plus adapters) and ``ip_adapter.{n}.to_k_ip.weight`` / ``to_v_ip.weight`` for each
cross-attention layer, where n = 1, 3, 5, ... counts the UNet's attention processors in
diffusers' order (the odd ones are the cross-attention ``attn2``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from reference_impl.architectures import VIT_BIGG_FOLDER, VIT_H_FOLDER, ResamplerShape
from reference_impl.random_weights import TensorSpec, layer_norm, linear

WEIGHTS_SUBFOLDER = "sdxl_models"
PLAIN_TOKENS = 4
"""Image tokens of a plain IP-Adapter's projection (diffusers hard-codes 4 too)."""


@dataclass(frozen=True)
class AdapterSpec:
    """What an adapter name means: its weight file, its image encoder, its projection."""

    name: str
    weight_name: str
    image_encoder_folder: str
    """Relative to the IP-Adapter root, as ``load_ip_adapter``'s ``image_encoder_folder``."""
    projection: Literal["plain", "resampler"]

    @property
    def encoder(self) -> str:
        return "vit-bigG" if self.image_encoder_folder == VIT_BIGG_FOLDER else "vit-h"


ADAPTERS: dict[str, AdapterSpec] = {
    spec.name: spec
    for spec in (
        AdapterSpec("ip-adapter_sdxl", "ip-adapter_sdxl.safetensors", VIT_BIGG_FOLDER, "plain"),
        AdapterSpec(
            "ip-adapter_sdxl_vit-h", "ip-adapter_sdxl_vit-h.safetensors", VIT_H_FOLDER, "plain"
        ),
        AdapterSpec(
            "ip-adapter-plus_sdxl_vit-h",
            "ip-adapter-plus_sdxl_vit-h.safetensors",
            VIT_H_FOLDER,
            "resampler",
        ),
        AdapterSpec(
            "ip-adapter-plus-face_sdxl_vit-h",
            "ip-adapter-plus-face_sdxl_vit-h.safetensors",
            VIT_H_FOLDER,
            "resampler",
        ),
    )
}


def adapter(name: str) -> AdapterSpec:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise ValueError(
            f"unknown IP-Adapter {name!r}: expected one of {', '.join(ADAPTERS)}"
        ) from None


@dataclass(frozen=True)
class CrossAttention:
    """One cross-attention layer of the UNet as an IP-Adapter file numbers it."""

    number: int
    hidden_size: int


def cross_attention_layers(unet: Any) -> list[CrossAttention]:
    """The layers of a diffusers UNet2DConditionModel (often on the meta device) that an
    IP-Adapter file keys, numbered as IP-Adapter files and diffusers number them."""
    channels = list(unet.config.block_out_channels)
    layers = []
    # A loaded plus adapter's resampler has attention processors too: not UNet layers.
    names = [n for n in unet.attn_processors if not n.startswith("encoder_hid_proj.")]
    for index, name in enumerate(names):
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(channels))[int(name.split(".")[1])]
        elif name.startswith("down_blocks"):
            hidden = channels[int(name.split(".")[1])]
        else:
            raise ValueError(f"unexpected attention processor {name}")
        layers.append(CrossAttention(index, hidden))
    return layers


def image_proj_specs(
    spec: AdapterSpec,
    encoder_config: dict[str, Any],
    cross_attention_dim: int,
    resampler: ResamplerShape,
) -> list[TensorSpec]:
    """The ``image_proj.*`` tensors, in the original IP-Adapter repo's key names."""
    if spec.projection == "plain":
        # Plain adapters project the encoder's pooled, projected image embedding.
        embed = int(encoder_config["projection_dim"])
        return [
            *linear("image_proj.proj", PLAIN_TOKENS * cross_attention_dim, embed, bias=True),
            *layer_norm("image_proj.norm", cross_attention_dim),
        ]
    # Plus adapters resample the encoder's penultimate hidden states.
    embed = int(encoder_config["hidden_size"])
    dim = resampler.hidden_dims
    inner = resampler.heads * resampler.dim_head
    specs = [
        TensorSpec("image_proj.latents", (1, resampler.num_queries, dim), "normal", 1 / dim**0.5),
        *linear("image_proj.proj_in", dim, embed, bias=True),
        *linear("image_proj.proj_out", cross_attention_dim, dim, bias=True),
        *layer_norm("image_proj.norm_out", cross_attention_dim),
    ]
    for i in range(resampler.depth):
        layer = f"image_proj.layers.{i}"
        specs += [
            *layer_norm(f"{layer}.0.norm1", dim),
            *layer_norm(f"{layer}.0.norm2", dim),
            *linear(f"{layer}.0.to_q", inner, dim, bias=False),
            *linear(f"{layer}.0.to_kv", 2 * inner, dim, bias=False),
            *linear(f"{layer}.0.to_out", dim, inner, bias=False),
            *layer_norm(f"{layer}.1.0", dim),
            *linear(f"{layer}.1.1", dim * resampler.ff_mult, dim, bias=False),
            *linear(f"{layer}.1.3", dim, dim * resampler.ff_mult, bias=False),
        ]
    return specs


def ip_attention_specs(layers: list[CrossAttention], cross_attention_dim: int) -> list[TensorSpec]:
    """The ``ip_adapter.{n}.to_k_ip/to_v_ip`` tensors: image keys and values per layer."""
    specs: list[TensorSpec] = []
    for layer in layers:
        for proj in ("to_k_ip", "to_v_ip"):
            specs += linear(
                f"ip_adapter.{layer.number}.{proj}",
                layer.hidden_size,
                cross_attention_dim,
                bias=False,
            )
    return specs


def adapter_tensor_specs(
    spec: AdapterSpec,
    unet: Any,
    encoder_config: dict[str, Any],
    resampler: ResamplerShape,
) -> list[TensorSpec]:
    """Every tensor of ``spec``'s file, for a UNet of this architecture."""
    cross_attention_dim = int(unet.config.cross_attention_dim)
    return image_proj_specs(spec, encoder_config, cross_attention_dim, resampler) + (
        ip_attention_specs(cross_attention_layers(unet), cross_attention_dim)
    )
