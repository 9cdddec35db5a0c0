"""Runs a GenerationRequest through diffusers' StableDiffusionXLPipeline with IP-Adapters.

``load_pipeline`` loads SDXL from a local diffusers folder once; ``generate`` maps every
request field to the pipeline argument of the same documented meaning and switches the
IP-Adapter set between requests without touching the UNet's own weights (loaded sets are
kept, least recently used first out). Adapters load through diffusers' own
``load_ip_adapter`` from a local h94/IP-Adapter folder.

Adapters whose image encoders differ (``ip-adapter_sdxl`` uses ViT-bigG, the ``_vit-h``
ones ViT-H) can be mixed: each image is then encoded by its own adapter's encoder, the
way diffusers' ``encode_image`` does it, and the pipeline gets ``ip_adapter_image_embeds``.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mock_server.cli import progress
from reference_impl.adapters import ADAPTERS, WEIGHTS_SUBFOLDER, adapter

if TYPE_CHECKING:
    import torch
    from PIL import Image
    from torch import nn

    from mock_server.validation import GenerationRequest

StableDiffusionXLPipeline = Any
"""diffusers' pipeline class; its lazy-import module gives type checkers nothing to read."""

DEFAULT_CACHED_SETS = 3
"""Adapter sets kept loaded. At full size in float16 one adapter weighs 0.7-0.85 GB."""
SEED_LIMIT = 2**32


@dataclass
class _LoadedSet:
    """What ``load_ip_adapter`` put into the UNet for one ordered tuple of adapters."""

    names: tuple[str, ...]
    processors: dict[str, Any]
    image_projection: nn.Module


@dataclass
class AdapterSets:
    """Which IP-Adapters the UNet carries now, and the sets loaded before, ready to swap in."""

    pipe: StableDiffusionXLPipeline
    ip_adapter_dir: Path
    max_sets: int = DEFAULT_CACHED_SETS
    active: tuple[str, ...] = ()
    loads: int = 0
    """How many times ``load_ip_adapter`` ran (a cache hit does not count)."""
    _sets: OrderedDict[tuple[str, ...], _LoadedSet] = field(default_factory=OrderedDict)
    _encoders: dict[str, nn.Module] = field(default_factory=dict)
    _feature_extractor: Any = None

    def activate(self, names: Sequence[str]) -> None:
        """Make the UNet carry exactly ``names``, in order (empty: no adapter)."""
        names = tuple(names)
        for name in names:
            adapter(name)  # unknown names fail before anything changes
        if len(set(names)) != len(names):
            raise ValueError(f"an IP-Adapter is named twice in {list(names)}")
        if names == self.active:
            return
        self.active = ()  # until the switch below completes
        if not names:
            self._detach()
        elif names in self._sets:
            self._sets.move_to_end(names)
            self._attach(self._sets[names])
        else:
            self._load(names)
        self.active = names

    def encoder(self, name: str) -> nn.Module:
        """The image encoder adapter ``name`` was trained with, loaded once."""
        folder = adapter(name).image_encoder_folder
        if folder not in self._encoders:
            from transformers import CLIPVisionModelWithProjection

            label = f"loading image encoder {folder}"
            with _library_bars_off(), progress.steps(None, label, terminal=False):
                model = CLIPVisionModelWithProjection.from_pretrained(
                    self.ip_adapter_dir,
                    subfolder=folder,
                    dtype=self.pipe.dtype,
                    local_files_only=True,
                )
            self._encoders[folder] = model.to(self.pipe.device)
        return self._encoders[folder]

    def _detach(self) -> None:
        self.pipe.unload_ip_adapter()

    def _load(self, names: tuple[str, ...]) -> None:
        self._detach()
        primary = adapter(names[0]).image_encoder_folder
        if primary in self._encoders:  # load_ip_adapter then keeps it and loads none
            self.pipe.register_modules(image_encoder=self._encoders[primary])
        # Plain lines even on a terminal: this runs while the server serves and logs.
        label = f"loading IP-Adapter set {', '.join(names)}"
        with _library_bars_off(), progress.steps(None, label, terminal=False):
            self.pipe.load_ip_adapter(
                str(self.ip_adapter_dir),
                subfolder=WEIGHTS_SUBFOLDER,
                weight_name=[adapter(n).weight_name for n in names],
                image_encoder_folder=primary,
                local_files_only=True,
            )
        self.loads += 1
        self._encoders[primary] = self.pipe.image_encoder
        # Built for the encoder's input size: 224 for ViT-H and ViT-bigG alike.
        self._feature_extractor = self.pipe.feature_extractor
        unet = self.pipe.unet
        projection = unet.encoder_hid_proj
        unet.encoder_hid_proj = None  # its resampler's attention is not the UNet's
        processors = dict(unet.attn_processors)
        unet.encoder_hid_proj = projection
        self._sets[names] = _LoadedSet(names, processors, projection)
        while len(self._sets) > self.max_sets:
            self._sets.popitem(last=False)

    def _attach(self, loaded: _LoadedSet) -> None:
        unet = self.pipe.unet
        unet.encoder_hid_proj = None
        unet.set_attn_processor(dict(loaded.processors))  # it pops from the dict it gets
        unet.encoder_hid_proj = loaded.image_projection
        unet.config.encoder_hid_dim_type = "ip_image_proj"  # as _load_ip_adapter_weights does
        self.pipe.register_modules(
            image_encoder=self.encoder(loaded.names[0]),
            feature_extractor=self._feature_extractor,
        )


