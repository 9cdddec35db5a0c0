"""The rules JSON Schema cannot say (one scale and style image per adapter, LoRA weights
per model, a model UUID, prompts past 75 CLIP tokens, unknown fields), as errors or as
warnings that strict mode makes errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from mock_server.validation.outcome import MAX_UNKNOWN_FIELD_WARNINGS, FieldError
from mock_server.validation.schema import known_fields, properties
from mock_server.validation.tokens import PROMPT_TOKEN_LIMIT, count_tokens
from mock_server.words import closest, shorten

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def beyond_schema(
    body: Mapping[str, Any],
    errors: list[FieldError],
    warnings: list[FieldError],
    accept_model_uuid: bool,
) -> None:
    """Adds to ``errors`` and ``warnings`` what these rules find in a normalised body."""
    _unknown_fields(body, warnings)
    _cross_field_rules(body, errors, warnings)
    _lora_rules(body, warnings)
    _model_id(body, errors, warnings, accept_model_uuid)
    _prompt_tokens(body, warnings)


def _unknown_fields(body: Mapping[str, Any], warnings: list[FieldError]) -> None:
    known = known_fields()
    if known.issuperset(body):
        return  # the usual case, twice as fast as the list below
    unknown = [name for name in body if name not in known]
    for name in unknown[:MAX_UNKNOWN_FIELD_WARNINGS]:
        close = closest(name, properties())
        hint = f" (did you mean {close}?)" if close is not None else ""
        shown = shorten(name)
        warnings.append(
            FieldError(
                name,
                f"unknown field {shown} is ignored{hint}",
                "the documented fields",
                strict_message=f"unknown field {shown} is not allowed: "
                f"it is not a documented field{hint}",
            )
        )
    if len(unknown) > MAX_UNKNOWN_FIELD_WARNINGS:
        rest = len(unknown) - MAX_UNKNOWN_FIELD_WARNINGS
        warnings.append(
            FieldError(
                "",
                f"{rest} more unknown fields are ignored",
                strict_message=f"{rest} more unknown fields are not allowed",
            )
        )


def _cross_field_rules(
    body: Mapping[str, Any], errors: list[FieldError], warnings: list[FieldError]
) -> None:
    adapters = body.get("ip_adapter", [])
    if not isinstance(adapters, list):
        return
    scales = body.get("ip_adapter_scale")
    image = body.get("ip_adapter_image")
    styles = body.get("ip_adapter_style_images")
    n = len(adapters)
    if n == 0:
        for name, value in (
            ("ip_adapter_scale", scales),
            ("ip_adapter_image", image),
            ("ip_adapter_style_images", styles),
        ):
            if value:
                warnings.append(
                    FieldError(
                        name,
                        f"{name} is ignored: no ip_adapter is given",
                        strict_message=f"{name} is not allowed without an ip_adapter",
                    )
                )
    else:
        if isinstance(scales, list) and len(scales) != n:
            errors.append(
                FieldError(
                    "ip_adapter_scale",
                    f"ip_adapter_scale has {len(scales)} value(s) but ip_adapter names {n} "
                    f"adapter(s): give one scale per adapter",
                    f"{n} number(s) from 0 to 1",
                    scales,
                )
            )
        if not image:
            errors.append(
                FieldError(
                    "ip_adapter_image",
                    f"ip_adapter_image is required: it is the image for the primary adapter "
                    f"{adapters[0]}",
                    "an http:// or https:// URL, or a data:image/ URL",
                    image,
                )
            )
        if isinstance(styles, list) and len(styles) != n - 1:
            errors.append(
                FieldError(
                    "ip_adapter_style_images",
                    f"ip_adapter_style_images has {len(styles)} image(s) but ip_adapter names "
                    f"{n - 1} adapter(s) after the primary one: give one image each",
                    f"{n - 1} image URL(s)",
                    styles,
                )
            )
        elif styles is None and n > 1:
            errors.append(
                FieldError(
                    "ip_adapter_style_images",
                    f"ip_adapter_style_images is required: ip_adapter names {n - 1} adapter(s) "
                    f"after the primary one, each needs an image",
                    f"{n - 1} image URL(s)",
                )
            )


def _lora_rules(body: Mapping[str, Any], warnings: list[FieldError]) -> None:
    loras, weights = body.get("lora_models"), body.get("lora_weights")
    if not isinstance(weights, list) or not weights:
        return
    if not loras:
        warnings.append(
            FieldError(
                "lora_weights",
                "lora_weights is ignored: no lora_models given",
                strict_message="lora_weights is not allowed without lora_models",
            )
        )
    elif isinstance(loras, list) and len(loras) != len(weights):
        warnings.append(
            FieldError(
                "lora_weights",
                f"lora_weights has {len(weights)} value(s) but lora_models names {len(loras)}: "
                f"give one weight per model; the extra ones are ignored",
                f"{len(loras)} number(s) from 0 to 1",
                weights,
                strict_message=f"lora_weights has {len(weights)} value(s) but lora_models "
                f"names {len(loras)}: give one weight per model",
            )
        )


def _model_id(
    body: Mapping[str, Any],
    errors: list[FieldError],
    warnings: list[FieldError],
    accept_uuid: bool,
) -> None:
    model_id = body.get("model_id")
    if isinstance(model_id, str) and _UUID.fullmatch(model_id):
        target = warnings if accept_uuid else errors
        target.append(
            FieldError(
                "model_id",
                f'model_id {model_id} is a model UUID; the docs only accept "sdxl"'
                + ("; served as sdxl" if accept_uuid else ""),
                '"sdxl"',
                model_id,
                strict_message=f'model_id {model_id} is a model UUID; the docs only accept "sdxl"',
            )
        )


def _prompt_tokens(body: Mapping[str, Any], warnings: list[FieldError]) -> None:
    """A warning for each prompt past the token limit; prompts the schema refuses as too
    long are not counted (the BPE is quadratic in a run of emoji: a megabyte takes minutes)."""
    for name, longest in _prompt_max_lengths():
        text = body.get(name)
        if isinstance(text, str) and text and (longest is None or len(text) <= longest):
            n = count_tokens(text)
            if n > PROMPT_TOKEN_LIMIT:
                warnings.append(
                    FieldError(
                        name,
                        f"{name} has {n} CLIP tokens; only the first {PROMPT_TOKEN_LIMIT} are used",
                        f"at most {PROMPT_TOKEN_LIMIT} CLIP tokens",
                        text,
                        strict_message=f"{name} has {n} CLIP tokens; at most "
                        f"{PROMPT_TOKEN_LIMIT} are allowed",
                    )
                )


@cache
def _prompt_max_lengths() -> tuple[tuple[str, int | None], ...]:
    """Each prompt field and the longest the schema accepts (None: no limit)."""
    props = properties()
    return tuple(
        (name, props.get(name, {}).get("maxLength")) for name in ("prompt", "negative_prompt")
    )
