"""GET /v1/articles/{id}: the stored text that citations point into."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from akhbar.service.deps import EngineDep
from akhbar.service.schemas import ArticleOut, ErrorResponse

router = APIRouter(prefix="/v1/articles", tags=["articles"])


@router.get("/{article_id}", response_model=ArticleOut, responses={404: {"model": ErrorResponse}})
def get_article(article_id: str, engine: EngineDep) -> ArticleOut:
    article = engine.store.get_article(article_id)
    if article is None:
        raise HTTPException(404, f"no article with id {article_id!r}")
    return ArticleOut(
        id=article.id,
        title=article.title,
        text=article.text,
        language=article.language,
        outlet=article.outlet,
        url=article.url,
        published=article.published,
        author=article.author,
        duplicate_of=article.duplicate_of,
    )
