"""Hostile input for ingestion: whatever a file holds, the run goes on and accounts for it.

Property-based families (random bytes, unicode with surrogates, truncated and deeply nested
JSON, malformed feeds, HTML garbage, directories with links out) check three things on every
example: no exception escapes ``iter_sources`` or ``ingest``; every item is stored, a
duplicate, unchanged or rejected (with one log row each), and every file written shows up
in the outcome; nothing is stored from outside the named paths. Named regression tests pin
the cases found by hand. No model is needed: ingestion does not embed.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from akhbar.corpus.ingest import ingest
from akhbar.corpus.models import IngestReport, RawItem
from akhbar.corpus.sources import Rejection, Skipped, iter_sources, parse_content
from akhbar.corpus.sources.fetch import FetchError, FetchResult
from akhbar.corpus.store import Store

# Reproducible in CI (derandomize) and small enough for a 2-core runner.
HOSTILE = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SECRET = "SECRET-OUTSIDE-MARKER-4711"
EXTENSIONS = [".jsonl", ".json", ".rss", ".xml", ".atom", ".html", ".htm", ".txt", ""]
ANY_CHAR = st.characters(exclude_categories=())  # surrogates and unassigned included

RSS_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
    "<title>Le Site</title><language>fr</language>"
)
GOOD_ITEM = (
    "<item><title>La pluie revient sur le Maroc</title><guid>g-good</guid>"
    "<description>Les pluies reviennent sur le nord du pays cette semaine.</description></item>"
)
GOOD_JSONL = json.dumps(
    {"id": "good-1", "title": "Le port de Tanger", "text": "Le port de Tanger rouvre ce lundi."}
)


@dataclass
class Run:
    results: list[RawItem | Rejection | Skipped]
    report: IngestReport
    log_rows: int
    sources: list[str]  # the source of every stored article
    texts: list[str]  # title and text of every stored article


def run_checked(targets: Sequence[str], home: Path) -> Run:
    """Read and ingest; fail the test if anything escapes or goes unaccounted for."""
    with Store(home / "store.sqlite3") as store:
        results = list(iter_sources(list(targets)))
        before = len(store.ingest_log())
        report = ingest(store, results)
        items = [r for r in results if not isinstance(r, Skipped)]
        assert report.total == len(items)
        assert (report.stored + report.duplicate + report.unchanged + report.rejected) == len(items)
        assert len(store.ingest_log()) - before == report.total
        assert len(report.skipped) == len(results) - len(items)
        articles = list(store.iter_articles(include_duplicates=True))
        return Run(
            results,
            report,
            len(store.ingest_log()),
            [a.source or "" for a in articles],
            [f"{a.title}\n{a.text}" for a in articles],
        )


def assert_each_file_accounted(run: Run, files: Sequence[Path]) -> None:
    for path in files:
        assert any(r.source.startswith(str(path)) for r in run.results), f"{path} left no trace"


def assert_stays_inside(run: Run, root: Path) -> None:
    for source in run.sources:
        assert source.startswith(str(root)), source
    for text in run.texts:
        assert SECRET not in text


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside any directory the tests name, that nothing must ever store."""
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(
        f"Titre un du jour    {SECRET}    Troisième titre là\n\n{SECRET}\n{SECRET} corps.\n",
        encoding="utf-8",
    )
    return secret


def scratch() -> tempfile.TemporaryDirectory[str]:
    # One directory per hypothesis example: function-scoped fixtures are shared by examples.
    return tempfile.TemporaryDirectory(prefix="akhbar-hostile-")


def write_and_run(name: str, data: bytes) -> Run:
    with scratch() as tmp:
        root = Path(tmp)
        path = root / "in" / name
        path.parent.mkdir()
        path.write_bytes(data)
        run = run_checked([str(path)], root)
        assert_each_file_accounted(run, [path])
        assert_stays_inside(run, path)
        return run


# -- property-based families ---------------------------------------------------------------


