"""Public retrieval benchmarks (Wikipedia-derived) as ``Benchmark`` objects.

They sit beside the news eval set to show how a model behaves on data with published
reference numbers. None of them is news text, so they tell how well retrieval
generalises, not how good Akhbar is on news.

Data lookup: an explicit ``data_dir`` wins. Otherwise the copy bundled in
``eval/data/benchmarks/<name>`` is used, and failing that ``$AKHBAR_BENCHMARKS_DIR/<name>``.
XQuAD-R (18 MB) is not bundled, so it needs the env var or ``data_dir``. Only a two-paragraph
slice is bundled, as ``xquad-r-mini``, for tests.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUNDLED_DIR = Path(__file__).parent / "data" / "benchmarks"
ENV_VAR = "AKHBAR_BENCHMARKS_DIR"

XQUAD_LANGUAGES = ("es", "en", "ar")
# (question language, paragraph language): cross-lingual into Spanish, plus monolingual.
XQUAD_TASKS: tuple[tuple[str, str], ...] = (
    ("es", "es"),
    ("en", "es"),
    ("ar", "es"),
    ("en", "en"),
    ("ar", "ar"),
)
XQUAD_R_LANGUAGES = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")

Text = tuple[str, str]  # (text, language)


@dataclass(frozen=True)
class Benchmark:
    name: str
    docs: dict[str, Text]
    queries: dict[str, Text]
    qrels: dict[str, dict[str, int]]
    metric: str = "ndcg@10"  # the headline metric its published numbers use
    notes: dict[str, Any] = field(default_factory=dict)


def resolve_data_dir(name: str, data_dir: str | Path | None = None) -> Path:
    """Where benchmark ``name`` lives: explicit dir, else bundled copy, else env path."""
    if data_dir is not None:
        return Path(data_dir)
    bundled = BUNDLED_DIR / name
    if bundled.is_dir():
        return bundled
    env = os.environ.get(ENV_VAR)
    if env and (Path(env) / name).is_dir():
        return Path(env) / name
    raise FileNotFoundError(
        f"benchmark {name!r} is not bundled in {BUNDLED_DIR}; set {ENV_VAR} to a directory "
        f"holding {name}/ (e.g. /work/shared/benchmarks) or pass data_dir"
    )


def _read_squad(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)["data"]


def _clean(context: str) -> str:
    # Some XQuAD contexts start with a BOM; it would otherwise reach the encoder as text.
    return context.removeprefix("\ufeff")


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")


def load_xquad(
    query_language: str = "es",
    doc_language: str = "es",
    *,
    data_dir: str | Path | None = None,
    limit: int | None = None,
) -> Benchmark:
    """XQuAD paragraph retrieval: each question must retrieve its paragraph among all 240
    paragraphs in ``doc_language``. Question ids are shared across languages (the set is
    parallel), so a question in one language maps to its paragraph in another through the id.
    ``limit`` keeps the first N questions in file order and keeps every paragraph, so the
    pool, and therefore the difficulty, stays the same."""
    _check_limit(limit)
    for lang in (query_language, doc_language):
        if lang not in XQUAD_LANGUAGES:
            raise ValueError(f"XQuAD language {lang!r} not in {XQUAD_LANGUAGES}")
    root = resolve_data_dir("xquad", data_dir)
    docs: dict[str, Text] = {}
    para_of_question: dict[str, str] = {}
    for ai, article in enumerate(_read_squad(root / f"xquad.{doc_language}.json")):
        for pi, para in enumerate(article["paragraphs"]):
            doc_id = f"xquad-{doc_language}-{ai:02d}-{pi:02d}"
            docs[doc_id] = (_clean(para["context"]), doc_language)
            for qa in para["qas"]:
                para_of_question[qa["id"]] = doc_id
    queries: dict[str, Text] = {}
    qrels: dict[str, dict[str, int]] = {}
    for article in _read_squad(root / f"xquad.{query_language}.json"):
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                if limit is not None and len(queries) >= limit:
                    break
                queries[qa["id"]] = (qa["question"].strip(), query_language)
                qrels[qa["id"]] = {para_of_question[qa["id"]]: 1}
    return Benchmark(f"xquad-{query_language}-{doc_language}", docs, queries, qrels)


def load_piaf(*, data_dir: str | Path | None = None, limit: int | None = None) -> Benchmark:
    """PIAF v1.0 (native French): each question must retrieve its paragraph among all 761."""
    _check_limit(limit)
    root = resolve_data_dir("piaf", data_dir)
    docs: dict[str, Text] = {}
    queries: dict[str, Text] = {}
    qrels: dict[str, dict[str, int]] = {}
    for ai, article in enumerate(_read_squad(root / "piaf-v1.0.json")):
        for pi, para in enumerate(article["paragraphs"]):
            doc_id = f"piaf-{ai:03d}-{pi:02d}"
            docs[doc_id] = (para["context"], "fr")
            for qa in para["qas"]:
                question = qa["question"].strip()
                # A few crowd entries are blank; they cannot be asked.
                if not question or (limit is not None and len(queries) >= limit):
                    continue
                queries[qa["id"]] = (question, "fr")
                qrels[qa["id"]] = {doc_id: 1}
    return Benchmark("piaf", docs, queries, qrels)


def _sentence_at(breaks: list[list[int]], offset: int) -> int:
    """Index of the sentence holding character ``offset``; an offset in the gap between two
    sentences belongs to the next one, where the answer text starts."""
    for i, (_, end) in enumerate(breaks):
        if offset < end:
            return i
    return len(breaks) - 1


def load_xquad_r(
    *,
    data_dir: str | Path | None = None,
    languages: tuple[str, ...] = XQUAD_R_LANGUAGES,
    query_languages: tuple[str, ...] | None = None,
    limit: int | None = None,
) -> Benchmark:
    """XQuAD-R (LAReQA): answer-sentence retrieval from a multilingual pool, scored by mAP@20.

    The pool holds every sentence of every paragraph in ``languages``. A question, asked in each
    of ``query_languages`` (default: all of ``languages``), has one relevant sentence per
    pool language: the sentence that holds the answer start in that language's version of the
    same paragraph. That gives 11 relevant items with the full language set. Use all 11
    languages to compare with the LAReQA paper, because a smaller pool is an easier task.
    ``limit`` keeps the first N questions per language.
    """
    _check_limit(limit)
    q_langs = languages if query_languages is None else query_languages
    unknown = set(q_langs) - set(languages)
    if unknown:
        raise ValueError(f"query languages {sorted(unknown)} are not in the pool {languages}")
    root = resolve_data_dir("xquad-r", data_dir)
    docs: dict[str, Text] = {}
    # question id -> {language: relevant sentence id}; parallel ids make this the alignment.
    answer_sentence: dict[str, dict[str, str]] = {}
    questions: dict[str, list[tuple[str, str]]] = {}
    for lang in languages:
        asked: list[tuple[str, str]] = []
        for ai, article in enumerate(_read_squad(root / f"{lang}.json")):
            for pi, para in enumerate(article["paragraphs"]):
                prefix = f"{lang}-{ai:02d}-{pi:02d}"
                for si, sentence in enumerate(para["sentences"]):
                    docs[f"{prefix}-{si:02d}"] = (_clean(sentence).strip(), lang)
                for qa in para["qas"]:
                    si = _sentence_at(para["sentence_breaks"], qa["answers"][0]["answer_start"])
                    answer_sentence.setdefault(qa["id"], {})[lang] = f"{prefix}-{si:02d}"
                    asked.append((qa["id"], qa["question"].strip()))
        questions[lang] = asked
    queries: dict[str, Text] = {}
    qrels: dict[str, dict[str, int]] = {}
    for lang in q_langs:
        for qid, text in questions[lang][:limit]:
            queries[f"{lang}-{qid}"] = (text, lang)
            qrels[f"{lang}-{qid}"] = {sid: 1 for sid in answer_sentence[qid].values()}
    return Benchmark("xquad-r", docs, queries, qrels, metric="map@20")
