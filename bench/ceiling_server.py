"""The most a CPython server can do on this machine with a submit's unavoidable work.

Not a mock: a bare asyncio protocol (uvloop, httptools) that answers the peers
benchmark's two requests with no framework, no state and no journal. A submit is
checked for its API key and its body validated exactly as ipmock validates it
(``mock_server.validation.validate``: JSON, the schema, the cross-field rules, the CLIP
token count), then answered with a constant PENDING; a poll gets a constant SUCCESS.
ipmock does all of that and more (a job stored and looked up, scenarios, the journal),
so this server's req/s bound what any CPython design could reach here: bench.peers
measures it beside ipmock and the peers.

    python -m bench.ceiling_server PORT [PROCESSES]

With PROCESSES > 1 the processes share the port (SO_REUSEPORT); nothing is shared
between them, which no mock could afford, so it is the bound for several processes too.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import httptools
import uvloop

from mock_server.contract import IMAGE_PREFIX, STATUS_PREFIX, SUBMIT_PATH
from mock_server.validation import InvalidRequest, validate

_SUBMIT, _STATUS_PREFIX = SUBMIT_PATH.encode(), STATUS_PREFIX.encode()

JOB = "C9ZO0PRnx9lkJpBiKwEtMJu3"  # the peers' job id (bench.peers.inputs): same sizes
PENDING = b'{"status":"PENDING","id":"%s"}' % JOB.encode()
REFUSED = b'{"status":"FAILURE","error":"invalid request","code":"invalid_request"}'
NO_KEY = b'{"status":"FAILURE","error":"missing API key","code":"unauthorized"}'
NOT_FOUND = b'{"status":"FAILURE","error":"no such endpoint","code":"not_found"}'


def _answer(status: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    return head % (status, len(body)) + body


class Ceiling(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url, self.key, self.body = b"", b"", bytearray()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"api-key":
            self.key = value.strip()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        method, path = self.parser.get_method(), self.url.split(b"?", 1)[0]
        if not self.key:
            answer = _answer(b"401 Unauthorized", NO_KEY)
        elif method == b"POST" and path == _SUBMIT:
            try:
                validate(bytes(self.body))
                answer = _answer(b"202 Accepted", PENDING)
            except InvalidRequest:
                answer = _answer(b"400 Bad Request", REFUSED)
        elif method == b"GET" and path.startswith(_STATUS_PREFIX):
            answer = _answer(b"200 OK", SUCCESS)
        else:
            answer = _answer(b"404 Not Found", NOT_FOUND)
        self.transport.write(answer)
        if not self.parser.should_keep_alive():
            self.transport.close()


async def _serve(sock: socket.socket) -> None:
    server = await asyncio.get_running_loop().create_server(Ceiling, sock=sock)
    async with server:
        await server.serve_forever()


SUCCESS = b""


def main() -> None:
    global SUCCESS
    port = int(sys.argv[1])
    processes = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    SUCCESS = (
        b'{"status":"SUCCESS","id":"%s","download_urls":["http://127.0.0.1:%d%s%s/0.png"]}'
        % (JOB.encode(), port, IMAGE_PREFIX.encode(), JOB.encode())
    )
    for _ in range(processes - 1):
        if os.fork() == 0:
            break
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    validate(b'{"prompt": "warm up"}')  # the compiled schema and the vocabulary, built now
    uvloop.run(_serve(sock))


if __name__ == "__main__":
    main()
