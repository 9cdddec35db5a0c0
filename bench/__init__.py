"""ipmock's benchmarks and long runs, run from the repository root as modules.

    .venv/bin/python -m bench.serve_throughput
    .venv/bin/python -m bench.peers
    .venv/bin/python -m bench.hostile
    .venv/bin/python -m bench.soak

bench/README.md holds what each measures and the figures measured. Not shipped in the wheel.
"""
