"""The reference server's generator: real SDXL + IP-Adapter images behind the mock's API.

``DiffusersGenerator`` plugs into ``mock_server.create_app(generator=...)``. Jobs of the
``generate`` scenario go into a queue; one worker takes them one at a time: it fetches
the adapter images (``reference_impl.fetch.load_image``, with the SSRF guards), runs
``reference_impl.pipeline.generate`` in a worker thread so the event loop keeps
answering polls, keeps the PNGs (least recently finished dropped beyond a byte budget)
and settles the job: SUCCESS, or FAILURE with ``job.error`` saying why. Jobs of other
scenarios (a test key, the admin queue) keep their scripted flow and placeholder images.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mock_server.clock import Clock
from mock_server.errors import ApiError
from mock_server.generators import GENERATE, PlaceholderGenerator
from mock_server.images import ImageCache, RenderedImage
from mock_server.jobs import Job
from mock_server.scenarios import REFUSALS
from mock_server.state import JobStore
from mock_server.validation import GenerationRequest
from reference_impl.fetch import FetchPolicy, ImageInputError, load_image
from reference_impl.pipeline import ReferencePipeline, generate, load_pipeline

if TYPE_CHECKING:
    import torch
    from PIL import Image

log = logging.getLogger("ipmock.reference")

DEFAULT_MAX_IMAGE_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_QUEUE = 1000


@dataclass(frozen=True)
class _Work:
    job: Job
    store: JobStore


def to_png(image: Image.Image) -> RenderedImage:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    png = buffer.getvalue()
    return RenderedImage(png, '"' + hashlib.sha256(png).hexdigest()[:32] + '"')


def failure_message(exc: BaseException) -> str:
    """What a client reads in ``error`` when its generation failed."""
    if isinstance(exc, ImageInputError):
        return f"could not use the input image: {exc}"
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            first_line = (str(exc).splitlines() or ["CUDA out of memory"])[0]
            return f"out of GPU memory: {first_line}"
    except ImportError:  # pragma: no cover - torch is what runs the model
        pass
    return f"generation failed: {type(exc).__name__}: {exc}"


class DiffusersGenerator:
    """SDXL + IP-Adapters from local folders; one generation at a time, in a worker thread."""

    def __init__(
        self,
        model_dir: Path | str,
        ip_adapter_dir: Path | str,
        *,
        device: str = "cpu",
        dtype: torch.dtype | None = None,
        clock: Clock | None = None,
        allowed_networks: Iterable[str] = (),
        fetch_policy: FetchPolicy | None = None,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
        max_queue: int = DEFAULT_MAX_QUEUE,
        pipeline: ReferencePipeline | None = None,
    ) -> None:
        """``pipeline``: one already loaded (tests share one); else ``load`` loads it."""
        self.model_dir = Path(model_dir)
        self.ip_adapter_dir = Path(ip_adapter_dir)
        self.device = device
        self.dtype = dtype
        self.clock = clock or Clock()
        self.fetch_policy = fetch_policy or FetchPolicy(
            allowed_networks=tuple(allowed_networks)  # type: ignore[arg-type]  # parsed there
        )
        self.max_image_bytes = max_image_bytes
        self.max_queue = max_queue
        self.placeholders = PlaceholderGenerator(ImageCache())
        self.generated = 0
        """Generations run to completion (successful or not)."""
        self._pipeline = pipeline
        self._images: OrderedDict[str, list[RenderedImage]] = OrderedDict()
        self._image_bytes = 0
        self._queue: asyncio.Queue[_Work] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._running = 0

    # --- The model --------------------------------------------------------------------

    def load(self) -> ReferencePipeline:
        """Load the pipeline (once); blocking. Call it at start-up to fail early."""
        if self._pipeline is None:
            import torch

            dtype = self.dtype or (torch.float16 if self.device.startswith("cuda") else None)
            log.info("loading SDXL from %s on %s ...", self.model_dir, self.device)
            started = time.perf_counter()
            self._pipeline = load_pipeline(self.model_dir, self.ip_adapter_dir, self.device, dtype)
            log.info("model loaded in %.1f s", time.perf_counter() - started)
        return self._pipeline

    # --- The Generator protocol -------------------------------------------------------

    async def start(self, job: Job, store: JobStore) -> None:
        if job.scenario.name != GENERATE.name or job.state != "PENDING":
            return
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._work(self._queue), name="ipmock-generate")
        if self._queue.qsize() >= self.max_queue:
            await self._settle(work=_Work(job, store), error="the generation queue is full")
            return
        self._queue.put_nowait(_Work(job, store))

    async def image(self, job: Job, sample: int) -> RenderedImage:
        if job.scenario.name != GENERATE.name:
            return await self.placeholders.image(job, sample)
        images = self._images.get(job.id)
        if images is None or sample >= len(images):
            raise ApiError.refusal(REFUSALS["image-gone"])
        self._images.move_to_end(job.id)
        return images[sample]

    async def waiting(self) -> int:
        """Jobs queued or running."""
        return 0 if self._queue is None else self._queue.qsize() + self._running

    async def idle(self) -> None:
        """Wait until every queued job has been settled."""
        if self._queue is not None:
            await self._queue.join()

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    # --- The worker -------------------------------------------------------------------

    async def _work(self, queue: asyncio.Queue[_Work]) -> None:
        while True:
            work = await queue.get()
            self._running = 1
            try:
                await self._run(work)
            except Exception:  # never let one job stop the worker
                log.exception("settling job %s failed", work.job.id)
            finally:
                self._running = 0
                queue.task_done()

    async def render(self, job: Job) -> list[RenderedImage]:
        """The job's images, made by the model (the input images fetched first); raises
        on any failure (``failure_message`` words it for the client)."""
        started = time.perf_counter()
        request = replace(GenerationRequest.from_body(job.request), seed=job.seed)
        images = await self._fetch(request)
        pipeline = await asyncio.to_thread(self.load)
        pngs = await asyncio.to_thread(self._generate, pipeline, request, images)
        log.info(
            "job %s: %d image(s) of %dx%d, %d steps, in %.2f s",
            job.id,
            request.samples,
            request.width,
            request.height,
            request.num_inference_steps,
            time.perf_counter() - started,
        )
        return pngs

    async def _run(self, work: _Work) -> None:
        job = work.job
        try:
            pngs = await self.render(job)
        except Exception as exc:
            log.warning("job %s failed: %s", job.id, exc)
            await self._settle(work, error=failure_message(exc))
        else:
            self._keep(job.id, pngs)
            await self._settle(work, error=None)
        finally:
            self.generated += 1

    async def _fetch(self, request: GenerationRequest) -> list[Image.Image]:
        if not request.ip_adapter:
            return []
        urls: list[tuple[str, str]] = [("ip_adapter_image", request.ip_adapter_image or "")]
        urls += [
            (f"ip_adapter_style_images.{i}", url)
            for i, url in enumerate(request.ip_adapter_style_images)
        ]
        return [await load_image(url, field, self.fetch_policy) for field, url in urls]

    @staticmethod
    def _generate(
        pipeline: ReferencePipeline, request: GenerationRequest, images: list[Image.Image]
    ) -> list[RenderedImage]:
        return [to_png(image) for image in generate(pipeline, request, images)]

    def _keep(self, job_id: str, pngs: list[RenderedImage]) -> None:
        self._images[job_id] = pngs
        self._image_bytes += sum(len(p.png) for p in pngs)
        while self._image_bytes > self.max_image_bytes and len(self._images) > 1:
            _, dropped = self._images.popitem(last=False)
            self._image_bytes -= sum(len(p.png) for p in dropped)

    async def _settle(self, work: _Work, *, error: str | None) -> None:
        job = work.job
        job.state = "FAILURE" if error is not None else "SUCCESS"
        job.error = error
        job.finished_at = self.clock.now()
        await work.store.finish(job)


def load_generator(
    *,
    model_dir: Path | None,
    ip_adapter_dir: Path | None,
    random_weights: str | None,
    weights_cache: Path,
    device: str | None,
    allowed_networks: Iterable[str],
    clock: Clock,
) -> tuple[DiffusersGenerator, str]:
    """A generator with its model loaded (random weights built first if asked), and words
    for the banner. Progress goes to stdout, prefixed ``ipmock:``."""
    import torch

    from reference_impl.build import build_random_model_dir

    if not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("ipmock: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    if random_weights is not None:
        folder = weights_cache.expanduser() / random_weights
        log.info("random %s weights in %s (built once) ...", random_weights, folder)
        dirs = build_random_model_dir(random_weights, folder)  # type: ignore[arg-type]
        model_dir, ip_adapter_dir = dirs.model_dir, dirs.ip_adapter_dir
    if model_dir is None or ip_adapter_dir is None:
        raise ValueError("a model needs both folders, or random weights")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    generator = DiffusersGenerator(
        model_dir, ip_adapter_dir, device=device, clock=clock, allowed_networks=allowed_networks
    )
    generator.load()
    return generator, f"diffusers (SDXL + IP-Adapters from {model_dir}, on {device})"
