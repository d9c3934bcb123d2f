from pathlib import Path

import pytest

from akhbar.corpus.chunking import chunk_article, split_sentences
from akhbar.corpus.ingest import clean_text, clean_title
from akhbar.corpus.models import Article, RawItem
from akhbar.corpus.sources import iter_sources

SAMPLE = Path(__file__).resolve().parents[1] / "corpus" / "data" / "sample"


def _sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def test_split_french_spanish() -> None:
    text = (
        "M. Dupont est arrivé. Le marché atteint 4.800 milliards, soit 66,1% du total ! "
        "« Qui ? » a-t-il demandé. ¿Qué pasa? ¡Nada! El Dr. García habló con la Sra. López.\n"
        "Ligne sans point\nJ. Smith a parlé."
    )
    assert _sentences(text) == [
        "M. Dupont est arrivé.",
        "Le marché atteint 4.800 milliards, soit 66,1% du total !",
        "« Qui ? » a-t-il demandé.",
        "¿Qué pasa?",
        "¡Nada!",
        "El Dr. García habló con la Sra. López.",
        "Ligne sans point",
        "J. Smith a parlé.",
    ]


def test_split_quotes_close_sentence() -> None:
    text = "Il a dit : «Le Maroc avance.» Puis il est parti."
    assert _sentences(text) == ["Il a dit : «Le Maroc avance.»", "Puis il est parti."]


def test_split_empty_and_blank() -> None:
    assert split_sentences("") == []
    assert split_sentences(" \n\n ") == []


def _check(article: Article, chunks: list, max_chars: int) -> None:
    assert chunks, article.id
    for ordinal, c in enumerate(chunks):
        assert article.text[c.start : c.end] == c.text
        assert c.text == c.text.strip() and c.text
        assert len(c.text) <= max_chars or article.kind == "headline"
        assert c.id == f"{article.id}#{ordinal}" and c.ordinal == ordinal
        assert c.language == article.language and c.article_id == article.id
        for s, e in c.sentences:
            assert 0 <= s < e <= len(c.text)
            assert c.text[s:e] == c.text[s:e].strip()
    covered = {i for c in chunks for i in range(c.start, c.end)}
    # Nothing but whitespace between chunks is lost.
    assert all(i in covered or ch.isspace() for i, ch in enumerate(article.text))


def test_long_sentence_split_at_whitespace() -> None:
    text = "Début. " + " ".join(["mot"] * 400) + ". Fin."
    article = Article(id="a-x", title="t", text=text, language="fr")
    chunks = chunk_article(article, max_chars=200, overlap_sentences=1)
    _check(article, chunks, 200)
    assert all(not c.text.startswith("ot") for c in chunks)  # never cut inside a word
    assert chunks[-1].text.endswith("Fin.")


def test_overlap_and_progress() -> None:
    text = " ".join(f"Phrase numéro {i} avec quelques mots de plus." for i in range(40))
    article = Article(id="a-y", title="t", text=text, language="fr")
    chunks = chunk_article(article, max_chars=200, overlap_sentences=1)
    _check(article, chunks, 200)
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert nxt.start < prev.end  # one sentence of overlap
        assert nxt.start > prev.start
    no_overlap = chunk_article(article, max_chars=200, overlap_sentences=0)
    for prev, nxt in zip(no_overlap, no_overlap[1:], strict=False):
        assert nxt.start > prev.end - 1


def test_headline_single_chunk() -> None:
    article = Article(id="h-1", title="X", text="Un titre. Court.", language="fr", kind="headline")
    [chunk] = chunk_article(article)
    assert chunk.text == "Un titre. Court." and chunk.id == "h-1#0"


@pytest.mark.parametrize("max_chars", [120, 700])
def test_offsets_on_whole_bundled_sample(max_chars: int) -> None:
    count = 0
    for item in iter_sources([str(SAMPLE)]):
        assert isinstance(item, RawItem)
        text = clean_text(item.body) or clean_title(item.title)
        article = Article(
            id=f"a-{count}", title=clean_title(item.title), text=text, language="fr",
            kind=item.kind,
        )  # fmt: skip
        _check(article, chunk_article(article, max_chars=max_chars), max_chars)
        count += 1
    assert count == 149
