"""Seeded hostile requests, as raw bytes: every category of ``bodies`` and ``messages``
(``CATEGORIES``), one drawn per probe from the run's seed."""

from __future__ import annotations

import random
from collections.abc import Callable

from bench.hostile import bodies, messages
from bench.hostile.probe import Context, Probe

CATEGORIES: dict[str, tuple[int, Callable[[random.Random, Context], Probe]]] = {
    **bodies.CATEGORIES,
    **messages.CATEGORIES,
}
"""Raw categories: (weight, builder), in a fixed order (bodies, then messages). A probe's
category and content come from the seed."""


def build_probe(seed: int, index: int, ctx: Context) -> Probe:
    """The ``index``-th raw probe of a seeded run (the same for the same seed)."""
    rng = random.Random(f"{seed}/{index}")
    names = list(CATEGORIES)
    name = rng.choices(names, weights=[CATEGORIES[n][0] for n in names])[0]
    return CATEGORIES[name][1](rng, ctx)
