"""`ipmock conformance`: the reference server keeps the contract and makes sensible images.

One command starts ``ipmock serve --backend diffusers`` (random weights of a given size,
or the user's folders), then checks it through its HTTP API only:

* image checks: the number of images is ``samples``, each exactly ``width`` x ``height``;
  the same seed twice gives identical PNG bytes; an IP-Adapter image changes the result;
  scale 0 gives (nearly) the no-adapter image; the change from the no-adapter image grows
  with the adapter scale (0.25 < 0.5 < 1.0, mean absolute pixel difference);
* the contract: ``contract_tests.verify.verify`` (the flow checks at the same size and
  steps, then schemathesis unless ``--no-fuzz``).

It shows its progress, ends with a summary table (check, result, time, figures) and
exits 0 when everything passed; ``--junit-xml`` writes one file with the image checks and
verify's suites. On CPU at tiny size it takes seconds (CI runs it); on a GPU at full size
see docs/gpu.md.
"""

from __future__ import annotations

import base64
import io
import itertools
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from contract_tests.server import ServerDidNotStart, running_server
from contract_tests.verify import CheckResult, flow_request, verify, write_junit
from mock_server.cli import progress
from mock_server.contract import STATUS_PATH, SUBMIT_PATH
from reference_impl.determinism import CUBLAS_WORKSPACE_CONFIG

ADAPTER = "ip-adapter_sdxl"
SCALES = (0.25, 0.5, 1.0)
SAMPLES = 2
SEED = 1234
EFFECT_MIN = 0.5
"""Mean absolute difference (0-255 pixels) an adapter at scale 1 must make at least."""
SCALE_ZERO_MAX = 0.5
"""Mean absolute difference allowed between scale 0 and no adapter (exactly 0 on CPU)."""
FLAT_MAX = 1.0
"""Pixel standard deviation under which an image counts as flat (black from NaN, say)."""


@dataclass(frozen=True)
class Options:
    size: str = "tiny"
    model_dir: Path | None = None
    ip_adapter_dir: Path | None = None
    weights_cache: Path = Path("~/.cache/ipmock/weights")
    device: str | None = None
    width: int = 1024
    height: int = 1024
    steps: int = 20
    junit_xml: Path | None = None
    max_examples: int = 30
    fuzz: bool = True
    api_key: str = "ipmock-conformance"
    start_timeout: float = 1800.0
    job_timeout: float = 1800.0


