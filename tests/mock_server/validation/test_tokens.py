"""The 75-token limit counts real CLIP BPE tokens."""

from __future__ import annotations

from mock_server.validation.tokens import PROMPT_TOKEN_LIMIT, _tokenizer, count_tokens


def test_real_clip_vocabulary() -> None:
    # Well-known ids of OpenAI CLIP's vocabulary: "a</w>" 320, "photo</w>" 1125, "of</w>" 539,
    # "cat</w>" 2368; start and end of text 49406 and 49407.
    assert _tokenizer().encode("a photo of a cat") == [320, 1125, 539, 320, 2368]
    assert (_tokenizer().start_of_text(), _tokenizer().end_of_text()) == (49406, 49407)


def test_counts_bpe_pieces_not_words() -> None:
    assert count_tokens("cat") == 1
    assert count_tokens("cinematic") == 1
    assert count_tokens("supercalifragilistic") > 1
    assert count_tokens("mango juice, cat!") == 5  # mango juice , cat !
    assert count_tokens("bokeh") == 2  # bo keh: not in the vocabulary whole


def test_cleaned_like_clip() -> None:
    assert count_tokens("A   PHOTO\n of a\tcat ") == 5
    assert count_tokens("salt &amp; pepper") == count_tokens("salt & pepper") == 3


def test_limit_is_77_positions_minus_two_markers() -> None:
    assert PROMPT_TOKEN_LIMIT == 75
    assert count_tokens("cat " * 75) == 75
    assert count_tokens("") == 0