@dataclass
class ReferencePipeline:
    """SDXL loaded once, plus the IP-Adapter sets it switches between; one job at a time."""

    pipe: StableDiffusionXLPipeline
    adapters: AdapterSets
    lock: threading.Lock = field(default_factory=threading.Lock)


_TORCHVISION_FALLBACK = re.compile(r"`(CLIP|Siglip)ImageProcessor` requires torchvision ")
"""transformers' note that these processors fall back to their PIL versions without
torchvision: the fallback is what the gpu extra means to use (it installs no torchvision)."""


class _TorchvisionFallbackFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _TORCHVISION_FALLBACK.match(record.getMessage())


def quiet_known_noise() -> None:
    """Silence exactly the lines the gpu extra printed on every start and generation, none
    of which asks anything of the user: transformers' CLIPImageProcessor and
    SiglipImageProcessor torchvision fallbacks, and diffusers' ``upcast_vae``
    FutureWarning (its SDXL pipeline calls it itself to decode a float16 VAE in float32).
    Every other warning and log line still shows."""
    logger = logging.getLogger("transformers.utils.import_utils")
    if not any(isinstance(f, _TorchvisionFallbackFilter) for f in logger.filters):
        logger.addFilter(_TorchvisionFallbackFilter())
    warnings.filterwarnings("ignore", r"`upcast_vae` is deprecated", FutureWarning)


