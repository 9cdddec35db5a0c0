"""The HTTP adapters onto the engine (``mock_server.api``): the Starlette app
(``app``), the admin API (``admin``), the journal's middleware (``journal``), CORS
(``cors``), the dashboard (``ui``), and ``ipmock serve``'s own HTTP server on httptools' parser: the
server and its lifespan (``server``), the HTTP/1.1 protocol (``protocol``), the ASGI
cycle of a request (``cycle``), the submits and polls answered in place (``inplace``) and
a proxy's forwarded headers (``forwarded``).
"""
