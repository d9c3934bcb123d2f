"""The eval set's harder corpus: the bundled sample plus every French and Spanish paragraph
of the bundled public benchmarks, each paragraph one document.

PIAF (French Wikipedia, MIT / Licence Ouverte) and XQuAD's Spanish file (Spanish
translations of English Wikipedia, CC BY-SA 4.0) are already bundled under
``eval/data/benchmarks`` with their licences; nothing is copied again. Each paragraph is
an article titled with its Wikipedia page, so the passages of one page compete with each
other as the reports of one story do. The eval set's Spanish-article questions
(``xquad-es-*`` gold ids) are asked against these documents; every other paragraph is a
distractor for every question.

Ids are stable and readable: ``xquad-es-<article:02d>-<paragraph>`` and
``piaf-<article:03d>-<paragraph>``, counted in file order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from akhbar.corpus.models import Article
from akhbar.eval.benchmarks import BUNDLED_DIR

XQUAD_ES = BUNDLED_DIR / "xquad" / "xquad.es.json"
PIAF = BUNDLED_DIR / "piaf" / "piaf-v1.0.json"
# (file, id prefix, id width of the article number, language, outlet shown in citations)
SOURCES: tuple[tuple[Path, str, int, str, str], ...] = (
    (XQUAD_ES, "xquad-es", 2, "es", "XQuAD (Wikipedia, es)"),
    (PIAF, "piaf", 3, "fr", "PIAF (Wikipedia, fr)"),
)


def _title(raw: str) -> str:
    # PIAF titles carry HTML italics; XQuAD's are page names with underscores.
    return raw.replace("<i>", "").replace("</i>", "").replace("_", " ").strip()


def iter_distractors(
    sources: tuple[tuple[Path, str, int, str, str], ...] = SOURCES,
) -> Iterator[Article]:
    """Every paragraph of every source as an ``Article``, in file order."""
    for path, prefix, width, language, outlet in sources:
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)["data"]
        for a, page in enumerate(data):
            title = _title(page.get("title", ""))
            for p, para in enumerate(page["paragraphs"]):
                text = para["context"].removeprefix("\ufeff").strip()
                if text:
                    yield Article(
                        id=f"{prefix}-{a:0{width}d}-{p}",
                        title=title,
                        text=text,
                        language=language,
                        outlet=outlet,
                        source=path.name,
                    )


def distractor_texts() -> dict[str, str]:
    """Article id -> text, for gold checks."""
    return {a.id: a.text for a in iter_distractors()}
