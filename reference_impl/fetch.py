"""Safe loading of the user-supplied adapter images (``ip_adapter_image``, style images).

A request names its images as ``http://``, ``https://`` or ``data:image/...;base64,`` URLs.
The reference server fetches them on the GPU host, which usually sits next to things a
stranger must not reach (cloud metadata at 169.254.169.254, admin ports on loopback, the
private network). ``load_image`` therefore:

* parses the URL itself and normalises the host the way browsers and ``inet_aton`` do
  (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``, ``[::ffff:7f00:1]`` are all
  127.0.0.1) before judging it; credentials, whitespace, control characters, backslashes
  and zone ids in URLs are refused;
* resolves a host name exactly once per hop with ``policy.resolver``, checks *every*
  address it returns (``check_address``) and then connects to the checked address itself:
  the request goes to ``http://<ip>:<port>/path`` with ``Host: <name>``, so a second DNS
  answer (rebinding) can never change where the bytes go. The request goes through an
  ``httpx.AsyncHTTPTransport`` directly (no ``AsyncClient``): no proxy from the
  environment, no cookies, no automatic redirects decide anything;
* for ``https`` sends the original name as SNI and verifies the certificate against that
  name (httpcore's ``sni_hostname`` request extension: the TCP connection goes to the
  checked IP, the TLS handshake uses ``server_hostname=<name>``, and Python's ``ssl``
  with ``check_hostname`` verifies the certificate for ``<name>``). An IP-literal URL
  gets no SNI and is verified against the IP, as any client does. Each hop uses its own
  transport without keep-alive, so a TLS connection made for one name is never reused
  for another;
* follows at most ``policy.max_redirects`` redirects by hand, each target parsed,
  resolved and checked exactly like the first URL (and only to ``http``/``https``);
* streams the body with a byte cap (``Content-Length`` is only used to refuse early; a
  missing or lying one changes nothing), asks for and accepts only ``identity``
  encoding (no gzip bombs);
* decodes with Pillow restricted to PNG, JPEG, WebP and GIF, checks ``width * height``
  against ``policy.max_pixels`` from the header, *before* any pixel is decoded, applies
  the EXIF orientation (as diffusers' ``load_image`` does) and returns an RGB image.
  Pillow's global ``Image.MAX_IMAGE_PIXELS`` is left alone (changing it would be global
  and racy between threads); its own guard (2 x that, about 179 MP) still fires first
  for anything larger and is reported the same way;
* bounds everything, DNS and decoding included, by one total deadline
  (``policy.timeout_s``): a server that dribbles a byte at a time is cut off on time.

Every refusal is an ``ImageInputError`` naming the request field and the reason.
This module uses asyncio (``asyncio.timeout``, ``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import math
import re
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from typing import Any
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

import httpx
from PIL import Image, ImageOps, UnidentifiedImageError

from mock_server.exceptions import IpmockError

__all__ = [
    "DEFAULT_POLICY",
    "FetchPolicy",
    "IPAddress",
    "IPNetwork",
    "ImageInputError",
    "Resolver",
    "check_address",
    "load_image",
    "system_resolver",
]

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
Resolver = Callable[[str], Iterable[str | IPv4Address | IPv6Address]]
"""Maps a host name to its addresses. Called once per hop, in a worker thread."""

DECODABLE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
MAX_URL_CHARS = 8192  # for http(s) URLs; data: URLs are bounded by max_bytes
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_MEDIA_TYPE = re.compile(r"image/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


class ImageInputError(IpmockError, ValueError):
    """An image input was refused. ``str()`` is ``"<field>: <reason>"``."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def system_resolver(host: str) -> list[str]:
    """The operating system's resolver (``getaddrinfo``), addresses in its order."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    seen: dict[str, None] = {}
    for info in infos:
        seen.setdefault(str(info[4][0]), None)
    return list(seen)


@dataclass(frozen=True, kw_only=True)
class FetchPolicy:
    """Limits for one image input. Defaults suit a public server.

    ``allowed_networks`` lets through addresses that would otherwise be refused (for
    example ``ip_network("127.0.0.0/8")`` in tests); strings are accepted and parsed.
    ``ssl_context`` replaces the default trust store (certifi) for https.
    """

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    timeout_s: float = 15.0
    max_redirects: int = 5
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = system_resolver
    ssl_context: ssl.SSLContext | None = None
    user_agent: str = "ipmock-reference/0.1"

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if (
            isinstance(self.max_redirects, bool)
            or not isinstance(self.max_redirects, int)
            or self.max_redirects < 0
        ):
            raise ValueError(f"max_redirects must be an integer >= 0, not {self.max_redirects!r}")
        if not (isinstance(self.timeout_s, int | float) and 0 < self.timeout_s < math.inf):
            raise ValueError(f"timeout_s must be a positive finite number, not {self.timeout_s!r}")
        networks = tuple(
            ip_network(n) if isinstance(n, str) else n
            for n in self.allowed_networks  # also accepts a list or strings at run time
        )
        object.__setattr__(self, "allowed_networks", networks)


DEFAULT_POLICY = FetchPolicy()


# --- Addresses ------------------------------------------------------------------------

_V4_SPECIAL: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), reason)
    for net, reason in (
        ("0.0.0.0/32", "unspecified"),
        ("0.0.0.0/8", "'this network' (0.0.0.0/8)"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space (CGNAT, 100.64.0.0/10)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (where cloud metadata services live)"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved for IETF protocol assignments"),
        ("192.0.2.0/24", "reserved for documentation"),
        ("192.88.99.0/24", "6to4 relay anycast (deprecated)"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "reserved for benchmarking"),
        ("198.51.100.0/24", "reserved for documentation"),
        ("203.0.113.0/24", "reserved for documentation"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
    )
)
_V6_SPECIAL: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), reason)
    for net, reason in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible (deprecated)"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/32", "Teredo"),
        ("2001::/23", "reserved for IETF protocol assignments"),
        ("2001:db8::/32", "reserved for documentation"),
        ("2002::/16", "6to4"),
        ("3fff::/20", "reserved for documentation"),
        ("fc00::/7", "unique local (private)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    )
)
_V6_GLOBAL_UNICAST = IPv6Network("2000::/3")
_NAT64 = IPv6Network("64:ff9b::/96")


def check_address(ip: str | IPAddress, policy: FetchPolicy = DEFAULT_POLICY) -> str | None:
    """None if the policy lets a connection go to ``ip``, else why not (``"10.0.0.1 is private"``).

    A string is read the way a URL host is: IPv4 in decimal, octal, hex and short forms
    (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``), IPv6 with or without brackets.
    IPv4-mapped (``::ffff:a.b.c.d``) and NAT64 (``64:ff9b::a.b.c.d``) addresses are judged
    by the IPv4 address inside. Raises ``ValueError`` if ``ip`` is not an IP address.
    """
    if isinstance(ip, str):
        text = ip.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        parsed = _parse_ip_host(text.lower())
        if parsed is None:
            raise ValueError(f"not an IP address: {ip!r}")
        ip = parsed
    return _refusal(ip, policy.allowed_networks)


def _refusal(ip: IPAddress, allowed: tuple[IPNetwork, ...]) -> str | None:
    if any(ip in net for net in allowed):
        return None
    if isinstance(ip, IPv6Address):
        inner, kind = ip.ipv4_mapped, "IPv4-mapped"
        if inner is None and ip in _NAT64:
            inner, kind = IPv4Address(int(ip) & 0xFFFF_FFFF), "NAT64"
        if inner is not None:
            if any(inner in net for net in allowed):
                return None
            what = _special(inner)
            return None if what is None else f"{ip} is the {kind} form of {inner}, which is {what}"
    what = _special(ip)
    return None if what is None else f"{ip} is {what}"


def _special(ip: IPAddress) -> str | None:
    if isinstance(ip, IPv6Address):
        for net6, reason in _V6_SPECIAL:
            if ip in net6:
                return reason
        if ip not in _V6_GLOBAL_UNICAST:
            return "reserved (not global unicast)"
    else:
        for net4, reason in _V4_SPECIAL:
            if ip in net4:
                return reason
    if not ip.is_global:  # safety net: anything Python's registry knows as special
        return "not globally reachable"
    return None


def _connect_ip(ip: IPAddress) -> IPAddress:
    """Where to connect: an IPv4-mapped address is reached over IPv4."""
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _parse_ip_host(host: str) -> IPAddress | None:
    """An IP address for a URL host (lowercase, no brackets), None for a name.

    IPv4 follows the WHATWG URL parser (= inet_aton): 1 to 4 dot-separated parts, each
    decimal, octal (leading 0) or hex (0x); the last part fills the remaining bytes; one
    trailing dot is allowed. A host whose last part is a number must be a valid address.
    """
    if ":" in host:
        if "%" in host:
            raise ValueError("IPv6 zone ids are not allowed")
        return IPv6Address(host)
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not _looks_numeric(parts[-1]):
        return None
    if len(parts) > 4:
        raise ValueError(f"invalid IPv4 address {host!r}: more than 4 parts")
    numbers = [_ipv4_part(part, host) for part in parts]
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError(f"invalid IPv4 address {host!r}: a part is out of range")
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n << (8 * (3 - i))
    return IPv4Address(value)


_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdef")


def _looks_numeric(part: str) -> bool:
    if part[:2] == "0x":
        return set(part[2:]) <= _HEX
    return part != "" and set(part) <= _DIGITS


def _ipv4_part(part: str, host: str) -> int:
    if part[:2] == "0x":
        digits, base = part[2:], 16
        ok = set(digits) <= _HEX
    elif len(part) > 1 and part[0] == "0":
        digits, base = part[1:], 8
        ok = set(digits) <= frozenset("01234567")
    else:
        digits, base = part, 10
        ok = part != "" and set(part) <= _DIGITS
    if not ok:
        raise ValueError(f"invalid IPv4 address {host!r}: bad part {part!r}")
    return int(digits, base) if digits else 0


# --- URLs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # ASCII name, or the canonical IP text (no brackets)
    ip: IPAddress | None  # set when the URL names an address
    port: int
    target: str  # path and query
    host_header: str


def _parse_http_url(url: str, field: str) -> _Target:
    def bad(why: str) -> ImageInputError:
        return ImageInputError(field, f"bad URL: {why}")

    if len(url) > MAX_URL_CHARS:
        raise bad(f"longer than {MAX_URL_CHARS} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
        raise bad("whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise bad(str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ImageInputError(
            field,
            f"unsupported scheme {scheme + ':' if scheme else '(none)'}: "
            "use an http://, https:// or data:image/ URL",
        )
    if "@" in parts.netloc:
        raise bad("credentials (user@host) are not allowed")
    host = parts.hostname or ""
    if not host:
        raise bad("no host")
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    if port == 0:
        raise bad("port 0")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise bad("host is not a valid internationalised name") from None
    try:
        ip = _parse_ip_host(host)
    except ValueError as exc:
        raise bad(str(exc)) from None
    if ip is not None:
        host = str(ip)
        shown = f"[{ip}]" if ip.version == 6 else host
    else:
        labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
        if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
            raise bad(f"invalid host name {host!r}")
        shown = host
    if port != _DEFAULT_PORTS[scheme]:
        shown = f"{shown}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(scheme, host, ip, port, target, shown)


# --- Fetching -------------------------------------------------------------------------


@cache
def _default_ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


async def load_image(url: str, field: str, policy: FetchPolicy = DEFAULT_POLICY) -> Image.Image:
    """Fetch or decode one image input and return it in RGB.

    ``field`` names the input in error messages: ``"ip_adapter_image"`` or
    ``"ip_adapter_style_images.N"``. Raises ``ImageInputError`` for every bad input,
    within ``policy.timeout_s`` seconds in all.
    """
    if not isinstance(url, str):
        raise ImageInputError(field, f"expected a URL string, not {type(url).__name__}")
    try:
        async with asyncio.timeout(policy.timeout_s):
            data = await _fetch(url, field, policy)
            return await asyncio.to_thread(_decode, data, field, policy.max_pixels)
    except TimeoutError:
        raise ImageInputError(
            field, f"timed out: no complete image within {policy.timeout_s:g} s"
        ) from None


async def _fetch(url: str, field: str, policy: FetchPolicy) -> bytes:
    scheme, colon, _ = url.partition(":")
    if colon and scheme.lower() == "data":
        return _data_url_bytes(url, field, policy.max_bytes)
    current = url
    for _hop in range(policy.max_redirects + 1):
        target = _parse_http_url(current, field)
        addresses = await _resolve(target, field, policy)
        outcome = await _get(target, addresses, field, policy)
        if isinstance(outcome, bytes):
            return outcome
        current = urljoin(current, outcome)
    raise ImageInputError(field, f"too many redirects (more than {policy.max_redirects})")


async def _resolve(target: _Target, field: str, policy: FetchPolicy) -> list[IPAddress]:
    """The addresses to try, every one of them checked; the resolver runs once."""
    if target.ip is not None:
        addresses = [target.ip]
    else:
        try:
            answer = await asyncio.to_thread(lambda: list(policy.resolver(target.host)))
        except (OSError, UnicodeError) as exc:
            raise ImageInputError(field, f"could not resolve {target.host}: {exc}") from None
        addresses = []
        for item in answer:
            try:
                addresses.append(item if not isinstance(item, str) else ip_address(item))
            except ValueError:
                raise ImageInputError(
                    field, f"could not resolve {target.host}: resolver returned {item!r}"
                ) from None
        if not addresses:
            raise ImageInputError(field, f"could not resolve {target.host}: no addresses")
    for ip in addresses:
        why = _refusal(ip, policy.allowed_networks)
        if why is not None:
            via = "" if target.ip is not None else f"{target.host} resolves to {ip}; "
            raise ImageInputError(field, f"address not allowed: {via}{why}")
    return [_connect_ip(ip) for ip in addresses]


async def _get(
    target: _Target, addresses: list[IPAddress], field: str, policy: FetchPolicy
) -> bytes | str:
    """GET the target from the first checked address that accepts a connection.

    Returns the body, or the Location of a redirect. The transport is used directly,
    without ``httpx.AsyncClient``: no environment proxies, cookies, auth or redirect
    handling (the client would parse a redirect's Location itself, and may refuse it
    before this module can say why).
    """
    extensions: dict[str, Any] = {"timeout": httpx.Timeout(policy.timeout_s).as_dict()}
    if target.scheme == "https" and target.ip is None:
        extensions["sni_hostname"] = target.host.rstrip(".")
    headers = {
        "Host": target.host_header,
        "Accept": "image/*",
        "Accept-Encoding": "identity",
        "User-Agent": policy.user_agent,
        "Connection": "close",
    }
    failure = ""
    async with httpx.AsyncHTTPTransport(
        verify=policy.ssl_context or _default_ssl_context(),
        trust_env=False,
        retries=0,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=0),
    ) as transport:
        for ip in addresses:
            literal = f"[{ip}]" if ip.version == 6 else str(ip)
            try:
                url = httpx.URL(f"{target.scheme}://{literal}:{target.port}{target.target}")
            except httpx.InvalidURL as exc:
                raise ImageInputError(field, f"bad URL: {exc}") from None
            if url.host != str(ip) or url.port not in (target.port, None):
                raise ImageInputError(field, "bad URL: could not be rebuilt for its address")
            request = httpx.Request("GET", url, headers=headers, extensions=extensions)
            try:
                response = await transport.handle_async_request(request)
            except httpx.ConnectError as exc:
                failure = f"{ip}: {_text(exc)}"
                continue
            except httpx.TimeoutException:
                raise TimeoutError from None
            except httpx.HTTPError as exc:
                raise ImageInputError(field, f"request failed: {_text(exc)}") from None
            try:
                return await _read(response, field, policy.max_bytes, target.host_header)
            finally:
                await response.aclose()
    raise ImageInputError(field, f"could not connect to {target.host_header} ({failure})")


async def _read(response: httpx.Response, field: str, max_bytes: int, host: str) -> bytes | str:
    status = response.status_code
    if status in _REDIRECTS:
        location: str | None = response.headers.get("location")
        if not location:
            raise ImageInputError(field, f"HTTP {status} redirect without a Location")
        return location
    if status != 200:
        raise ImageInputError(field, f"HTTP status {status} from {host}")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ImageInputError(field, f"unsupported Content-Encoding {encoding!r}")
    too_large = ImageInputError(field, f"too large: more than {max_bytes} bytes")
    declared = response.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise too_large
    body = bytearray()
    try:
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > max_bytes:
                raise too_large
    except httpx.TimeoutException:
        raise TimeoutError from None
    except httpx.HTTPError as exc:
        raise ImageInputError(field, f"download failed: {_text(exc)}") from None
    return bytes(body)


def _text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _data_url_bytes(url: str, field: str, max_bytes: int) -> bytes:
    def bad(why: str) -> ImageInputError:
        return ImageInputError(field, f"bad data URL: {why}")

    head, comma, payload = url.partition(",")
    if not comma:
        raise bad("no comma between the media type and the data")
    params = [p.strip().lower() for p in head[len("data:") :].split(";")]
    media_type = params[0]
    if not _MEDIA_TYPE.fullmatch(media_type):
        raise bad(f"media type {media_type or '(none)'!r} is not image/*")
    if len(params) < 2 or params[-1] != "base64":
        raise bad("only base64 data URLs are accepted (data:image/...;base64,...)")
    if len(payload) > 4 * math.ceil(max_bytes / 3) + 3 * payload.count("%"):
        raise ImageInputError(field, f"too large: more than {max_bytes} bytes")
    raw = unquote_to_bytes(payload) if "%" in payload else payload.encode("ascii", "replace")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad(f"invalid base64 ({exc})") from None
    if len(data) > max_bytes:
        raise ImageInputError(field, f"too large: more than {max_bytes} bytes")
    return data


# --- Decoding -------------------------------------------------------------------------


def _decode(data: bytes, field: str, max_pixels: int) -> Image.Image:
    def check(size: tuple[int, int]) -> None:
        width, height = size
        if width * height > max_pixels:
            raise ImageInputError(
                field,
                f"too many pixels: {width}x{height} = {width * height}, more than {max_pixels}",
            )

    try:
        with Image.open(io.BytesIO(data), formats=DECODABLE_FORMATS) as image:
            check(image.size)  # from the header, before any pixel is decoded
            image.load()
            check(image.size)
            return ImageOps.exif_transpose(image).convert("RGB")
    except ImageInputError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageInputError(field, f"too many pixels: {exc}") from None
    except UnidentifiedImageError:
        raise ImageInputError(field, "not an image (PNG, JPEG, WebP or GIF expected)") from None
    except Exception as exc:  # hostile input: Pillow raises many kinds of errors
        raise ImageInputError(
            field, f"not a decodable image ({type(exc).__name__}: {exc})"
        ) from None
