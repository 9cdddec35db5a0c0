"""An error inside the VAE decode leaves the server working: the VAE keeps its dtype.

diffusers casts a float16 SDXL VAE to float32 for the decode (``force_upcast``) and back
only after a decode that succeeded. The tiny pipeline is loaded in float16 here (on the
CPU), so diffusers' own upcast runs; the decode is made to fail inside, after the upcast,
as an out-of-memory on a GPU would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import torch

from mock_server import Clock, Settings, create_app
from mock_server.config import load_book
from reference_impl.build import ModelDirs
from reference_impl.pipeline import ReferencePipeline, generate, load_pipeline, prepare_decode
from reference_impl.server import DiffusersGenerator
from tests.support.pictures import make_request

from .test_serve_diffusers import BODY, KEY, Served, downloads, settled, submit


@pytest.fixture(scope="module")
def half(tiny_dirs: ModelDirs) -> ReferencePipeline:
    return load_pipeline(tiny_dirs.model_dir, tiny_dirs.ip_adapter_dir, "cpu", torch.float16)


class FailingDecode:
    """Stands in for ``vae.decode`` once: checks that diffusers upcast the VAE, then raises."""

    def __init__(self, pipeline: ReferencePipeline, error: BaseException) -> None:
        self.vae = pipeline.pipe.vae
        self.decode: Callable[..., Any] = self.vae.decode
        self.error: BaseException | None = error
        self.dtypes: list[torch.dtype] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.dtypes.append(self.vae.dtype)
        error, self.error = self.error, None
        if error is not None:
            raise error
        return self.decode(*args, **kwargs)


@pytest.fixture
async def served_half(half: ReferencePipeline, tiny_dirs: ModelDirs) -> AsyncIterator[Served]:
    clock = Clock()
    generator = DiffusersGenerator(
        tiny_dirs.model_dir, tiny_dirs.ip_adapter_dir, clock=clock, pipeline=half
    )
    app = create_app(
        Settings(), clock=clock, book=load_book(None, generating=True), generator=generator
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://real.test",
        headers={"API-Key": KEY},
    ) as client:
        yield client, generator
    await generator.close()


@pytest.fixture
def emptied(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts calls of torch.cuda.empty_cache (a no-op without CUDA)."""
    calls: list[int] = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append(1))
    yield calls


@pytest.mark.anyio
async def test_an_error_inside_the_decode_then_the_next_job_succeeds(
    served_half: Served, half: ReferencePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = served_half
    body = {**BODY, "ip_adapter": [], "ip_adapter_scale": []}
    del body["ip_adapter_image"]
    decode = FailingDecode(half, RuntimeError("injected inside the decode"))
    monkeypatch.setattr(half.pipe.vae, "decode", decode)

    failed = await settled(client, (await submit(client, body))["id"])
    assert failed["status"] == "FAILURE"
    assert failed["error"] == "generation failed: RuntimeError: injected inside the decode"
    assert decode.dtypes == [torch.float32], "diffusers upcast the VAE before the decode"
    assert half.pipe.vae.dtype == torch.float16

    after = await settled(client, (await submit(client, body))["id"])
    assert len(await downloads(client, after)) == 2, after
    assert decode.dtypes == [torch.float32, torch.float32]
    assert half.pipe.vae.dtype == torch.float16


@pytest.mark.anyio
async def test_out_of_memory_inside_the_decode_empties_the_cache_and_the_next_job_runs(
    served_half: Served,
    half: ReferencePipeline,
    monkeypatch: pytest.MonkeyPatch,
    emptied: list[int],
) -> None:
    client, _ = served_half
    error = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 16.00 GiB")
    monkeypatch.setattr(half.pipe.vae, "decode", FailingDecode(half, error))

    failed = await settled(client, (await submit(client, BODY))["id"])
    assert failed["error"] == "out of GPU memory: CUDA out of memory. Tried to allocate 16.00 GiB"
    assert emptied == [1]
    assert half.pipe.vae.dtype == torch.float16
    after = await settled(client, (await submit(client, BODY))["id"])
    assert len(await downloads(client, after)) == 2, after
    assert emptied == [1], "only after running out of memory"


def test_an_error_before_the_decode_leaves_the_dtype_alone(
    half: ReferencePipeline, monkeypatch: pytest.MonkeyPatch, emptied: list[int]
) -> None:
    def unet_fails(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("injected in the UNet")

    monkeypatch.setattr(half.pipe.unet, "forward", unet_fails)
    with pytest.raises(ValueError, match="injected in the UNet"):
        generate(half, make_request(), [])
    assert half.pipe.vae.dtype == torch.float16
    assert emptied == [], "not an out-of-memory"


def test_on_cuda_the_vae_decodes_in_slices_and_tiles(half: ReferencePipeline) -> None:
    vae = half.pipe.vae
    prepare_decode(half.pipe, "cpu")
    assert (vae.use_slicing, vae.use_tiling) == (False, False)
    try:
        prepare_decode(half.pipe, "cuda")
        assert (vae.use_slicing, vae.use_tiling) == (True, True)
    finally:
        vae.disable_slicing()
        vae.disable_tiling()
