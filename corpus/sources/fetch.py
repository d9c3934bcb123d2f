"""Fetching remote sources without becoming a server-side request forgery vector.

Every hop's host is resolved once, all of its addresses must be public, and the connection
goes to an address that was checked (DNS pinning: a name that answers differently the
second time, DNS rebinding, never gets a second question); the URL keeps its host name, so
the Host header, TLS SNI and certificate check are the name's. Redirects are followed by
hand so that each hop is checked; bodies are streamed and abandoned past a size cap. The
resolver and the HTTP transport are injectable so that tests run without a network.
Proxy variables from the environment are ignored: a proxy would resolve names itself.

``allow_private`` (off unless the operator opts in) lets intranet feeds and test servers on
loopback or private addresses through; cloud metadata addresses stay refused either way.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from akhbar.corpus.sources.decoding import charset_from_content_type

Resolver = Callable[[str, int], Sequence[str]]

DEFAULT_CONTENT_TYPES: frozenset[str] = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/xml",
        "text/xml",
        "text/plain",
        "application/json",
        "application/x-ndjson",
        "application/jsonl",
        "application/jsonlines",
    }
)
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class FetchError(Exception):
    """A fetch that was refused or failed; the message is meant for the ingest log."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, when a server answered with an error
        self.retry_after = retry_after  # its Retry-After header, if any


class FetchTimeout(FetchError):
    """The server did not answer (or finish answering) in time."""


class UnresolvedHost(FetchError):
    """The host name has no address now: a refusal of nothing, maybe a passing DNS fault."""


@dataclass(slots=True, frozen=True)
class FetchResult:
    url: str  # as requested
    final_url: str  # after redirects
    content: bytes
    content_type: str | None
    charset: str | None
    status: int = 200  # 304 (with no content) answers a conditional request
    headers: Mapping[str, str] = field(default_factory=dict)  # the final response's


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def refusal_reason(address: str, *, allow_private: bool = False) -> str | None:
    """Why an IP address must not be contacted, or None if it is a public address (or,
    with ``allow_private``, any address that is not a cloud metadata, multicast or
    unspecified one)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"not an IP address: {address!r}"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if str(ip) == "169.254.169.254" or str(ip) == "fd00:ec2::254":
        return f"{ip} is a cloud metadata address"
    if allow_private:
        if ip.is_multicast or ip.is_unspecified:
            return f"{ip} is a {'multicast' if ip.is_multicast else 'unspecified'} address"
        return None
    checks = (
        ("loopback", ip.is_loopback),
        ("private", ip.is_private),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("unspecified", ip.is_unspecified),
    )
    for name, hit in checks:
        if hit:
            return f"{ip} is a {name} address"
    if not ip.is_global:
        return f"{ip} is not a globally routable address"
    return None


class PinnedBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to the address pinned for a (host, port) by the check."""

    def __init__(self, pins: dict[tuple[str, int], str]) -> None:
        self._pins = pins
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        address = self._pins.get((host.lower(), port))
        if address is None:
            raise httpcore.ConnectError(f"{host}:{port} was not checked before connecting")
        return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are never fetched")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class PinnedTransport(httpx.HTTPTransport):
    """httpx's own transport over a connection pool that connects through PinnedBackend."""

    def __init__(
        self, pins: dict[tuple[str, int], str], ssl_context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(trust_env=False)
        # httpx builds its pool without a way to pass a network backend: replace it.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            network_backend=PinnedBackend(pins),
        )


