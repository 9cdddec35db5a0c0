"""reference_impl.fetch: address policy (pure), and end to end against a local server.

Network traffic goes only to 127.0.0.1 (and, in one fallback test, ::1). Public
addresses appear only in the pure ``check_address`` table; host names are resolved by
fake resolvers, never by DNS (the default test resolver fails the test if called).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import shutil
import ssl
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from PIL import Image

from reference_impl.fetch import (
    FetchPolicy,
    ImageInputError,
    check_address,
    load_image,
)

pytestmark = pytest.mark.timeout(20)

LOOPBACK = (ip_network("127.0.0.0/8"),)
FIELD = "ip_adapter_image"


def _no_dns(host: str) -> list[str]:
    raise AssertionError(f"unexpected DNS lookup of {host!r}")


def policy(**overrides: Any) -> FetchPolicy:
    values: dict[str, Any] = {"timeout_s": 3.0, "resolver": _no_dns, "max_bytes": 200_000}
    values.update(overrides)
    return FetchPolicy(**values)


def load(url: str, pol: FetchPolicy, field_name: str = FIELD) -> Image.Image:
    return asyncio.run(load_image(url, field_name, pol))


def refused(url: str, pol: FetchPolicy, field_name: str = FIELD) -> ImageInputError:
    with pytest.raises(ImageInputError) as info:
        load(url, pol, field_name)
    err = info.value
    assert err.field == field_name
    assert str(err).startswith(f"{field_name}: ")
    return err


# --- Images ---------------------------------------------------------------------------


def png_bytes(size: tuple[int, int] = (8, 6), color: tuple[int, ...] = (200, 30, 40, 255)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", size, color).save(buf, "PNG")
    return buf.getvalue()


def noise_png(side: int = 96) -> bytes:
    buf = io.BytesIO()
    Image.frombytes(
        "RGB", (side, side), bytes((i * 7919) % 251 for i in range(side * side * 3))
    ).save(buf, "PNG")
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height (8-bit grey) but holds almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def zlib_bomb_png(side: int = 5000) -> bytes:
    """A real, complete PNG of side x side black pixels: ~25 kB on the wire, 25 MP decoded."""
    buf = io.BytesIO()
    Image.new("L", (side, side)).save(buf, "PNG")
    return buf.getvalue()


def jpeg_rotated() -> bytes:
    """An 8x4 JPEG whose EXIF says 'rotate 90°' (orientation 6): shown as 4x8."""
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.new("RGB", (8, 4), (0, 0, 255)).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


PNG = png_bytes()


def data_url(payload: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(payload).decode()}"


# --- A tiny local HTTP server -------------------------------------------------------------


@dataclass
class Seen:
    path: str
    host: str | None
    client: str


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[Seen] = []
        self.stopping = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up early are part of the tests


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    named.setdefault("Content-Type", "image/png")
    named.setdefault("Content-Length", str(len(body)))
    for name, value in named.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LocalServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(
            Seen(self.path, self.headers.get("Host"), str(self.client_address[0]))
        )
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        stop = self.server.stopping
        try:
            if path == "/png":
                _send(self, 200, PNG)
            elif path == "/jpeg-rotated":
                _send(self, 200, jpeg_rotated(), Content_Type="image/jpeg")
            elif path == "/octet":
                _send(self, 200, PNG, Content_Type="application/octet-stream")
            elif path == "/text":
                _send(self, 200, b"<html>not an image</html>", Content_Type="text/html")
            elif path == "/404":
                _send(self, 404, b"nope", Content_Type="text/plain")
            elif path == "/gzip":
                _send(self, 200, gzip.compress(PNG), Content_Encoding="gzip")
            elif path == "/bomb-header":
                _send(self, 200, png_header_only(30000, 30000))
            elif path == "/big-header":
                _send(self, 200, png_header_only(8000, 8000))
            elif path == "/zlib-bomb":
                _send(self, 200, zlib_bomb_png())
            elif path == "/big-declared":
                # Claims a terabyte, sends a little, then holds the connection open.
                _send(self, 200, b"\x89PNG" + b"\x00" * 996, Content_Length=str(10**12))
                self.wfile.flush()
                stop.wait(3)
                self.close_connection = True
            elif path == "/big-unsized":
                # No Content-Length: the body ends when the connection closes.
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                for _ in range(32):
                    self.wfile.write(noise_png(96)[:8] + b"\x00" * 65536)
            elif path == "/big-chunked":
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                piece = b"\x00" * 65536
                for _ in range(32):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            elif path == "/lying-length":
                # Says 60 bytes (under any cap) but writes a whole, larger PNG.
                _send(self, 200, noise_png(), Content_Length="60")
                self.close_connection = True
            elif path == "/dribble":
                _send(self, 200, b"", Content_Length="1000")
                for _ in range(100):
                    if stop.wait(0.05):
                        break
                    self.wfile.write(b"\x00")
                    self.wfile.flush()
                self.close_connection = True
            elif path == "/silent":
                stop.wait(3)  # accepts the request and never answers
                self.close_connection = True
            elif path == "/to":
                _send(self, 302, b"", Location=query["u"][0], Content_Type="text/plain")
            elif path.startswith("/chain/"):
                left = int(path.rsplit("/", 1)[1])
                if left == 0:
                    _send(self, 200, PNG)
                else:
                    _send(self, 307, b"", Location=f"/chain/{left - 1}", Content_Type="text/plain")
            elif path == "/loop":
                _send(self, 301, b"", Location="/loop", Content_Type="text/plain")
            elif path == "/no-location":
                _send(self, 302, b"", Content_Type="text/plain")
            else:
                _send(self, 404, b"unknown route", Content_Type="text/plain")
        except OSError:
            self.close_connection = True  # the client went away (expected when refusing)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield srv
    finally:
        srv.stopping.set()
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def base(srv: LocalServer) -> str:
    return f"http://127.0.0.1:{srv.port}"


@dataclass
class FakeResolver:
    """Host -> addresses; a list of answers is served one per call (the last repeats)."""

    table: dict[str, Sequence[Sequence[str]]]
    calls: list[str] = field(default_factory=list)

    def __call__(self, host: str) -> list[str]:
        self.calls.append(host)
        answers = self.table[host]
        return list(answers[min(self.calls.count(host), len(answers)) - 1])


# --- check_address: pure, no sockets -----------------------------------------------------

REFUSED = [
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.169.254", "link-local"),
    ("169.254.0.1", "link-local"),
    ("100.64.0.1", "CGNAT"),
    ("100.127.255.255", "CGNAT"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "this network"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.0.170", "IETF"),
    ("192.0.2.1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("203.0.113.9", "documentation"),
    ("::1", "loopback"),
    ("[::1]", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:127.0.0.1", "loopback"),
    ("[::ffff:7f00:1]", "loopback"),
    ("::ffff:169.254.169.254", "link-local"),
    ("::127.0.0.1", "IPv4-compatible"),
    ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ("64:ff9b:1::1", "NAT64"),
    ("100::1", "discard"),
    ("2001::1", "Teredo"),
    ("2001:db8::1", "documentation"),
    ("2002:7f00:1::1", "6to4"),
    ("4000::1", "reserved"),
]


@pytest.mark.parametrize(("address", "word"), REFUSED)
def test_special_addresses_are_refused(address: str, word: str) -> None:
    reason = check_address(address, FetchPolicy())
    assert reason is not None, address
    assert word in reason


MAPPED_INNER = {"::ffff:10.0.0.1": "10.0.0.1", "::ffff:127.0.0.1": "127.0.0.1"}


@pytest.mark.parametrize(("address", "inner"), sorted(MAPPED_INNER.items()))
def test_mapped_reason_names_the_ipv4_inside(address: str, inner: str) -> None:
    reason = check_address(address)
    assert reason is not None
    assert f"IPv4-mapped form of {inner}" in reason


ENCODED = [
    ("2130706433", "127.0.0.1"),  # decimal
    ("0177.0.0.1", "127.0.0.1"),  # octal
    ("0x7f.0.0.1", "127.0.0.1"),  # hex
    ("0X7F.0.0.1", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),
    ("127.1", "127.0.0.1"),  # short forms
    ("127.0.1", "127.0.0.1"),
    ("0177.1", "127.0.0.1"),
    ("017700000001", "127.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"),  # trailing dot
    ("167772161", "10.0.0.1"),
    ("0xa9.254.0251.0xfe", "169.254.169.254"),
    ("0251.0376.0251.0376", "169.254.169.254"),
    ("0", "0.0.0.0"),
    ("0x0", "0.0.0.0"),
    ("192.168.257", "192.168.1.1"),
]


@pytest.mark.parametrize(("encoded", "plain"), ENCODED)
def test_encoded_ipv4_forms_are_normalised(encoded: str, plain: str) -> None:
    reason = check_address(encoded)
    assert reason is not None
    assert reason.startswith(f"{plain} is ")
    assert reason == check_address(plain)


ALLOWED = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",  # just below 100.64/10
    "100.128.0.0",  # just above
    "172.15.255.255",  # just below 172.16/12
    "172.32.0.0",  # just above
    "169.253.255.255",
    "223.255.255.255",
    "2606:2800:220:1:248:1893:25c8:1946",
    "2a00:1450:4001:80e::200e",
    "::ffff:93.184.216.34",  # mapped public: judged as 93.184.216.34
    "64:ff9b::5db8:d822",  # NAT64 of 93.184.216.34
    "1559238946",  # 92.240.0.34 in decimal
]


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert check_address(address, FetchPolicy()) is None


def test_address_objects_are_accepted() -> None:
    assert check_address(IPv4Address("93.184.216.34")) is None
    assert check_address(IPv4Address("10.1.2.3")) == "10.1.2.3 is private"


def test_allow_list_lets_through_only_its_networks() -> None:
    pol = FetchPolicy(allowed_networks=LOOPBACK)
    for address in ("127.0.0.1", "127.9.9.9", "2130706433", "127.1", "::ffff:127.0.0.1"):
        assert check_address(address, pol) is None, address
    for address in ("::1", "10.0.0.1", "169.254.169.254", "::ffff:10.0.0.1"):
        assert check_address(address, pol) is not None, address
    assert check_address("::1", FetchPolicy(allowed_networks=(ip_network("::1/128"),))) is None


def test_allow_list_accepts_strings() -> None:
    pol = FetchPolicy(allowed_networks=["10.0.0.0/8"])  # type: ignore[arg-type]
    assert pol.allowed_networks == (ip_network("10.0.0.0/8"),)
    assert check_address("10.2.3.4", pol) is None


@pytest.mark.parametrize(
    "text",
    [
        "example.com",
        "",
        "1.2.3.4.5",
        "256.0.0.1",
        "1.2.3.256",
        "0x100000000",
        "08.0.0.1",
        "1..2.3",
        "fe80::1%eth0",
        "::ffff:0177.0.0.1",
        "4294967296",
        "1.2.3.0xg",
    ],
)
def test_check_address_refuses_what_is_not_an_address(text: str) -> None:
    with pytest.raises(ValueError):
        check_address(text)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_bytes": 0},
        {"max_pixels": -1},
        {"timeout_s": 0},
        {"timeout_s": float("inf")},
        {"timeout_s": float("nan")},
        {"max_redirects": -1},
        {"max_bytes": True},
    ],
)
def test_policy_refuses_nonsense_limits(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FetchPolicy(**kwargs)


# --- End to end over HTTP on 127.0.0.1 ----------------------------------------------------


@pytest.mark.socket
def test_png_is_fetched_and_decoded_when_loopback_is_allowed(server: LocalServer) -> None:
    image = load(f"{base(server)}/png", policy(allowed_networks=LOOPBACK))
    assert image.mode == "RGB"
    assert image.size == (8, 6)
    assert image.getpixel((3, 3)) == (200, 30, 40)
    assert [s.host for s in server.seen] == [f"127.0.0.1:{server.port}"]
    assert server.seen[0].client == "127.0.0.1"


@pytest.mark.socket
def test_content_type_does_not_matter_content_does(server: LocalServer) -> None:
    assert load(f"{base(server)}/octet", policy(allowed_networks=LOOPBACK)).size == (8, 6)


@pytest.mark.socket
def test_exif_orientation_is_applied(server: LocalServer) -> None:
    image = load(f"{base(server)}/jpeg-rotated", policy(allowed_networks=LOOPBACK))
    assert image.size == (4, 8)
    assert image.mode == "RGB"


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "127.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "127.0.0.1.",
    ],
)
@pytest.mark.socket
def test_loopback_and_its_encodings_are_refused_by_default(server: LocalServer, host: str) -> None:
    err = refused(f"http://{host}:{server.port}/png", policy())
    assert "address not allowed" in err.reason
    assert "127.0.0.1" in err.reason and "loopback" in err.reason
    assert server.seen == []  # nothing was sent


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f000001", "127.1", "[::ffff:127.0.0.1]", "0177.0.0.1"]
)
@pytest.mark.socket
def test_encoded_loopback_connects_to_the_normalised_address(
    server: LocalServer, host: str
) -> None:
    image = load(f"http://{host}:{server.port}/png", policy(allowed_networks=LOOPBACK))
    assert image.size == (8, 6)
    assert server.seen[0].client == "127.0.0.1"


@pytest.mark.socket
def test_oversized_body_with_honest_content_length_is_refused(server: LocalServer) -> None:
    err = refused(f"{base(server)}/png", policy(allowed_networks=LOOPBACK, max_bytes=len(PNG) - 1))
    assert "too large" in err.reason
    assert load(f"{base(server)}/png", policy(allowed_networks=LOOPBACK, max_bytes=len(PNG)))


@pytest.mark.socket
def test_declared_huge_length_is_refused_at_once(server: LocalServer) -> None:
    start = time.monotonic()
    err = refused(f"{base(server)}/big-declared", policy(allowed_networks=LOOPBACK))
    assert "too large" in err.reason
    assert time.monotonic() - start < 1.5  # the server holds the connection for 3 s


@pytest.mark.parametrize("route", ["/big-unsized", "/big-chunked"])
@pytest.mark.socket
def test_body_without_length_is_capped_while_streaming(server: LocalServer, route: str) -> None:
    # 2 MiB of non-image bytes: without a cap this would read everything and then say
    # "not an image"; the cap stops at max_bytes and says "too large".
    err = refused(f"{base(server)}{route}", policy(allowed_networks=LOOPBACK, max_bytes=100_000))
    assert "too large: more than 100000 bytes" in err.reason


@pytest.mark.socket
def test_lying_content_length_reads_only_that_much(server: LocalServer) -> None:
    err = refused(f"{base(server)}/lying-length", policy(allowed_networks=LOOPBACK))
    assert "not a decodable image" in err.reason or "not an image" in err.reason


@pytest.mark.socket
def test_body_that_is_not_an_image_is_refused(server: LocalServer) -> None:
    err = refused(f"{base(server)}/text", policy(allowed_networks=LOOPBACK))
    assert "not an image" in err.reason


@pytest.mark.socket
def test_compressed_transfer_is_refused(server: LocalServer) -> None:
    err = refused(f"{base(server)}/gzip", policy(allowed_networks=LOOPBACK))
    assert "Content-Encoding" in err.reason


@pytest.mark.socket
def test_http_error_status_is_refused(server: LocalServer) -> None:
    err = refused(f"{base(server)}/404", policy(allowed_networks=LOOPBACK))
    assert "HTTP status 404" in err.reason


@pytest.mark.socket
def test_pixel_bomb_header_is_refused_before_decoding(server: LocalServer) -> None:
    before = Image.MAX_IMAGE_PIXELS
    err = refused(f"{base(server)}/bomb-header", policy(allowed_networks=LOOPBACK))
    assert "too many pixels" in err.reason
    # 8000x8000 is under Pillow's own guard: only the policy's limit refuses it.
    err = refused(f"{base(server)}/big-header", policy(allowed_networks=LOOPBACK))
    assert "too many pixels: 8000x8000 = 64000000, more than 40000000" in err.reason
    assert before == Image.MAX_IMAGE_PIXELS  # the per-call limit left the global alone


@pytest.mark.socket
def test_zlib_bomb_is_refused_by_the_per_call_pixel_limit(server: LocalServer) -> None:
    err = refused(
        f"{base(server)}/zlib-bomb", policy(allowed_networks=LOOPBACK, max_pixels=1_000_000)
    )
    assert "too many pixels: 5000x5000" in err.reason
    # The same image is fine under a larger per-call limit.
    image = load(f"{base(server)}/zlib-bomb", policy(allowed_networks=LOOPBACK))
    assert image.size == (5000, 5000)


@pytest.mark.socket
def test_small_image_over_a_low_pixel_limit_is_refused(server: LocalServer) -> None:
    err = refused(f"{base(server)}/png", policy(allowed_networks=LOOPBACK, max_pixels=47))
    assert "too many pixels: 8x6 = 48, more than 47" in err.reason


@pytest.mark.parametrize("route", ["/dribble", "/silent"])
@pytest.mark.socket
def test_slow_server_hits_the_total_time_limit(server: LocalServer, route: str) -> None:
    # /dribble sends a byte every 50 ms: no single read waits long, only the total is late.
    start = time.monotonic()
    err = refused(f"{base(server)}{route}", policy(allowed_networks=LOOPBACK, timeout_s=0.5))
    elapsed = time.monotonic() - start
    assert "timed out" in err.reason
    assert 0.45 <= elapsed < 1.5


@pytest.mark.socket
def test_redirects_are_followed_up_to_the_limit(server: LocalServer) -> None:
    pol = policy(allowed_networks=LOOPBACK, max_redirects=3)
    assert load(f"{base(server)}/chain/3", pol).size == (8, 6)
    assert [s.path for s in server.seen] == ["/chain/3", "/chain/2", "/chain/1", "/chain/0"]
    server.seen.clear()
    err = refused(f"{base(server)}/chain/4", pol)
    assert err.reason == "too many redirects (more than 3)"
    assert len(server.seen) == 4  # the 4th redirect was not followed


@pytest.mark.socket
def test_redirect_loop_ends(server: LocalServer) -> None:
    err = refused(f"{base(server)}/loop", policy(allowed_networks=LOOPBACK, max_redirects=5))
    assert "too many redirects" in err.reason
    assert len(server.seen) == 6


@pytest.mark.socket
def test_no_redirects_allowed(server: LocalServer) -> None:
    err = refused(f"{base(server)}/chain/1", policy(allowed_networks=LOOPBACK, max_redirects=0))
    assert "too many redirects (more than 0)" in err.reason


@pytest.mark.socket
def test_redirect_without_location_is_refused(server: LocalServer) -> None:
    err = refused(f"{base(server)}/no-location", policy(allowed_networks=LOOPBACK))
    assert "without a Location" in err.reason


def _redirect(srv: LocalServer, target: str) -> str:
    return f"{base(srv)}/to?u={quote(target, safe='')}"


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("http://[::1]:{port}/png", ["::1 is loopback"]),
        ("http://127.0.0.2:{port}/png", ["127.0.0.2 is loopback"]),
        ("http://0x7f000002:{port}/png", ["127.0.0.2 is loopback"]),
        ("http://[::ffff:127.0.0.2]:{port}/png", ["127.0.0.2, which is loopback"]),
        ("http://inside.test:{port}/png", ["inside.test resolves to ::1", "loopback"]),
        ("ftp://127.0.0.1:{port}/png", ["unsupported scheme ftp:"]),
        ("file:///etc/passwd", ["unsupported scheme file:"]),
        ("data:image/png;base64,AAAA", ["unsupported scheme data:"]),
    ],
)
@pytest.mark.socket
def test_redirect_target_is_checked_like_the_first_url(
    server: LocalServer, target: str, words: list[str]
) -> None:
    # Only 127.0.0.1 itself is allowed: every redirect target above is refused before
    # anything is sent (and a broken guard could only reach this machine).
    resolver = FakeResolver({"inside.test": [["::1"]]})
    pol = policy(allowed_networks=(ip_network("127.0.0.1/32"),), resolver=resolver)
    err = refused(_redirect(server, target.format(port=server.port)), pol)
    for word in words:
        assert word in err.reason
    assert [s.path.split("?")[0] for s in server.seen] == ["/to"]


@pytest.mark.socket
def test_relative_redirect_keeps_the_checked_host(server: LocalServer) -> None:
    resolver = FakeResolver({"images.test": [["127.0.0.1"]]})
    pol = policy(allowed_networks=LOOPBACK, resolver=resolver)
    assert load(f"http://images.test:{server.port}/chain/2", pol).size == (8, 6)
    assert resolver.calls == ["images.test"] * 3  # once per hop
    assert {s.host for s in server.seen} == {f"images.test:{server.port}"}


@pytest.mark.socket
def test_resolver_once_per_hop_and_connection_to_the_checked_ip(server: LocalServer) -> None:
    resolver = FakeResolver({"images.test": [["127.0.0.1"]], "cdn.test": [["127.0.0.1"]]})
    pol = policy(allowed_networks=LOOPBACK, resolver=resolver)
    start = f"http://images.test:{server.port}/to?u=" + quote(
        f"http://cdn.test:{server.port}/png", safe=""
    )
    image = load(start, pol)
    assert image.size == (8, 6)
    assert resolver.calls == ["images.test", "cdn.test"]
    # The names are not resolvable by real DNS: the connections went to the checked IP,
    # with the original names in Host.
    assert [s.host for s in server.seen] == [
        f"images.test:{server.port}",
        f"cdn.test:{server.port}",
    ]
    assert [s.client for s in server.seen] == ["127.0.0.1", "127.0.0.1"]


@pytest.mark.socket
def test_dns_rebinding_cannot_switch_the_address(server: LocalServer) -> None:
    # First answer allowed, every later answer not: a second lookup would fail the load.
    resolver = FakeResolver({"images.test": [["127.0.0.1"], ["::1"]]})
    pol = policy(allowed_networks=LOOPBACK, resolver=resolver)
    assert load(f"http://images.test:{server.port}/png", pol).size == (8, 6)
    assert resolver.calls == ["images.test"]
    assert server.seen[0].host == f"images.test:{server.port}"


@pytest.mark.socket
def test_every_resolved_address_is_checked(server: LocalServer) -> None:
    resolver = FakeResolver({"images.test": [["127.0.0.1", "10.0.0.1"]]})
    pol = policy(allowed_networks=LOOPBACK, resolver=resolver)
    err = refused(f"http://images.test:{server.port}/png", pol)
    assert (
        err.reason == "address not allowed: images.test resolves to 10.0.0.1; 10.0.0.1 is private"
    )
    assert server.seen == []


@pytest.mark.socket
def test_next_checked_address_is_tried_when_one_refuses_connections(server: LocalServer) -> None:
    # Nothing of ours listens on [::1]:port; the load falls back to 127.0.0.1.
    resolver = FakeResolver({"images.test": [["::1", "127.0.0.1"]]})
    pol = policy(allowed_networks=(*LOOPBACK, ip_network("::1/128")), resolver=resolver)
    assert load(f"http://images.test:{server.port}/png", pol).size == (8, 6)
    assert resolver.calls == ["images.test"]


def test_unresolvable_names_are_refused() -> None:
    def failing(host: str) -> list[str]:
        raise OSError("Name or service not known")

    err = refused("http://nowhere.test/png", policy(resolver=failing))
    assert "could not resolve nowhere.test" in err.reason
    err = refused("http://empty.test/png", policy(resolver=FakeResolver({"empty.test": [[]]})))
    assert "no addresses" in err.reason
    err = refused("http://junk.test/png", policy(resolver=FakeResolver({"junk.test": [["x"]]})))
    assert "resolver returned 'x'" in err.reason


@pytest.mark.socket
def test_connection_refused_is_an_input_error() -> None:
    with socketserver_port() as port:
        pass  # the port is free again: nothing listens there
    err = refused(f"http://127.0.0.1:{port}/png", policy(allowed_networks=LOOPBACK))
    assert "could not connect" in err.reason


class socketserver_port:
    """A port on 127.0.0.1 that was just free."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


