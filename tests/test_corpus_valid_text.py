"""Which strings are text: lone surrogates, non-characters and stray controls are not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from akhbar.corpus.valid_text import first_invalid_character, is_valid_text


@pytest.mark.parametrize(
    ("text", "position", "codepoint", "kind"),
    [
        ("x \ud800", 2, 0xD800, "lone surrogate"),
        ("\udfff", 0, 0xDFFF, "lone surrogate"),
        ("ab\udcffcd", 2, 0xDCFF, "lone surrogate"),  # an undecodable argv byte
        ("a\ufdd0", 1, 0xFDD0, "non-character"),
        ("a\ufdef", 1, 0xFDEF, "non-character"),
        ("\ufffe", 0, 0xFFFE, "non-character"),
        ("\uffff", 0, 0xFFFF, "non-character"),
        ("ok \U0001fffe", 3, 0x1FFFE, "non-character"),
        ("\U0010ffff", 0, 0x10FFFF, "non-character"),
        ("nul\x00", 3, 0x00, "control character"),
        ("bell\x07", 4, 0x07, "control character"),
        ("esc\x1b[31m", 3, 0x1B, "control character"),
        ("del\x7f", 3, 0x7F, "control character"),
        ("c1\x9b", 2, 0x9B, "control character"),
    ],
)
def test_invalid_characters_are_found_and_named(
    text: str, position: int, codepoint: int, kind: str
) -> None:
    bad = first_invalid_character(text)
    assert bad is not None
    assert (bad.position, bad.codepoint, bad.kind) == (position, codepoint, kind)
    assert bad.describe() == f"U+{codepoint:04X} (a {kind}) at character {position + 1}"
    assert not is_valid_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "Qui est Thierry Roland ?",
        "tab\tnewline\ncr\rvt\x0bff\x0cnel\x85",  # ordinary whitespace
        "ﷺ" * 8,  # expands under NFKC, but is text
        "😀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0001fffd \ufdcf \ufdf0 \ufffd",  # neighbours of the refused ranges
        "أعلنت الحكومة",
        "",
    ],
)
def test_valid_text_passes(text: str) -> None:
    assert first_invalid_character(text) is None
    assert is_valid_text(text)


@given(st.text(alphabet=st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S", "Z"))))
def test_printable_unicode_that_utf8_can_hold_is_valid(text: str) -> None:
    # Non-characters are category Cn, so none is drawn here.
    assert is_valid_text(text)


@given(st.text(), st.integers(min_value=0xD800, max_value=0xDFFF))
def test_any_lone_surrogate_is_found_where_it_is(prefix: str, codepoint: int) -> None:
    text = prefix + chr(codepoint)
    bad = first_invalid_character(text)
    assert bad is not None
    assert bad.position <= len(prefix)
    assert not is_valid_text(text)
