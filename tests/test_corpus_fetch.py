from collections.abc import Sequence

import httpx
import pytest

from akhbar.corpus.sources import Rejection, iter_sources
from akhbar.corpus.sources.fetch import Fetcher, FetchError, refusal_reason

PUBLIC = "93.184.216.34"


def public_resolver(host: str, port: int) -> Sequence[str]:
    return {"evil-rebind.example": ["127.0.0.1"], "meta.example": ["169.254.169.254"]}.get(
        host, [PUBLIC]
    )


def _unreachable(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request may be sent to {request.url}")


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.5", "169.254.169.254", "224.0.0.1",
     "0.0.0.0", "::1", "fe80::1", "::ffff:127.0.0.1", "240.0.0.1", "100.64.0.1"],
)  # fmt: skip
def test_refusal_reason_non_public(address: str) -> None:
    assert refusal_reason(address) is not None


def test_public_address_allowed() -> None:
    assert refusal_reason(PUBLIC) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/feed.xml",
        "http://[::1]:8080/",
        "http://evil-rebind.example/feed",
        "http://meta.example/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "file:///etc/passwd",
        "ftp://example.com/feed.xml",
    ],
)
def test_refused_before_any_request(url: str) -> None:
    fetcher = Fetcher(resolver=public_resolver, transport=httpx.MockTransport(_unreachable))
    with pytest.raises(FetchError, match="refused|only http"):
        fetcher.fetch(url)


def test_redirect_to_loopback_refused() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.host == "news.example.com":
            return httpx.Response(302, headers={"Location": "http://127.0.0.1:9000/admin"})
        raise AssertionError("the loopback hop must not be requested")

    fetcher = Fetcher(resolver=public_resolver, transport=httpx.MockTransport(handler))
    with pytest.raises(FetchError, match="127.0.0.1 is a loopback address"):
        fetcher.fetch("https://news.example.com/feed.xml")
    assert seen == ["https://news.example.com/feed.xml"]


def test_redirect_to_host_resolving_private_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"Location": "http://evil-rebind.example/x"})

    fetcher = Fetcher(resolver=public_resolver, transport=httpx.MockTransport(handler))
    with pytest.raises(FetchError, match="loopback"):
        fetcher.fetch("https://news.example.com/")


def test_redirects_followed_and_bounded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(301, headers={"Location": "/new"})
        if request.url.path == "/loop":
            return httpx.Response(302, headers={"Location": "/loop"})
        return httpx.Response(
            200, content=b"<rss version='2.0'><channel/></rss>",
            headers={"Content-Type": "application/rss+xml; charset=utf-8"},
        )  # fmt: skip

    fetcher = Fetcher(resolver=public_resolver, transport=httpx.MockTransport(handler))
    result = fetcher.fetch("https://news.example.com/old")
    assert result.final_url == "https://news.example.com/new"
    assert result.charset == "utf-8"
    with pytest.raises(FetchError, match="too many redirects"):
        fetcher.fetch("https://news.example.com/loop")


def test_twenty_megabyte_body_rejected() -> None:
    chunk = b"x" * (1024 * 1024)

    def handler(request: httpx.Request) -> httpx.Response:
        # No Content-Length: the cap must be enforced while streaming.
        return httpx.Response(
            200,
            content=iter([chunk] * 20),
            headers={"Content-Type": "text/html"},
        )

    fetcher = Fetcher(
        resolver=public_resolver, transport=httpx.MockTransport(handler), max_bytes=10_000_000
    )
    with pytest.raises(FetchError, match="exceeds cap"):
        fetcher.fetch("https://news.example.com/huge.html")


def test_declared_length_over_cap_rejected() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=b"tiny",
            headers={"Content-Type": "text/html", "Content-Length": "20000000"},
        )

    fetcher = Fetcher(resolver=public_resolver, transport=httpx.MockTransport(handler))
    with pytest.raises(FetchError, match="exceeds cap"):
        fetcher.fetch("https://news.example.com/huge.html")


def test_content_type_checked() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"\x89PNG", headers={"Content-Type": "image/png"})

    fetcher = Fetcher(resolver=public_resolver, transport=httpx.MockTransport(handler))
    with pytest.raises(FetchError, match="content type"):
        fetcher.fetch("https://news.example.com/logo.png")


def test_iter_sources_turns_refusals_into_rejections() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = (
            "<?xml version='1.0' encoding='iso-8859-1'?><rss version='2.0'><channel>"
            "<title>Le Site</title><language>fr</language><item><title>Été à Fès</title>"
            "<guid>g-1</guid><description>Chaleur à Fès.</description></item></channel></rss>"
        ).encode("latin-1")
        return httpx.Response(200, content=body, headers={"Content-Type": "application/rss+xml"})

    fetcher = Fetcher(resolver=public_resolver, transport=httpx.MockTransport(handler))
    results = list(iter_sources(["http://127.0.0.1/x", "https://ok.example/rss"], fetcher=fetcher))
    assert isinstance(results[0], Rejection) and "loopback" in results[0].reason
    assert not isinstance(results[1], Rejection)
    assert results[1].title == "Été à Fès"