def load_pipeline(
    model_dir: Path | str,
    ip_adapter_dir: Path | str,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    *,
    max_cached_sets: int = DEFAULT_CACHED_SETS,
    deterministic: bool = True,
) -> ReferencePipeline:
    """Load SDXL from a local diffusers folder; adapters come later from ``ip_adapter_dir``.

    On CUDA, ``deterministic`` sets the process's switches for repeatable kernels
    (``reference_impl.determinism``), and the VAE decodes in slices and tiles
    (``prepare_decode``). Progress is shown on stdout, a step per component with weights
    (``mock_server.cli.progress``), in place of diffusers' and transformers' own bars.
    """
    quiet_known_noise()  # before diffusers imports transformers' image processors
    import torch
    from diffusers import StableDiffusionXLPipeline as Pipeline

    device_type = torch.device(device).type
    if device_type == "cuda" and deterministic:
        from reference_impl.determinism import make_deterministic

        make_deterministic()  # before the first CUDA matrix product reads the cuBLAS setting
    dtype = dtype or torch.float32
    parts = _weighted_components(Path(model_dir))
    with (
        _library_bars_off(),
        progress.steps(len(parts) + 2, f"loading SDXL from {model_dir}") as work,
    ):
        loaded: dict[str, Any] = {}
        for name, library, class_name in parts:  # the ones with weights, each a step
            loader = getattr(importlib.import_module(library), class_name)
            loaded[name] = loader.from_pretrained(
                str(model_dir),
                subfolder=name,
                dtype=dtype,
                local_files_only=True,
                use_safetensors=True,
            )
            work.advance(note=f"{name} ({class_name})")
        pipe = Pipeline.from_pretrained(  # type: ignore[no-untyped-call]
            str(model_dir),
            **loaded,
            dtype=dtype,
            local_files_only=True,
            use_safetensors=True,
            add_watermarker=False,
        )
        work.advance(note="tokenizers and scheduler")
        pipe = pipe.to(device)
        work.advance(note=f"on {device}")
    pipe.set_progress_bar_config(disable=True)
    prepare_decode(pipe, device_type)
    return ReferencePipeline(pipe, AdapterSets(pipe, Path(ip_adapter_dir), max_cached_sets))


def _weighted_components(model_dir: Path) -> list[tuple[str, str, str]]:
    """(folder, library, class) of each component of ``model_index.json`` that has weight
    files (the text encoders, the UNet, the VAE), in the index's order."""
    index = json.loads((model_dir / "model_index.json").read_text())
    return [
        (name, entry[0], entry[1])
        for name, entry in index.items()
        if isinstance(entry, list)
        and entry[0] in ("diffusers", "transformers")
        and any((model_dir / name).glob("*.safetensors*"))
    ]