@pytest.mark.parametrize(
    ("url", "word"),
    [
        ("ftp://127.0.0.1/x.png", "unsupported scheme ftp:"),
        ("file:///etc/passwd", "unsupported scheme file:"),
        ("gopher://127.0.0.1:70/", "unsupported scheme gopher:"),
        ("javascript:alert(1)", "unsupported scheme javascript:"),
        ("not a url", "bad URL"),
        ("/relative/path.png", "unsupported scheme (none)"),
        ("", "unsupported scheme (none)"),
        ("http:///x.png", "no host"),
        ("http://user:pw@127.0.0.1/x.png", "credentials"),
        ("http://127.0.0.1:99999/x.png", "bad URL"),
        ("http://127.0.0.1:0/x.png", "port 0"),
        ("http://127.0.0.1\\@example.com/", "bad URL"),
        ("http://exa mple.com/", "bad URL"),
        ("http://example.com/\r\nX: y", "bad URL"),
        ("http://[fe80::1%25eth0]/", "bad URL"),
        ("http://1.2.3.4.5/", "invalid IPv4"),
        ("http://256.1.1.1/", "invalid IPv4"),
        ("http://exa%6dple.com/", "invalid host name"),
        ("http://" + "a" * 9000 + ".com/", "longer than"),
    ],
)
def test_bad_urls_are_refused_without_traffic(url: str, word: str) -> None:
    err = refused(url, policy())
    assert word in err.reason


