"""GET /articles/{id}: an article as a page, with the cited passage marked.

Citations on the web page link here (the JSON stays at /v1/articles/{id}). Jinja2 escapes
everything it prints: stored text is untrusted news content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from akhbar.service.deps import EngineDep

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")

LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "source": "Lire à la source",
        "no_outlet": "média inconnu",
        "no_date": "date inconnue",
        "aggregator": "titre d'un agrégateur, source non indiquée",
        "duplicate": "Doublon de",
        "jump": "Aller au passage cité",
        "missing_title": "Article introuvable",
        "missing": "Cet article n'est pas (ou plus) dans le corpus.",
    },
    "es": {
        "source": "Leer en la fuente",
        "no_outlet": "medio desconocido",
        "no_date": "fecha desconocida",
        "aggregator": "titular de un agregador, fuente no indicada",
        "duplicate": "Duplicado de",
        "jump": "Ir al pasaje citado",
        "missing_title": "Artículo no encontrado",
        "missing": "Este artículo no está (o ya no está) en el corpus.",
    },
    "en": {
        "source": "Read at the source",
        "no_outlet": "unknown outlet",
        "no_date": "unknown date",
        "aggregator": "aggregator headline, source not given",
        "duplicate": "Duplicate of",
        "jump": "Go to the cited passage",
        "missing_title": "Article not found",
        "missing": "This article is not (or no longer) in the corpus.",
    },
}

router = APIRouter(include_in_schema=False)
Offset = Annotated[int | None, Query(ge=0)]


def _ui_language(request: Request, ui: str | None) -> str:
    if ui in LABELS:
        return ui
    for part in request.headers.get("accept-language", "").split(","):
        lang = part.split(";")[0].strip()[:2].lower()
        if lang in LABELS:
            return lang
    return "en"


def _http_url(url: str | None) -> str | None:
    # Only http(s) links: a stored "javascript:" URL must never become clickable.
    if url and urlsplit(url).scheme.lower() in ("http", "https"):
        return url
    return None


@router.get("/articles/{article_id}", response_class=HTMLResponse)
async def article_page(
    request: Request,
    article_id: str,
    engine: EngineDep,
    start: Offset = None,
    end: Offset = None,
    hs: Offset = None,
    he: Offset = None,
    ui: str | None = None,
) -> HTMLResponse:
    """``start``/``end``: the passage in the article text (a citation's offsets);
    ``hs``/``he``: the answer within the passage (a passage's highlight)."""
    lang = _ui_language(request, ui)
    article = await run_in_threadpool(engine.store.get_article, article_id)
    context: dict = {"ui": lang, "t": LABELS[lang], "article": article, "cited": False}
    if article is None:
        context["title"] = LABELS[lang]["missing_title"]
        return TEMPLATES.TemplateResponse(request, "article.html", context, status_code=404)
    text = article.text
    context.update(title=article.title, source_url=_http_url(article.url), before=text, after="")
    # Offsets out of range or reversed (an old link, a hand-edited URL) show the article
    # without a mark rather than an error.
    if start is not None and end is not None and start < end <= len(text):
        passage = text[start:end]
        a, b = (hs, he) if hs is not None and he is not None and hs < he <= len(passage) else (0, 0)
        context.update(
            cited=True,
            before=text[:start],
            p_before=passage[:a],
            answer=passage[a:b],
            p_after=passage[b:],
            after=text[end:],
        )
    return TEMPLATES.TemplateResponse(request, "article.html", context)
