"""Integration tests: a real `ipmock serve` over a socket, and the example clients.

(A package, so that its module names cannot clash with test modules elsewhere in tests/.)
"""
