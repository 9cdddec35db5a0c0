"""What a stored job costs in memory: the bytes allocated for it and kept, as tracemalloc
counts them (allocation sizes, not time: the same on every machine)."""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Coroutine
from typing import Any

from mock_server import api
from mock_server.contract import SUBMIT_PATH
from mock_server.http.app import create_app
from mock_server.settings import Settings

BODY = json.dumps({"prompt": "a lighthouse at dusk", "samples": 2}).encode()
SCOPE = {
    "type": "http",
    "method": "POST",
    "path": SUBMIT_PATH,
    "headers": [],
    "scheme": "http",
    "server": ("127.0.0.1", 8000),
    "root_path": "",
    "query_string": b"",
    "path_params": {},
}


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("a memory-store submit does not wait")


def test_a_kept_job_with_its_encoded_answer_costs_under_3_kib() -> None:
    state = create_app(Settings(max_in_flight=0)).state.mock
    headers = {"host": "127.0.0.1:8000", "api-key": "test_success"}

    def submit() -> None:
        answer = _run(api.submit(state, api.ApiRequest(SCOPE, headers, body=BODY)))
        assert answer.status_code == 200

    for _ in range(50):  # caches and pools filled before counting
        submit()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        jobs = 500
        for _ in range(jobs):
            submit()
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # About 1.1 KiB a job: request, job, store entries and the answer. orjson's own
    # bytes hold a 4 KiB buffer each, so keeping them uncopied would show here.
    assert kept / jobs < 3 * 1024, f"{kept / jobs:.0f} bytes a job"
