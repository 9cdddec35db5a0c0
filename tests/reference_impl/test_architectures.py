"""The ``full`` configs are SDXL base 1.0 and h94/IP-Adapter at their published shapes."""

from __future__ import annotations

import math
from typing import Any

import pytest
from torch import nn

from reference_impl import adapters as ip
from reference_impl.architectures import (
    IMAGE_ENCODERS,
    SDXL_COMPONENTS,
    VIT_BIGG_FOLDER,
    VIT_H_FOLDER,
    Size,
    build_model,
    image_encoder_config,
    resampler_shape,
    sdxl_config,
)

# Parameter counts of the published checkpoints (fp16 file size = 2 bytes each).
PUBLISHED = {
    "unet": 2_567_463_684,  # unet/diffusion_pytorch_model.fp16.safetensors, 5.14 GB
    "vae": 83_653_863,
    "text_encoder": 123_060_480,  # CLIP ViT-L/14 text
    "text_encoder_2": 694_659_840,  # OpenCLIP ViT-bigG/14 text + projection
    VIT_H_FOLDER: 632_076_800,  # models/image_encoder, 2.53 GB in fp32
    VIT_BIGG_FOLDER: 1_844_907_264,  # sdxl_models/image_encoder, 3.69 GB in fp16
}
# h94/IP-Adapter sdxl_models/*.safetensors are fp16: 703 MB, 698 MB, 848 MB, 848 MB.
PUBLISHED_ADAPTERS = {
    "ip-adapter_sdxl": 351_285_248,
    "ip-adapter_sdxl_vit-h": 349_188_096,
    "ip-adapter-plus_sdxl_vit-h": 423_748_864,
    "ip-adapter-plus-face_sdxl_vit-h": 423_748_864,
}


def _params(model: nn.Module) -> int:
    return sum(t.numel() for t in model.state_dict().values())


@pytest.fixture(scope="module")
def full_unet() -> nn.Module:
    return build_model(SDXL_COMPONENTS[0], sdxl_config("full", "unet"))


@pytest.mark.parametrize("component", SDXL_COMPONENTS[1:], ids=lambda c: c.folder)
def test_full_sdxl_components_have_published_sizes(component: Any) -> None:
    model = build_model(component, sdxl_config("full", component.folder))
    assert _params(model) == PUBLISHED[component.folder]


@pytest.mark.parametrize("encoder", IMAGE_ENCODERS, ids=lambda c: c.folder)
def test_full_image_encoders_have_published_sizes(encoder: Any) -> None:
    model = build_model(encoder, image_encoder_config("full", encoder.folder))
    assert _params(model) == PUBLISHED[encoder.folder]
    assert next(iter(model.state_dict().values())).is_meta  # built without memory


def test_full_unet_is_sdxl_base(full_unet: nn.Module) -> None:
    assert _params(full_unet) == PUBLISHED["unet"]
    shapes = {k: tuple(v.shape) for k, v in full_unet.state_dict().items()}
    assert shapes["conv_in.weight"] == (320, 4, 3, 3)
    assert shapes["add_embedding.linear_1.weight"] == (1280, 2816)  # 1280 pooled + 6 x 256
    key = "down_blocks.2.attentions.1.transformer_blocks.9.attn2.to_k.weight"
    assert shapes[key] == (1280, 2048)  # cross-attention over both text encoders' 768 + 1280
    assert shapes["up_blocks.1.attentions.2.transformer_blocks.1.attn2.to_v.weight"] == (640, 2048)


def test_full_cross_attention_layers_are_numbered_as_ip_adapter_files(full_unet: nn.Module) -> None:
    layers = ip.cross_attention_layers(full_unet)
    # down_blocks.1 2x2, down_blocks.2 2x10, mid 10, up_blocks.0 3x10, up_blocks.1 3x2: 70
    # layers, keyed ip_adapter.1, .3, ... .139 in the released files.
    assert [layer.number for layer in layers] == list(range(1, 140, 2))
    assert sorted({layer.hidden_size for layer in layers}) == [640, 1280]
    assert sum(layer.hidden_size for layer in layers) == 10 * 640 + 60 * 1280


@pytest.mark.parametrize("name", list(ip.ADAPTERS))
def test_full_adapter_files_have_published_sizes(full_unet: nn.Module, name: str) -> None:
    spec = ip.ADAPTERS[name]
    specs = ip.adapter_tensor_specs(
        spec,
        full_unet,
        image_encoder_config("full", spec.image_encoder_folder),
        resampler_shape("full"),
    )
    assert sum(math.prod(s.shape) for s in specs) == PUBLISHED_ADAPTERS[name]
    keys = {s.key for s in specs}
    assert "ip_adapter.139.to_v_ip.weight" in keys and "ip_adapter.2.to_k_ip.weight" not in keys
    if spec.projection == "plain":
        expected = 1280 if spec.encoder == "vit-bigG" else 1024
        assert {s.key: s.shape for s in specs}["image_proj.proj.weight"] == (4 * 2048, expected)
    else:
        shapes = {s.key: s.shape for s in specs}
        assert shapes["image_proj.latents"] == (1, 16, 1280)
        assert shapes["image_proj.layers.3.0.to_kv.weight"] == (2560, 1280)


@pytest.mark.parametrize("folder", ["unet", "vae", "text_encoder", "text_encoder_2"])
def test_tiny_keeps_the_architecture_and_shrinks_sizes(folder: str) -> None:
    full, tiny = sdxl_config("full", folder), sdxl_config("tiny", folder)
    assert full.keys() == tiny.keys()
    structural = {
        "_class_name",
        "architectures",
        "down_block_types",
        "up_block_types",
        "mid_block_type",
        "addition_embed_type",
        "hidden_act",
        "vocab_size",
        "max_position_embeddings",
        "use_linear_projection",
        "in_channels",
        "out_channels",
        "latent_channels",
        "scaling_factor",
    }
    for key in structural & full.keys():
        assert tiny[key] == full[key], key


@pytest.mark.parametrize("size", ["tiny", "full"])
def test_cross_attention_width_is_both_text_encoders(size: Size) -> None:
    unet = sdxl_config(size, "unet")
    first, second = sdxl_config(size, "text_encoder"), sdxl_config(size, "text_encoder_2")
    assert unet["cross_attention_dim"] == first["hidden_size"] + second["hidden_size"]
    assert unet["projection_class_embeddings_input_dim"] == (
        second["projection_dim"] + 6 * unet["addition_time_embed_dim"]
    )


def test_tiny_encoders_differ_so_a_wrong_encoder_cannot_pass() -> None:
    vit_h = image_encoder_config("tiny", VIT_H_FOLDER)
    bigg = image_encoder_config("tiny", VIT_BIGG_FOLDER)
    assert vit_h["projection_dim"] != bigg["projection_dim"]
    assert vit_h["hidden_size"] != bigg["hidden_size"]
