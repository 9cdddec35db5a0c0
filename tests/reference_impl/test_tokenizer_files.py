"""CLIP's vocabulary, extracted from instant-clip-tokenizer, tokenizes as CLIP does."""

from __future__ import annotations

import json
from pathlib import Path

import instant_clip_tokenizer
import pytest
from transformers import CLIPTokenizer

from mock_server.validation.tokens import count_tokens
from reference_impl.build import ModelDirs
from reference_impl.tokenizer_files import (
    END_OF_TEXT,
    NUM_MERGES,
    START_OF_TEXT,
    VOCAB_SIZE,
    bytes_to_unicode,
    clip_merges,
    clip_vocab,
    write_tokenizer_files,
)
from tests.support.pictures import PROMPT

DOCS_PROMPT = (
    "cinematic still woman holding mango juice. emotional, harmonious, vignette, highly "
    "detailed, high budget, bokeh, cinemascope, moody, epic, gorgeous, film grain, grainy "
    "holding a glass of mango juice,"
)
PROMPTS = [
    "a photo of a cat",
    PROMPT,
    DOCS_PROMPT,
    "Hello, World!! It's 2024: 3.14 apples & don't-stop; <b>bold</b>",
    "  runs   of\twhitespace\nand newlines  ",
    "émigré café naïve Ünïcödé 東京 😀🚀",
    "error, cropped, worst quality, low quality, extra fingers, mutated hands",
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> CLIPTokenizer:
    folder = tmp_path_factory.mktemp("clip-tokenizer")
    write_tokenizer_files(folder)
    return CLIPTokenizer.from_pretrained(folder)


def test_vocabulary_is_clips() -> None:
    vocab = clip_vocab()
    assert len(vocab) == VOCAB_SIZE == 49408
    assert len(clip_merges()) == NUM_MERGES == 48894
    assert clip_merges()[0] == ("i", "n")
    assert vocab[START_OF_TEXT] == 49406 and vocab[END_OF_TEXT] == 49407
    chars = list(bytes_to_unicode().values())
    assert [vocab[c] for c in chars] == list(range(256))
    assert [vocab[c + "</w>"] for c in chars] == list(range(256, 512))
    assert vocab["in"] == 512  # the first merge
    assert vocab["a</w>"] == 320 and vocab["cat</w>"] == 2368


def test_files_are_what_clip_tokenizer_reads(tmp_path: Path) -> None:
    write_tokenizer_files(tmp_path)
    merges = (tmp_path / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert merges[0] == "#version: 0.2" and len(merges) == 1 + NUM_MERGES
    assert json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8")) == clip_vocab()


def test_a_photo_of_a_cat(tokenizer: CLIPTokenizer) -> None:
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_same_ids_as_instant_clip_tokenizer(tokenizer: CLIPTokenizer, prompt: str) -> None:
    ids = instant_clip_tokenizer.Tokenizer().encode(prompt)
    assert tokenizer(prompt).input_ids == [49406, *ids, 49407]


def test_token_count_agrees_with_the_servers(tokenizer: CLIPTokenizer) -> None:
    assert len(tokenizer(DOCS_PROMPT).input_ids) - 2 == count_tokens(DOCS_PROMPT)


def test_built_tokenizers_pad_and_truncate_like_sdxls(tiny_dirs: ModelDirs) -> None:
    first = CLIPTokenizer.from_pretrained(tiny_dirs.model_dir / "tokenizer")
    second = CLIPTokenizer.from_pretrained(tiny_dirs.model_dir / "tokenizer_2")
    for tok in (first, second):
        assert tok.model_max_length == 77
        long = tok(" ".join(["cat"] * 100), truncation=True, padding="max_length").input_ids
        assert len(long) == 77 and long[0] == 49406 and long[-1] == 49407
    # SDXL's first tokenizer pads with <|endoftext|>, the second (OpenCLIP bigG) with "!".
    assert first("a cat", padding="max_length").input_ids[-1] == 49407
    assert second("a cat", padding="max_length").input_ids[-1] == 0
