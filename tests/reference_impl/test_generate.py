"""Every request field reaches the pipeline by its documented meaning (tiny SDXL, CPU)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from diffusers import StableDiffusionXLPipeline
from PIL import Image

from reference_impl.pipeline import ReferencePipeline, call_arguments, generate
from tests.support.pictures import assert_differ, assert_same, make_request

Run = Callable[..., np.ndarray]


def test_same_seed_same_image(run: Run) -> None:
    assert_same(run(seed=7), run(seed=7))


def test_another_seed_another_image(run: Run) -> None:
    assert_differ(run(seed=7), run(seed=8))


@pytest.mark.parametrize(
    ("field", "value", "other"),
    [
        ("prompt", "a red apple on a table", "a storm over the sea at night"),
        ("negative_prompt", "", "blurry, low quality"),
        ("negative_prompt", "blurry", "cartoon, watermark"),
        ("num_inference_steps", 2, 3),
        ("guidance_scale", 7.5, 12.0),
        ("guidance_scale", 1.0, 7.5),
        ("seed", 0, 4294967295),
    ],
)
def test_each_field_changes_the_image(run: Run, field: str, value: Any, other: Any) -> None:
    assert_differ(run(**{field: value}), run(**{field: other}))


def test_strength_is_recorded_but_has_no_effect_on_text_to_image(run: Run) -> None:
    assert "strength" not in call_arguments(make_request(strength=0.3))
    assert_same(run(strength=0.1), run(strength=0.9))


def test_model_id_uuid_is_served_as_sdxl(run: Run) -> None:
    assert_same(run(model_id="sdxl"), run(model_id="0b2c4a6e-1f3d-4e5a-9b7c-8d6e5f4a3b2c"))


def test_call_arguments_carry_each_field() -> None:
    request = make_request(
        prompt="p",
        negative_prompt="n",
        num_inference_steps=3,
        guidance_scale=9.5,
        width=96,
        height=72,
        samples=3,
        seed=4294967294,
    )
    args = call_arguments(request)
    assert {
        k: args[k]
        for k in (
            "prompt",
            "negative_prompt",
            "num_inference_steps",
            "guidance_scale",
            "width",
            "height",
            "num_images_per_prompt",
        )
    } == {
        "prompt": "p",
        "negative_prompt": "n",
        "num_inference_steps": 3,
        "guidance_scale": 9.5,
        "width": 96,
        "height": 72,
        "num_images_per_prompt": 3,
    }
    # Sample i draws its noise from seed + i, wrapping at 2**32.
    assert [g.initial_seed() for g in args["generator"]] == [4294967294, 4294967295, 0]
    # No negative prompt: None, so SDXL zeroes the negative conditioning as diffusers does.
    assert call_arguments(make_request())["negative_prompt"] is None


@pytest.mark.parametrize(("width", "height"), [(64, 64), (96, 64), (64, 120), (72, 80)])
def test_sizes_are_exact(reference: ReferencePipeline, width: int, height: int) -> None:
    images = generate(reference, make_request(width=width, height=height), [])
    assert [image.size for image in images] == [(width, height)]
    assert all(image.mode == "RGB" for image in images)


@pytest.mark.parametrize("samples", [1, 2, 4])
def test_sample_count_is_exact_and_samples_differ(
    reference: ReferencePipeline, samples: int
) -> None:
    images = generate(reference, make_request(samples=samples, width=64, height=72), [])
    assert len(images) == samples and {i.size for i in images} == {(64, 72)}
    arrays = [np.asarray(i, dtype=np.int16) for i in images]
    for a in range(samples):
        for b in range(a + 1, samples):
            assert np.abs(arrays[a] - arrays[b]).mean() > 0.5


def test_first_sample_does_not_depend_on_the_count(run: Run) -> None:
    one, four = run(samples=1), run(samples=4)
    assert np.abs(one[0] - four[0]).max() <= 2  # batch arithmetic may move a pixel by a unit


def test_seed_minus_one_must_be_resolved_by_the_caller(reference: ReferencePipeline) -> None:
    with pytest.raises(ValueError, match="resolved"):
        generate(reference, make_request(seed=-1), [])


def test_adapter_images_must_match_the_adapters(
    reference: ReferencePipeline, face: Image.Image
) -> None:
    request = make_request(ip_adapter=["ip-adapter_sdxl_vit-h", "ip-adapter-plus_sdxl_vit-h"])
    with pytest.raises(ValueError, match="2 image"):
        generate(reference, request, [face])
    with pytest.raises(ValueError, match="1 image"):
        generate(reference, make_request(ip_adapter=["ip-adapter_sdxl"]), [])


def test_the_pipeline_receives_images_and_scales(
    reference: ReferencePipeline,
    face: Image.Image,
    style: Image.Image,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}
    original = StableDiffusionXLPipeline.__call__

    def spy(self: StableDiffusionXLPipeline, **kwargs: Any) -> Any:
        seen.update(kwargs)
        seen["scales"] = {
            tuple(p.scale) for p in self.unet.attn_processors.values() if hasattr(p, "to_k_ip")
        }
        return original(self, **kwargs)

    monkeypatch.setattr(StableDiffusionXLPipeline, "__call__", spy)
    request = make_request(
        ip_adapter=["ip-adapter-plus-face_sdxl_vit-h", "ip-adapter_sdxl_vit-h"],
        ip_adapter_scale=[0.6, 0.25],
        samples=2,
    )
    generate(reference, request, [face, style])
    assert seen["ip_adapter_image"] == [face, style]
    assert seen["scales"] == {(0.6, 0.25)}
    assert seen["num_images_per_prompt"] == 2 and seen["width"] == 64
