"""FastAPI dependencies: the settings and the QA engine, taken from app state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from akhbar.service.qa import QAEngine
from akhbar.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_engine(request: Request) -> QAEngine:
    return request.app.state.engine


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[QAEngine, Depends(get_engine)]
