"""Seconds per image of the reference pipeline against plain diffusers, in the same run.

Loads SDXL + IP-Adapters once (random weights of a given size, or your folders), then
times ``reference_impl.pipeline.generate`` (what ``ipmock serve --backend diffusers``
runs for each job) and a plain ``diffusers.StableDiffusionXLPipeline`` built on the same
loaded modules, at W x H and N steps, 1 and 4 samples, without and with an IP-Adapter.
Prints a table of seconds per image with the ratio reference / diffusers.

    python -m bench.gpu_generation                     # full size, cuda, 1024x1024, 20 steps
    python -m bench.gpu_generation --size tiny --device cpu --width 64 --height 64 --steps 2

On a GPU machine without network, in one go: docs/gpu.md (scripts/gpu_run.sh).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from mock_server.validation import validate
from reference_impl.adapters import WEIGHTS_SUBFOLDER, adapter
from reference_impl.build import build_random_model_dir
from reference_impl.pipeline import (
    ReferencePipeline,
    generate,
    load_pipeline,
)

PROMPT = "cinematic still of a lighthouse on a cliff at dusk, oil painting"
NEGATIVE = "blurry, low quality"
SEED = 1234
SCALE = 0.6


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=["tiny", "full"], default="full")
    parser.add_argument("--model-dir", type=Path, help="your SDXL folder (diffusers layout)")
    parser.add_argument("--ip-adapter-dir", type=Path, help="your IP-Adapter folder")
    parser.add_argument(
        "--weights-cache", type=Path, default=Path("~/.cache/ipmock/weights"), metavar="DIR"
    )
    parser.add_argument("--device", help="default: cuda if available, else cpu")
    parser.add_argument("--dtype", choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--adapter", default="ip-adapter_sdxl")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per row (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per row")
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the figures here, row by row"
    )
    parser.add_argument(
        "--nondeterministic",
        action="store_true",
        help="on CUDA, leave torch's kernel choices as they are (the server makes them "
        "repeatable: reference_impl.determinism); compare the two to see what that costs",
    )
    return parser


def _request(args: argparse.Namespace, samples: int, adapters: list[str]) -> Any:
    body: dict[str, Any] = {
        "model_id": "sdxl",
        "prompt": PROMPT,
        "negative_prompt": NEGATIVE,
        "width": args.width,
        "height": args.height,
        "num_inference_steps": args.steps,
        "guidance_scale": 7.5,
        "samples": samples,
        "seed": SEED,
    }
    if adapters:
        body |= {
            "ip_adapter": adapters,
            "ip_adapter_scale": [SCALE],
            "ip_adapter_image": "https://example.test/face.png",  # not fetched: given below
        }
    return validate(json.dumps(body).encode()).request


def _face() -> Image.Image:
    rng = np.random.default_rng(7)
    x = np.linspace(0, 255, 224)[None, :, None]
    y = np.linspace(0, 255, 224)[:, None, None]
    picture = (x * 0.8 + y * 0.4) / 2 + rng.normal(0, 40, (224, 224, 3))
    return Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8))


def _time(
    run: Callable[[], list[Image.Image]], samples: int, args: argparse.Namespace
) -> tuple[float, np.ndarray]:
    """Median seconds per image over ``--repeat`` runs (after ``--warmup``), the last pixels."""
    cuda = torch.device(args.device).type == "cuda"
    seconds = []
    for i in range(args.warmup + args.repeat):
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        images = run()
        if cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        if len(images) != samples or images[0].size != (args.width, args.height):
            raise RuntimeError(f"got {len(images)} images of {images[0].size}")
        if i >= args.warmup:
            seconds.append(elapsed)
    pixels = np.stack([np.asarray(image.convert("RGB"), dtype=np.int16) for image in images])
    return statistics.median(seconds) / samples, pixels


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = torch.device(args.device).type == "cuda"
    dtype = getattr(torch, args.dtype or ("float16" if cuda else "float32"))
    if args.model_dir and args.ip_adapter_dir:
        model_dir, ip_adapter_dir = args.model_dir, args.ip_adapter_dir
    else:
        started = time.perf_counter()
        folder = args.weights_cache.expanduser() / args.size
        dirs = build_random_model_dir(args.size, folder)
        model_dir, ip_adapter_dir = dirs.model_dir, dirs.ip_adapter_dir
        print(f"random {args.size} weights in {folder} ({time.perf_counter() - started:.1f} s)")
    started = time.perf_counter()
    reference: ReferencePipeline = load_pipeline(
        model_dir, ip_adapter_dir, args.device, dtype, deterministic=not args.nondeterministic
    )
    loaded = time.perf_counter() - started
    import diffusers

    pipe = reference.pipe
    # The same modules: no second copy of the weights.
    plain: Any = diffusers.StableDiffusionXLPipeline(  # type: ignore[no-untyped-call]
        **pipe.components,
        force_zeros_for_empty_prompt=pipe.config.force_zeros_for_empty_prompt,
        add_watermarker=False,
    )
    plain.set_progress_bar_config(disable=True)
    face = _face()
    adapters = ["", args.adapter]
    figures: dict[tuple[str, int], dict[str, float]] = {}
    pixels: dict[tuple[str, int], np.ndarray] = {}
    device_name = torch.cuda.get_device_name() if cuda else platform.processor() or "cpu"
    meta = {
        "width": args.width,
        "height": args.height,
        "steps": args.steps,
        "size": args.size,
        "device": args.device,
        "device_name": device_name,
        "dtype": str(dtype),
        "repeat": args.repeat,
        "warmup": args.warmup,
        "load_s": loaded,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "deterministic": cuda and not args.nondeterministic,
    }
    rows: list[dict[str, Any]] = []

    def write(complete: bool) -> None:
        """The figures so far, rewritten as each row ends: a run cut short keeps its rows."""
        if args.json is not None:
            document = {"meta": meta, "rows": rows, "complete": complete}
            args.json.write_text(json.dumps(document, indent=2) + "\n")

    for name in adapters:
        # The reference, as the server runs a job (the adapter set loaded at its first use).
        for samples in args.samples:
            request = _request(args, samples, [name] if name else [])
            images = [face] if name else []

            def ours(request: Any = request, images: list[Image.Image] = images) -> list[Any]:
                return generate(reference, request, images)

            per_image, pixels[(name, samples)] = _time(ours, samples, args)
            figures[(name, samples)] = {"ipmock": per_image}
            print(f"ipmock    {name or 'no adapter':<28} samples {samples}: {per_image:.3f} s/img")

        # Plain diffusers on the same modules: load_ip_adapter as documented.
        reference.adapters.activate(())
        if name:
            spec = adapter(name)
            plain.load_ip_adapter(
                str(ip_adapter_dir),
                subfolder=WEIGHTS_SUBFOLDER,
                weight_name=spec.weight_name,
                image_encoder_folder=spec.image_encoder_folder,
                local_files_only=True,
            )
            plain.set_ip_adapter_scale(SCALE)
        for samples in args.samples:
            call: dict[str, Any] = {
                "prompt": PROMPT,
                "negative_prompt": NEGATIVE,
                "num_inference_steps": args.steps,
                "guidance_scale": 7.5,
                "width": args.width,
                "height": args.height,
                "num_images_per_prompt": samples,
            }
            if name:
                call["ip_adapter_image"] = face

            def run(call: dict[str, Any] = call, samples: int = samples) -> list[Image.Image]:
                generators = [torch.Generator("cpu").manual_seed(SEED + i) for i in range(samples)]
                images: list[Image.Image] = plain(**call, generator=generators).images
                return images

            per_image, theirs = _time(run, samples, args)
            row = figures[(name, samples)]
            row["diffusers"] = per_image
            # The same seeds and arguments: the images should match (up to kernel noise).
            row["mean_abs_diff"] = float(np.abs(pixels[(name, samples)] - theirs).mean())
            print(f"diffusers {name or 'no adapter':<28} samples {samples}: {per_image:.3f} s/img")
            rows.append(
                {
                    "adapter": name or None,
                    "samples": samples,
                    **row,
                    "ratio": row["ipmock"] / row["diffusers"],
                }
            )
            write(complete=False)
        if name:
            plain.unload_ip_adapter()

    print(
        f"\nseconds per image, {args.width}x{args.height}, {args.steps} steps, {args.size} "
        f"weights, {dtype} on {args.device} ({device_name}); median of {args.repeat} after "
        f"{args.warmup} warm-up; torch {torch.__version__}, diffusers {diffusers.__version__}; "
        f"model loaded in {loaded:.1f} s"
    )
    print(
        f"  {'adapter':<28} {'samples':>7} {'ipmock':>10} {'diffusers':>10} {'ratio':>6}"
        "  image |diff|"
    )
    for row in rows:
        label = f"{row['adapter']} @ {SCALE}" if row["adapter"] else "none"
        print(
            f"  {label:<28} {row['samples']:>7} {row['ipmock']:>10.3f} {row['diffusers']:>10.3f} "
            f"{row['ratio']:>6.2f}  {row['mean_abs_diff']:.3f}"
        )
    if cuda:
        meta["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
        print(f"  peak GPU memory {meta['peak_gpu_gib']:.2f} GiB")
    write(complete=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
