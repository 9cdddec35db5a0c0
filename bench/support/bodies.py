"""Request bodies the benchmarks and the docs-example test send."""

from __future__ import annotations

from typing import Any

# The first example on the API docs page, as written there (its `//` comments dropped).
DOCS_EXAMPLE: dict[str, Any] = {
    "model_id": "sdxl",
    "prompt": "cinematic still woman holding mango juice. emotional, harmonious, vignette, "
    "highly detailed, high budget, bokeh, cinemascope, moody, epic, gorgeous, film grain, "
    "grainy holding a glass of mango juice,",
    "negative_prompt": "error, cropped, worst quality, low quality, duplicate, extra fingers, "
    "mutated hands, poorly drawn hands, poorly drawn face, deformed, blurry, bad anatomy, "
    "bad proportions, extra limbs, cloned face, disfigured, missing arms, missing legs, "
    "extra arms, extra legs, fused fingers, too many fingers, long neck",
    "num_inference_steps": 20,
    "ip_adapter": ["ip-adapter-plus_sdxl_vit-h"],
    "ip_adapter_scale": [0.6],
    "ip_adapter_style_images": [],  # For multi-ip-adapter
    "ip_adapter_image": "https://www.keep-calm-and-eat-ice-cream.com/wp-content/uploads/2022/"
    "08/Ice-cream-sundae-hero-11.jpg",
    "server_id": "",  # For enterprise users only
    "samples": 1,
    "guidance_scale": 7.5,
    "width": 1024,
    "height": 1024,
}

# The submit the throughput benchmarks send: the docs' example (one IP-Adapter, every
# field validated, both prompts token-counted with the CLIP vocabulary) with a short
# image URL, as every published figure in bench/README.md was measured with.
SUBMIT_BODY: dict[str, Any] = {**DOCS_EXAMPLE, "ip_adapter_image": "https://example.com/face.jpg"}
