"""Tiny SDXL + IP-Adapters with random weights: built once per session, loaded once on CPU."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from reference_impl.build import ModelDirs, build_random_model_dir
from reference_impl.pipeline import ReferencePipeline, generate, load_pipeline
from tests.support.pictures import checkerboard, make_request, picture, pixels


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> ModelDirs:
    return build_random_model_dir("tiny", tmp_path_factory.mktemp("tiny-models"), seed=0)


@pytest.fixture(scope="session")
def reference(tiny_dirs: ModelDirs) -> ReferencePipeline:
    torch.set_num_threads(1)  # tiny models: one thread is as fast, and never contends
    return load_pipeline(tiny_dirs.model_dir, tiny_dirs.ip_adapter_dir, "cpu", torch.float32)


@pytest.fixture(scope="session")
def face() -> Image.Image:
    return picture(1)


@pytest.fixture(scope="session")
def style() -> Image.Image:
    return checkerboard()


@pytest.fixture
def run(reference: ReferencePipeline) -> Callable[..., np.ndarray]:
    """Generate for request fields (and decoded adapter images); return the pixels."""

    def run(images: Sequence[Image.Image] = (), **fields: Any) -> np.ndarray:
        return pixels(generate(reference, make_request(**fields), list(images)))

    return run
