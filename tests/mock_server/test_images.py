"""Images: exact size, deterministic, labelled, cached, rendered off the event loop."""

from __future__ import annotations

import asyncio
import io
import os
import threading
import tracemalloc
from collections.abc import Callable

import httpx
import pytest
from PIL import Image

from mock_server import Clock
from mock_server.images import ENTRY_BYTES, ImageCache, ImageSpec, RenderedImage, render

pytestmark = pytest.mark.anyio

SUBMIT = "/sdxl/text2image/v1"


def spec(**changes: object) -> ImageSpec:
    base = {
        "job_id": "job-1",
        "sample": 0,
        "samples": 2,
        "seed": 7,
        "width": 320,
        "height": 200,
        "prompt": "a red fox",
    }
    return ImageSpec(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(("width", "height"), [(64, 64), (320, 200), (1024, 1024), (2048, 64)])
def test_png_of_exact_size(width: int, height: int) -> None:
    image = Image.open(io.BytesIO(render(spec(width=width, height=height)).png))
    assert image.format == "PNG"
    assert image.size == (width, height)


def test_deterministic_for_job_sample_seed() -> None:
    assert render(spec()).png == render(spec()).png
    base = render(spec())
    for change in ({"job_id": "job-2"}, {"sample": 1}, {"seed": 8}):
        assert render(spec(**change)).etag != base.etag


def test_label_is_drawn() -> None:
    """The label changes pixels: the same spec with another prompt differs where text is."""
    a = Image.open(io.BytesIO(render(spec(prompt="alpha")).png)).convert("RGB")
    b = Image.open(io.BytesIO(render(spec(prompt="omega")).png)).convert("RGB")
    background = a.getpixel((a.width - 1, a.height - 1))
    assert a.getpixel((a.width - 1, a.height - 1)) == b.getpixel((b.width - 1, b.height - 1))
    assert a.tobytes() != b.tobytes()
    dark = sum(a.convert("L").histogram()[:40])  # black label pixels
    assert dark > 50
    assert sum(background) >= 192  # the background is mid-tone, never black


async def test_cache_renders_once_under_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[ImageSpec] = []
    real = render

    def counting(s: ImageSpec) -> object:
        calls.append(s)
        return real(s)

    monkeypatch.setattr("mock_server.images.render", counting)
    cache = ImageCache()
    results = await asyncio.gather(*(cache.get(spec()) for _ in range(10)))
    assert len(calls) == 1
    assert len({r.png for r in results}) == 1
    await cache.get(spec())
    assert len(calls) == 1


async def test_cache_is_bounded() -> None:
    one = len(render(spec()).png) + ENTRY_BYTES
    cache = ImageCache(max_bytes=int(one * 2.5))
    for seed in range(5):
        await cache.get(spec(seed=seed))
    assert len(cache._images) == 2  # the newest two


async def test_render_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    real = render

    def recording(s: ImageSpec) -> object:
        seen.append(threading.get_ident())
        return real(s)

    monkeypatch.setattr("mock_server.images.render", recording)
    await ImageCache().get(spec(width=1024, height=1024))
    assert seen and seen[0] != loop_thread


async def test_download_over_http(
    make_client: Callable[..., httpx.AsyncClient], clock: Clock
) -> None:
    async with make_client(url_ttl=100) as client:
        body = {"prompt": "a red fox", "samples": 2, "width": 256, "height": 128, "seed": 3}
        success = await client.post(SUBMIT, json=body, headers={"API-Key": "test_success"})
        urls = success.json()["download_urls"]
        first = await client.get(urls[1])
        assert first.status_code == 200
        assert first.headers["content-type"] == "image/png"
        assert int(first.headers["content-length"]) == len(first.content)
        assert Image.open(io.BytesIO(first.content)).size == (256, 128)
        # With no API-Key header at all, too.
        bare = await client.get(urls[1], headers={"API-Key": ""})
        assert bare.content == first.content
        etag = first.headers["etag"]
        not_modified = await client.get(urls[1], headers={"If-None-Match": etag})
        assert not_modified.status_code == 304
        assert not_modified.content == b""
        assert (await client.get(urls[0])).content != first.content

        job_id = success.json()["id"]
        for missing in (
            f"/images/{job_id}/2.png",
            f"/images/{job_id}/0.jpg",
            "/images/nope/0.png",
            f"/images/{job_id}/../0.png",
        ):
            response = await client.get(missing)
            assert response.status_code == 404, missing

        clock.advance(100)
        expired = await client.get(urls[0])
        assert (expired.status_code, expired.json()["code"]) == (410, "expired")


async def test_no_images_before_success(client: httpx.AsyncClient) -> None:
    job_id = (await client.post(SUBMIT, json={"prompt": "x"})).json()["id"]
    assert (await client.get(f"/images/{job_id}/0.png")).status_code == 404


def test_cache_bounds_its_memory_not_only_its_pngs() -> None:
    # Small PNGs, where what an entry costs beside its PNG weighs most.
    cache = ImageCache(max_bytes=200_000)
    prompt = "a prompt of the usual length " * 4
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(5000):
            png = os.urandom(200)
            cache._store(ImageSpec(f"job{i}", 0, 1, i, 64, 64, prompt), RenderedImage(png, f"{i}"))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held <= cache.max_bytes