def test_non_string_input_is_refused() -> None:
    with pytest.raises(ImageInputError, match="expected a URL string"):
        asyncio.run(load_image(b"http://x/", FIELD, policy()))  # type: ignore[arg-type]


@pytest.mark.socket
def test_error_names_the_style_image_field(server: LocalServer) -> None:
    err = refused(f"{base(server)}/text", policy(), "ip_adapter_style_images.2")
    assert str(err).startswith("ip_adapter_style_images.2: address not allowed")


# --- data: URLs -------------------------------------------------------------------------


def test_data_url_png_is_decoded() -> None:
    image = load(data_url(PNG), policy())
    assert image.mode == "RGB"
    assert image.size == (8, 6)
    assert load("DATA:IMAGE/PNG;BASE64," + base64.b64encode(PNG).decode(), policy()).size == (8, 6)


def test_data_url_media_subtype_need_not_match_content() -> None:
    assert load(data_url(PNG, "image/jpeg"), policy()).size == (8, 6)


def test_percent_encoded_base64_is_accepted() -> None:
    encoded = base64.b64encode(PNG).decode()
    url = "data:image/png;base64," + quote(encoded, safe="")
    assert "%" in url
    assert load(url, policy()).size == (8, 6)


@pytest.mark.parametrize(
    ("url", "word"),
    [
        ("data:image/png;base64,iVBORw0KGgo!!!!", "invalid base64"),
        ("data:image/png;base64,iVBORw0KGgoAAA", "invalid base64"),  # bad padding
        ("data:image/png;base64,iVBO Rw0K", "invalid base64"),
        ("data:image/png;base64", "no comma"),
        ("data:image/png,rawbytes", "only base64"),
        ("data:,hello", "is not image/*"),
        ("data:;base64,aGVsbG8=", "is not image/*"),
        ("data:text/plain;base64,aGVsbG8=", "'text/plain' is not image/*"),
        ("data:text/html;base64," + base64.b64encode(PNG).decode(), "is not image/*"),
        ("data:image/png;base64," + base64.b64encode(b"hello, world").decode(), "not an image"),
        ("data:image/svg+xml;base64," + base64.b64encode(b"<svg/>").decode(), "not an image"),
        ("data:image/png;base64," + base64.b64encode(PNG[:40]).decode(), "not an image"),
    ],
)
def test_bad_data_urls_are_refused(url: str, word: str) -> None:
    err = refused(url, policy())
    assert word in err.reason


