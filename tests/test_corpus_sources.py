from datetime import date
from pathlib import Path

import pytest

from akhbar.corpus.models import RawItem
from akhbar.corpus.sources import Rejection, Skipped, iter_sources
from akhbar.corpus.sources.seed import parse_seed_page

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpus" / "data" / "sample"
FIXTURES = ROOT / "tests" / "fixtures" / "corpus"

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
<title>Hespress FR</title><link>https://fr.example.ma</link><language>fr-FR</language>
<item>
  <title>Le dirham se stabilise face à l'euro</title>
  <link>https://fr.example.ma/eco/dirham-stabilise</link>
  <guid isPermaLink="false">hespress-1001</guid>
  <pubDate>Tue, 13 Jan 2026 09:15:00 +0100</pubDate>
  <author>redaction@example.ma (La rédaction)</author>
  <description><![CDATA[<p>Le dirham est resté stable cette semaine.</p>
    <p>Bank Al-Maghrib surveille.</p>]]></description>
</item>
<item>
  <title>Averses attendues sur le nord</title>
  <link>https://fr.example.ma/meteo/averses</link>
  <guid>https://fr.example.ma/meteo/averses</guid>
  <pubDate>Wed, 14 Jan 2026 07:00:00 GMT</pubDate>
  <description>De fortes pluies sont attendues à partir de mercredi.</description>
</item>
</channel></rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="es">
  <title>Diario del Estrecho</title>
  <id>urn:uuid:feed-1</id>
  <updated>2026-01-13T12:00:00Z</updated>
  <entry>
    <title>Suspendido el tráfico marítimo en el Estrecho</title>
    <id>urn:uuid:entry-42</id>
    <link href="https://es.example.com/estrecho/trafico"/>
    <updated>2026-01-13T11:00:00Z</updated>
    <published>2026-01-13T10:30:00Z</published>
    <author><name>Ana Pérez</name></author>
    <summary>Las autoridades portuarias suspendieron el tráfico por el temporal.</summary>
  </entry>
