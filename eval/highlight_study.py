"""Which sentence vectors choose the better highlight: each sentence encoded on its own
(what the index stores) or pooled from the passage's own forward pass (what it stored
before). ``python -m akhbar.eval.highlight_study --out FILE``.

Over the eval set's answerable questions on its harder corpus (the sample plus the
distractors), served ranking (hybrid, reranked as the service does): for each question
whose first passage holds the answer string, whether the highlighted sentence holds it,
with either kind of vector for that same passage (the same rule, the same term bonus).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from akhbar.corpus.language import detect_language
from akhbar.corpus.models import Article
from akhbar.eval.dataset import DEFAULT_EVAL_SET, load_eval_set
from akhbar.eval.distractors import iter_distractors
from akhbar.eval.indexing import build_sample_index
from akhbar.eval.metrics import normalise_answer
from akhbar.index.answerability import question_cues
from akhbar.index.answers import highlight, top_hits
from akhbar.index.base import Passage
from akhbar.index.encoder import SentenceTransformerEncoder
from akhbar.index.prepare import ChunkingParams, embed_text
from akhbar.index.second_view import SecondView
from akhbar.pipeline import embeddings_path
from akhbar.settings import Settings


def pooled_vectors(encoder: SentenceTransformerEncoder, passage: Passage) -> np.ndarray:
    """The passage's sentence vectors pooled from its own pass, as index/prepare.py made
    them before (title first, offsets shifted past it)."""
    chunk = passage.chunk
    article = Article(
        id=chunk.article_id,
        title=passage.title,
        text=chunk.text,
        language=chunk.language,
        kind=passage.kind,  # type: ignore[arg-type]
    )
    text = embed_text(chunk, article, ChunkingParams())
    shift = len(text) - len(chunk.text)
    spans = [(a + shift, b + shift) for a, b in chunk.sentences]
    _, pooled = encoder.encode_passages_pooled([text], [spans])
    return pooled[0]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    from akhbar.service.qa import load_encoder

    settings = Settings().model_copy(update={"backend": "memory"})
    encoder = load_encoder(settings)
    items = [i for i in load_eval_set(DEFAULT_EVAL_SET) if i.answerable]
    view = SecondView.open(embeddings_path(settings)) if settings.second_view else None
    counts = {"questions": len(items), "top_holds_answer": 0, "alone": 0, "pooled": 0}
    with tempfile.TemporaryDirectory() as tmp:
        reader, _ = build_sample_index(settings, encoder, Path(tmp), extra=list(iter_distractors()))
        for item in items:
            q = encoder.encode_queries([item.question])[0]
            lang = detect_language(item.question)
            cand = reader.search(q, item.question, 5)
            second = None if view is None else view.query(item.question, lang)
            hits = top_hits(reader, cand, item.question, lang, q, 1, second=second)
            needle = normalise_answer(item.answer)
            if not hits or not needle or needle not in normalise_answer(hits[0].passage.chunk.text):
                continue
            counts["top_holds_answer"] += 1
            p = hits[0].passage
            cues = question_cues(item.question, lang)
            for name, vecs in (
                ("alone", p.sentence_vectors),
                ("pooled", pooled_vectors(encoder, p)),
            ):
                with_vecs = Passage(p.chunk, p.title, p.outlet, p.url, p.published, p.kind, vecs)
                a, b = highlight(with_vecs, cues, q)
                counts[name] += needle in normalise_answer(p.chunk.text[a:b])
        reader.close()
    n = counts["top_holds_answer"]
    result = {
        **counts,
        "highlight@1_alone": counts["alone"] / n if n else None,
        "highlight@1_pooled": counts["pooled"] / n if n else None,
        "note": "eval set, answerable questions whose first served passage holds the answer; "
        "the same passage highlighted with each kind of sentence vector",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