@contextmanager
def _library_bars_off() -> Iterator[None]:
    """diffusers' and transformers' own tqdm bars off meanwhile (ours counts their work;
    theirs redraw with carriage returns, which a log keeps as one long line)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    libraries = [
        library
        for library in (diffusers_logging, transformers_logging)
        if library.is_progress_bar_enabled()
    ]
    for library in libraries:
        library.disable_progress_bar()
    try:
        yield
    finally:
        for library in libraries:
            library.enable_progress_bar()


def prepare_decode(pipe: StableDiffusionXLPipeline, device_type: str) -> None:
    """On CUDA, decode latents one sample at a time, and in tiles above the VAE's tile size
    (1024 px at full size, so images up to 1024 x 1024 decode whole, as without tiling).

    The float32 decode diffusers runs for SDXL's VAE (``force_upcast``) is what runs out
    of memory for several large samples: 4 at 2048 x 2048 need an estimated 44 to 63 GiB at
    once. Elsewhere (CPU tests) decoding stays as diffusers does it by default.
    """
    if device_type == "cuda":
        pipe.vae.enable_slicing()
        pipe.vae.enable_tiling()


def uses_guidance(pipe: StableDiffusionXLPipeline, guidance_scale: float) -> bool:
    """Whether the pipeline runs classifier-free guidance (it does above 1, as diffusers)."""
    return guidance_scale > 1 and pipe.unet.config.time_cond_proj_dim is None


def call_arguments(request: GenerationRequest) -> dict[str, Any]:
    """The pipeline arguments a request sets, each from the field of the same meaning.

    ``model_id`` is always SDXL; ``strength`` only means something for image-to-image
    (schema/INTERPRETATION.md) and is not passed. An empty negative prompt means none, so
    SDXL's zeroed negative conditioning applies, as in diffusers. Sample ``i`` draws its
    noise from ``seed + i``, so a sample does not depend on how many were asked for.
    """
    import torch

    if not 0 <= request.seed < SEED_LIMIT:
        raise ValueError(f"seed {request.seed} must be resolved to 0..2**32-1 by the caller")
    return {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt or None,
        "num_inference_steps": request.num_inference_steps,
        "guidance_scale": request.guidance_scale,
        "width": request.width,
        "height": request.height,
        "num_images_per_prompt": request.samples,
        "generator": [
            torch.Generator("cpu").manual_seed((request.seed + i) % SEED_LIMIT)
            for i in range(request.samples)
        ],
        "output_type": "pil",
    }


def encode_adapter_images(
    pipeline: ReferencePipeline, images: Sequence[Image.Image], guidance: bool
) -> list[torch.Tensor]:
    """Each active adapter's image through that adapter's own encoder, as diffusers would.

    Returns ``ip_adapter_image_embeds``: per adapter ``[negative, positive]`` stacked on
    the first axis under guidance, else ``[positive]``.
    """
    import torch
    from diffusers.models.embeddings import ImageProjection

    pipe = pipeline.pipe
    layers = pipe.unet.encoder_hid_proj.image_projection_layers
    current = pipe.image_encoder
    embeds = []
    try:
        with torch.no_grad():  # outside the pipeline call, which has its own no_grad
            for name, image, layer in zip(pipeline.adapters.active, images, layers, strict=True):
                pipe.image_encoder = pipeline.adapters.encoder(name)
                hidden_states = not isinstance(layer, ImageProjection)  # plus adapters
                positive, negative = pipe.encode_image(image, pipe.device, 1, hidden_states)
                embeds.append(torch.stack([negative, positive]) if guidance else positive[None])
    finally:
        pipe.image_encoder = current
    return embeds


def generate(
    pipeline: ReferencePipeline, request: GenerationRequest, images: Sequence[Image.Image]
) -> list[Image.Image]:
    """Generate ``request.samples`` images of ``request.width`` x ``request.height``.

    ``images`` are the decoded adapter images in adapter order: ``ip_adapter_image`` for
    the first adapter, then one ``ip_adapter_style_images`` entry for each further one.
    """
    names = request.ip_adapter
    if len(images) != len(names):
        raise ValueError(
            f"{len(names)} IP-Adapter(s) need {len(names)} image(s), got {len(images)}"
        )
    if len(request.ip_adapter_scale) != len(names):
        raise ValueError(f"{len(names)} IP-Adapter(s) need as many scales")
    arguments = call_arguments(request)
    with pipeline.lock:
        pipe = pipeline.pipe
        pipeline.adapters.activate(names)
        if names:
            pipe.set_ip_adapter_scale(list(request.ip_adapter_scale))
            encoders = {ADAPTERS[n].image_encoder_folder for n in names}
            if len(encoders) == 1:  # one encoder: diffusers encodes the images itself
                arguments["ip_adapter_image"] = list(images)
            else:
                guidance = uses_guidance(pipe, request.guidance_scale)
                arguments["ip_adapter_image_embeds"] = encode_adapter_images(
                    pipeline, images, guidance
                )
        result = _run_pipeline(pipe, arguments)
    if len(result) != request.samples or any(
        image.size != (request.width, request.height) for image in result
    ):
        raise RuntimeError("the pipeline returned images of another number or size")
    return result


def _run_pipeline(pipe: StableDiffusionXLPipeline, arguments: dict[str, Any]) -> list[Image.Image]:
    """``pipe(**arguments)``, leaving the VAE in its dtype whatever happens, and the GPU's
    cache emptied after running out of its memory.

    diffusers casts a float16 VAE to float32 for the decode (``force_upcast``) and back only
    after a decode that succeeded: an error inside it (out of memory, say) would leave the
    VAE in float32, and every later job would fail on float16 latents.
    """
    import torch

    vae_dtype = pipe.vae.dtype
    out_of_memory = None
    try:
        images: list[Image.Image] = pipe(**arguments).images
    except torch.cuda.OutOfMemoryError as exc:
        # Without its traceback, which holds the frames (and tensors) of the failed call,
        # so that emptying the cache below frees them.
        out_of_memory = exc.with_traceback(None)
    finally:
        if pipe.vae.dtype != vae_dtype:
            pipe.vae.to(dtype=vae_dtype)
    if out_of_memory is not None:
        torch.cuda.empty_cache()
        raise out_of_memory
    return images
