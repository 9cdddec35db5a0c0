"""Judge one play: the registry's client properties on its journal and what the client
left, and ``writes_served_images``, the protocol's own (each image byte for byte)."""

from __future__ import annotations

from dataclasses import dataclass

from contract_tests.fuzz.slot import Play
from mock_server.report.properties import ClientResult, Evidence, Verdict, judge

WRITES_SERVED_IMAGES = "writes_served_images"
"""The protocol's own property: on exit 0 after a SUCCESS, OUT holds ``{i}.png`` for each
download URL i (from 0), byte for byte the image served there, and nothing else."""

START_UP_ALLOWANCE = 0.5
"""Most seconds of the wall clock a client may spend between starting its deadline's
clock and its first request reaching the mock (the journal counts from that request)."""

ERROR_CHARS = 4000
"""How much of the end of a failed client's stderr is its error text: the server's
message must be in it (surfaces_failure)."""


@dataclass(frozen=True)
class Judged:
    """A play and each property's verdict on it, in the order they are reported."""

    play: Play
    verdicts: dict[str, Verdict]
    poll_floor: float
    deadline: float

    @property
    def broken(self) -> dict[str, Verdict]:
        return {name: v for name, v in self.verdicts.items() if v.state == "broken"}


def client_result(play: Play) -> ClientResult:
    """What the client handed back, in the registry's terms: the images ``0.png``,
    ``1.png``, ... it wrote on exit 0; else its ending and the tail of its stderr."""
    ended = play.exit
    if ended.killed_after is not None:
        return ClientResult(None, stopped=f"{ended.ending()} (at 3 x its deadline)")
    if ended.succeeded:
        images: list[bytes] = []
        while (name := f"{len(images)}.png") in ended.files:
            images.append(ended.files[name])
        return ClientResult(images)
    tail = ended.stderr_tail.strip()[-ERROR_CHARS:]
    return ClientResult(None, error=f"{ended.ending()}; stderr: {tail or '(nothing)'}")


def judged_deadline(deadline: float, poll_floor: float) -> float:
    """The deadline the properties judge with, counted from the client's first request.

    They leave a client a window of one poll floor either side of its deadline (keep
    polling until deadline - floor, stop by deadline + floor); a client on the wall clock
    starts its clock a little before its first request, so the window is centred on
    ``deadline - floor`` (at most START_UP_ALLOWANCE early): a careful client, which
    stops when the next poll would pass its deadline, lands in its middle."""
    return max(deadline - min(poll_floor, START_UP_ALLOWANCE), 0.0)


def judge_play(play: Play, *, poll_floor: float, deadline: float) -> Judged:
    result = client_result(play)
    seen = judged_deadline(deadline, poll_floor)
    verdicts = judge(Evidence(play.exchanges, poll_floor, seen, result))
    verdicts[WRITES_SERVED_IMAGES] = _writes_served_images(play, result)
    return Judged(play, verdicts, poll_floor, deadline)


def _writes_served_images(play: Play, result: ClientResult) -> Verdict:
    if result.images is None:
        return Verdict("not_judged", "the client did not succeed")
    urls = list(play.served)
    if not urls:
        if play.exit.files:
            return Verdict("not_judged", "no job succeeded (returns_every_sample judges it)")
        return Verdict("not_judged", "no job succeeded")
    wanted = [f"{i}.png" for i in range(len(urls))]
    extra = sorted(set(play.exit.files) - set(wanted))
    if extra:
        shown = ", ".join(repr(name) for name in extra[:5])
        return Verdict("broken", f"wrote {shown} in IPMOCK_OUT: only {wanted} belong there")
    for name, url in zip(wanted, urls, strict=True):
        written, served = play.exit.files.get(name), play.served[url]
        if written is None:
            return Verdict("broken", f"exited 0 without writing {name} (for {url})")
        if served is None:
            return Verdict("not_judged", f"the mock would not serve {url} again to compare")
        if written != served:
            return Verdict(
                "broken",
                f"{name} is {len(written)} bytes that are not the {len(served)} served at "
                f"{url} (starts {written[:16]!r})",
            )
    return Verdict("held")
