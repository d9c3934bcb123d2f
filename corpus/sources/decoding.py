"""Bytes → text for news sources, whose declared encodings are often missing or wrong."""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

import charset_normalizer

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_.:-]+)["']""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)


def charset_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = _HEADER_CHARSET.search(content_type)
    return m[1] if m else None


def sniff_declared_charset(data: bytes) -> str | None:
    """The charset an HTML <meta> or an XML declaration claims, if any."""
    head = data[:4096]
    m = _XML_ENCODING.search(head) or _META_CHARSET.search(head)
    return m[1].decode("ascii", "replace") if m else None


def _known_codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


@dataclass(slots=True, frozen=True)
class Decoded:
    text: str
    # True when neither UTF-8, a BOM nor a declared charset fitted and a single-byte
    # fallback, which decodes any bytes at all, produced the text.
    fallback: bool = False


def decode(data: bytes, declared: str | None = None) -> Decoded:
    """Decode robustly: BOM, then strict UTF-8, then the declared charset, then cp1252/latin-1.

    UTF-8 is tried before the declared charset because servers and templates that
    claim ISO-8859-1 while sending UTF-8 are common; the reverse (valid UTF-8 by accident)
    is very rare for real text.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return Decoded(data.decode(codec))
            except UnicodeDecodeError:
                break
    try:
        return Decoded(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    for name in (declared, sniff_declared_charset(data)):
        codec = _known_codec(name)
        if codec and codec != "utf-8":
            try:
                return Decoded(data.decode(codec))
            except UnicodeDecodeError:
                pass
    try:
        return Decoded(data.decode("cp1252"), fallback=True)
    except UnicodeDecodeError:
        return Decoded(data.decode("latin-1"), fallback=True)


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    return decode(data, declared).text


# Characters no text document holds in number: controls other than whitespace, surrogates,
# private use, non-characters, and U+FFFD (something upstream already failed). Unassigned
# code points are not counted: this Python's Unicode tables are older than some emoji.
_NOT_TEXT_CATEGORIES = {"Cc", "Cs", "Co"}
_TEXT_CONTROLS = set("\t\n\r\f\v")
_MAX_NOT_TEXT_SHARE = 0.01
_MAX_NUL_SHARE = 0.001
_SAMPLE_CHARS = 200_000


def _is_not_text(ch: str) -> bool:
    code = ord(ch)
    if code == 0xFFFD or 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE:
        return True
    return ch not in _TEXT_CONTROLS and unicodedata.category(ch) in _NOT_TEXT_CATEGORIES


def _not_text_count(text: str) -> int:
    return sum(1 for ch in text if _is_not_text(ch))


def binary_reason(data: bytes, decoded: Decoded) -> str | None:
    """Why these bytes are not a text document (binary, undecodable), or None if they are.

    Two signals: NUL bytes outside UTF-16/32 (no text encoding we read produces them; one
    stray NUL in a large export is that record's problem, so a share is needed); and, for
    bytes that only a single-byte fallback could decode, charset detection finding no
    encoding that fits.
    """
    wide = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if not wide and data.count(b"\x00") > len(data) * _MAX_NUL_SHARE:
        return "binary content: NUL bytes"
    if decoded.fallback and charset_normalizer.from_bytes(data).best() is None:
        return "undecodable bytes: no text encoding fits"
    return None


def text_problem(text: str) -> str | None:
    """Why decoded text is not text, or None if it is.

    The share of control, private-use or non-characters is near zero for any real
    document and about a quarter for random bytes decoded as a single-byte charset.
    """
    sample = text[:_SAMPLE_CHARS]
    if not sample:
        return None
    bad = _not_text_count(sample)
    # One or two stray characters in a short document are tolerated.
    if bad > 2 and bad / len(sample) > _MAX_NOT_TEXT_SHARE:
        share = 100 * bad / len(sample)
        return f"not text: {share:.1f}% control, private-use or broken characters"
    return None