@dataclass(slots=True)
class Fetcher:
    timeout: float = 15.0
    max_bytes: int = 10_000_000
    max_redirects: int = 5
    allowed_content_types: frozenset[str] = DEFAULT_CONTENT_TYPES
    resolver: Resolver = system_resolver
    transport: httpx.BaseTransport | None = None
    user_agent: str = "akhbar-corpus/0.1 (+news QA research)"
    headers: dict[str, str] = field(default_factory=dict)
    # Loopback, private and link-local addresses too (intranet feeds, test servers).
    allow_private: bool = False
    # The whole fetch (every hop, the body) must end within this; None: only the
    # per-operation ``timeout`` applies, and a server dripping bytes can hold a fetch long.
    total_timeout: float | None = None
    # Made on first use and kept: loading the CA bundle costs ~50 ms of CPU per fetch.
    _ssl_context: ssl.SSLContext | None = field(default=None, init=False, repr=False)

    def check_url(self, url: str) -> list[str]:
        """The addresses of ``url``'s host, resolved once; FetchError unless it is http(s)
        to a host whose addresses are all public."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise FetchError(f"refused {url}: only http and https URLs are fetched")
        host = parts.hostname
        if not host:
            raise FetchError(f"refused {url}: no host")
        if host.rstrip(".").lower() in _METADATA_HOSTS:
            raise FetchError(f"refused {url}: {host} is a cloud metadata host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise FetchError(f"refused {url}: bad port ({exc})") from exc
        try:
            ipaddress.ip_address(host)
            addresses: Sequence[str] = [host]
        except ValueError:
            try:
                addresses = self.resolver(host, port)
            except OSError as exc:
                raise UnresolvedHost(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise UnresolvedHost(f"cannot resolve {host}: no addresses")
        for address in addresses:
            reason = refusal_reason(address, allow_private=self.allow_private)
            if reason:
                hint = (
                    ""
                    if self.allow_private or "metadata" in reason
                    else " (private addresses are fetched only with AKHBAR_ALLOW_PRIVATE_URLS=1)"
                )
                raise FetchError(f"refused {url}: {host} resolves to {reason}{hint}")
        return list(addresses)

    def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> FetchResult:
        """GET ``url`` (``headers`` added to this request: conditional GET). FetchError
        (FetchTimeout for time) unless it ends in a success or a 304."""
        deadline = None if self.total_timeout is None else time.monotonic() + self.total_timeout
        pins: dict[tuple[str, int], str] = {}
        with httpx.Client(
            timeout=min(self.timeout, self.total_timeout or self.timeout),
            transport=self.transport or PinnedTransport(pins, self._tls()),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": self.user_agent, **self.headers},
        ) as client:
            current = url
            for _hop in range(self.max_redirects + 1):
                addresses = self.check_url(current)
                try:
                    target = httpx.URL(current)
                    # Keyed as httpcore will ask: the URL's ASCII host (IDNA; IPv6 without
                    # brackets) and port.
                    host = target.raw_host.decode("ascii").lower()
                    pins[(host, target.port or _DEFAULT_PORTS[target.scheme])] = addresses[0]
                    with client.stream("GET", current, headers=headers) as response:
                        # httpx calls every 3xx a redirect; a 304 answers a conditional GET.
                        if response.is_redirect and response.status_code != 304:
                            location = response.headers.get("location")
                            if not location:
                                raise FetchError(f"redirect without Location from {current}")
                            current = urljoin(current, location)
                            continue
                        return self._read(url, current, response, deadline)
                except httpx.TimeoutException as exc:
                    msg = f"fetch of {current} timed out: {exc or 'no answer'}"
                    raise FetchTimeout(msg) from exc
                except (httpx.HTTPError, httpx.InvalidURL) as exc:
                    msg = f"fetch of {current} failed: {type(exc).__name__}: {exc}"
                    raise FetchError(msg) from exc
            raise FetchError(f"too many redirects (> {self.max_redirects}) from {url}")

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context(trust_env=False)
        return self._ssl_context

    def _read(
        self, url: str, current: str, response: httpx.Response, deadline: float | None
    ) -> FetchResult:
        if response.status_code >= 400:
            raise FetchError(
                f"HTTP {response.status_code} from {current}",
                status=response.status_code,
                retry_after=response.headers.get("retry-after"),
            )
        if response.status_code == 304:
            return FetchResult(
                url=url,
                final_url=current,
                content=b"",
                content_type=None,
                charset=None,
                status=304,
                headers={k.lower(): v for k, v in response.headers.items()},
            )
        content_type = response.headers.get("content-type")
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if media and media not in self.allowed_content_types:
            raise FetchError(f"refused {current}: content type {media!r} is not a news format")
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(
                f"refused {current}: body of {int(declared)} bytes exceeds cap {self.max_bytes}"
            )
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            if deadline is not None and time.monotonic() > deadline:
                raise FetchTimeout(
                    f"fetch of {current} timed out: the body took over {self.total_timeout} s"
                )
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchError(f"refused {current}: body exceeds cap of {self.max_bytes} bytes")
            chunks.append(chunk)
        return FetchResult(
            url=url,
            final_url=current,
            content=b"".join(chunks),
            content_type=content_type,
            charset=charset_from_content_type(content_type),
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
        )
