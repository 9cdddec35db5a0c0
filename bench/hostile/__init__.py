"""The hostile fuzz: traffic no client should send, against a server claiming the contract.

Every 5xx, hang and dropped connection is a finding, reported with the request that
caused it; the server must still serve a whole generation afterwards. ``run_hostile`` is
the run (``run``); ``probes`` draws the seeded raw requests (each a ``probe.Probe``) from
the categories of ``bodies`` (hostile bodies) and ``messages`` (hostile framing, headers,
paths, methods, keys, admin calls, garbage), ``wire`` sends them over sockets and judges
the answers, ``report`` holds what comes back. ``python -m bench.hostile`` runs it against
a fresh ``ipmock serve`` (bench/README.md).
"""

from bench.hostile.probes import CATEGORIES
from bench.hostile.report import Finding, HostileReport
from bench.hostile.run import run_hostile

__all__ = ["CATEGORIES", "Finding", "HostileReport", "run_hostile"]
