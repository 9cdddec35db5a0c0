"""Full-size SDXL + IP-Adapters on a GPU (by hand: ``pytest -m gpu tests/reference_impl -s``).

Builds full-size random weights (about 14 GB on disk, 1.5 minutes on 2 cores) unless
IPMOCK_MODELS names a folder holding ``sdxl-base/`` and ``ip-adapter/`` (built ones, or
real weights laid out the same way), then times 1024x1024 generations at 20 steps.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from reference_impl.build import ModelDirs, build_random_model_dir
from reference_impl.pipeline import ReferencePipeline, generate, load_pipeline
from tests.support.pictures import ALL_ADAPTERS, checkerboard, make_request, picture

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="needs CUDA: run by hand on a GPU machine (docs/gpu.md)",
    ),
    pytest.mark.timeout(1800),
]


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> ReferencePipeline:
    given = os.environ.get("IPMOCK_MODELS")
    if given:
        dirs = ModelDirs(Path(given) / "sdxl-base", Path(given) / "ip-adapter")
    else:
        dirs = build_random_model_dir("full", tmp_path_factory.mktemp("full-models"))
    return load_pipeline(dirs.model_dir, dirs.ip_adapter_dir, "cuda", torch.float16)


@pytest.mark.parametrize(
    "adapters",
    [
        [],
        *([name] for name in ALL_ADAPTERS),
        ["ip-adapter-plus-face_sdxl_vit-h", "ip-adapter_sdxl"],
    ],
    ids=lambda a: "+".join(a) or "none",
)
def test_full_size_generation(full: ReferencePipeline, adapters: list[str]) -> None:
    request = make_request(
        width=1024,
        height=1024,
        num_inference_steps=20,
        samples=1,
        ip_adapter=adapters,
        ip_adapter_scale=[0.6] * len(adapters),
    )
    images = [picture(1, (512, 512)), checkerboard((512, 512), 64)][: len(adapters)]
    generate(full, request, images)  # warm-up: kernels, adapter load
    torch.cuda.synchronize()
    started = time.perf_counter()
    (image,) = generate(full, request, images)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    pixels = np.asarray(image, dtype=np.float32)
    print(
        json.dumps(
            {
                "adapters": adapters,
                "seconds": round(seconds, 2),
                "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            }
        )
    )
    assert image.size == (1024, 1024)
    assert pixels.std() > 5  # not a black (NaN) or flat image
