"""`ipmock serve --backend diffusers`: the mock's API with images from the tiny SDXL (CPU).

In process: PENDING is real while the model works, SUCCESS brings PNGs of the requested
size (the same for the same seed), a bad input image is a FAILURE naming its field, jobs
run one at a time and the next runs after a failure, and refusal scenarios still refuse
without generating. Then the whole HTTP flow through a real `ipmock serve` subprocess,
driven by the docs' own example code.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import requests
from PIL import Image

import reference_impl.server as server_module
from contract_tests.server import running_server
from mock_server import Clock, Settings, create_app
from mock_server.config import load_book
from reference_impl.build import ModelDirs
from reference_impl.pipeline import ReferencePipeline
from reference_impl.server import DiffusersGenerator
from tests.contract_tests.test_docs_example_served import DOCS_EXAMPLE
from tests.support.pictures import picture

WAIT_S = 30.0
KEY = "sk-real-images"


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


FACE_PNG = png_bytes(picture(1, (64, 64)))
FACE_URL = "data:image/png;base64," + base64.b64encode(FACE_PNG).decode()
BODY: dict[str, Any] = {
    "prompt": "a lighthouse at dusk",
    "width": 64,
    "height": 64,
    "num_inference_steps": 2,
    "samples": 2,
    "seed": 5,
    "ip_adapter": ["ip-adapter_sdxl"],
    "ip_adapter_scale": [0.6],
    "ip_adapter_image": FACE_URL,
}


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), data[:16]
    with Image.open(io.BytesIO(data)) as image:
        return image.size


class Gate:
    """Wraps the pipeline call: counts calls and overlap, and can hold them back."""

    def __init__(self, generate: Callable[..., Any]) -> None:
        self.generate = generate
        self.open = threading.Event()
        self.open.set()
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        self.fail_next: BaseException | None = None
        """Raised by the next call instead of generating (an out-of-memory, say)."""
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            failure, self.fail_next = self.fail_next, None
        try:
            assert self.open.wait(WAIT_S)
            if failure is not None:
                raise failure
            return self.generate(*args)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    gate = Gate(server_module.generate)
    monkeypatch.setattr(server_module, "generate", gate)
    return gate


@pytest.fixture
async def served(
    reference: ReferencePipeline, tiny_dirs: ModelDirs
) -> AsyncIterator[tuple[httpx.AsyncClient, DiffusersGenerator]]:
    clock = Clock()
    generator = DiffusersGenerator(
        tiny_dirs.model_dir, tiny_dirs.ip_adapter_dir, clock=clock, pipeline=reference
    )
    app = create_app(
        Settings(), clock=clock, book=load_book(None, generating=True), generator=generator
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://real.test", headers={"API-Key": KEY}
    ) as client:
        yield client, generator
    await generator.close()


async def submit(client: httpx.AsyncClient, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    response = await client.post("/sdxl/text2image/v1", content=json.dumps(body), **kw)
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    assert answer["status"] == "PENDING"
    return answer


async def settled(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        response = await client.get(f"/sdxl/text2image/v1/status/{job_id}")
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        if answer["status"] != "PENDING":
            return answer
        await anyio.sleep(0.02)
    raise AssertionError(f"job {job_id} still PENDING after {WAIT_S} s")


async def downloads(client: httpx.AsyncClient, answer: dict[str, Any]) -> list[bytes]:
    assert answer["status"] == "SUCCESS", answer
    images = []
    for url in answer["download_urls"]:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/png"
        images.append(response.content)
    return images


Served = tuple[httpx.AsyncClient, DiffusersGenerator]


@pytest.mark.anyio
async def test_pending_while_generating_then_real_images(served: Served, gate: Gate) -> None:
    client, _ = served
    gate.open.clear()  # the model is "working" until the gate opens
    job = await submit(client, BODY)
    for _ in range(3):
        polled = (await client.get(f"/sdxl/text2image/v1/status/{job['id']}")).json()
        assert polled == {"status": "PENDING", "id": job["id"]}
        await anyio.sleep(0.02)
    not_yet = await client.get(f"/images/{job['id']}/0.png")
    assert not_yet.status_code == 404
    gate.open.set()
    first = await downloads(client, await settled(client, job["id"]))
    assert len(first) == 2
    assert all(png_size(image) == (64, 64) for image in first)
    assert first[0] != first[1], "each sample has its own noise"

    again = await downloads(client, await settled(client, (await submit(client, BODY))["id"]))
    assert again == first, "a fixed seed gives the same images"
    other = await submit(client, {**BODY, "seed": 6})
    assert (await downloads(client, await settled(client, other["id"])))[0] != first[0]
    assert gate.calls == 3


@pytest.mark.anyio
async def test_one_job_at_a_time_and_a_failure_does_not_stop_the_queue(
    served: Served, gate: Gate
) -> None:
    client, generator = served
    gate.open.clear()
    first = await submit(client, {**BODY, "samples": 1})
    bad = await submit(client, {**BODY, "ip_adapter_image": "data:image/png;base64,!!notbase64"})
    not_png = "data:image/png;base64," + base64.b64encode(b"not a picture").decode()
    bad_style = await submit(
        client,
        {
            **BODY,
            "ip_adapter": ["ip-adapter_sdxl", "ip-adapter_sdxl_vit-h"],
            "ip_adapter_scale": [0.5, 0.5],
            "ip_adapter_style_images": [not_png],
        },
    )
    last = await submit(client, {**BODY, "samples": 1, "seed": 9})
    await anyio.sleep(0.2)
    assert gate.calls == 1, "the later jobs wait for the first"
    assert (await client.get("/__mock/generation")).json() == {"waiting": 4}
    gate.open.set()

    failed = await settled(client, bad["id"])
    assert failed["status"] == "FAILURE"
    assert failed["code"] == "generation_failed"
    assert "ip_adapter_image" in failed["error"] and "base64" in failed["error"]
    failed_style = await settled(client, bad_style["id"])
    assert failed_style["status"] == "FAILURE"
    assert "ip_adapter_style_images.0" in failed_style["error"]
    assert "not an image" in failed_style["error"]
    assert len(await downloads(client, await settled(client, first["id"]))) == 1
    assert len(await downloads(client, await settled(client, last["id"]))) == 1
    assert gate.most_at_once == 1
    assert gate.calls == 2, "bad inputs fail before the model runs"
    assert generator.generated == 4
    assert (await client.get("/__mock/generation")).json() == {"waiting": 0}


@pytest.mark.anyio
async def test_out_of_gpu_memory_is_a_failure_that_says_so_and_the_next_job_runs(
    served: Served, gate: Gate
) -> None:
    import torch

    client, _ = served
    gate.fail_next = torch.cuda.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.10 GiB total capacity)\n"
        "See documentation for Memory Management"
    )
    failed = await settled(client, (await submit(client, BODY))["id"])
    assert failed["status"] == "FAILURE" and failed["code"] == "generation_failed"
    assert failed["error"] == (
        "out of GPU memory: CUDA out of memory. Tried to allocate 2.00 GiB "
        "(GPU 0; 79.10 GiB total capacity)"
    )
    after = await settled(client, (await submit(client, BODY))["id"])
    assert len(await downloads(client, after)) == 2
    assert gate.calls == 2


@pytest.mark.anyio
async def test_scenarios_named_by_the_request_still_work_without_the_model(
    served: Served, gate: Gate
) -> None:
    client, generator = served
    refused = await client.post(
        "/sdxl/text2image/v1", content=json.dumps(BODY), headers={"API-Key": "test_rate-limited"}
    )
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"
    scripted = await client.post(
        "/sdxl/text2image/v1", content=json.dumps(BODY), headers={"API-Key": "test_success"}
    )
    assert scripted.json()["status"] == "SUCCESS"
    placeholders = await downloads(client, scripted.json())
    assert [png_size(p) for p in placeholders] == [(64, 64)] * 2
    invalid = await client.post("/sdxl/text2image/v1", json={**BODY, "samples": 9})
    assert invalid.status_code == 400
    await generator.idle()
    assert gate.calls == 0 and generator.generated == 0


# --- A real `ipmock serve --backend diffusers` -----------------------------------------


class _OneImage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(FACE_PNG)))
        self.end_headers()
        self.wfile.write(FACE_PNG)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def image_host() -> Iterator[str]:
    """An http server on 127.0.0.1 that serves the face picture at any path."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _OneImage)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/face.png"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.socket
