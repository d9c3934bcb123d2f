"""Is this valid text? Checks for user- or source-supplied strings, before anything reads them.

A Python ``str`` can hold what no UTF-8 text can: lone surrogates (a JSON body with
``"\\ud800"`` decodes to one, so does an undecodable command-line byte), and the Unicode
non-characters, which are reserved for a program's internal use and never appear in
interchange. C0/C1 control characters other than ordinary whitespace carry no text either.
Native code downstream (tokenizers, language id) either rejects such strings with an
exception deep in a request or misbehaves, so they are refused at the boundary with a
message that names the character and where it is.

Unicode normalisation can also make a short string long (NFKC turns U+FDFA into 18
characters): a length limit is to be checked on the normalised text too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Tab, line feed, vertical tab, form feed, carriage return, next line: whitespace that text
# really contains. Every other C0/C1 control (and DEL) is refused.
_CONTROLS = "\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f"
_SURROGATES = "\ud800-\udfff"
# U+FDD0..U+FDEF and the last two code points of each of the 17 planes.
_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    chr((plane << 16) | 0xFFFE) + chr((plane << 16) | 0xFFFF) for plane in range(17)
)
_INVALID = re.compile(f"[{_CONTROLS}{_SURROGATES}{_NONCHARACTERS}]")


@dataclass(frozen=True)
class InvalidCharacter:
    position: int  # index in the string, 0-based
    codepoint: int
    kind: str  # "lone surrogate", "non-character" or "control character"

    def describe(self) -> str:
        """E.g. 'U+D800 (a lone surrogate) at character 3' (1-based, for people)."""
        return f"U+{self.codepoint:04X} (a {self.kind}) at character {self.position + 1}"


def _kind(codepoint: int) -> str:
    if 0xD800 <= codepoint <= 0xDFFF:
        return "lone surrogate"
    if 0xFDD0 <= codepoint <= 0xFDEF or (codepoint & 0xFFFE) == 0xFFFE:
        return "non-character"
    return "control character"


def first_invalid_character(text: str) -> InvalidCharacter | None:
    """The first character that valid text cannot contain, or None if there is none."""
    match = _INVALID.search(text)
    if match is None:
        return None
    codepoint = ord(match.group())
    return InvalidCharacter(match.start(), codepoint, _kind(codepoint))


def is_valid_text(text: str) -> bool:
    return _INVALID.search(text) is None
