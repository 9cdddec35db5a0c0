"""Loading SDXL (tiny, CPU): a progress step per component with weights, in place of the
libraries' own bars, and every component loaded in the dtype asked for; an IP-Adapter set
loaded while serving says so in plain lines."""

from __future__ import annotations

import pytest
import torch
from diffusers.utils import logging as diffusers_logging
from transformers.utils import logging as transformers_logging

from reference_impl.build import ModelDirs
from reference_impl.pipeline import load_pipeline


@pytest.mark.slow
def test_loading_shows_a_step_per_component_and_no_library_bars(
    tiny_dirs: ModelDirs, capfd: pytest.CaptureFixture[str]
) -> None:
    reference = load_pipeline(tiny_dirs.model_dir, tiny_dirs.ip_adapter_dir, "cpu", torch.bfloat16)
    out, err = capfd.readouterr()
    lines = out.splitlines()  # not a terminal: a plain line per step
    label = f"loading SDXL from {tiny_dirs.model_dir}: "
    assert all(line.startswith(label) for line in lines), out
    assert [line.split(", ")[0].removeprefix(label) for line in lines] == [
        f"{i}/6 ({round(100 * i / 6)}%)" for i in range(1, 7)
    ]
    assert [line.split(" s: ")[1] for line in lines] == [
        "text_encoder (CLIPTextModel)",
        "text_encoder_2 (CLIPTextModelWithProjection)",
        "unet (UNet2DConditionModel)",
        "vae (AutoencoderKL)",
        "tokenizers and scheduler",
        "on cpu",
    ]
    assert "it/s" not in out + err and "Loading" not in err  # no tqdm bar of theirs
    assert diffusers_logging.is_progress_bar_enabled()  # theirs back on afterwards
    assert transformers_logging.is_progress_bar_enabled()
    pipe = reference.pipe
    for name in ("text_encoder", "text_encoder_2", "unet", "vae"):
        assert getattr(pipe, name).dtype == torch.bfloat16, name  # loaded one by one, as asked
    assert pipe.tokenizer is not None and pipe.scheduler is not None  # the rest from the index
    reference.adapters.activate(["ip-adapter_sdxl"])
    out, err = capfd.readouterr()
    lines = out.splitlines()
    assert lines[0] == "loading IP-Adapter set ip-adapter_sdxl ..."
    assert lines[1].startswith("loading IP-Adapter set ip-adapter_sdxl: done in ")
    assert "it/s" not in out + err and reference.adapters.loads == 1
