"""What validating a body gives: the Accepted body and its GenerationRequest, or an
InvalidRequest naming each FieldError."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from mock_server.exceptions import IpmockError
from mock_server.validation.schema import known_fields
from mock_server.words import shorten

MAX_UNKNOWN_FIELD_WARNINGS = 20


@dataclass(frozen=True)
class FieldError:
    """One reason a request is refused (or, as a warning, accepted with a remark)."""

    field: str
    message: str
    allowed: str = ""
    value: Any = None
    strict_message: str = ""
    """A warning's message when strict mode refuses it, where ``message`` tells what is
    done instead (ignored, cut, served as); empty: ``message`` says it either way."""

    def refused(self) -> FieldError:
        """This warning as strict mode's error."""
        if not self.strict_message:
            return self
        return replace(self, message=self.strict_message, strict_message="")

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.allowed:
            body["allowed"] = self.allowed
        if self.value is not None:
            body["value"] = shorten(self.value)
        return body


class InvalidRequest(IpmockError):
    """The body cannot be served; ``errors`` names every offending field at once."""

    def __init__(self, errors: list[FieldError], warnings: list[FieldError] | None = None) -> None:
        self.errors = errors
        self.warnings = warnings or []
        super().__init__(summary(errors))


def summary(errors: list[FieldError]) -> str:
    return "; ".join(e.message for e in errors)


@dataclass(frozen=True)
class GenerationRequest:
    """A valid request with defaults filled in and list fields as tuples."""

    model_id: str
    prompt: str
    negative_prompt: str
    num_inference_steps: int
    guidance_scale: float
    width: int
    height: int
    samples: int
    seed: int
    strength: float | None
    ip_adapter: tuple[str, ...]
    ip_adapter_scale: tuple[float, ...]
    ip_adapter_image: str | None
    ip_adapter_style_images: tuple[str, ...]
    body: Mapping[str, Any] = field(repr=False, compare=False)
    """The normalised body, unknown fields included, as a JSON-ready dict."""

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> GenerationRequest:
        adapters = tuple(body.get("ip_adapter", ()))
        scales = tuple(map(float, body.get("ip_adapter_scale", ()))) or (1.0,) * len(adapters)
        return cls(
            model_id=body["model_id"],
            prompt=body["prompt"],
            negative_prompt=body["negative_prompt"],
            num_inference_steps=body["num_inference_steps"],
            guidance_scale=float(body["guidance_scale"]),
            width=body["width"],
            height=body["height"],
            samples=body["samples"],
            seed=body["seed"],
            strength=body.get("strength"),
            ip_adapter=adapters,
            ip_adapter_scale=scales if adapters else (),
            ip_adapter_image=body.get("ip_adapter_image") or None,
            ip_adapter_style_images=tuple(body.get("ip_adapter_style_images", ()))
            if adapters
            else (),
            body=body,
        )


def documented_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body without its unknown fields (each was a warning): what a job keeps.

    Its arrays are tuples: a job's request never changes, and a dict of numbers, strings
    and tuples of them is one the garbage collector stops tracking. (With lists, 10,000
    stored jobs made each full collection take about 90 ms.)
    """
    known = known_fields()
    return {
        name: tuple(value) if type(value) is list else value
        for name, value in body.items()
        if name in known
    }


@dataclass(frozen=True)
class Accepted:
    body: dict[str, Any]
    """The normalised body, defaults filled in, unknown fields included."""
    warnings: tuple[FieldError, ...]

    @cached_property
    def request(self) -> GenerationRequest:
        return GenerationRequest.from_body(self.body)
