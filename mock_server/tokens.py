"""Counts prompt tokens with the real CLIP BPE vocabulary, offline.

The vocabulary is OpenAI CLIP's ``bpe_simple_vocab_16e6.txt``, which the PyPI package
``instant-clip-tokenizer`` embeds in its compiled module, so no network is needed. Text
is cleaned the way CLIP's own tokenizer cleans it (HTML entities unescaped, runs of
whitespace collapsed; the package lowercases) before encoding. SDXL's text encoders see
77 positions, two of them taken by the start and end markers: 75 tokens of prompt.
"""

from __future__ import annotations

import html
import re
from functools import cache

import instant_clip_tokenizer

PROMPT_TOKEN_LIMIT = 75
_WHITESPACE = re.compile(r"\s+")


@cache
def _tokenizer() -> instant_clip_tokenizer.Tokenizer:
    return instant_clip_tokenizer.Tokenizer()


def _clean(text: str) -> str:
    return _WHITESPACE.sub(" ", html.unescape(html.unescape(text))).strip()


def count_tokens(text: str) -> int:
    """Number of CLIP tokens in ``text``, without the start and end markers."""
    return len(_tokenizer().encode(_clean(text)))