def adapter_image(size: int = 224) -> str:
    """A deterministic picture with structure, as a data: URL (no network needed)."""
    rng = np.random.default_rng(7)
    x = np.linspace(0, 255, size)[None, :, None]
    y = np.linspace(0, 255, size)[:, None, None]
    picture = (x * 0.8 + y * 0.4) / 2 + rng.normal(0, 40, (size, size, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def serve_arguments(options: Options) -> list[str]:
    # Only our key is accepted, so schemathesis's checks of refused keys hold.
    args = ["--backend", "diffusers", "--log-level", "warning", "--api-key", options.api_key]
    if options.model_dir is not None or options.ip_adapter_dir is not None:
        if options.model_dir is None or options.ip_adapter_dir is None:
            raise ValueError("give both --model-dir and --ip-adapter-dir")
        args += ["--model-dir", str(options.model_dir)]
        args += ["--ip-adapter-dir", str(options.ip_adapter_dir)]
    else:
        args += ["--random-weights", options.size, "--weights-cache", str(options.weights_cache)]
    if options.device:
        args += ["--device", options.device]
    return args


def serve_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """What the server's environment gains: the cuBLAS workspace setting for repeatable
    sums on CUDA, unless one is given. The server sets the other switches itself when it
    loads the model on CUDA (``reference_impl.determinism``); the identical-PNG check
    rests on them."""
    env = dict(os.environ) if environ is None else environ
    return {"CUBLAS_WORKSPACE_CONFIG": env.get("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)}


class Client:
    """Submit, poll until done, download: the API as a client uses it."""

    def __init__(self, base_url: str, api_key: str, job_timeout: float) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"API-Key": api_key}, timeout=60.0)
        self.job_timeout = job_timeout

    def generate(self, body: dict[str, Any]) -> list[bytes]:
        """The PNGs of one finished job; raises when it does not succeed."""
        started = time.monotonic()
        answer = self.http.post(SUBMIT_PATH, json=body).json()
        while answer.get("status") == "PENDING":
            if time.monotonic() - started > self.job_timeout:
                raise TimeoutError(f"job {answer.get('id')} still PENDING")
            time.sleep(0.05)
            answer = self.http.get(STATUS_PATH.format(id=answer["id"])).json()
        if answer.get("status") != "SUCCESS":
            raise RuntimeError(f"job ended {answer.get('status')}: {answer.get('error')}")
        pngs = []
        for url in answer["download_urls"]:
            response = self.http.get(url)
            response.raise_for_status()
            pngs.append(response.content)
        return pngs

    def close(self) -> None:
        self.http.close()


def pixels(pngs: list[bytes]) -> np.ndarray:
    return np.stack(
        [np.asarray(Image.open(io.BytesIO(p)).convert("RGB"), dtype=np.int16) for p in pngs]
    )


def mean_diff(a: list[bytes], b: list[bytes]) -> float:
    first, second = pixels(a), pixels(b)
    if first.shape != second.shape:
        raise ValueError(f"shapes differ: {first.shape} and {second.shape}")
    return float(np.abs(first - second).mean())


def image_checks(client: Client, width: int, height: int, steps: int) -> list[CheckResult]:
    """Count, size, determinism, the adapter's effect, scale 0, growth with the scale."""
    base: dict[str, Any] = {
        "model_id": "sdxl",
        "prompt": "ipmock conformance: a lighthouse on a cliff at dusk, oil painting",
        "negative_prompt": "blurry, low quality",
        "width": width,
        "height": height,
        "num_inference_steps": steps,
        "guidance_scale": 7.5,
        "samples": SAMPLES,
        "seed": SEED,
    }
    image = adapter_image()

    def with_adapter(scale: float) -> dict[str, Any]:
        return {
            **base,
            "ip_adapter": [ADAPTER],
            "ip_adapter_image": image,
            "ip_adapter_scale": [scale],
        }

    jobs: dict[str, list[bytes]] = {}
    job_seconds: dict[str, float] = {}
    checks: list[CheckResult] = []

    def run(name: str, body: Callable[[], tuple[list[str], str]]) -> None:
        started = time.monotonic()
        try:
            problems, figures = body()
        except Exception as exc:  # a failed job fails its check, not the run
            problems, figures = [f"{type(exc).__name__}: {exc}"], ""
        check = CheckResult(name, problems, seconds=time.monotonic() - started, figures=figures)
        checks.append(check)
        # As it ends, so that a run cut by a time limit still shows it.
        print(f"  {'ok' if check.ok else 'FAIL'}: {name}: {figures}", flush=True)
        work.advance(note=f"{'ok' if check.ok else 'FAIL'} {name}")

    def job(key: str, body: dict[str, Any]) -> list[bytes]:
        if key not in jobs:
            started = time.monotonic()
            jobs[key] = client.generate(body)
            job_seconds[key] = time.monotonic() - started
        return jobs[key]

    def count_and_size() -> tuple[list[str], str]:
        pngs = job("adapter@1.0", with_adapter(1.0))
        problems = [] if len(pngs) == SAMPLES else [f"{len(pngs)} images for {SAMPLES} samples"]
        for i, png in enumerate(pngs):
            with Image.open(io.BytesIO(png)) as decoded:
                if decoded.format != "PNG" or decoded.size != (width, height):
                    problems.append(f"image {i}: {decoded.format} {decoded.size}")
        spread = float(pixels(pngs).std()) if not problems else 0.0
        if not problems and spread < FLAT_MAX:
            problems.append(f"flat images (pixel std {spread:.2f}): NaN or black output?")
        seconds = job_seconds["adapter@1.0"]
        return problems, f"{len(pngs)} PNG of {width}x{height}, pixel std {spread:.1f}; " + (
            f"job {seconds:.2f} s"
        )

    def determinism() -> tuple[list[str], str]:
        first = job("adapter@1.0", with_adapter(1.0))
        again = client.generate(with_adapter(1.0))
        if again == first:
            return [], "identical bytes"
        return [f"same seed, different images (mean |diff| {mean_diff(first, again):.3f})"], ""

    def effect() -> tuple[list[str], str]:
        diff = mean_diff(job("adapter@1.0", with_adapter(1.0)), job("none", base))
        figures = f"mean |diff| {diff:.3f} (needs >= {EFFECT_MIN})"
        return ([] if diff >= EFFECT_MIN else ["the adapter image changed too little"]), figures

    def scale_zero() -> tuple[list[str], str]:
        zero, none = job("adapter@0", with_adapter(0.0)), job("none", base)
        diff = mean_diff(zero, none)
        figures = f"mean |diff| {diff:.3f} (allowed <= {SCALE_ZERO_MAX})"
        if zero == none:
            figures = "identical bytes"
        return ([] if diff <= SCALE_ZERO_MAX else ["scale 0 changes the image"]), figures

    def growth() -> tuple[list[str], str]:
        none = job("none", base)
        diffs = [mean_diff(job(f"adapter@{s}", with_adapter(s)), none) for s in SCALES]
        figures = ", ".join(f"{s}: {d:.3f}" for s, d in zip(SCALES, diffs, strict=True))
        rising = all(a < b for a, b in itertools.pairwise(diffs))
        return ([] if rising else ["the difference does not grow with the scale"]), figures

    named: list[tuple[str, Callable[[], tuple[list[str], str]]]] = [
        (f"{SAMPLES} images of exactly {width}x{height}", count_and_size),
        ("the same seed twice gives identical PNGs", determinism),
        ("an IP-Adapter image changes the result", effect),
        ("scale 0 gives the no-adapter image", scale_zero),
        ("the change grows with the scale (0.25 < 0.5 < 1.0)", growth),
    ]
    with progress.steps(len(named), "ipmock conformance: image checks") as work:
        for name, body in named:
            run(name, body)
    return checks


def report(title: str, checks: list[CheckResult]) -> None:
    """The summary table: each check, its result, its time, its figures then problems."""
    progress.summary(
        title,
        [
            progress.Row(
                check.name,
                "ok" if check.ok else "FAIL",
                check.seconds or None,
                "\n".join(filter(None, [check.figures, *check.problems])),
            )
            for check in checks
        ],
    )


def _serve_and_check(options: Options, args: list[str]) -> list[CheckResult]:
    """The image checks and verify's result, against a fresh reference server."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as server:
        # The server's own progress (weights built, model loaded) is echoed meanwhile.
        with progress.steps(None, "ipmock conformance: starting the reference server"):
            url = server.enter_context(
                running_server(
                    *args, env=serve_environment(), echo=True, start_timeout=options.start_timeout
                )
            )
        print(f"reference server ready at {url} in {time.monotonic() - started:.1f} s\n")
        client = Client(url, options.api_key, options.job_timeout)
        try:
            checks = image_checks(client, options.width, options.height, options.steps)
        finally:
            client.close()
        # verify's JUnit XML is merged into the user's --junit-xml, which it names as its own.
        verify_xml = Path(scratch) / "verify.xml" if options.junit_xml is not None else None
        verify_started = time.monotonic()
        contract = verify(
            url,
            options.api_key,
            junit_xml=verify_xml,
            junit_shown=options.junit_xml,
            max_examples=options.max_examples,
            fuzz=options.fuzz,
            poll_interval=0.1,
            deadline=options.job_timeout,
            request=flow_request(width=options.width, height=options.height, steps=options.steps),
        )
        checks.append(
            CheckResult(
                "the contract (ipmock verify)",
                [] if contract == 0 else ["see ipmock verify's output above"],
                seconds=time.monotonic() - verify_started,
                figures="flow checks" + (" and schemathesis" if options.fuzz else ""),
            )
        )
        if options.junit_xml is not None and verify_xml is not None:
            images = checks[:-1]  # verify's own suites follow
            write_junit(options.junit_xml, "ipmock conformance: images", images, then=verify_xml)
    return checks


def conformance(options: Options) -> int:
    """Serve the reference, check its images and the contract; print a report; 0 if all pass."""
    try:
        args = serve_arguments(options)
    except ValueError as exc:
        print(f"ipmock conformance: {exc}", file=sys.stderr)
        return 2
    if threading.current_thread() is threading.main_thread():
        # Stopped by `timeout` (SIGTERM): stop the server too, so it frees the GPU.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"ipmock conformance: ipmock serve {' '.join(args)}", flush=True)
    try:
        checks = _serve_and_check(options, args)
    except ServerDidNotStart as exc:
        print(f"ipmock conformance: {exc}; its output is above", file=sys.stderr)
        return 1
    failed = sum(not c.ok for c in checks)
    print()
    report(
        f"ipmock conformance report ({options.width}x{options.height}, {options.steps} steps)",
        checks,
    )
    print(f"\nconformance: {len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0
