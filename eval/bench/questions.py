"""Questions for the load benchmarks: fr/es/en about the bundled sample, and workloads.

A benchmark that only repeats a handful of questions measures the query-embedding cache,
not the service; so every workload says how many of its requests are repeats, and the
"distinct" workload sends only texts the server has never seen.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

QUESTIONS: tuple[str, ...] = (
    # French
    "Quand la capsule Dragon de SpaceX a-t-elle décollé ?",
    "Combien de personnes étaient à bord de l'avion qui s'est écrasé à Lagos ?",
    "Qui a été élu président en Égypte en 2012 ?",
    "De combien le SMIC va-t-il augmenter ?",
    "Combien de banques espagnoles Moody's a-t-elle dégradées ?",
    "Quand le service du minitel prend-il fin ?",
    "Combien de postes Hewlett-Packard va-t-il supprimer en France ?",
    "Combien d'emplois PSA va-t-il supprimer ?",
    "Qui a gagné le tournoi de Wimbledon en 2012 ?",
    "Quel pays a accordé l'asile politique à Julian Assange ?",
    "Combien de morts a fait l'ouragan Sandy aux États-Unis ?",
    "Quelle taille devrait atteindre le marché mondial de l'IA d'ici 2030 ?",
    "Quel est le taux de remplissage des barrages du bassin de Sebou ?",
    "Où L'Oréal a-t-il ouvert sa plus grande usine ?",
    "Quelle version d'Ubuntu est sortie en octobre 2012 ?",
    "Qui a été assassiné en Corse en octobre 2012 ?",
    # Spanish
    "¿Cuántos sectores prioritarios ha identificado Marruecos para la inteligencia artificial?",
    "¿Por qué se suspendió el tráfico marítimo en Tánger Med?",
    "¿Qué partido expulsó al diputado Antoni Pastor en Baleares?",
    "¿Cuántos muertos hubo en Madrid durante Halloween?",
    "¿Quién ganó las elecciones presidenciales en Egipto?",
    "¿Qué agencia rebajó la calificación de Italia?",
    "¿Cuántas personas podría afectar la regularización de migrantes en España?",
    "¿Dónde se descubrió una exoplaneta con cuatro soles?",
    "¿Qué rechazó el Parlamento Europeo en julio de 2012?",
    "¿Cuándo se lanzaron los satélites del programa Galileo?",
    "¿Cuánto aumentarán los impuestos en Francia en 2012?",
    "¿Quién fue canonizada el 21 de octubre de 2012?",
    # English
    "When did the SpaceX Dragon capsule launch?",
    "How many people were on board the plane that crashed in Lagos?",
    "Who won the Wimbledon women's final in 2012?",
    "Which country granted political asylum to Julian Assange?",
    "How many jobs is PSA cutting in France?",
    "What did the final report on the Rio-Paris crash say?",
    "By how many places did Morocco climb in the government AI readiness index?",
    "How many people died because of Hurricane Sandy in the United States?",
    "What was discovered at CERN in July 2012?",
    "Where is the new Louvre-style Pointe-à-Callière pavilion in Montreal?",
    "What did Russian scientists claim to have found?",
    "Which Moroccan scientist received a NASA leadership medal?",
)


def variant(question: str, n: int) -> str:
    """A text the server has not seen (the cache is keyed by the exact question), encoded
    at the same cost: a short reference tag, as users paste into questions."""
    return f"{question} (réf. {n})"


class Workload:
    """Question texts for one server's lifetime; variant numbers never repeat in it."""

    def __init__(self, seed: int = 0, repeat_share: float = 0.5) -> None:
        self._rng = np.random.default_rng(seed)
        self._next = 0
        self.repeat_share = repeat_share
        # Popular questions are asked far more often (Zipf-like), as on a news site.
        ranks = np.arange(1, len(QUESTIONS) + 1, dtype=np.float64)
        self._popularity = (1 / ranks**1.1) / np.sum(1 / ranks**1.1)

    def fresh(self) -> str:
        q = QUESTIONS[self._next % len(QUESTIONS)]
        self._next += 1
        return variant(q, self._next)

    def distinct(self, n: int) -> list[str]:
        return [self.fresh() for _ in range(n)]

    def mixed(self, n: int) -> list[str]:
        """``repeat_share`` of the requests repeat a popular question, the rest are new."""
        out = []
        for _ in range(n):
            if self._rng.random() < self.repeat_share:
                out.append(QUESTIONS[self._rng.choice(len(QUESTIONS), p=self._popularity)])
            else:
                out.append(self.fresh())
        return out


def eval_set_questions(limit: int | None = None) -> list[str]:
    """The eval set's real fr/es/en questions about the sample (recall queries)."""
    path = Path(__file__).resolve().parents[1] / "data" / "eval_set.jsonl"
    with path.open(encoding="utf-8") as fh:
        qs = [json.loads(line)["question"] for line in fh if line.strip()]
    return qs[:limit] if limit else qs


def cycle(items: list[str], n: int) -> Iterator[str]:
    for i in range(n):
        yield items[i % len(items)]
