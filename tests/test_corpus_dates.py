from datetime import date

import pytest

from akhbar.corpus.dates import parse_date


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13 - 01 - 2026", date(2026, 1, 13)),
        ("13/01/2026", date(2026, 1, 13)),
        ("13.01.2026", date(2026, 1, 13)),
        ("13 janvier 2026", date(2026, 1, 13)),
        ("1er mars 2026", date(2026, 3, 1)),
        ("5 févr. 2024", date(2024, 2, 5)),
        ("13 de enero de 2026", date(2026, 1, 13)),
        ("3 septiembre 2024", date(2024, 9, 3)),
        ("2026-01-13", date(2026, 1, 13)),
        ("2026-01-13T10:00:00Z", date(2026, 1, 13)),
        ("Tue, 13 Jan 2026 10:00:00 +0000", date(2026, 1, 13)),
        ("January 13, 2026", date(2026, 1, 13)),
        ("Publié dans Les ECO le 13 - 01 - 2026", date(2026, 1, 13)),
    ],
)
def test_parse_date_formats(raw: str, expected: date) -> None:
    assert parse_date(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "hier", "31/02/2026", None])
def test_parse_date_rejects_garbage(raw: str | None) -> None:
    assert parse_date(raw) is None
