"""What the benchmarks share: the /proc reader, the request bodies, a process launcher.

`ipmock serve` itself is started by the toolkit's one launcher,
`contract_tests.server.running_server`; `processes.served` starts the other servers
(the baseline app, Prism, WireMock, the CPython ceiling).
"""
