"""Hypothesis strategies derived from the contract files: requests and server flows.

    valid_requests()    bodies a strict server accepts (every rule, both spellings)
    invalid_requests()  bodies breaking exactly one documented rule, with the field the
                        error must name
    server_flows()      the answers a contract-true server may give one generation

Bounds, names and defaults come from ``schema/request.schema.json``; nothing is copied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from contract_tests.flows import Flow
from mock_server import contract
from mock_server.faults import FAULT_KINDS, REFUSING_FAULT_KINDS, SOCKET_FAULT_KINDS, Fault

FLOW_FAULT_KINDS = tuple(k for k in FAULT_KINDS if k not in SOCKET_FAULT_KINDS and k != "dribble")
"""The fault kinds a flow draws on status requests and downloads. Flows play in process,
where every socket-level fault (reset, empty, malformed-chunk, garbage) reaches the client
as the dropped connection ``drop`` gives, and ``dribble`` as the slow answer ``delay``
gives: these cover them."""
FLOW_SUBMIT_FAULT_KINDS = tuple(k for k in FLOW_FAULT_KINDS if k not in REFUSING_FAULT_KINDS)
"""The fault kinds a flow draws on its accepted submit: after the job exists, its answer
lost (drop), a 500, or late. (A refused submit is a ``submit_refusals`` entry.)"""

_SCHEMA = contract.request_schema()
_PROPS: dict[str, Any] = _SCHEMA["properties"]
ADAPTER_NAMES: tuple[str, ...] = tuple(_SCHEMA["$defs"]["adapter_name"]["enum"])

# Single CLIP tokens each, so a prompt of n words is n tokens: always within 75.
_WORDS = (
    "a",
    "photo",
    "of",
    "the",
    "cat",
    "dog",
    "red",
    "blue",
    "green",
    "woman",
    "man",
    "portrait",
    "city",
    "street",
    "night",
    "sun",
    "forest",
    "river",
    "mountain",
    "old",
    "young",
    "happy",
    "light",
    "dark",
    "cinematic",
    "detailed",
    "soft",
    "warm",
)
_IMAGE_URLS = (
    "https://images.example.test/face.png",
    "http://127.0.0.1:9/style.jpg",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg==",
)


def _integers(name: str, *, upper: int | None = None) -> st.SearchStrategy[int]:
    prop = _PROPS[name]
    step = int(prop.get("multipleOf", 1))
    high = prop["maximum"] if upper is None else min(upper, prop["maximum"])
    return st.integers(math.ceil(prop["minimum"] / step), high // step).map(lambda n: n * step)


def _numbers(name: str) -> st.SearchStrategy[float]:
    prop = _PROPS[name]
    return st.floats(prop["minimum"], prop["maximum"], allow_nan=False)


def _unit_numbers() -> st.SearchStrategy[float]:
    items = _PROPS["ip_adapter_scale"]["items"]
    return st.floats(items["minimum"], items["maximum"], allow_nan=False)


@st.composite
def valid_requests(draw: st.DrawFn, *, max_side: int = 1024) -> dict[str, Any]:
    """A request body every rule accepts, in strict mode too.

    Optional fields come and go; ``ip_adapter`` and ``ip_adapter_scale`` are drawn as
    arrays or comma-separated strings. ``max_side`` caps width and height.
    """
    body: dict[str, Any] = {
        "prompt": " ".join(draw(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=40)))
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "model_id": st.just("sdxl"),
        "negative_prompt": st.lists(st.sampled_from(_WORDS), max_size=20).map(" ".join),
        "num_inference_steps": _integers("num_inference_steps"),
        "strength": _numbers("strength"),
        "samples": _integers("samples"),
        "guidance_scale": _numbers("guidance_scale"),
        "width": _integers("width", upper=max_side),
        "height": _integers("height", upper=max_side),
        "seed": _integers("seed"),
        "clip_skip": _integers("clip_skip"),
        "server_id": st.just(""),
        "refiner": st.sampled_from([True, False, "true", "false"]),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            body[name] = draw(strategy)
    adapters = draw(
        st.lists(st.sampled_from(ADAPTER_NAMES), max_size=len(ADAPTER_NAMES), unique=True)
    )
    if adapters:
        scales = draw(st.lists(_unit_numbers(), min_size=len(adapters), max_size=len(adapters)))
        as_text = draw(st.booleans())
        body["ip_adapter"] = ", ".join(adapters) if as_text else adapters
        body["ip_adapter_scale"] = ",".join(f"{s:.4f}" for s in scales) if as_text else scales
        body["ip_adapter_image"] = draw(st.sampled_from(_IMAGE_URLS))
        body["ip_adapter_style_images"] = draw(
            st.lists(
                st.sampled_from(_IMAGE_URLS), min_size=len(adapters) - 1, max_size=len(adapters) - 1
            )
        )
    return body


@dataclass(frozen=True)
class BrokenRequest:
    """A body that breaks one documented rule; the refusal must name ``field``."""

    body: dict[str, Any]
    field: str
    rule: str

    def named_by(self, fields: list[str]) -> bool:
        """Whether a refusal naming ``fields`` names this field (or one of its items)."""
        return any(f == self.field or f.startswith(self.field + ".") for f in fields)


_BOUNDED = tuple(name for name, p in _PROPS.items() if "minimum" in p and "maximum" in p)


@st.composite
def _bound_breakers(draw: st.DrawFn) -> BrokenRequest:
    """A number just outside its documented range, or off its multiple."""
    body = draw(valid_requests())
    name = draw(st.sampled_from(_BOUNDED))
    prop = _PROPS[name]
    if "multipleOf" in prop and draw(st.booleans()):
        step = int(prop["multipleOf"])
        cell = draw(st.integers(prop["minimum"] // step, prop["maximum"] // step - 1))
        return BrokenRequest(
            {**body, name: cell * step + draw(st.integers(1, step - 1))}, name, "multiple"
        )
    integer = prop.get("type") == "integer"
    past: float = draw(st.integers(1, 1000) if integer else st.floats(1e-6, 1000))
    value = prop["minimum"] - past if draw(st.booleans()) else prop["maximum"] + past
    return BrokenRequest({**body, name: value}, name, "range")


@st.composite
def _rule_breakers(draw: st.DrawFn) -> BrokenRequest:
    body = draw(valid_requests())
    adapters = list(
        draw(st.lists(st.sampled_from(ADAPTER_NAMES), min_size=1, max_size=3, unique=True))
    )
    with_adapters = {
        **body,
        "ip_adapter": adapters,
        "ip_adapter_scale": [0.5] * len(adapters),
        "ip_adapter_image": _IMAGE_URLS[0],
        "ip_adapter_style_images": [_IMAGE_URLS[0]] * (len(adapters) - 1),
    }
    rule = draw(
        st.sampled_from(
            [
                "unknown adapter",
                "duplicate adapter",
                "scale count",
                "scale range",
                "no image",
                "style count",
                "no prompt",
                "blank prompt",
                "model id",
                "image scheme",
                "wrong type",
            ]
        )
    )
    if rule == "unknown adapter":
        return BrokenRequest(
            {**with_adapters, "ip_adapter": [*adapters[:-1], "ip-adapter_sd15"]},
            f"ip_adapter.{len(adapters) - 1}",
            rule,
        )
    if rule == "duplicate adapter":
        doubled = [*adapters, adapters[0]]
        return BrokenRequest(
            {
                **with_adapters,
                "ip_adapter": doubled,
                "ip_adapter_scale": [0.5] * len(doubled),
                "ip_adapter_style_images": [_IMAGE_URLS[0]] * (len(doubled) - 1),
            },
            "ip_adapter",
            rule,
        )
    if rule == "scale count":
        return BrokenRequest(
            {**with_adapters, "ip_adapter_scale": [0.5] * (len(adapters) + 1)},
            "ip_adapter_scale",
            rule,
        )
    if rule == "scale range":
        return BrokenRequest(
            {**with_adapters, "ip_adapter_scale": [1.5] * len(adapters)}, "ip_adapter_scale.0", rule
        )
    if rule == "no image":
        broken = dict(with_adapters)
        del broken["ip_adapter_image"]
        return BrokenRequest(broken, "ip_adapter_image", rule)
    if rule == "style count":
        return BrokenRequest(
            {**with_adapters, "ip_adapter_style_images": [_IMAGE_URLS[0]] * len(adapters)},
            "ip_adapter_style_images",
            rule,
        )
    if rule == "no prompt":
        broken = dict(body)
        del broken["prompt"]
        return BrokenRequest(broken, "prompt", rule)
    if rule == "blank prompt":
        return BrokenRequest(
            {**body, "prompt": draw(st.sampled_from([" ", "\t\n", ""]))}, "prompt", rule
        )
    if rule == "model id":
        return BrokenRequest(
            {**body, "model_id": draw(st.sampled_from(["sd15", "SDXL", ""]))}, "model_id", rule
        )
    if rule == "image scheme":
        return BrokenRequest(
            {**with_adapters, "ip_adapter_image": "ftp://images.example.test/a"},
            "ip_adapter_image",
            rule,
        )
    name = draw(st.sampled_from(["samples", "width", "num_inference_steps", "guidance_scale"]))
    return BrokenRequest(
        {**body, name: draw(st.sampled_from(["2", None, [], {}, True]))}, name, rule
    )


def invalid_requests() -> st.SearchStrategy[BrokenRequest]:
    """Bodies that break one documented rule each: a bound, a type, or a cross-field rule."""
    return st.one_of(_bound_breakers(), _rule_breakers())


@st.composite
def server_flows(
    draw: st.DrawFn,
    *,
    max_pending: int = 4,
    max_faults: int = 3,
    max_retry_after: int = 5,
    stuck: bool = True,
    submit_faults: bool = True,
    max_download_faults: int = 2,
) -> Flow:
    """What a contract-true server may answer one generation.

    Refused submits (429/503 with Retry-After); with ``submit_faults``, an accepted
    submit whose answer is lost (a dropped connection, a 500: the job exists all the
    same) or late; PENDING k times, transient faults on status requests (429, 503, 500,
    a dropped connection, a slow answer), unknown extra fields, download URLs that expire
    30 s after SUCCESS, then SUCCESS with one URL per sample, up to
    ``max_download_faults`` of the downloads faulted the same ways, or FAILURE with a
    message; or, with ``stuck``, PENDING forever. Shrinks toward the plainest flow.
    """
    retry_after = st.integers(0, max_retry_after)
    refusals = draw(
        st.lists(st.tuples(st.sampled_from(["rate-limited", "busy"]), retry_after), max_size=2)
    )
    ending = draw(
        st.sampled_from(["success", "failure", "stuck"] if stuck else ["success", "failure"])
    )
    pending = draw(st.integers(0, max_pending))
    n_faults = draw(st.integers(0, max_faults)) if pending or ending == "stuck" else 0
    positions = (
        draw(
            st.lists(
                st.integers(1, pending + n_faults),
                min_size=n_faults,
                max_size=n_faults,
                unique=True,
            )
        )
        if n_faults
        else []
    )
    seconds = st.sampled_from([0.5, 5.0, 20.0])
    faults = tuple(
        Fault(
            at_request=at,
            kind=draw(st.sampled_from(FLOW_FAULT_KINDS)),
            retry_after=draw(retry_after),
            seconds=draw(seconds),
        )
        for at in sorted(positions)
    )
    if submit_faults:
        kind = draw(st.sampled_from([None, *FLOW_SUBMIT_FAULT_KINDS]))
        if kind is not None:
            faults = (Fault(1, kind, seconds=draw(seconds), on="submit"), *faults)
    samples = draw(_integers("samples"))
    n_downloads = draw(st.integers(0, max_download_faults)) if ending == "success" else 0
    if n_downloads:
        downloads = draw(
            st.lists(
                st.integers(1, samples + n_downloads),
                min_size=n_downloads,
                max_size=n_downloads,
                unique=True,
            )
        )
        faults += tuple(
            Fault(
                at_request=at,
                kind=draw(st.sampled_from(FLOW_FAULT_KINDS)),
                retry_after=draw(retry_after),
                seconds=draw(seconds),
                on="download",
            )
            for at in sorted(downloads)
        )
    return Flow(
        submit_refusals=tuple(refusals),
        pending_polls=None if ending == "stuck" else pending,
        faults=faults,
        outcome="failure" if ending == "failure" else "success",
        error=draw(
            st.sampled_from(
                [
                    "generation failed: the worker ran out of GPU memory",
                    "NSFW content detected: try another prompt",
                    "ip_adapter_image could not be downloaded",
                ]
            )
        ),
        samples=samples,
        extra_fields=draw(st.booleans()),
        url_ttl=draw(st.sampled_from([None, 30.0])),
        request={"prompt": "a lighthouse at dusk", "width": 64, "height": 64},
    )
