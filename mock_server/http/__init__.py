"""The HTTP adapters onto the engine (``mock_server.api``): the Starlette app
(``app``), the admin API (``admin``), the journal's middleware (``journal``), CORS
(``cors``), how a fault is delivered on a socket or in an ASGI answer
(``socket_faults``), and ``ipmock serve``'s in-place protocol (``inplace``, the only
module that imports uvicorn's protocol) with its version check (``uvicorn_check``).
"""
