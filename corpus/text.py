"""Text folding shared by date parsing, lexical analysis and duplicate collapse."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Lowercase and strip combining accents, so "Sáhara" and "sahara" meet."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))
