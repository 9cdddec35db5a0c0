"""Requests as the server validates them, test pictures, and pixel comparisons."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from mock_server.validation import GenerationRequest, validate

TINY = {"num_inference_steps": 2, "width": 64, "height": 64, "seed": 1}
PROMPT = "cinematic still woman holding mango juice"
IMAGE_URL = "https://example.test/face.png"
STYLE_URL = "https://example.test/style.png"
VIT_H = ("ip-adapter_sdxl_vit-h", "ip-adapter-plus_sdxl_vit-h", "ip-adapter-plus-face_sdxl_vit-h")
ALL_ADAPTERS = ("ip-adapter_sdxl", *VIT_H)


def make_request(**fields: Any) -> GenerationRequest:
    """A request through the server's own validation: tiny defaults, adapter URLs filled in."""
    body: dict[str, Any] = {"prompt": PROMPT, **TINY, **fields}
    adapters = body.get("ip_adapter") or []
    if adapters:
        body.setdefault("ip_adapter_image", IMAGE_URL)
        body.setdefault("ip_adapter_style_images", [STYLE_URL] * (len(adapters) - 1))
    return validate(json.dumps(body).encode()).request


def picture(seed: int, size: tuple[int, int] = (120, 90)) -> Image.Image:
    """A deterministic RGB image with structure (gradients plus noise)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, size[0])[None, :, None]
    y = np.linspace(0, 255, size[1])[:, None, None]
    base = (x * rng.uniform(0.2, 1) + y * rng.uniform(0.2, 1)) / 2
    noisy = base + rng.normal(0, 40, (size[1], size[0], 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def checkerboard(size: tuple[int, int] = (64, 200), cell: int = 16) -> Image.Image:
    """Saturated red and blue squares: far from ``picture`` for any image encoder."""
    y, x = np.indices((size[1], size[0]))
    red = ((x // cell + y // cell) % 2 == 0)[..., None]
    return Image.fromarray(np.where(red, [230, 20, 20], [20, 20, 230]).astype(np.uint8))


def pixels(images: Sequence[Image.Image]) -> np.ndarray:
    return np.stack([np.asarray(image.convert("RGB"), dtype=np.int16) for image in images])


def assert_differ(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    assert np.abs(a - b).mean() > 0.5, "the outputs should differ visibly"


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    assert np.array_equal(a, b), f"outputs differ by up to {np.abs(a - b).max()}"
