"""Job ids: unguessable, unique, URL-safe, and never shared by a forked worker."""

from __future__ import annotations

import os
import re

from mock_server.jobs import new_job_id

URL_SAFE_24 = re.compile(r"[A-Za-z0-9_-]{24}")


def test_ids_are_url_safe_unique_and_carry_144_random_bits() -> None:
    ids = [new_job_id() for _ in range(2000)]  # several draws of the pool
    assert len(set(ids)) == len(ids)
    assert all(URL_SAFE_24.fullmatch(i) for i in ids)
    # 18 random bytes each: every character position takes many values.
    assert all(len({i[k] for i in ids}) > 50 for k in range(24))


def test_a_forked_child_never_hands_out_its_parents_ids() -> None:
    new_job_id()  # the pool now holds ids the parent has not used yet
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, ",".join(new_job_id() for _ in range(300)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    parent = {new_job_id() for _ in range(300)}
    assert len(child) == 300 and not child & parent
