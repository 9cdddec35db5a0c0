"""Placeholder images: a labelled PNG of exact size, rendered off the event loop, cached."""

from __future__ import annotations

import asyncio
import hashlib
import io
import textwrap
from collections import OrderedDict
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont


@dataclass(frozen=True)
class ImageSpec:
    """Everything that decides the pixels; equal specs give byte-equal PNGs."""

    job_id: str
    sample: int
    samples: int
    seed: int
    width: int
    height: int
    prompt: str


@dataclass(frozen=True)
class RenderedImage:
    png: bytes
    etag: str


def _colour(spec: ImageSpec) -> tuple[int, int, int]:
    digest = hashlib.sha256(f"{spec.job_id}/{spec.sample}/{spec.seed}".encode()).digest()
    # Mid-tones, so the black label stays readable on any of them.
    return (64 + digest[0] % 160, 64 + digest[1] % 160, 64 + digest[2] % 160)


def render(spec: ImageSpec) -> RenderedImage:
    """Draw the image for one sample: a colour from (job, sample, seed) and a label."""
    image = Image.new("RGB", (spec.width, spec.height), _colour(spec))
    draw = ImageDraw.Draw(image)
    size = max(8, min(spec.width, spec.height) // 24)
    font = ImageFont.load_default(size=size)
    columns = max(8, int(spec.width / (size * 0.6)) - 2)
    lines = [
        f"ipmock sample {spec.sample + 1} of {spec.samples}",
        f"{spec.width}x{spec.height} seed {spec.seed}",
        *textwrap.wrap(spec.prompt, columns)[: max(1, spec.height // (size * 2) - 3)],
    ]
    draw.multiline_text((size // 2, size // 2), "\n".join(lines), fill=(0, 0, 0), font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    png = buffer.getvalue()
    return RenderedImage(png, '"' + hashlib.sha256(png).hexdigest()[:32] + '"')


ENTRY_BYTES = 600
"""What a cached image costs beside its PNG's bytes (its spec, etag and job id, the bytes
object's header, the dict's node): about 525 bytes by tracemalloc. Weighed with each PNG,
so that ``max_bytes`` bounds the memory and not the PNGs alone (a "64 MiB" cache held 73)."""


class ImageCache:
    """Rendered images by spec, least recently used dropped beyond ``max_bytes``.

    Concurrent requests for one image share one render, run in a worker thread so a
    1024 x 1024 image never stalls the event loop.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._images: OrderedDict[ImageSpec, RenderedImage] = OrderedDict()
        self._size = 0
        self._rendering: dict[ImageSpec, asyncio.Future[RenderedImage]] = {}

    async def get(self, spec: ImageSpec) -> RenderedImage:
        if (cached := self._images.get(spec)) is not None:
            self._images.move_to_end(spec)
            return cached
        task = self._rendering.get(spec)
        if task is None:
            # A task of its own, so a client that hangs up mid-render cancels only its wait.
            task = asyncio.ensure_future(asyncio.to_thread(render, spec))
            self._rendering[spec] = task
            task.add_done_callback(lambda done: self._finish(spec, done))
        return await asyncio.shield(task)

    def _finish(self, spec: ImageSpec, task: asyncio.Future[RenderedImage]) -> None:
        del self._rendering[spec]
        if not task.cancelled() and task.exception() is None:
            self._store(spec, task.result())

    def _store(self, spec: ImageSpec, image: RenderedImage) -> None:
        self._images[spec] = image
        self._size += len(image.png) + ENTRY_BYTES
        while self._size > self.max_bytes and len(self._images) > 1:
            _, dropped = self._images.popitem(last=False)
            self._size -= len(dropped.png) + ENTRY_BYTES

    def clear(self) -> None:
        self._images.clear()
        self._size = 0
