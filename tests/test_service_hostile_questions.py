"""Hostile questions cannot hurt the server or another user's question.

The server and the CLI run in subprocesses here: a native crash (the question encoder's C
code once overflowed its buffer on NFKC-expanding text) is then a failed test with the
process's exit status, not a dead test run. The server is a fresh process, so its first
questions really are the first (language model not loaded by an earlier test).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from akhbar.service.qa import QUESTION_BATCH_TOKENS, QAEngine, QuestionError
from akhbar.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CRASH = "ﷺ" * 8  # 24 UTF-8 bytes, 144 code points once NFKC-normalised
NORMAL = [
    "Quelle capacité pour le data center de Dakhla ?",
    "¿Por qué se suspendió el tráfico marítimo en Tánger Med?",
    "Which country granted political asylum to Julian Assange?",
    "Combien d'emplois PSA va-t-il supprimer ?",
    "¿Quién ganó las elecciones presidenciales en Egipto?",
    "Qui est Thierry Roland ?",
    "SpaceX Dragon launch",
    "hola, ¿qué pasó en Tánger?",
]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKHBAR_")}
    env.update(
        AKHBAR_HOME=str(home),
        AKHBAR_PRECISION="fp32",
        AKHBAR_RATE_LIMIT_PER_MINUTE="0",
        PYTHONPATH=str(ROOT),
    )
    return env


def _died(code: int) -> bool:
    """Killed by a signal (SIGABRT from malloc, SIGSEGV) or aborted: a crash, not an error."""
    return code < 0 or code in (128 + signal.SIGABRT, 128 + signal.SIGSEGV)


@pytest.fixture(scope="module")
def hostile_home(tmp_path_factory: pytest.TempPathFactory, sample_home: Path) -> Path:
    home = tmp_path_factory.mktemp("hostile") / "home"
    shutil.copytree(sample_home, home, symlinks=True, ignore=shutil.ignore_patterns("*.lock"))
    return home


# -- over HTTP, against a real server process ---------------------------------------------


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(hostile_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "akhbar.service.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT, env=_env(hostile_home), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    try:
        while True:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not get ready"
            time.sleep(0.2)
        yield Server(url, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _post(url: str, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/ask", content=body, headers={"content-type": "application/json"}, timeout=120
    )


def _ask(url: str, question: str) -> httpx.Response:
    # ensure_ascii: a lone surrogate travels as the JSON escape "\ud800", as a client sends it.
    return _post(url, json.dumps({"question": question, "k": 3}).encode())


def _assert_alive(server: Server) -> None:
    assert server.process.poll() is None, server.log.read_text(errors="replace")[-4000:]
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def _assert_error(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "request_id"}
    assert body["error"]["code"] == code
    assert "Traceback" not in resp.text
    return body["error"]["message"]


def _assert_says(message: str, words: list[str]) -> None:
    """Each word (or one of its |-separated alternatives) is in the message, any case."""
    for word in words:
        assert any(w.casefold() in message.casefold() for w in word.split("|")), message


# Runs first (tests in a module run in file order): the server has answered nothing yet.
def test_eight_concurrent_first_questions_after_start_up(server: Server) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda q: _ask(server.url, q), NORMAL))
    assert [r.status_code for r in answers] == [200] * 8, [r.text for r in answers]
    languages = [r.json()["question_language"] for r in answers]
    assert languages == ["fr", "es", "en", "fr", "es", "fr", "en", "es"]
    _assert_alive(server)


def test_a_lone_surrogate_beside_twenty_normal_questions(server: Server) -> None:
    normal = [f"{q} ({i})" for i in range(3) for q in NORMAL][:20]
    bad = "x \ud800"
    asked = normal[:10] + [bad] + normal[10:]
    with ThreadPoolExecutor(max_workers=21) as pool:
        answers = dict(zip(asked, pool.map(lambda q: _ask(server.url, q), asked), strict=True))
    message = _assert_error(answers.pop(bad), 422, "invalid_question")
    _assert_says(message, ["question", "unicode|surrogate"])
    assert {q: r.status_code for q, r in answers.items()} == dict.fromkeys(normal, 200)
    _assert_alive(server)


@pytest.mark.parametrize(
    ("question", "words"),
    [
        # The JSON parser already refuses a lone surrogate; check_question names it for
        # callers that skip the parser (the CLI, below).
        ("x \ud800", ["question", "unicode|surrogate"]),
        ("bad \udfff end", ["question", "unicode|surrogate"]),
        ("a \ufdd0 b", ["U+FDD0", "non-character"]),
        ("a \uffff", ["U+FFFF", "non-character"]),
        ("nul \x00 byte", ["U+0000", "control character"]),
        ("esc \x1b[2J", ["U+001B", "control character"]),
        ("ﷺ" * 112, ["2016", "NFKC", "2000"]),  # 112 characters, 2,016 once normalised
        ("x" * 2001, ["2001", "2000"]),
    ],
)
def test_refused_questions_get_a_clear_422(server: Server, question: str, words: list) -> None:
    message = _assert_error(_ask(server.url, question), 422, "invalid_question")
    _assert_says(message, words)


def test_whitespace_controls_are_text(server: Server) -> None:
    resp = _ask(server.url, "Quelle capacité\tpour le data center\r\nde Dakhla ?")
    assert resp.status_code == 200, resp.text
    assert resp.json()["question_language"] == "fr"


def test_invalid_utf8_in_the_body_is_a_clean_client_error(server: Server) -> None:
    resp = _post(server.url, b'{"question": "caf\xe9 ?"}')  # Latin-1, not UTF-8
    assert 400 <= resp.status_code < 500, resp.text
    assert set(resp.json()) == {"error"}
    _assert_alive(server)


def test_the_crash_payload_does_not_take_the_server_down(server: Server) -> None:
    # Last: if it does crash the server, the other tests above still say what they saw.
    resp = _ask(server.url, CRASH)
    assert not _died(server.process.poll() or 0), server.log.read_text(errors="replace")[-4000:]
    assert resp.status_code in (200, 422), resp.text
    if resp.status_code == 422:
        _assert_error(resp, 422, "invalid_question")
    _assert_alive(server)
    assert _ask(server.url, NORMAL[0]).status_code == 200


# -- the CLI, in a subprocess ---------------------------------------------------------------


def _cli_ask(home: Path, question: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "akhbar.service.cli", "ask", question, "--json"],
        cwd=ROOT, env=_env(home), capture_output=True, text=True, errors="replace", timeout=300,
    )  # fmt: skip


def test_cli_crash_payload(hostile_home: Path) -> None:
    done = _cli_ask(hostile_home, CRASH)
    assert not _died(done.returncode), (done.returncode, done.stderr[-4000:])
    assert "Traceback" not in done.stderr
    if done.returncode == 0:
        assert json.loads(done.stdout)["question"] == CRASH
    else:
        assert done.returncode == 1 and "error:" in done.stderr


def test_cli_refuses_an_undecodable_argument_cleanly(hostile_home: Path) -> None:
    # A stray byte in argv becomes a lone surrogate (surrogateescape) in the question.
    done = _cli_ask(hostile_home, "Qui est \udcff ?")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "U+DCFF" in done.stderr and "lone surrogate" in done.stderr
    assert "Traceback" not in done.stderr


# -- long questions beside a short one (the engine's own path, a gated encoder) ---------------


class GatedCountingEncoder:
    """The session's encoder behind a gate, counting tokens as one per 4 characters up to
    the encoder's 64-token cap (what the question encoder's own count reports), and
    recording each batch. Texts reach the real model cut to that cap, as the question
    encoder cuts them, so the long questions do not make this test slow."""

    CAP = 64

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str):
        return getattr(self.encoder, name)

    def count_query_tokens(self, text: str) -> int:
        return min(self.CAP, len(text) // 4 + 1)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not self.calls:
            self.entered.set()
            self.release.wait(timeout=60)
        self.calls.append(list(texts))
        return self.encoder.encode_queries([t[: self.CAP * 4] for t in texts])


def test_long_questions_do_not_hold_a_short_one(sample_settings: Settings, encoder) -> None:
    gated = GatedCountingEncoder(encoder)
    engine = QAEngine(sample_settings, gated)  # type: ignore[arg-type]
    accents = ["a" + "\u0301" * 1990 + f" {i}" for i in range(8)]
    prose = [("La conférence de presse du gouvernement a duré longtemps. " * 33)[:1990] + f" {i}"
             for i in range(12)]  # fmt: skip
    longs = accents + prose
    short = NORMAL[0]
    try:
        with ThreadPoolExecutor(max_workers=len(longs) + 2) as pool:
            first = pool.submit(engine.ask, "Qui est Thierry Roland ?", 3)
            assert gated.entered.wait(timeout=60)
            long_answers = [pool.submit(engine.ask, q, 3) for q in longs]
            # The short one arrives last, once every long one waits.
            deadline = time.monotonic() + 60
            while engine._batcher._queue.qsize() < len(longs):
                assert time.monotonic() < deadline
                time.sleep(0.01)
            short_answer = pool.submit(engine.ask, short, 3)
            while engine._batcher._queue.qsize() < len(longs) + 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            gated.release.set()
            assert first.result(timeout=120).hits
            for f in long_answers:
                f.result(timeout=120)  # answered, if not usefully
            answer = short_answer.result(timeout=120)
    finally:
        engine.close()
    assert answer.question_language == "fr"
    assert any("500 MW" in h.passage.chunk.text for h in answer.hits)
    batches = gated.calls[1:]
    # Twenty long questions are more than one batch's token budget: they are spread out,
    # and the short question goes in the first batch, not behind all of them.
    assert len(batches) >= 2
    assert short in batches[0]
    # As check_question hands them on: NFKC, whitespace collapsed.
    asked_long = sorted(" ".join(unicodedata.normalize("NFKC", q).split()) for q in longs)
    assert sorted(q for b in batches for q in b if q != short) == asked_long
    for b in batches:
        assert len(b) * max(map(gated.count_query_tokens, b)) <= QUESTION_BATCH_TOKENS


def test_check_question_refuses_before_anything_reads_the_question(engine: QAEngine) -> None:
    before = engine._batcher.questions
    for bad in ("x \ud800", "\ufffe", "a\x07", "ﷺ" * 112):
        with pytest.raises(QuestionError):
            engine.ask(bad)
    assert engine._batcher.questions == before
    assert engine.check_question("  Qui est\tThierry  Roland ?\n") == "Qui est Thierry Roland ?"
    # What goes on is NFKC already: no tokenizer can make it longer by normalising it.
    crash = engine.check_question(CRASH)
    assert crash == unicodedata.normalize("NFKC", CRASH) and len(crash) == 144
    assert engine.check_question("ﬁn\u00a0du match ①") == "fin du match 1"
