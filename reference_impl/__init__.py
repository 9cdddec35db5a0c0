"""Reference implementation: diffusers SDXL + IP-Adapter behind the same API (see issue 6).

Modules (torch, diffusers and transformers are imported only when a function needs them):

- ``configs/``: SDXL base 1.0 and h94/IP-Adapter configs, ``full`` size and ``tiny``.
- ``architectures``: reads those configs and builds the models (on the meta device).
- ``random_weights``: seeded per-tensor random values, written as (sharded) safetensors.
- ``adapters``: the four adapter names, their files, encoders and tensor layouts.
- ``tokenizer_files``: CLIP's BPE vocabulary from instant-clip-tokenizer, as HF files.
- ``build``: ``build_random_model_dir(size, path)``: both folders with random weights.
- ``pipeline``: ``load_pipeline`` and ``generate(pipeline, request, images)``.
- ``determinism``: the switches for repeatable CUDA kernels, set on loading for CUDA.
- ``fetch``: the adapter images from their URLs.
- ``python -m reference_impl build|generate``: the same by hand, with timings.
"""
