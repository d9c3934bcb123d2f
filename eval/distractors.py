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

More distractors can be named at run time (``akhbar eval --extra-distractors FILE``):
any source ``akhbar ingest`` reads, ingested as it would be (cleaned, language-detected,
deduplicated) into a scratch store; for text that may be used but not redistributed, so
it is never bundled.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from akhbar.corpus.ingest import ingest
from akhbar.corpus.models import Article
from akhbar.corpus.sources import iter_sources
from akhbar.corpus.store import Store
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


class DistractorsError(ValueError):
    """Extra distractors were named but none could be read."""


def ingested_distractors(targets: Sequence[str]) -> list[Article]:
    """The canonical articles of ``targets`` (files, folders: what ``akhbar ingest``
    takes) after the ingest pipeline. Nothing read is kept."""
    if not targets:
        return []
    with (
        tempfile.TemporaryDirectory(prefix="akhbar-distractors-") as tmp,
        Store(Path(tmp) / "distractors.sqlite3") as store,
    ):
        report = ingest(store, iter_sources(list(targets)))
        articles = list(store.iter_articles())
    if not articles:
        reasons = "; ".join(sorted({f"{src}: {why}" for src, why in report.reasons})[:3])
        raise DistractorsError(f"no distractor article in {', '.join(targets)} ({reasons})")
    return articles
