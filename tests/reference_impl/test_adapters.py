"""IP-Adapters: scale, image, choice, several at once, mixed encoders, switching."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from reference_impl.pipeline import ReferencePipeline, encode_adapter_images, generate
from tests.support.pictures import ALL_ADAPTERS, assert_differ, assert_same, make_request, picture

Run = Callable[..., np.ndarray]


@pytest.mark.parametrize("name", ALL_ADAPTERS)
def test_scale_zero_is_the_image_without_adapter(run: Run, face: Image.Image, name: str) -> None:
    assert_same(run([face], ip_adapter=[name], ip_adapter_scale=[0.0]), run())


@pytest.mark.parametrize("name", ALL_ADAPTERS)
def test_adapter_and_its_scale_change_the_image(run: Run, face: Image.Image, name: str) -> None:
    plain = run()
    weak = run([face], ip_adapter=[name], ip_adapter_scale=[0.3])
    strong = run([face], ip_adapter=[name], ip_adapter_scale=[1.0])
    assert_differ(weak, plain)
    assert_differ(strong, weak)
    assert_same(run([face], ip_adapter=[name]), strong)  # no scale given: 1.0


@pytest.mark.parametrize("name", ALL_ADAPTERS)
def test_another_image_changes_the_image(
    run: Run, face: Image.Image, style: Image.Image, name: str
) -> None:
    assert_differ(run([face], ip_adapter=[name]), run([style], ip_adapter=[name]))


def test_another_adapter_changes_the_image(run: Run, face: Image.Image) -> None:
    outputs = [run([face], ip_adapter=[name]) for name in ALL_ADAPTERS]
    for i in range(len(outputs)):
        for j in range(i + 1, len(outputs)):
            assert_differ(outputs[i], outputs[j])


def test_two_adapters_at_once(run: Run, face: Image.Image, style: Image.Image) -> None:
    a, b = "ip-adapter-plus-face_sdxl_vit-h", "ip-adapter_sdxl_vit-h"
    both = run([face, style], ip_adapter=[a, b], ip_adapter_scale=[0.8, 0.5])
    assert_differ(both, run([face], ip_adapter=[a], ip_adapter_scale=[0.8]))
    assert_differ(both, run([style], ip_adapter=[b], ip_adapter_scale=[0.5]))
    # Each adapter gets its own image and scale: silencing one leaves the other alone.
    assert_same(
        run([face, style], ip_adapter=[a, b], ip_adapter_scale=[0.8, 0.0]),
        run([face], ip_adapter=[a], ip_adapter_scale=[0.8]),
    )
    assert_same(
        run([face, style], ip_adapter=[a, b], ip_adapter_scale=[0.0, 0.5]),
        run([style], ip_adapter=[b], ip_adapter_scale=[0.5]),
    )
    assert_differ(both, run([face, style], ip_adapter=[a, b], ip_adapter_scale=[0.8, 0.9]))
    assert_differ(
        both,
        run(
            [face, Image.new("RGB", (50, 50), "white")],
            ip_adapter=[a, b],
            ip_adapter_scale=[0.8, 0.5],
        ),
    )


def test_four_adapters_at_once(run: Run) -> None:
    images = [picture(i) for i in range(4)]
    out = run(images, ip_adapter=list(ALL_ADAPTERS), ip_adapter_scale=[0.5, 0.4, 0.3, 0.2])
    assert_differ(out, run())


@pytest.mark.parametrize("guidance_scale", [1.0, 7.5])
def test_mixed_encoders_encode_each_image_with_its_own(
    run: Run, face: Image.Image, style: Image.Image, guidance_scale: float
) -> None:
    """ip-adapter_sdxl (ViT-bigG) with a ViT-H adapter: each image through its own encoder."""
    bigg, vit_h = "ip-adapter_sdxl", "ip-adapter-plus_sdxl_vit-h"
    g = guidance_scale
    mixed = run(
        [face, style], ip_adapter=[bigg, vit_h], ip_adapter_scale=[0.7, 0.6], guidance_scale=g
    )
    assert_differ(mixed, run([face], ip_adapter=[bigg], ip_adapter_scale=[0.7], guidance_scale=g))
    assert_same(
        run([face, style], ip_adapter=[bigg, vit_h], ip_adapter_scale=[0.7, 0.0], guidance_scale=g),
        run([face], ip_adapter=[bigg], ip_adapter_scale=[0.7], guidance_scale=g),
    )
    assert_same(
        run([face, style], ip_adapter=[bigg, vit_h], ip_adapter_scale=[0.0, 0.6], guidance_scale=g),
        run([style], ip_adapter=[vit_h], ip_adapter_scale=[0.6], guidance_scale=g),
    )
    # With ViT-H first, the other order loads ViT-H into the pipeline; bigG still comes in.
    assert_differ(
        run([style, face], ip_adapter=[vit_h, bigg], ip_adapter_scale=[0.6, 0.7], guidance_scale=g),
        run([style], ip_adapter=[vit_h], ip_adapter_scale=[0.6], guidance_scale=g),
    )


@pytest.mark.parametrize("guidance", [False, True])
def test_own_encoder_embeddings_equal_diffusers_own_encoding(
    reference: ReferencePipeline, face: Image.Image, style: Image.Image, guidance: bool
) -> None:
    """Where encoders agree, the embeds path must give what ip_adapter_image gives."""
    names = ["ip-adapter-plus_sdxl_vit-h", "ip-adapter_sdxl_vit-h"]
    reference.adapters.activate(names)
    reference.pipe.set_ip_adapter_scale([0.7, 0.5])
    common = {
        "prompt": "a cat",
        "num_inference_steps": 2,
        "width": 64,
        "height": 64,
        "guidance_scale": 7.5 if guidance else 1.0,
        "output_type": "np",
    }
    by_images = reference.pipe(
        **common, ip_adapter_image=[face, style], generator=torch.Generator().manual_seed(3)
    ).images
    embeds = encode_adapter_images(reference, [face, style], guidance)
    assert not any(e.requires_grad for e in embeds)  # no autograd graph kept on the GPU
    assert [e.shape[0] for e in embeds] == [2 if guidance else 1] * 2
    by_embeds = reference.pipe(
        **common, ip_adapter_image_embeds=embeds, generator=torch.Generator().manual_seed(3)
    ).images
    np.testing.assert_allclose(by_embeds, by_images, atol=1e-6)


def test_switching_keeps_the_unet_and_reuses_loaded_sets(
    reference: ReferencePipeline, face: Image.Image
) -> None:
    unet = reference.pipe.unet
    own = {k: v.clone() for k, v in unet.state_dict().items() if "encoder_hid_proj" not in k}
    a = make_request(ip_adapter=["ip-adapter-plus_sdxl_vit-h"], ip_adapter_scale=[0.8])
    b = make_request(ip_adapter=["ip-adapter_sdxl"], ip_adapter_scale=[0.8])
    none = make_request()
    first_a = generate(reference, a, [face])
    loads = reference.adapters.loads
    first_b = generate(reference, b, [face])
    plain = generate(reference, none, [])
    again_a = generate(reference, a, [face])
    again_b = generate(reference, b, [face])
    assert reference.adapters.loads - loads <= 1  # b at most once; a never again
    assert reference.pipe.unet is unet
    after = unet.state_dict()
    assert all(
        torch.equal(after[k], v)
        for k, v in own.items()
        if "to_k_ip" not in k and "to_v_ip" not in k
    )
    assert_same(np.asarray(again_a[0]), np.asarray(first_a[0]))
    assert_same(np.asarray(again_b[0]), np.asarray(first_b[0]))
    assert_same(np.asarray(generate(reference, none, [])[0]), np.asarray(plain[0]))


def test_evicted_sets_load_again(reference: ReferencePipeline, face: Image.Image) -> None:
    sets = [[name] for name in ALL_ADAPTERS]
    assert len(sets) > reference.adapters.max_sets
    outputs = [generate(reference, make_request(ip_adapter=s), [face]) for s in sets]
    loads = reference.adapters.loads
    again = generate(reference, make_request(ip_adapter=sets[0]), [face])  # evicted by now
    assert reference.adapters.loads == loads + 1
    assert_same(np.asarray(again[0]), np.asarray(outputs[0][0]))


def test_unknown_or_repeated_adapters_are_refused(reference: ReferencePipeline) -> None:
    with pytest.raises(ValueError, match="unknown IP-Adapter"):
        reference.adapters.activate(["ip-adapter_sd15"])
    with pytest.raises(ValueError, match="twice"):
        reference.adapters.activate(["ip-adapter_sdxl", "ip-adapter_sdxl"])
