"""The switches for repeatable CUDA kernels: set by make_deterministic, and on loading for
CUDA (checked on the CPU by reading torch's own state back)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

import reference_impl.pipeline as pipeline_module
from reference_impl import determinism
from reference_impl.build import ModelDirs
from reference_impl.determinism import Switches, make_deterministic, read


@pytest.fixture
def restored() -> Iterator[None]:
    """The process's switches as they were, whatever the test set."""
    before = read({})
    yield
    determinism.apply(before, {})


def test_make_deterministic_sets_every_switch(restored: None) -> None:
    environ: dict[str, str] = {}
    before = make_deterministic(environ)
    assert read(environ) == Switches(
        cudnn_deterministic=True,
        cudnn_benchmark=False,
        cudnn_attention=False,
        deterministic_algorithms=True,
        warn_only=True,
        cublas_workspace=":4096:8",
    )
    assert environ == {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    determinism.apply(before, environ)
    assert read(environ) == before
    assert environ == {}


def test_a_cublas_setting_already_given_is_kept(restored: None) -> None:
    environ = {"CUBLAS_WORKSPACE_CONFIG": ":16:8"}
    make_deterministic(environ)
    assert environ == {"CUBLAS_WORKSPACE_CONFIG": ":16:8"}


def test_loading_for_cuda_sets_them_before_the_model_loads(
    tiny_dirs: ModelDirs, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, Any]] = []

    def made() -> None:
        seen.append(("deterministic", None))

    class Loaded(Exception):
        pass

    def from_pretrained(*args: Any, **kwargs: Any) -> Any:
        seen.append(("load", kwargs["dtype"]))
        raise Loaded  # the model itself cannot go to CUDA here

    import diffusers

    monkeypatch.setattr(determinism, "make_deterministic", made)
    monkeypatch.setattr(diffusers.StableDiffusionXLPipeline, "from_pretrained", from_pretrained)
    with pytest.raises(Loaded):
        pipeline_module.load_pipeline(tiny_dirs.model_dir, tiny_dirs.ip_adapter_dir, "cuda:0")
    assert seen == [("deterministic", None), ("load", torch.float32)]

    seen.clear()
    with pytest.raises(Loaded):
        pipeline_module.load_pipeline(
            tiny_dirs.model_dir, tiny_dirs.ip_adapter_dir, "cuda", deterministic=False
        )
    with pytest.raises(Loaded):
        pipeline_module.load_pipeline(tiny_dirs.model_dir, tiny_dirs.ip_adapter_dir, "cpu")
    assert seen == [("load", torch.float32), ("load", torch.float32)]


def test_conformance_gives_its_server_the_cublas_setting() -> None:
    from reference_impl.conformance import serve_environment

    assert serve_environment({}) == {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    assert serve_environment({"CUBLAS_WORKSPACE_CONFIG": ":16:8"}) == {
        "CUBLAS_WORKSPACE_CONFIG": ":16:8"
    }
