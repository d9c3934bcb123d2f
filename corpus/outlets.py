"""An outlet name from an article's URL, for sources that name none (JSONL exports, pages).

The host is the best the URL says: "www.lesecos.ma" is "lesecos.ma". Wikimedia projects
put the edition's language first ("fr.wikinews.org"), which names the outlet better as
"Wikinews (fr)". A few hosts whose outlet name is well known are mapped to it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Hosts (without "www.") whose outlet is better known by name. Small on purpose: a wrong
# name is worse than the plain host.
KNOWN_OUTLETS: dict[str, str] = {
    "lemonde.fr": "Le Monde",
    "elpais.com": "El País",
    "bbc.com": "BBC",
    "bbc.co.uk": "BBC",
    "reuters.com": "Reuters",
    "france24.com": "France 24",
    "apnews.com": "AP News",
}
_WIKIMEDIA = re.compile(
    r"^(?P<lang>[a-z]{2,3}(?:-[a-z]+)?)\.(?:m\.)?"
    r"(?P<project>wikinews|wikipedia|wikisource|wikiquote|wikivoyage)\.org$"
)
_DROP_PREFIXES = ("www.", "m.", "amp.", "mobile.")


def outlet_from_url(url: str | None) -> str | None:
    """The outlet a URL names: "Wikinews (fr)", a known name, else the host; or None."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    host = host.rstrip(".").lower()
    if m := _WIKIMEDIA.match(host):
        return f"{m['project'].capitalize()} ({m['lang']})"
    for prefix in _DROP_PREFIXES:
        if host.startswith(prefix) and host.count(".") > 1:
            host = host[len(prefix) :]
            break
    if "." not in host or host.replace(".", "").isdigit():
        return None  # "localhost", an IP address: no outlet in that
    return KNOWN_OUTLETS.get(host, host)