@HOSTILE
@given(data=st.binary(max_size=4096), ext=st.sampled_from(EXTENSIONS))
def test_random_bytes_any_extension(data: bytes, ext: str) -> None:
    write_and_run(f"doc{ext}", data)


@HOSTILE
@given(
    text=st.text(ANY_CHAR, max_size=2000),
    ext=st.sampled_from(EXTENSIONS),
    codec=st.sampled_from(["utf-8", "utf-16", "latin-1"]),
)
def test_random_unicode_any_extension(text: str, ext: str, codec: str) -> None:
    # Surrogates have no honest encoding; surrogatepass writes them as a broken exporter would.
    errors = "replace" if codec == "latin-1" else "surrogatepass"
    write_and_run(f"doc{ext}", text.encode(codec, errors))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(ANY_CHAR, max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = ("id", "title", "text", "lead", "date", "url", "source", "language", "author", "kind")
RECORDS = st.fixed_dictionaries({}, optional={k: JSON_VALUES for k in FIELDS})


@st.composite
def jsonl_lines(draw: st.DrawFn) -> str:
    shape = draw(st.sampled_from(["record", "value", "truncated", "deep", "bigint"]))
    if shape == "record":
        return json.dumps(draw(RECORDS), ensure_ascii=draw(st.booleans()))
    if shape == "value":
        return json.dumps(draw(JSON_VALUES))
    if shape == "truncated":
        line = json.dumps(draw(RECORDS))
        return line[: draw(st.integers(0, len(line)))]
    if shape == "deep":
        depth = draw(st.sampled_from([10, 900, 1100, 5000, 60_000]))
        opener, inner, closer = draw(
            st.sampled_from([("[", '{"title": "t"}', "]"), ('{"title":', '"x"', "}")])
        )
        return opener * depth + inner + closer * depth
    return '{"title": "nombre", "text": ' + "9" * draw(st.integers(4000, 6000)) + "}"


@HOSTILE
@given(lines=st.lists(jsonl_lines(), max_size=6), ext=st.sampled_from([".jsonl", ".json"]))
def test_hostile_jsonl_and_json(lines: list[str], ext: str) -> None:
    text = "\n".join([*lines, GOOD_JSONL])
    run = write_and_run(f"export{ext}", text.encode("utf-8", "surrogatepass"))
    if ext == ".jsonl":
        # Whatever came before, the good last line is read.
        assert any(isinstance(r, RawItem) and r.external_id == "good-1" for r in run.results)


@HOSTILE
@given(lines=st.lists(jsonl_lines(), min_size=1, max_size=4), close=st.booleans())
def test_hostile_json_array(lines: list[str], close: bool) -> None:
    doc = "[" + ",".join(lines) + ("]" if close else "")
    write_and_run("export.json", doc.encode("utf-8", "surrogatepass"))


FEED_FRAGMENTS = st.sampled_from(
    [
        "&#xD800;",
        "&#xDFFF;",
        "&#0;",
        "&#x1;",
        "&#xFFFE;",
        "&#x110000;",
        "&#99999999999999999999;",
        "&amp;",
        "&nbsp;",
        "&unknown;",
        "<",
        ">",
        "]]>",
        "<![CDATA[",
        "<!--",
        "<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>",
        "&e;",
        "</item>",
        "<item>",
        "</channel>",
        "<entry>",
        "<title>",
        "</title>",
        "<description>",
        '<link href="javascript:alert(1)"/>',
        "<pubDate>Sun, 99 Foo 99999</pubDate>",
        "\x00",
        "\ufeff",
        "\ud800",
    ]
)


@st.composite
def feeds(draw: st.DrawFn) -> str:
    body = "".join(draw(st.lists(FEED_FRAGMENTS | st.text(ANY_CHAR, max_size=30), max_size=25)))
    if draw(st.booleans()):
        doc = (
            '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
            f"<entry><title>{body}</title><id>e-1</id><summary>{body}</summary></entry></feed>"
        )
    else:
        doc = f"{RSS_HEAD}<item><title>{body}</title><description>{body}</description></item>"
        doc += f"{GOOD_ITEM}</channel></rss>"
    cut = draw(st.integers(0, len(doc)))
    return doc[:cut] if draw(st.booleans()) else doc


@HOSTILE
@given(doc=feeds(), ext=st.sampled_from([".rss", ".xml", ".atom", ""]))
def test_hostile_feeds(doc: str, ext: str) -> None:
    write_and_run(f"feed{ext}", doc.encode("utf-8", "surrogatepass"))


HTML_FRAGMENTS = st.sampled_from(
    [
        "<html>",
        "<body>",
        "<article>",
        "<p>",
        "</p>",
        "<h1>",
        "<div",
        "<script>alert(1)</script>",
        "<style>*{}</style>",
        "<!--",
        "-->",
        "<![CDATA[",
        "<svg><foreignObject>",
        '<meta charset="x-nonsense">',
        '<meta http-equiv="refresh" content="0;url=file:///etc/passwd">',
        '<html lang="\ud800">',
        "&#xD800;",
        "&#0;",
        "<table>" * 50,
        "<div>" * 2000,
        "</div>",
        "\x00",
    ]
)


@HOSTILE
@given(parts=st.lists(HTML_FRAGMENTS | st.text(ANY_CHAR, max_size=40), max_size=30))
def test_hostile_html(parts: list[str]) -> None:
    page = "<!doctype html><html><body>" + "".join(parts)
    write_and_run("page.html", page.encode("utf-8", "surrogatepass"))


SEED_LINES = st.text(ANY_CHAR, max_size=60) | st.sampled_from(
    ["Publié dans X le 99 - 99 - 99999", "   ", "\t\t", "Par Jean Dupont", "A    B    C    D"]
)


@HOSTILE
@given(lines=st.lists(SEED_LINES, max_size=12))
def test_hostile_seed_pages(lines: list[str]) -> None:
    write_and_run("page.txt", "\n".join(lines).encode("utf-8", "surrogatepass"))


DIR_NAMES = ["a.jsonl", "b.rss", "c.html", "d.txt", "e.json", "f.list", "g.md", "h"]


@HOSTILE
@given(
    names=st.lists(st.sampled_from(DIR_NAMES), min_size=1, max_size=6, unique=True),
    contents=st.lists(
        st.binary(max_size=300) | feeds().map(lambda d: d.encode("utf-8", "surrogatepass")),
        min_size=6,
        max_size=6,
    ),
    links=st.lists(st.sampled_from(["out.jsonl", "out.txt", "out.rss", "dirlink"]), unique=True),
)
def test_hostile_directories(names: list[str], contents: list[bytes], links: list[str]) -> None:
    with scratch() as tmp:
        root = Path(tmp)
        secret = root / "outside" / "secret.txt"
        secret.parent.mkdir()
        secret.write_text(f"Titre A    {SECRET}    Titre C\n\n{SECRET}\n{SECRET}.", "utf-8")
        named = root / "named"
        named.mkdir()
        files = []
        for name, data in zip(names, contents, strict=False):
            (named / name).write_bytes(data)
            files.append(named / name)
        for link in links:
            (named / link).symlink_to(secret.parent if link == "dirlink" else secret)
        (named / "zz-last.jsonl").write_text(GOOD_JSONL + "\n", encoding="utf-8")
        files.append(named / "zz-last.jsonl")
        run = run_checked([str(named)], root)
        assert_each_file_accounted(run, files)
        assert_stays_inside(run, named)
        assert any(isinstance(r, RawItem) and r.external_id == "good-1" for r in run.results)


# No "/" and no "..": a generated line must not name the machine's root or the temp dir's
# parent (a named list is followed wherever it points, as the operator asked).
LIST_LINES = st.text(ANY_CHAR, max_size=40).filter(
    lambda line: "/" not in line and line.strip() != ".." and "\\" not in line
)


@HOSTILE
@given(lines=st.lists(LIST_LINES, max_size=8))
def test_hostile_feed_lists(lines: list[str]) -> None:
    with scratch() as tmp:
        root = Path(tmp)
        (root / "a.jsonl").write_text(GOOD_JSONL + "\n", encoding="utf-8")
        path = root / "feeds.list"
        path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
        run = run_checked([str(path)], root)
        assert run.results, "a list always leaves a trace"
        assert_stays_inside(run, root)


# -- named regressions ---------------------------------------------------------------------


def _rejections(run: Run) -> list[Rejection]:
    return [r for r in run.results if isinstance(r, Rejection)]


def test_jsonl_line_nested_50000_deep_is_one_rejection(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 50_000 + "]" * 50_000 + "\n" + GOOD_JSONL + "\n", encoding="utf-8")
    run = run_checked([str(path)], tmp_path)
    [rejection] = _rejections(run)
    assert rejection.source == f"{path}:1" and "nested too deep" in rejection.reason
    assert (run.report.stored, run.report.rejected) == (1, 1)


def test_json_document_nested_deep_is_a_rejection(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"a":' * 50_000 + "1" + "}" * 50_000, encoding="utf-8")
    run = run_checked([str(path)], tmp_path)
    [rejection] = _rejections(run)
    assert "nested too deep" in rejection.reason and run.report.stored == 0


def test_jsonl_lone_surrogate_is_replaced_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "sur.jsonl"
    path.write_text(
        '{"id": "s1", "title": "Titre \\ud800 cassé", "text": "Le corps reste intact.",'
        ' "source": "Le \\udfff Site", "url": "https://e.x/\\ud800"}\n' + GOOD_JSONL + "\n",
        encoding="utf-8",
    )
    run = run_checked([str(path)], tmp_path)
    assert run.report.stored == 2
    with Store(tmp_path / "store.sqlite3") as store:
        article = store.get_article("s1")
    assert article is not None
    assert article.title == "Titre \ufffd cassé" and article.outlet == "Le \ufffd Site"
    assert article.text == "Le corps reste intact."


def test_jsonl_mostly_surrogates_is_rejected_as_not_text(tmp_path: Path) -> None:
    path = tmp_path / "sur.jsonl"
    path.write_text(json.dumps({"title": "\ud800" * 50, "text": "\udc00 a" * 500}) + "\n", "utf-8")
    run = run_checked([str(path)], tmp_path)
    assert (run.report.rejected, run.report.stored) == (1, 0)
    assert "not text" in run.report.reasons[0][1]


def test_rss_surrogate_char_ref_costs_one_character(tmp_path: Path) -> None:
    path = tmp_path / "feed.rss"
    path.write_text(
        f"{RSS_HEAD}<item><title>Avant &#xD800; après</title><description>Texte du corps"
        f" de l'article.</description></item>{GOOD_ITEM}</channel></rss>",
        encoding="utf-8",
    )
    run = run_checked([str(path)], tmp_path)
    assert (run.report.stored, run.report.rejected) == (2, 0)
    assert any(t.startswith("Avant \ufffd après") for t in run.texts)


def test_bad_file_does_not_skip_later_files(tmp_path: Path) -> None:
    named = tmp_path / "dir"
    named.mkdir()
    (named / "a-deep.jsonl").write_text("[" * 50_000 + "]" * 50_000 + "\n", encoding="utf-8")
    (named / "b-surrogate.rss").write_text(
        f"{RSS_HEAD}<item><title>&#xD800;</title></item></channel></rss>", encoding="utf-8"
    )
    (named / "c-binary.json").write_bytes(random.Random(15).randbytes(5000))
    (named / "d-good.jsonl").write_text(GOOD_JSONL + "\n", encoding="utf-8")
    run = run_checked([str(named)], tmp_path)
    assert run.report.stored == 1 and run.sources == [f"{named / 'd-good.jsonl'}:1"]
    # The deep line, the entry holding nothing but a bad character, the binary file.
    assert [Path(s).name for s, _ in run.report.reasons] == [
        "a-deep.jsonl:1",
        "b-surrogate.rss",
        "c-binary.json",
    ]


def test_empty_and_entryless_feeds_are_logged_rejections(tmp_path: Path) -> None:
    (tmp_path / "empty.rss").write_text(f"{RSS_HEAD}</channel></rss>", encoding="utf-8")
    (tmp_path / "zero.rss").write_bytes(b"")
    (tmp_path / "atom.xml").write_text(
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title></feed>', encoding="utf-8"
    )
    (tmp_path / "none.jsonl").write_text("\n\n", encoding="utf-8")
    names = ["empty.rss", "zero.rss", "atom.xml", "none.jsonl"]
    run = run_checked([str(tmp_path / n) for n in names], tmp_path)
    assert run.report.rejected == 4 and run.log_rows == 4
    with Store(tmp_path / "store.sqlite3") as store:
        log = store.ingest_log()
    assert [Path(e.source).name for e in log] == names
    assert all(e.outcome == "rejected" for e in log)
    assert log[0].reason == "feed has no entries" and log[2].reason == "feed has no entries"


@pytest.mark.parametrize("nul_free", [False, True])
def test_random_bytes_named_txt_are_not_stored(tmp_path: Path, nul_free: bool) -> None:
    data = random.Random(15).randbytes(20_000)
    if nul_free:
        data = data.replace(b"\x00", b"")
    path = tmp_path / "random.txt"
    path.write_bytes(data)
    run = run_checked([str(path)], tmp_path)
    assert (run.report.stored, run.report.rejected) == (0, 1)
    reason = run.report.reasons[0][1]
    expected = "undecodable" if nul_free else "binary"
    assert expected in reason


def test_text_that_is_text_still_passes() -> None:
    page = "Titre un du jour    Deuxième titre ici    Troisième titre là\n\nFin de l'été à Fès\n"
    for codec in ("utf-8", "latin-1", "cp1252", "utf-16"):
        items = parse_content(page.encode(codec), f"page-{codec}.txt")
        assert all(isinstance(i, RawItem) for i in items), (codec, items)
        assert items[-1].title == "Fin de l'été à Fès"  # type: ignore[union-attr]


def test_directory_reads_known_formats_and_aggregator_txt_only(tmp_path: Path) -> None:
    named = tmp_path / "news"
    named.mkdir()
    (named / "notes.txt").write_text("Penser à relancer l'éditeur.\nAcheter du pain.\n", "utf-8")
    (named / "README.md").write_text("# News folder\n", encoding="utf-8")
    (named / "script.py").write_text("print('hello')\n", encoding="utf-8")
    seed = Path(__file__).resolve().parents[1] / "corpus" / "data" / "sample" / "seed_page.txt"
    (named / "seed.txt").write_bytes(seed.read_bytes())
    run = run_checked([str(named)], tmp_path)
    skipped = {Path(s): why for s, why in run.report.skipped}
    assert set(skipped) == {named / "notes.txt", named / "README.md", named / "script.py"}
    assert "aggregator" in skipped[named / "notes.txt"]
    assert run.report.stored > 0
    assert all(s == str(named / "seed.txt") for s in run.sources)
    # Named directly, a .txt is the operator's choice and is read as what it holds.
    direct = run_checked([str(named / "notes.txt")], tmp_path)
    assert direct.report.stored == 1


def test_symlink_out_of_directory_is_not_read(tmp_path: Path, outside: Path) -> None:
    named = tmp_path / "news"
    named.mkdir()
    (named / "passwd.txt").symlink_to("/etc/passwd")
    (named / "secret.txt").symlink_to(outside)
    (named / "secret.jsonl").symlink_to(outside)
    (named / "up").symlink_to(outside.parent, target_is_directory=True)
    (named / "good.jsonl").write_text(GOOD_JSONL + "\n", encoding="utf-8")
    (named / "inside.jsonl").symlink_to(named / "good.jsonl")
    run = run_checked([str(named)], tmp_path)
    assert_stays_inside(run, named)
    refused = {Path(r.source).name for r in _rejections(run) if "outside" in r.reason}
    assert refused == {"passwd.txt", "secret.txt", "secret.jsonl"}
    assert (named / "up") in {Path(s) for s, _ in run.report.skipped}
    # The link that stays inside is read: the same record twice is stored once.
    assert (run.report.stored, run.report.unchanged) == (1, 1)


def test_fifo_in_directory_does_not_hang(tmp_path: Path) -> None:
    named = tmp_path / "news"
    named.mkdir()
    os.mkfifo(named / "pipe.jsonl")
    (named / "z.jsonl").write_text(GOOD_JSONL + "\n", encoding="utf-8")
    run = run_checked([str(named)], tmp_path)
    assert [r.reason for r in _rejections(run)] == ["not a regular file"]
    assert run.report.stored == 1


def test_missing_named_path_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(GOOD_JSONL + "\n", encoding="utf-8")
    run = run_checked([str(tmp_path / "nope.rss"), str(tmp_path / "a.jsonl")], tmp_path)
    assert run.report.unreadable == [str(tmp_path / "nope.rss")]
    assert run.report.stored == 1


class HostileFetcher:
    """Serves hostile documents by URL, as a server an attacker controls would."""

    PAGES: dict[str, tuple[bytes, str]] = {
        "https://x.example/deep.jsonl": (b"[" * 50_000 + b"]" * 50_000, "application/jsonl"),
        "https://x.example/sur.rss": (
            f"{RSS_HEAD}<item><title>A &#xD800; b</title></item></channel></rss>".encode(),
            "application/rss+xml",
        ),
        "https://x.example/empty.rss": (
            f"{RSS_HEAD}</channel></rss>".encode(),
            "application/rss+xml",
        ),
        "https://x.example/random": (random.Random(15).randbytes(20_000), "text/plain"),
        "https://x.example/surrogate.json": (
            b'[{"title": "\\ud800", "text": "Un texte \\udfff normal."}]',
            "application/json",
        ),
    }

    def fetch(self, url: str) -> FetchResult:
        if url not in self.PAGES:
            raise FetchError(f"HTTP 404 for {url}")
        content, content_type = self.PAGES[url]
        return FetchResult(url, url, content, content_type, None)


def test_url_ingestion_turns_hostile_documents_into_rejections(tmp_path: Path) -> None:
    urls = [*HostileFetcher.PAGES, "https://x.example/missing"]
    with Store(tmp_path / "store.sqlite3") as store:
        report = ingest(store, iter_sources(urls, fetcher=HostileFetcher()))  # type: ignore[arg-type]
    reasons = dict(report.reasons)
    assert "nested too deep" in reasons["https://x.example/deep.jsonl:1"]
    assert reasons["https://x.example/empty.rss"] == "feed has no entries"
    assert "binary" in reasons["https://x.example/random"]
    assert reasons["https://x.example/missing"].startswith("HTTP 404")
    assert report.unreadable == ["https://x.example/missing"]
    assert report.stored == 2  # the surrogate feed entry and the surrogate JSON record


# -- the CLI's exit status -----------------------------------------------------------------


def _cli(home: Path, *args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from akhbar.service.cli import app

    result = CliRunner().invoke(app, ["ingest", *args], env={"AKHBAR_HOME": str(home)})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_cli_exit_status(tmp_path: Path) -> None:
    home = tmp_path / "home"
    good = tmp_path / "good.jsonl"
    good.write_text(GOOD_JSONL + "\n", encoding="utf-8")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("[" * 50_000 + "]" * 50_000 + "\n" + GOOD_JSONL + "\n", encoding="utf-8")

    code, out = _cli(home, str(good))
    assert code == 0 and "stored 1" in out

    code, out = _cli(home, str(bad))  # rejections are reported, not failures
    assert code == 0 and "rejected 1" in out and "nested too deep" in out

    code, out = _cli(home, "--strict", str(bad))
    assert code == 2 and "rejected 1" in out

    code, out = _cli(home, "--strict", str(good))
    assert code == 0

    code, out = _cli(home, str(tmp_path / "does_not_exist.rss"), str(good))
    assert code == 1
    assert "unchanged 1" in out  # the report is printed, the readable path was read
    assert "does_not_exist.rss" in out and "Traceback" not in out
