"""Writes CLIP's real BPE vocabulary as the vocab.json + merges.txt that CLIPTokenizer loads.

OpenAI CLIP's ``bpe_simple_vocab_16e6.txt`` lies inside the compiled module of the PyPI
package ``instant-clip-tokenizer`` (a dependency of ipmock), so no network is needed:
the text starts at ``#version: 0.2``. CLIP keeps the first 49152 - 256 - 2 = 48894 merges,
and its vocabulary is the 256 byte-level characters, the same with ``</w>``, each merge
joined, then ``<|startoftext|>`` and ``<|endoftext|>``: 49408 entries, ids in that order.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import util
from pathlib import Path

HEADER = "#version: 0.2"
VOCAB_SIZE = 49408
NUM_MERGES = 49152 - 256 - 2  # merges[1:49152-256-2+1] in CLIP's simple_tokenizer.py
START_OF_TEXT = "<|startoftext|>"
END_OF_TEXT = "<|endoftext|>"


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) map from each byte to a printable unicode character."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes), strict=True))


def _embedding_module() -> Path:
    spec = util.find_spec("instant_clip_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("instant-clip-tokenizer is not installed: it carries CLIP's vocabulary")
    folder = Path(next(iter(spec.submodule_search_locations)))
    modules = sorted(folder.glob("instant_clip_tokenizer*.so")) + sorted(
        folder.glob("instant_clip_tokenizer*.pyd")
    )
    if not modules:
        raise RuntimeError(f"no compiled module in {folder}")
    return modules[0]


@cache
def clip_merges() -> tuple[tuple[str, str], ...]:
    """The 48894 merges CLIP uses, in rank order, read from instant-clip-tokenizer's module."""
    blob = _embedding_module().read_bytes()
    start = blob.find(HEADER.encode() + b"\n")
    if start < 0:
        raise RuntimeError(
            "CLIP's bpe_simple_vocab_16e6 text was not found in instant-clip-tokenizer"
        )
    # Each merge line is at most a few dozen bytes; 2 MiB holds far more than needed.
    lines = blob[start : start + (2 << 20)].split(b"\n")[1 : NUM_MERGES + 1]
    merges: list[tuple[str, str]] = []
    for number, raw in enumerate(lines, start=1):
        parts = raw.decode("utf-8").split(" ")
        if len(parts) != 2 or not all(parts):
            raise RuntimeError(
                f"merge line {number} of the embedded vocabulary is malformed: {raw!r}"
            )
        merges.append((parts[0], parts[1]))
    if len(merges) != NUM_MERGES:
        raise RuntimeError(f"expected {NUM_MERGES} merges, found {len(merges)}")
    return tuple(merges)


def clip_vocab() -> dict[str, int]:
    """Token -> id, built exactly as OpenAI CLIP's SimpleTokenizer builds its encoder."""
    byte_chars = list(bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars]
    tokens += ["".join(merge) for merge in clip_merges()]
    tokens += [START_OF_TEXT, END_OF_TEXT]
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != VOCAB_SIZE:
        raise RuntimeError(f"CLIP vocabulary has {len(vocab)} distinct entries, not {VOCAB_SIZE}")
    return vocab


def write_tokenizer_files(folder: Path) -> None:
    """Write vocab.json and merges.txt (the Hugging Face CLIPTokenizer files) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(
        json.dumps(clip_vocab(), ensure_ascii=False), encoding="utf-8"
    )
    merges = "\n".join(f"{a} {b}" for a, b in clip_merges())
    (folder / "merges.txt").write_text(f"{HEADER}\n{merges}\n", encoding="utf-8")