@pytest.mark.slow
def test_served_http_flow_with_the_docs_example_code(
    tiny_dirs: ModelDirs, tmp_path: Path, image_host: str
) -> None:
    cache = tmp_path / "weights"
    cache.mkdir()
    (cache / "tiny").symlink_to(tiny_dirs.model_dir.parent)  # built this session: reused
    args = (
        "--backend",
        "diffusers",
        "--random-weights",
        "tiny",
        "--weights-cache",
        str(cache),
        "--device",
        "cpu",
        "--allow-image-network",
        "127.0.0.0/8",
    )
    with running_server(*args, env={"OMP_NUM_THREADS": "1"}) as base:
        # The docs' code: a JSON string body, no Content-Type, the key in API-Key.
        url = f"{base}/sdxl/text2image/v1"
        headers = {"API-Key": "docs-reader"}
        data = {**DOCS_EXAMPLE, "width": 64, "height": 64, "num_inference_steps": 2}
        for image in (FACE_URL, image_host):
            data["ip_adapter_image"] = image
            response = requests.post(url, headers=headers, data=json.dumps(data), timeout=10)
            assert response.status_code == 202, response.text
            job_id = response.json()["id"]
            assert response.json()["status"] == "PENDING"
            deadline = time.monotonic() + WAIT_S
            while (
                answer := requests.get(f"{url}/status/{job_id}", headers=headers, timeout=10).json()
            )["status"] == "PENDING":
                assert time.monotonic() < deadline, "still PENDING"
                time.sleep(0.05)
            assert answer["status"] == "SUCCESS", answer
            assert len(answer["download_urls"]) == 1
            for download in answer["download_urls"]:
                assert download.startswith(f"{base}/images/{job_id}/")
                png = requests.get(download, timeout=10)
                assert png.status_code == 200
                assert png.headers["content-type"] == "image/png"
                assert png_size(png.content) == (64, 64)

        # Private addresses stay refused unless allowed; a refusal is a FAILURE naming why.
        data["ip_adapter_image"] = "http://10.0.0.1/face.png"
        job_id = requests.post(url, headers=headers, data=json.dumps(data), timeout=10).json()["id"]
        deadline = time.monotonic() + WAIT_S
        while (
            answer := requests.get(f"{url}/status/{job_id}", headers=headers, timeout=10).json()
        )["status"] == "PENDING":
            assert time.monotonic() < deadline, "still PENDING"
            time.sleep(0.05)
        assert answer["status"] == "FAILURE"
        assert "ip_adapter_image" in answer["error"] and "private" in answer["error"], answer


def test_serve_diffusers_needs_a_model(capsys: pytest.CaptureFixture[str]) -> None:
    from mock_server.cli import main

    assert main(["serve", "--backend", "diffusers"]) == 2
    assert "--model-dir" in capsys.readouterr().err
    assert main(["serve", "--random-weights", "tiny"]) == 2
    assert "needs --backend diffusers" in capsys.readouterr().err
    assert main(["serve", "--backend", "diffusers", "--model-dir", "/nowhere"]) == 2
    assert "--ip-adapter-dir" in capsys.readouterr().err
