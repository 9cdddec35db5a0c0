"""Random-weight folders: the published layouts, every file loading with its real loader."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, StableDiffusionXLPipeline, UNet2DConditionModel
from diffusers.models.embeddings import ImageProjection, IPAdapterPlusImageProjection
from safetensors import safe_open
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPVisionModelWithProjection

from reference_impl import adapters as ip
from reference_impl.architectures import (
    SDXL_COMPONENTS,
    VIT_BIGG_FOLDER,
    VIT_H_FOLDER,
    build_model,
    image_encoder_config,
    resampler_shape,
    sdxl_config,
)
from reference_impl.build import MARKER, ModelDirs, build_random_model_dir
from reference_impl.random_weights import (
    Shard,
    TensorSpec,
    default_workers,
    make_tensor,
    specs_for_model,
    write_safetensors,
    write_shards,
)
from tests.support.pictures import ALL_ADAPTERS

SDXL_FILES = [
    "model_index.json",
    "scheduler/scheduler_config.json",
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
    "text_encoder/config.json",
    "text_encoder/model.safetensors",
    "text_encoder_2/config.json",
    "text_encoder_2/model.safetensors",
    *(
        f"{t}/{f}"
        for t in ("tokenizer", "tokenizer_2")
        for f in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")
    ),
]
ADAPTER_FILES = [
    "sdxl_models/ip-adapter_sdxl.safetensors",
    "sdxl_models/ip-adapter_sdxl_vit-h.safetensors",
    "sdxl_models/ip-adapter-plus_sdxl_vit-h.safetensors",
    "sdxl_models/ip-adapter-plus-face_sdxl_vit-h.safetensors",
    "sdxl_models/image_encoder/config.json",
    "sdxl_models/image_encoder/model.safetensors",
    "models/image_encoder/config.json",
    "models/image_encoder/model.safetensors",
]


def _keys(path: Path) -> dict[str, tuple[int, ...]]:
    with safe_open(str(path), "pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (a safetensors file, not a dict)


def test_layouts_are_the_published_ones(tiny_dirs: ModelDirs) -> None:
    for name in SDXL_FILES:
        assert (tiny_dirs.model_dir / name).is_file(), name
    for name in ADAPTER_FILES:
        assert (tiny_dirs.ip_adapter_dir / name).is_file(), name
    index = json.loads((tiny_dirs.model_dir / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"


@pytest.mark.parametrize(
    ("folder", "cls"),
    [("unet", UNet2DConditionModel), ("vae", AutoencoderKL)],
)
def test_diffusers_components_load_every_key(tiny_dirs: ModelDirs, folder: str, cls: type) -> None:
    _, info = cls.from_pretrained(tiny_dirs.model_dir / folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]


@pytest.mark.parametrize(
    ("path", "cls"),
    [
        ("sdxl/text_encoder", CLIPTextModel),
        ("sdxl/text_encoder_2", CLIPTextModelWithProjection),
        (f"ip/{VIT_H_FOLDER}", CLIPVisionModelWithProjection),
        (f"ip/{VIT_BIGG_FOLDER}", CLIPVisionModelWithProjection),
    ],
)
def test_transformers_components_load_every_key(tiny_dirs: ModelDirs, path: str, cls: type) -> None:
    root, _, sub = path.partition("/")
    folder = (tiny_dirs.model_dir if root == "sdxl" else tiny_dirs.ip_adapter_dir) / sub
    _, info = cls.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]


def test_text_encoder_keys_are_spelled_as_in_published_checkpoints(tiny_dirs: ModelDirs) -> None:
    keys = _keys(tiny_dirs.model_dir / "text_encoder" / "model.safetensors")
    assert "text_model.embeddings.token_embedding.weight" in keys
    assert keys["text_model.embeddings.token_embedding.weight"][0] == 49408


@pytest.mark.parametrize("name", ALL_ADAPTERS)
def test_adapter_files_hold_the_original_key_names(tiny_dirs: ModelDirs, name: str) -> None:
    spec = ip.ADAPTERS[name]
    keys = _keys(tiny_dirs.ip_adapter_dir / "sdxl_models" / spec.weight_name)
    unet = build_model(SDXL_COMPONENTS[0], sdxl_config("tiny", "unet"))
    layers = ip.cross_attention_layers(unet)
    attention = {k for k in keys if k.startswith("ip_adapter.")}
    assert attention == {
        f"ip_adapter.{layer.number}.{proj}.weight"
        for layer in layers
        for proj in ("to_k_ip", "to_v_ip")
    }
    projection = {k for k in keys if k.startswith("image_proj.")}
    if spec.projection == "plain":
        assert projection == {
            f"image_proj.{k}" for k in ("proj.weight", "proj.bias", "norm.weight", "norm.bias")
        }
    else:
        assert {
            "image_proj.latents",
            "image_proj.proj_in.weight",
            "image_proj.layers.3.1.3.weight",
        } <= projection
        assert "image_proj.layers.0.0.to_kv.weight" in projection
    assert set(keys) == attention | projection


@pytest.mark.parametrize("name", ALL_ADAPTERS)
def test_each_adapter_loads_strictly_through_load_ip_adapter(
    tiny_dirs: ModelDirs, name: str
) -> None:
    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_dirs.model_dir, local_files_only=True)
    spec = ip.ADAPTERS[name]
    # low_cpu_mem_usage=False: diffusers then loads with load_state_dict(strict=True).
    pipe.load_ip_adapter(
        str(tiny_dirs.ip_adapter_dir),
        subfolder="sdxl_models",
        weight_name=spec.weight_name,
        image_encoder_folder=spec.image_encoder_folder,
        low_cpu_mem_usage=False,
        local_files_only=True,
    )
    (layer,) = pipe.unet.encoder_hid_proj.image_projection_layers
    expected = ImageProjection if spec.projection == "plain" else IPAdapterPlusImageProjection
    assert type(layer) is expected
    encoder = image_encoder_config("tiny", spec.image_encoder_folder)
    assert pipe.image_encoder.config.hidden_size == encoder["hidden_size"]
    processors = [p for p in pipe.unet.attn_processors.values() if hasattr(p, "to_k_ip")]
    assert len(processors) == len(ip.cross_attention_layers(pipe.unet))
    assert all(not t.is_meta for t in pipe.unet.parameters())
    if spec.projection == "resampler":
        assert layer.latents.shape[1] == resampler_shape("tiny").num_queries


def test_same_seed_same_weights_other_seed_other_weights(tmp_path: Path) -> None:
    model = build_model(SDXL_COMPONENTS[1], sdxl_config("tiny", "vae"))
    specs = specs_for_model(model)
    for folder, seed in (("a", 0), ("b", 0), ("c", 1)):
        write_safetensors(
            specs, tmp_path / folder, "m", seed=seed, dtype=torch.float32, namespace="vae"
        )

    def load(folder: str) -> dict[str, torch.Tensor]:
        with safe_open(str(tmp_path / folder / "m.safetensors"), "pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (a safetensors file, not a dict)

    a, b, c = load("a"), load("b"), load("c")
    weight = "decoder.conv_in.weight"
    assert torch.equal(a[weight], b[weight]) and not torch.equal(a[weight], c[weight])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_initialisation_follows_the_layer(tmp_path: Path) -> None:
    model = build_model(SDXL_COMPONENTS[0], sdxl_config("tiny", "unet"))
    specs = {s.key: s for s in specs_for_model(model)}
    assert (
        specs["conv_norm_out.weight"].init == "ones" and specs["conv_norm_out.bias"].init == "zeros"
    )
    conv = specs["conv_in.weight"]
    tensor = make_tensor(conv, seed=0, namespace="unet", dtype=torch.float32)
    assert conv.init == "uniform" and tensor.abs().max() <= conv.scale
    assert conv.scale == pytest.approx(1 / (4 * 3 * 3) ** 0.5)


def test_sharded_files_load_to_the_same_weights(tmp_path: Path) -> None:
    """Full size is written in shards; the same tensors must come back whole."""
    config = sdxl_config("tiny", "unet")
    specs = specs_for_model(build_model(SDXL_COMPONENTS[0], config))
    for folder, limit in (("whole", 1 << 40), ("sharded", 1 << 20)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "config.json").write_text(json.dumps(config))
        write_safetensors(
            specs,
            tmp_path / folder,
            "diffusion_pytorch_model",
            seed=3,
            dtype=torch.float32,
            namespace="unet",
            max_shard_bytes=limit,
        )
    index = json.loads(
        (tmp_path / "sharded" / "diffusion_pytorch_model.safetensors.index.json").read_text()
    )
    assert len(set(index["weight_map"].values())) > 1
    whole = UNet2DConditionModel.from_pretrained(tmp_path / "whole").state_dict()
    sharded = UNet2DConditionModel.from_pretrained(tmp_path / "sharded").state_dict()
    assert whole.keys() == sharded.keys()
    assert all(torch.equal(whole[k], sharded[k]) for k in whole)


def test_a_complete_folder_is_reused_and_another_seed_rebuilds(tmp_path: Path) -> None:
    dirs = build_random_model_dir("tiny", tmp_path, seed=5)
    weights = dirs.ip_adapter_dir / "sdxl_models" / "ip-adapter_sdxl.safetensors"
    first = weights.stat().st_mtime_ns
    assert build_random_model_dir("tiny", tmp_path, seed=5) == dirs
    assert weights.stat().st_mtime_ns == first
    assert json.loads((tmp_path / MARKER).read_text())["params"]["seed"] == 5
    before = weights.read_bytes()
    build_random_model_dir("tiny", tmp_path, seed=6)
    assert weights.read_bytes() != before


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != MARKER
    }


def test_written_over_processes_the_files_are_the_same_bytes(tmp_path: Path) -> None:
    """Each tensor has its own seed: two processes write what one does (small shards here,
    so that both have several files to write)."""
    shard = 1 << 20
    serial = build_random_model_dir("tiny", tmp_path / "serial", max_shard_bytes=shard, workers=1)
    parallel = build_random_model_dir("tiny", tmp_path / "two", max_shard_bytes=shard, workers=2)
    assert json.loads((tmp_path / "two" / MARKER).read_text())["workers"] == 2
    assert len(list(serial.model_dir.glob("unet/*.safetensors"))) > 1, "sharded"
    assert _digests(tmp_path / "serial") == _digests(tmp_path / "two")
    assert parallel.model_dir == tmp_path / "two" / "sdxl-base"


@pytest.mark.parametrize("workers", [1, 2])
def test_past_its_time_limit_the_build_stops_unfinished(tmp_path: Path, workers: int) -> None:
    with pytest.raises(TimeoutError, match=r"not written within 0 s \(0 of \d+ files done\)"):
        build_random_model_dir("tiny", tmp_path, workers=workers, time_limit=0)
    assert not (tmp_path / MARKER).exists(), "an unfinished folder is not marked built"
    dirs = build_random_model_dir("tiny", tmp_path, time_limit=600)
    assert (tmp_path / MARKER).exists() and dirs.model_dir.is_dir()


def test_the_tiny_build_stays_in_one_process_the_full_one_does_not() -> None:
    tiny = [Shard(Path("a"), (TensorSpec("w", (1000, 1000), "uniform"),), 0, "x", torch.float32)]
    assert default_workers(tiny) == 1
    full = [
        Shard(Path(str(i)), (TensorSpec("w", (1 << 30,), "uniform"),), 0, "x", torch.float16)
        for i in range(8)
    ]
    assert default_workers(full) == max(1, min(os.cpu_count() or 1, 8, _memory() // (3 << 32)))


def _memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@pytest.mark.slow
def test_a_process_that_fails_fails_the_build(tmp_path: Path) -> None:
    spec = (TensorSpec("w", (4, 4), "uniform"),)
    shards = [
        Shard(tmp_path / "a.safetensors", spec, 0, "x", torch.float32),
        Shard(tmp_path / "missing" / "b.safetensors", spec, 0, "x", torch.float32),
    ]
    with pytest.raises(RuntimeError, match=r"a process writing random weights failed \(exit 1\)"):
        write_shards(shards, workers=2, time_limit=300)


@pytest.mark.parametrize("workers", [1, 2])
def test_each_file_written_is_reported_once_in_this_process(tmp_path: Path, workers: int) -> None:
    spec = (TensorSpec("w", (64, 64), "uniform"),)
    shards = [Shard(tmp_path / f"{i}.safetensors", spec, i, "x", torch.float32) for i in range(5)]
    reported: list[Path] = []
    write_shards(
        shards, workers=workers, time_limit=300, on_written=lambda s: reported.append(s.path)
    )
    assert sorted(reported) == sorted(s.path for s in shards)
    assert all(path.is_file() for path in reported)  # reported once written, not before


def test_the_build_shows_its_progress_by_size_file_by_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_random_model_dir("tiny", tmp_path, max_shard_bytes=1 << 20, workers=1)
    lines = capsys.readouterr().out.splitlines()  # not a terminal: plain lines
    files = len(list(tmp_path.rglob("*.safetensors")))
    assert files > 10  # so a line each time another tenth is written, not each file
    label = f"random tiny weights ({files} files, 1 process): "
    assert all(line.startswith(label) for line in lines) and 2 <= len(lines) <= 10, lines
    shares = [int(line.split("(")[2].split("%")[0]) for line in lines]
    assert [s // 10 for s in shares] == sorted({s // 10 for s in shares}) and shares[-1] == 100
    done, total = lines[-1].removeprefix(label).split(" MB")[0].split("/")
    assert done == total and float(total) > 1  # megabytes written of the whole
    named = lines[-1].split(" s: ")[1]
    assert (tmp_path / named).is_file()  # the file just written
    build_random_model_dir("tiny", tmp_path, max_shard_bytes=1 << 20, workers=1)
    assert capsys.readouterr().out == ""  # built once: nothing to show again
