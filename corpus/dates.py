"""Publication dates as news sources write them (French, Spanish, English, ISO, RFC 822)."""

from __future__ import annotations

import re
from datetime import date, datetime
from email.utils import parsedate_to_datetime

from akhbar.corpus.text import fold

_MONTHS: dict[str, int] = {
    # French
    "janvier": 1, "fevrier": 2, "mars": 3, "avril": 4, "mai": 5, "juin": 6, "juillet": 7,
    "aout": 8, "septembre": 9, "octobre": 10, "novembre": 11, "decembre": 12,
    # Spanish
    "enero": 1, "febrero": 2, "marzo": 3, "abril": 4, "mayo": 5, "junio": 6, "julio": 7,
    "agosto": 8, "septiembre": 9, "setiembre": 9, "octubre": 10, "noviembre": 11,
    "diciembre": 12,
    # English
    "january": 1, "february": 2, "march": 3, "april": 4, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
}  # fmt: skip
# Abbreviations ("janv.", "sept", "ene.", "Jan") resolve by unambiguous prefix.
_MONTH_NAMES = sorted(_MONTHS, key=len, reverse=True)

_NUMERIC_DMY = re.compile(r"(?<!\d)(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{4})(?!\d)")
_ISO = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_WORDY_DMY = re.compile(
    r"(?<![\w])(\d{1,2})(?:er|º|°|st|nd|rd|th)?\s*(?:de\s+)?([a-z]{3,10})\.?\s*(?:de\s+|del\s+)?,?\s*(\d{4})(?!\d)"
)
_WORDY_MDY = re.compile(r"(?<![\w])([a-z]{3,10})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})(?!\d)")


def _month(word: str) -> int | None:
    if word in _MONTHS:
        return _MONTHS[word]
    if len(word) < 3:
        return None
    hits = {_MONTHS[name] for name in _MONTH_NAMES if name.startswith(word)}
    return hits.pop() if len(hits) == 1 else None


def _safe_date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def parse_date(s: str | None) -> date | None:
    """The calendar date in ``s``, or None. Day-first for numeric dates (French/Spanish use)."""
    if not s or not s.strip():
        return None
    raw = s.strip()
    iso = _ISO.search(raw)
    if iso:
        return _safe_date(int(iso[1]), int(iso[2]), int(iso[3]))
    if re.match(r"^(?:[A-Za-z]{3},\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{2,4}\s+\d", raw):
        try:
            return parsedate_to_datetime(raw).date()
        except (TypeError, ValueError, IndexError):
            pass
    num = _NUMERIC_DMY.search(raw)
    if num:
        return _safe_date(int(num[3]), int(num[2]), int(num[1]))
    # Accents are dropped so that "février", "fevrier" and "FÉVRIER" all match.
    folded = fold(raw)
    for m in _WORDY_DMY.finditer(folded):
        month = _month(m[2])
        if month:
            return _safe_date(int(m[3]), month, int(m[1]))
    for m in _WORDY_MDY.finditer(folded):
        month = _month(m[1])
        if month:
            return _safe_date(int(m[3]), month, int(m[2]))
    try:
        return datetime.fromisoformat(raw).date()
    except ValueError:
        return None