def test_data_url_over_the_byte_limit_is_refused() -> None:
    err = refused(data_url(PNG), policy(max_bytes=len(PNG) - 1))
    assert f"too large: more than {len(PNG) - 1} bytes" in err.reason
    assert load(data_url(PNG), policy(max_bytes=len(PNG))).size == (8, 6)
    huge = "data:image/png;base64," + "A" * 10_000_000
    start = time.monotonic()
    assert "too large" in refused(huge, policy(max_bytes=1000)).reason
    assert time.monotonic() - start < 1.0  # refused from the length, not decoded


def test_data_url_pixel_bomb_is_refused() -> None:
    err = refused(data_url(png_header_only(30000, 30000)), policy())
    assert "too many pixels" in err.reason


# --- https: SNI and certificate checked against the original name ---------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[LocalServer, ssl.SSLContext, list[str | None]]]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=images.test",
            "-addext",
            "subjectAltName=DNS:images.test",
        ],
        check=True,
        capture_output=True,
        timeout=20,
    )
    sni: list[str | None] = []
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)

    def remember(sock: Any, name: str | None, ctx: Any) -> None:
        sni.append(name)

    server_ctx.sni_callback = remember
    srv = LocalServer()
    srv.socket = server_ctx.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(cert))
    try:
        yield srv, client_ctx, sni
    finally:
        srv.stopping.set()
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.mark.socket
def test_https_sends_sni_and_verifies_the_original_name(
    tls_server: tuple[LocalServer, ssl.SSLContext, list[str | None]],
) -> None:
    srv, client_ctx, sni = tls_server
    resolver = FakeResolver({"images.test": [["127.0.0.1"]], "other.test": [["127.0.0.1"]]})
    pol = policy(allowed_networks=LOOPBACK, resolver=resolver, ssl_context=client_ctx)
    assert load(f"https://images.test:{srv.port}/png", pol).size == (8, 6)
    assert sni == ["images.test"]
    assert [s.host for s in srv.seen] == [f"images.test:{srv.port}"]
    # Same IP, another name: the certificate (for images.test) must not be accepted.
    err = refused(f"https://other.test:{srv.port}/png", pol)
    assert "could not connect" in err.reason and "certificate" in err.reason.lower()
    assert sni[-1] == "other.test"
    assert len(srv.seen) == 1


@pytest.mark.socket
def test_https_by_ip_is_verified_against_the_ip(
    tls_server: tuple[LocalServer, ssl.SSLContext, list[str | None]],
) -> None:
    srv, client_ctx, sni = tls_server
    pol = policy(allowed_networks=LOOPBACK, ssl_context=client_ctx)
    err = refused(f"https://127.0.0.1:{srv.port}/png", pol)
    assert "certificate" in err.reason.lower()
    assert all(name is None for name in sni)  # no SNI for an IP
    assert srv.seen == []
