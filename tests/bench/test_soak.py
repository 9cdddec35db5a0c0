"""The soak (bench.soak) in small: a short run ends every job, and a stuck job fails it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bench.soak.judge import (
    fault_answer,
    judge,
    least_squares_slope,
    redis_connections_bound,
    server_workers,
)
from bench.soak.load import error_kind, invalid_body, valid_body
from bench.soak.options import Figures, SoakOptions, Tally
from bench.soak.run import format_report, run_soak
from bench.soak_shared import SharedOptions, format_shared_report, run_shared_soak
from mock_server.validation import InvalidRequest, validate


@pytest.mark.socket
@pytest.mark.slow
def test_a_short_soak_ends_every_job_and_reports_the_figures() -> None:
    lines: list[str] = []
    # A token warm-up (the stores' bounds take minutes to reach), so memory is not judged
    # here: the stores are still filling, and the RSS tolerance is wide.
    options = SoakOptions(
        duration=10,
        concurrency=4,
        sample_every=2,
        warmup_jobs=40,
        warmup_image_bytes=100_000,
        rss_tolerance_mb=500,
    )
    report = run_soak(options, log=lines.append)
    text = format_report(report)

    assert report.passed, text + "\n" + "\n".join(lines)
    jobs = report.tally.jobs
    assert jobs["accepted"] > 0
    assert jobs["submitted"] == jobs["accepted"] + jobs["refused"] + jobs["lost"]
    assert jobs["accepted"] == jobs["success"] + jobs["failure"] + jobs["expired"]
    assert jobs["not_final"] == jobs["vanished"] == jobs["wrong"] == 0
    assert report.tally.images["downloaded"] > 0
    assert {"POST submit", "GET status", "GET image"} <= set(report.tally.requests)

    phases = [s.phase for s in report.samples]
    assert phases[0] == "idle" and phases[-1] == "after"
    assert phases.count("load") >= 2 and "warm-up" in phases
    assert report.tally.warmup["jobs"] >= 40 and report.tally.warmup["image_bytes"] >= 100_000
    assert all(s.rss_mb > 0 and s.fds > 0 and s.processes >= 1 for s in report.samples)
    figures = report.figures
    assert figures.rss_max_mb >= max(figures.rss_start_mb, figures.rss_end_mb)
    assert figures.fds_max >= max(figures.fds_start, figures.fds_end)

    written = json.loads(json.dumps(report.to_json()))
    assert written["passed"] is True
    assert written["jobs"]["not_final"] == 0
    assert {"rss_start_mb", "rss_end_mb", "rss_max_mb", "rss_slope_mb_per_min"} <= set(
        written["memory"]
    )
    assert len(written["samples"]) == len(report.samples)
    assert "soak: PASSED" in text


@pytest.mark.socket
def test_the_soak_fails_when_a_job_never_becomes_final(tmp_path: Path) -> None:
    config = tmp_path / "stuck.toml"
    config.write_text('default_scenario = "stuck"\n\n[chaos]\nweights = { stuck = 1 }\n')
    options = SoakOptions(
        duration=2,
        concurrency=2,
        sample_every=1,
        job_bound=3,
        warmup_jobs=0,
        warmup_image_bytes=0,
        server_args=("--config", str(config)),
        rss_tolerance_mb=500,
    )
    report = run_soak(options, log=lambda line: None)

    assert not report.passed
    assert report.tally.jobs["not_final"] >= 1
    assert report.tally.jobs["success"] == report.tally.jobs["failure"] == 0
    assert report.tally.not_final
    assert any("not final" in failure for failure in report.failures), report.failures
    assert "soak: FAILED" in format_report(report)


@pytest.mark.socket
def test_the_soak_fails_on_a_5xx_that_is_not_one_of_the_mocks_faults(tmp_path: Path) -> None:
    # A configured refusal standing in for a server bug: a 500 without the "(simulated)"
    # of the mock's own server-error fault.
    config = tmp_path / "broken.toml"
    config.write_text(
        '[[scenarios]]\nname = "broken"\n'
        'refusal = { http_status = 500, code = "server_error", error = "database gone" }\n\n'
        "[chaos]\nweights = { broken = 1, success = 1 }\n"
    )
    options = SoakOptions(
        duration=2,
        concurrency=2,
        sample_every=1,
        warmup_jobs=0,
        warmup_image_bytes=0,
        server_args=("--config", str(config)),
        rss_tolerance_mb=500,
    )
    report = run_soak(options, log=lambda line: None)

    assert not report.passed
    assert report.tally.found["unexpected_5xx"] >= 1
    assert "database gone" in report.tally.unexpected_5xx[0]
    assert report.tally.jobs["not_final"] == 0
    assert any("5xx" in failure for failure in report.failures), report.failures


def test_the_warm_up_scales_with_the_servers_worker_processes() -> None:
    assert server_workers(()) == 1
    assert server_workers(("--store", "redis://127.0.0.1:6379/0", "--workers", "3")) == 3
    assert server_workers(("--workers=2",)) == 2


def test_the_fd_bound_counts_each_processs_redis_pool() -> None:
    assert redis_connections_bound(()) == 0
    assert redis_connections_bound(("--workers", "2")) == 0
    assert redis_connections_bound(("--store", "redis://127.0.0.1:6379/0")) == 16
    shared = ("--store=redis://h:1/0", "--workers", "3", "--redis-connections=4")
    assert redis_connections_bound(shared) == 12


def _short_shared(mode: str, duration: float) -> SharedOptions:
    soak = SoakOptions(
        duration=duration,
        concurrency=4,
        sample_every=1,
        warmup_jobs=40,
        warmup_image_bytes=100_000,
        rss_tolerance_mb=500,  # the stores are still filling: memory is not judged here
    )
    return SharedOptions(mode=mode, soak=soak, kill_every=2.0, lease=2.0)


@pytest.mark.socket
@pytest.mark.redis
@pytest.mark.slow
def test_a_short_soak_of_two_workers_on_redis_ends_every_job() -> None:
    report = run_shared_soak(_short_shared("redis", 4), log=lambda line: None)
    text = format_shared_report(report)

    assert report.passed, text
    soak = report.soak
    assert soak.tally.jobs["accepted"] > 0 and soak.tally.jobs["not_final"] == 0
    assert soak.tally.jobs["lost"] == 0 and soak.tally.found["answered_twice"] == 0
    assert sum(soak.tally.requests["GET status (again)"].values()) > 0
    assert soak.figures.fds_warm > 0 and soak.figures.fds_bound > soak.figures.fds_warm
    assert len(soak.figures.by_process) >= 3  # the supervisor and two workers
    assert report.redis_end["redis_used_mb"] > 0 and report.redis_end["redis_clients"] >= 2
    assert "soak (redis): PASSED" in text


@pytest.mark.socket
@pytest.mark.redis
@pytest.mark.slow
def test_a_short_soak_with_gpu_workers_killed_and_restarted_ends_every_job() -> None:
    report = run_shared_soak(_short_shared("workers", 7), log=lambda line: None)
    text = format_shared_report(report)

    assert report.passed, text
    soak = report.soak
    assert soak.tally.jobs["accepted"] > 0 and soak.tally.jobs["not_final"] == 0
    assert soak.tally.jobs["lost"] == 0 and soak.tally.found["answered_twice"] == 0
    assert report.redis_end["worker_kills"] >= 2
    assert report.redis_end["workers_rss_mb"] > 0
    assert json.loads(json.dumps(report.to_json()))["mode"] == "workers"


@pytest.mark.parametrize("seed", range(200))
def test_the_load_sends_valid_bodies_and_invalid_ones_the_api_refuses(seed: int) -> None:
    rng = random.Random(seed)
    body = valid_body(rng)
    validate(json.dumps(body).encode())  # raises InvalidRequest if the soak's body is wrong
    with pytest.raises(InvalidRequest):
        validate(invalid_body(rng))


def test_only_the_mocks_deliberate_5xx_answers_count_as_faults() -> None:
    simulated = {
        "status": "FAILURE",
        "code": "server_error",
        "error": "internal server error (simulated)",
    }
    busy = {"status": "FAILURE", "code": "busy", "error": "the service is busy: try again later"}
    crash = {"status": "FAILURE", "code": "server_error", "error": "internal error in the mock"}
    assert fault_answer(500, json.dumps(simulated).encode())
    assert fault_answer(503, json.dumps(busy).encode())
    assert not fault_answer(500, json.dumps(crash).encode())
    assert not fault_answer(500, json.dumps(busy).encode())
    assert not fault_answer(500, b"Internal Server Error")
    assert not fault_answer(502, b"[]")


def test_error_kinds_leave_out_what_varies() -> None:
    garbage = ValueError("illegal status line: bytearray(b'\\x8f\\x01')")
    assert error_kind(garbage) == "ValueError: illegal status line"
    short = ValueError("peer closed connection (received 17 bytes, expected 64)")
    assert error_kind(short) == "ValueError: peer closed connection"
    assert error_kind(ConnectionResetError()) == "ConnectionResetError"


def _figures(**changes: float) -> Figures:
    values: dict[str, float | int | str] = {
        "warmup": "test",
        "rss_idle_mb": 40.0,
        "rss_start_mb": 150.0,
        "rss_end_mb": 151.0,
        "rss_max_mb": 152.0,
        "rss_slope_mb_per_min": 0.1,
        "rss_growth_mb": 1.0,
        "rss_allowed_growth_mb": 20.0,
        "fds_idle": 14,
        "fds_start": 40,
        "fds_end": 41,
        "fds_max": 45,
        "fds_after": 14,
        "server_cpu_s": 60.0,
        "client_cpu_s": 90.0,
    }
    values.update(changes)
    return Figures(**values)  # type: ignore[arg-type]


def test_the_judge_fails_memory_growth_and_leaked_fds_and_passes_a_flat_run() -> None:
    options = SoakOptions()
    assert judge(Tally(), _figures(), options) == []
    grown = judge(Tally(), _figures(rss_growth_mb=25.0), options)
    assert len(grown) == 1 and "RSS grew 25.0 MB" in grown[0]
    leaked = judge(Tally(), _figures(fds_after=30), options)
    assert len(leaked) == 1 and "30 FDs open after the load, 14 once warm" in leaked[0]
    tally = Tally()
    tally.found["unexpected_5xx"] += 1
    assert judge(tally, _figures(), options) == ["1 5xx answer(s) no scenario or fault explains"]


def test_the_judge_fails_lost_answers_second_outcomes_and_fds_past_the_warm_baseline() -> None:
    options = SoakOptions()
    tally = Tally()
    tally.jobs["lost"] += 2
    tally.found["answered_twice"] += 1
    assert judge(tally, _figures(), options) == [
        "2 submit(s) never answered",
        "1 job(s) answered with a second outcome",
    ]
    warm = _figures(fds_warm=40, fds_after=47, fds_bound=100, fds_max=90)
    assert judge(Tally(), warm, options) == []  # pools filled once warm: not a leak
    leaked = judge(Tally(), _figures(fds_warm=40, fds_after=49), options)
    assert leaked == ["49 FDs open after the load, 40 once warm (at most 8 more allowed)"]
    over = judge(Tally(), _figures(fds_bound=100, fds_max=101), options)
    assert len(over) == 1 and "101 FDs open at most, over the bound of 100" in over[0]


def test_the_slope_is_the_least_squares_line() -> None:
    assert least_squares_slope([(0, 10), (1, 12), (2, 14)]) == pytest.approx(2.0)
    assert least_squares_slope([(0, 1), (1, 3), (2, 2), (3, 4)]) == pytest.approx(0.8)
    assert least_squares_slope([(5, 1)]) == 0.0
