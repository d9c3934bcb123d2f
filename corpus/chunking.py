"""Sentence splitting and sentence-aligned chunks with exact offsets into article text."""

from __future__ import annotations

import re

from akhbar.corpus.models import Article, Chunk

# Tokens that end with a period without ending a sentence (compared case-folded, no dot).
_ABBREVIATIONS = frozenset(
    str.split(
        """
    m mm mme mmes mlle mlles dr drs pr me mgr st ste sts etc cf cie av bd ch chap éd ed
    fig hab ibid id janv févr fév avr juil sept oct nov déc env p pp nº n°
    sr sres sra sras srta dra dña dn lic ing arq gral gob ud uds vd vds pág núm
    mr mrs ms prof gen gov sen rep jr inc ltd co corp vs approx
    """
    )
)
_CLOSERS = "»\"'”’)]"
_OPENERS = "«\"'“‘([¿¡—–-"
# Sentence-final punctuation with any closing quotes/brackets after it.
_END = re.compile(r"[.!?…؟]+[" + re.escape(_CLOSERS) + r"]*")
_WORD_BEFORE = re.compile(r"([\w.'’-]+)$")


def _is_abbreviation(text: str, dot_at: int) -> bool:
    m = _WORD_BEFORE.search(text, 0, dot_at)
    if not m:
        return False
    word = m[1].strip(".'’-")
    low = word.casefold()
    if low in _ABBREVIATIONS:
        return True
    # Initials ("J. Dupont") and dotted acronyms ("U.S.") are not sentence ends.
    return len(word) == 1 and word.isalpha() or "." in word and len(word) <= 6


def _starts_sentence(ch: str) -> bool:
    # Caseless scripts (Arabic) have letters that are neither upper nor lower case.
    return ch.isupper() or ch.isdigit() or ch in _OPENERS or (ch.isalpha() and not ch.islower())


def _trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of sentences; newlines always end a sentence."""
    spans: list[tuple[int, int]] = []
    line_start = 0
    for line_end in [m.start() for m in re.finditer("\n", text)] + [len(text)]:
        start = line_start
        for m in _END.finditer(text, line_start, line_end):
            end = m.end()
            nxt = end
            while nxt < line_end and text[nxt] in " \t\u00a0\u202f":
                nxt += 1
            if nxt == end and end < line_end:
                continue  # "4.800", "66,1%", "www.x.ma": no space, no boundary
            if nxt < line_end and not _starts_sentence(text[nxt]):
                continue
            if m[0].startswith(".") and len(m[0]) == 1 and _is_abbreviation(text, m.start()):
                continue
            if span := _trimmed(text, start, end):
                spans.append(span)
            start = end
        if span := _trimmed(text, start, line_end):
            spans.append(span)
        line_start = line_end + 1
    return spans


def _split_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut an over-long sentence at whitespace (hard cut if a token is itself too long)."""
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        cut = text.rfind(" ", start + 1, start + max_chars + 1)
        if cut <= start:
            cut = start + max_chars
        if span := _trimmed(text, start, cut):
            pieces.append(span)
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if span := _trimmed(text, start, end):
        pieces.append(span)
    return pieces


def chunk_article(
    article: Article, max_chars: int = 700, overlap_sentences: int = 1
) -> list[Chunk]:
    """Chunks of whole sentences, at most ``max_chars`` long, overlapping by sentences."""
    text = article.text

    def make(ordinal: int, units: list[tuple[int, int]]) -> Chunk:
        start, end = units[0][0], units[-1][1]
        return Chunk(
            id=f"{article.id}#{ordinal}",
            article_id=article.id,
            ordinal=ordinal,
            start=start,
            end=end,
            text=text[start:end],
            language=article.language,
            sentences=tuple((s - start, e - start) for s, e in units),
        )

    if article.kind == "headline":
        whole = _trimmed(text, 0, len(text))
        return [make(0, [whole])] if whole else []

    units: list[tuple[int, int]] = []
    for s, e in split_sentences(text):
        units.extend(_split_long(text, s, e, max_chars) if e - s > max_chars else [(s, e)])

    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j = i
        while j + 1 < len(units) and units[j + 1][1] - units[i][0] <= max_chars:
            j += 1
        chunks.append(make(len(chunks), units[i : j + 1]))
        if j == len(units) - 1:
            break
        i = max(i + 1, j + 1 - overlap_sentences)
    return chunks