</feed>
"""


def _items(results: list[RawItem | Rejection]) -> list[RawItem]:
    return [r for r in results if isinstance(r, RawItem)]


def _rejections(results: list[RawItem | Rejection]) -> list[Rejection]:
    return [r for r in results if isinstance(r, Rejection)]


def test_seed_page() -> None:
    text = (SAMPLE / "seed_page.txt").read_text(encoding="utf-8")
    items = parse_seed_page(text, "seed")
    headlines = [i for i in items if i.kind == "headline"]
    articles = [i for i in items if i.kind == "article"]
    assert len(headlines) == 48 and len(articles) == 1
    assert all(h.title == h.body and h.title for h in headlines)
    assert headlines[0].title.startswith("À Alger, Washington rappelle")
    assert headlines[-1].title == "Le journaliste marocain Najib Salmi n'est plus"
    article = articles[0]
    assert article.title == "Intelligence artificielle : un prompt Made in Morocco"
    assert article.outlet == "Les ECO"
    assert article.published == date(2026, 1, 13)
    assert article.author == "Yassine Saber"
    assert "500 MW" in article.body
    assert article.body.startswith("Le Maroc affirme sa souveraineté")
    everything = " ".join(i.title + " " + i.body for i in items)
    for boilerplate in ("Merci d'avoir signalé", "automatiquement bloquée", "Cliquez ici"):
        assert boilerplate not in everything
    assert "Yassine Saber /" not in article.body


def test_seed_page_spanish_variant() -> None:
    text = (
        "Titular uno del día    Titular dos de la tarde    Titular tres final\n\n"
        "Gracias por informar!\n"
        "El puerto de Tánger Med reanuda su actividad\n"
        "Publicado en El Faro el 14 de enero de 2026\n\n"
        "El puerto reanudó su actividad tras el temporal.\n"
        "Por: Juan García\n\n"
        "Haga clic aquí para leer el artículo en su fuente.\n"
    )
    items = parse_seed_page(text, "es-page")
    assert [i.kind for i in items] == ["headline"] * 3 + ["article"]
    art = items[-1]
    assert art.title == "El puerto de Tánger Med reanuda su actividad"
    assert art.outlet == "El Faro"
    assert art.published == date(2026, 1, 14)
    assert art.author == "Juan García"
    assert art.body == "El puerto reanudó su actividad tras el temporal."


def test_rss(tmp_path: Path) -> None:
    (tmp_path / "feed.rss").write_text(RSS, encoding="utf-8")
    items = _items(list(iter_sources([str(tmp_path / "feed.rss")])))
    assert len(items) == 2
    first = items[0]
    assert first.title == "Le dirham se stabilise face à l'euro"
    assert first.external_id == "hespress-1001"
    assert first.url == "https://fr.example.ma/eco/dirham-stabilise"
    assert first.published == date(2026, 1, 13)
    assert first.declared_language == "fr-FR"
    assert first.outlet == "Hespress FR"
    assert "Bank Al-Maghrib" in first.body and "<p>" not in first.body


def test_atom_sniffed_without_extension(tmp_path: Path) -> None:
    (tmp_path / "feed").write_text(ATOM, encoding="utf-8")
    items = _items(list(iter_sources([str(tmp_path / "feed")])))
    assert len(items) == 1
    entry = items[0]
    assert entry.external_id == "urn:uuid:entry-42"
    assert entry.url == "https://es.example.com/estrecho/trafico"
    assert entry.published == date(2026, 1, 13)
    assert entry.author == "Ana Pérez"
    assert entry.declared_language == "es"


def test_broken_xml_feed_recovers_items(tmp_path: Path) -> None:
    broken = RSS.replace("</channel></rss>", "").replace("<title>Averses", "<title>Averses & co")
    (tmp_path / "broken.xml").write_text(broken, encoding="utf-8")
    results = list(iter_sources([str(tmp_path / "broken.xml")]))
    assert len(_items(results)) >= 1
    (tmp_path / "garbage.xml").write_bytes(b"<<< not xml at all")
    results = list(iter_sources([str(tmp_path / "garbage.xml")]))
    assert len(results) == 1 and isinstance(results[0], Rejection)
    assert "feed" in results[0].reason
    (tmp_path / "binary.xml").write_bytes(b"\x00\x01<<< not xml at all")
    [binary] = list(iter_sources([str(tmp_path / "binary.xml")]))
    assert isinstance(binary, Rejection) and "binary" in binary.reason


def test_empty_feed_is_a_rejection(tmp_path: Path) -> None:
    (tmp_path / "empty.rss").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Vide</title></channel></rss>',
        encoding="utf-8",
    )
    (tmp_path / "zero.xml").write_bytes(b"")
    results = list(iter_sources([str(tmp_path / "empty.rss"), str(tmp_path / "zero.xml")]))
    assert [(type(r), Path(r.source).name) for r in results] == [
        (Rejection, "empty.rss"),
        (Rejection, "zero.xml"),
    ]
    assert results[0].reason == "feed has no entries"


def test_html_page_boilerplate_removed() -> None:
    items = _items(list(iter_sources([str(FIXTURES / "article_page.html")])))
    assert len(items) == 1
    page = items[0]
    assert page.title == "La pluie revient sur le Maroc"
    assert page.outlet == "Le Journal du Nord"
    assert page.author == "Fatima Zahra Alaoui"
    assert page.published == date(2026, 1, 14)
    assert page.declared_language == "fr-FR"
    assert "66,1%" in page.body
    for junk in ("Accueil", "PUBLICITÉ", "Trolldu92", "iPhone", "Mentions légales"):
        assert junk not in page.body


def test_jsonl_fields_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_text(
        '{"id": "x-1", "headline": "Titre", "lead": "Chapeau.", "content": "Corps.",'
        ' "published": "13/01/2026", "link": "https://e.x/1", "source": "Le Matin",'
        ' "language": "fr", "author": "A. B."}\n'
        "\n"
        "{not json}\n"
        '["a list"]\n'
        '{"id": "x-2", "title": "", "text": ""}\n'
        '{"id": "x-3", "title": "Seul titre", "lead": "None"}\n',
        encoding="utf-8",
    )
    results = list(iter_sources([str(path)]))
    items, rejections = _items(results), _rejections(results)
    assert [i.external_id for i in items] == ["x-1", "x-3"]
    first = items[0]
    assert first.title == "Titre" and first.body == "Chapeau.\n\nCorps."
    assert first.published == date(2026, 1, 13)
    assert (first.url, first.outlet, first.declared_language, first.author) == (
        "https://e.x/1",
        "Le Matin",
        "fr",
        "A. B.",
    )
    assert items[1].body == ""  # "None" from a pandas export is no lead
    assert [r.source.rsplit(":", 1)[1] for r in rejections] == ["3", "4", "5"]
    assert "invalid JSON" in rejections[0].reason


def test_bundled_wikinews_jsonl() -> None:
    items = _items(list(iter_sources([str(SAMPLE / "frwikinews_2012.jsonl")])))
    assert len(items) == 100
    first = items[0]
    assert first.external_id == "frwikinews-kp-43971"
    assert first.body.startswith("La fusée Falcon 9")  # the lead comes first
    assert first.published == date(2012, 5, 22)
    assert first.url and first.url.startswith("https://fr.wikinews.org/")


def test_latin1_and_bom_files(tmp_path: Path) -> None:
    page = "Titre un du jour    Deuxième titre ici    Troisième titre là\n\nFin de l'été à Fès\n"
    (tmp_path / "latin1.txt").write_bytes(page.encode("latin-1"))
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + page.encode("utf-8"))
    for name in ("latin1.txt", "bom.txt"):
        items = _items(list(iter_sources([str(tmp_path / name)])))
        assert items[1].title == "Deuxième titre ici", name
        assert items[0].title == "Titre un du jour", name  # no BOM glued to the first title
        assert items[-1].title == "Fin de l'été à Fès", name
    cp1252_feed = RSS.replace('encoding="UTF-8"', 'encoding="windows-1252"').replace(
        "Le dirham", "Le dirham – “stable”"
    )
    (tmp_path / "cp.xml").write_bytes(cp1252_feed.encode("cp1252"))
    items = _items(list(iter_sources([str(tmp_path / "cp.xml")])))
    assert items[0].title.startswith("Le dirham – “stable”")


def test_oversized_file_rejected_without_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    with big.open("wb") as fh:
        fh.truncate(20 * 1024 * 1024)  # sparse: 20 MB without writing 20 MB
    results = list(iter_sources([str(big)]))
    assert len(results) == 1 and isinstance(results[0], Rejection)
    assert "cap" in results[0].reason


def test_missing_and_directory_and_list(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "feed.rss").write_text(RSS, encoding="utf-8")
    (tmp_path / "a.jsonl").write_text('{"id": "j1", "title": "T", "text": "B"}\n', "utf-8")
    (tmp_path / "feeds.list").write_text(
        "# local feeds\nsub/feed.rss\n\nmissing.xml\nfeeds.list\n", encoding="utf-8"
    )
    results = list(iter_sources([str(tmp_path / "nope.txt")]))
    assert results == [
        Rejection(str(tmp_path / "nope.txt"), "no such file or directory", unreadable=True)
    ]

    listed = list(iter_sources([str(tmp_path / "feeds.list")]))
    assert len(_items(listed)) == 2
    reasons = [r.reason for r in _rejections(listed)]
    assert "no such file or directory" in reasons
    assert any("itself" in r for r in reasons)

    whole = list(iter_sources([str(tmp_path)]))
    # a.jsonl (1) + sub/feed.rss (2); a feed list is read only when named
    assert len(_items(whole)) == 3
    assert [
        (Path(s.source).name, "named" in s.reason) for s in whole if isinstance(s, Skipped)
    ] == [("feeds.list", True)]


@pytest.mark.parametrize("name", ["page.html", "page.htm"])
def test_html_by_extension(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes((FIXTURES / "article_page.html").read_bytes())
    assert len(_items(list(iter_sources([str(tmp_path / name)])))) == 1
