"""Per-client token bucket for /v1/ask."""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi import HTTPException, Request


class TokenBucketLimiter:
    """``rate_per_minute`` requests per client, with bursts up to the same number.

    Buckets are kept in an LRU capped at ``max_clients`` so that a flood of distinct
    addresses cannot grow memory without bound (an evicted client simply starts full).
    """

    def __init__(
        self,
        rate_per_minute: int,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = float(rate_per_minute)
        self.per_second = rate_per_minute / 60.0
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max = max_clients
        self._clock = clock
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 if the request may go ahead, else the seconds until it could."""
        if self.capacity <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.per_second)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.per_second
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        return wait


def client_key(host: str) -> str:
    """The bucket a client address draws from: an IPv6 client by its /64, since one host
    is usually given a whole /64 and could rotate through it."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host  # not an address (a Unix socket, a test client): its own bucket
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def rate_limit_ask(request: Request) -> None:
    """Keyed on the socket's peer, or on the client a trusted proxy names (see
    ``Settings.trusted_proxies``): never on a header an untrusted client sets."""
    limiter: TokenBucketLimiter = request.app.state.ask_limiter
    client = client_key(request.client.host) if request.client else "unknown"
    wait = limiter.take(client)
    if wait > 0:
        raise HTTPException(
            429,
            f"too many questions from this client; retry in {math.ceil(wait)} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
