"""The root of every exception ipmock raises: ``except IpmockError`` catches them all.

Each class lives beside the code that raises it; this module holds only the root, so
that any module can derive from it without importing anything else. The tree::

    IpmockError
    ├── ApiError                     a FAILURE answer: status, code, message
    ├── InvalidRequest               a body the contract refuses, every field named
    ├── ConfigError (ValueError)     a config file or scenario that cannot be used
    ├── UnknownScenario (LookupError)  a scenario name that is not known
    ├── StoreUnavailable             the job store cannot be reached (503, recovers)
    ├── AdminRefused (ValueError)    an admin call refused (the admin API's 4xx), in words
    ├── ConnectionDropped            a connection broken on purpose by a fault
    ├── UsageError                   a serve option that cannot work (exit status 2)
    ├── ServerDidNotStart (RuntimeError)  `ipmock serve` did not come up
    ├── ClientContractViolation (AssertionError)  a client broke a client property
    ├── FlowError (ValueError)       a server flow's JSON that cannot be replayed
    └── ImageInputError (ValueError)  an image input the reference refused

Where each lives: ``mock_server.errors``, ``.validation``, ``.config``, ``.scenarios``,
``.state``, ``.state.admin``, ``.faults``, ``.cli``; ``contract_tests.server``,
``.properties``, ``.flows``; ``reference_impl.fetch``. The public ones are exported by
``mock_server`` and ``contract_tests``.

Outside the tree on purpose: ``contract_tests.example_client.ClientError`` and its
subclasses (``RequestRefused``, ``GenerationFailed``, ...) are a client's errors: the
client under test raises them about the server it calls, and a copy of it keeps them.
"""

from __future__ import annotations


class IpmockError(Exception):
    """Base of every exception ipmock's packages raise."""
