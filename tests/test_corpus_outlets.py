"""Outlet names from URLs, and the per-outlet article counts the store gives the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from akhbar.corpus.ingest import ingest
from akhbar.corpus.models import RawItem
from akhbar.corpus.outlets import outlet_from_url
from akhbar.corpus.store import Store


@pytest.mark.parametrize(
    ("url", "outlet"),
    [
        ("https://fr.wikinews.org/wiki/États-Unis_:_Lancement", "Wikinews (fr)"),
        ("https://es.m.wikinews.org/wiki/X", "Wikinews (es)"),
        ("https://en.wikipedia.org/wiki/Dakhla", "Wikipedia (en)"),
        ("https://www.lesecos.ma/article/1", "lesecos.ma"),
        ("https://lesecos.ma/x", "lesecos.ma"),
        ("https://WWW.LeMonde.fr/politique/", "Le Monde"),
        ("http://www.bbc.co.uk/news", "BBC"),
        ("https://news.example.org/a", "news.example.org"),
        ("https://m.example.com/a", "example.com"),
        (None, None),
        ("", None),
        ("not a url", None),
        ("javascript:alert(1)", None),
        ("ftp://example.com/file", None),
        ("http://localhost:8000/a", None),
        ("http://192.168.1.10/a", None),
        ("http://[::1", None),
    ],
)
def test_outlet_from_url(url: str | None, outlet: str | None) -> None:
    assert outlet_from_url(url) == outlet


def test_ingest_names_the_outlet_from_the_url_only_when_the_source_has_none(
    tmp_path: Path,
) -> None:
    with Store(tmp_path / "s.sqlite3") as store:
        ingest(
            store,
            [
                RawItem(
                    title="Lancement réussi",
                    body="La fusée a décollé ce matin sans problème depuis la Floride.",
                    source="t",
                    url="https://fr.wikinews.org/wiki/Lancement",
                ),
                RawItem(
                    title="Un autre titre",
                    body="Le conseil municipal a voté le budget de la ville hier soir.",
                    source="t",
                    url="https://www.lesecos.ma/a",
                    outlet="Les ECO",
                ),
            ],
        )
        outlets = {a.title: a.outlet for a in store.iter_articles()}
    assert outlets == {"Lancement réussi": "Wikinews (fr)", "Un autre titre": "Les ECO"}


def test_outlet_counts_merge_case_and_skip_duplicates_and_unnamed(tmp_path: Path) -> None:
    bodies = [
        ("Les ECO", "Le port de Tanger a suspendu le trafic maritime à cause du vent."),
        ("Les ECO", "La banque centrale a maintenu son taux directeur inchangé mardi."),
        ("les eco", "Le festival de musique a attiré des milliers de visiteurs ce week-end."),
        ("Le360", "Les barrages du bassin affichent un taux de remplissage élevé."),
        (None, "Un texte sans média ni adresse, stocké sans nom de média du tout."),
    ]
    items = [
        RawItem(title=f"Titre {i}", body=body, source="t", outlet=outlet)
        for i, (outlet, body) in enumerate(bodies)
    ]
    # The same text again under another title: a duplicate, not counted.
    items.append(RawItem(title="Copie", body=bodies[3][1], source="t", outlet="Le360"))
    with Store(tmp_path / "s.sqlite3") as store:
        report = ingest(store, items)
        assert report.duplicate == 1
        assert store.outlet_counts() == [("Les ECO", 3), ("Le360", 1)]
