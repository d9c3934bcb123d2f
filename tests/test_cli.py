"""The command line as a newcomer meets it: help, the data home, `info`, failing fast with
the next command, quiet logs, an index that is kept when nothing changed, eval run folders."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from akhbar.index.local.versions import VersionStore
from akhbar.service import qa as service_qa
from akhbar.service.cli import app
from akhbar.settings import Settings, default_home

COMMANDS = ["ingest", "index", "ask", "serve", "quickstart", "eval", "info", "bench"]


@pytest.fixture(autouse=True)
def _restore_process_state() -> Iterator[None]:
    """The CLI configures logging and two environment variables for its process; a test
    process outlives each invocation, so put them back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    env = {k: os.environ.get(k) for k in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _no_model(_settings: Settings):
    raise AssertionError("this command must not load or build the model")


# --- help --------------------------------------------------------------------------------


def test_help_is_written_for_people() -> None:
    top = _run("--help")
    assert top.exit_code == 0
    assert "AKHBAR_HOME" in top.output and str(default_home()) in top.output
    assert "akhbar info" in top.output and "-v, --verbose" in top.output
    for command in COMMANDS:
        out = _run(command, "--help").output
        # Flags read as flags: no type after them, and no RST markup from docstrings.
        assert "<bool>" not in out, command
        assert "``" not in out, command
        assert "{paths}" not in out, command
    ask = _run("ask", "--help").output
    assert re.search(r"^\s+--json\s+Print", ask, re.M), ask
    assert "--language LANG" in ask and "--since DATE" in ask
    assert "{PATH}..." in _run("ingest", "--help").output
    bench = _run("bench", "--help").output
    assert "--tiers N,N..." in bench and "--work-dir DIR" in bench
    assert "--force" in _run("index", "--help").output
    assert "AKHBAR_HOME/eval/" in _run("eval", "--help").output


# --- home ----------------------------------------------------------------------------------


def test_home_is_the_user_data_dir_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AKHBAR_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    home = Settings().home
    assert home.is_absolute() and home == default_home()
    assert tmp_path not in home.parents
    monkeypatch.setenv("AKHBAR_HOME", str(tmp_path / "elsewhere"))
    assert Settings().home == tmp_path / "elsewhere"


def test_info_on_an_empty_home_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "never-used"
    monkeypatch.setenv("AKHBAR_HOME", str(home))
    monkeypatch.setattr(service_qa, "load_encoder", _no_model)
    result = _run("info")
    assert result.exit_code == 0, result.output
    unwrapped = re.sub(r"\n\s+", "", result.output)  # a long path folds at 80 columns
    assert str(home) in unwrapped and "$AKHBAR_HOME" in result.output
    assert "not built yet" in result.output and "akhbar quickstart" in result.output
    data = json.loads(_run("info", "--json").stdout)
    assert data["home"] == str(home.resolve()) and data["home_from"] == "$AKHBAR_HOME"
    assert data["model"]["built"] is False and data["index"]["current"] is None
    assert data["store"]["articles"] is None
    assert data["libraries"]["python"] and data["libraries"]["faiss-cpu"]
    assert not home.exists()


def test_info_on_an_indexed_home(sample_settings: Settings, monkeypatch) -> None:
    monkeypatch.setenv("AKHBAR_HOME", str(sample_settings.home))
    data = json.loads(_run("info", "--json").stdout)
    current = VersionStore(sample_settings.index_dir).current_name()
    assert data["index"]["current"] == current
    assert data["index"]["counts"]["chunks"] > 0 and data["store"]["articles"] > 0
    assert data["model"]["built"] is True
    assert "FAISS" in data["index"]["backend"]


# --- failing fast --------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["ask", "Quelle capacité à Dakhla ?"], ["serve"]])
def test_no_index_fails_fast_with_the_command_to_run(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cd /tmp && akhbar ask ...` once built a 465 MB model in ./data, then failed."""
    home = tmp_path / "empty-home"
    monkeypatch.setenv("AKHBAR_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(service_qa, "load_encoder", _no_model)
    result = _run(*command)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: no index in") and "akhbar quickstart" in lines[0]
    assert "akhbar index" in lines[0] and "Traceback" not in result.output
    assert not home.exists() and list(tmp_path.iterdir()) == []


def test_index_with_no_articles_says_to_ingest(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AKHBAR_HOME", str(tmp_path / "h"))
    monkeypatch.setattr(service_qa, "load_encoder", _no_model)
    result = _run("index")
    assert result.exit_code == 1 and "akhbar ingest" in result.output
    assert not (tmp_path / "h").exists()


def test_model_build_is_skipped_when_built(settings_for, tmp_path: Path, monkeypatch) -> None:
    from akhbar.service.info import model_needs_build

    settings = settings_for(tmp_path / "h")
    assert not model_needs_build(settings)
    assert model_needs_build(Settings(home=tmp_path / "other"))
    # Another builder version's model would be rebuilt on load.
    stale = tmp_path / "stale" / "models" / "multilingual-e5-small"
    stale.mkdir(parents=True)
    (stale / "akhbar_model.json").write_text(json.dumps({"builder_version": -1}))
    assert model_needs_build(Settings(home=tmp_path / "stale"))
    assert not model_needs_build(Settings(home=tmp_path / "x", model="some/hub-model"))
    monkeypatch.setenv("AKHBAR_HOME", str(settings.home))
    result = _run("model", "build")
    assert result.exit_code == 0 and "model ready" in result.output
    assert "building" not in result.output


# --- logs ------------------------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize(
    ("verbosity", "ours", "theirs"),
    [
        (0, {"WARNING"}, {"WARNING"}),
        (1, {"INFO", "WARNING"}, {"WARNING"}),
        (2, {"DEBUG", "INFO", "WARNING"}, {"WARNING"}),
        (3, {"DEBUG", "INFO", "WARNING"}, {"DEBUG", "INFO", "WARNING"}),
    ],
)
def test_log_levels(verbosity: int, ours: set[str], theirs: set[str]) -> None:
    import bm25s  # noqa: F401 - sets its own logger to DEBUG on import

    from akhbar.service.logs import configure_cli_logging

    handler = _Collect()
    configure_cli_logging(verbosity, handler)
    for name in ("akhbar.index.lexical", "bm25s", "sentence_transformers.x", "httpx"):
        log = logging.getLogger(name)
        log.debug("d")
        log.info("i")
        log.warning("w")
    seen: dict[str, set[str]] = {}
    for r in handler.records:
        seen.setdefault(r.name, set()).add(r.levelname)
    assert seen["akhbar.index.lexical"] == ours
    for lib in ("bm25s", "sentence_transformers.x", "httpx"):
        assert seen[lib] == theirs, lib
    # Configuring again replaces the handler rather than adding a second one.
    configure_cli_logging(verbosity, _Collect())
    assert sum(isinstance(h, _Collect) for h in logging.getLogger().handlers) == 1


def test_ask_prints_no_log_lines_by_default(
    sample_settings: Settings, encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_qa, "load_encoder", lambda _s: encoder)
    monkeypatch.setenv("AKHBAR_HOME", str(sample_settings.home))
    monkeypatch.setenv("AKHBAR_PRECISION", "fp32")
    quiet = _run("ask", "Quelle capacité pour le data center de Dakhla ?", "-k", "2")
    assert quiet.exit_code == 0, quiet.output
    assert "Dakhla" in quiet.stdout and quiet.stderr == ""
    loud = _run("-v", "ask", "Quelle capacité pour le data center de Dakhla ?", "-k", "2")
    assert loud.exit_code == 0 and "serving index version" in loud.stderr


# --- index kept when nothing changed -------------------------------------------------------


def test_index_keeps_the_current_version_when_nothing_changed(
    fresh_home: Path, encoder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from akhbar.pipeline import run_ingest, unchanged_version

    monkeypatch.setenv("AKHBAR_HOME", str(fresh_home))
    monkeypatch.setenv("AKHBAR_PRECISION", "fp32")
    versions = VersionStore(fresh_home / "index")
    before, listed = versions.current_name(), versions.list()
    # Nothing changed: kept, and said so, without loading the model.
    monkeypatch.setattr(service_qa, "load_encoder", _no_model)
    kept = _run("index")
    assert kept.exit_code == 0, kept.output
    assert f"index {before} is up to date" in kept.output
    assert versions.current_name() == before and versions.list() == listed
    # A changed setting is a change.
    assert unchanged_version(Settings(home=fresh_home)) == before
    assert unchanged_version(Settings(home=fresh_home, chunk_chars=500)) is None
    assert unchanged_version(Settings(home=fresh_home, lexical_weight=0.5)) is None
    assert unchanged_version(Settings(home=fresh_home, model="other/model")) is None

    monkeypatch.setattr(service_qa, "load_encoder", lambda _s: encoder)
    forced = _run("index", "--force")
    assert forced.exit_code == 0, forced.output
    after_force = versions.current_name()
    assert after_force != before and "up to date" not in forced.output

    # New articles are a change.
    new = tmp_path / "new.jsonl"
    new.write_text(
        json.dumps(
            {
                "title": "Un nouveau port à Nador",
                "text": "Le port de Nador West Med ouvrira ses premiers quais en 2027, "
                "selon l'agence portuaire, avec une capacité de trois millions de conteneurs.",
                "url": "https://example.org/nador-port",
                "language": "fr",
            },
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    assert run_ingest(Settings(home=fresh_home), [str(new)]).stored == 1
    assert unchanged_version(Settings(home=fresh_home)) is None
    rebuilt = _run("index")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert versions.current_name() not in (before, after_force)


# --- eval run folders ----------------------------------------------------------------------


def test_eval_writes_a_run_folder_under_the_home_by_default(
    fresh_home: Path, encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from akhbar.eval.run import COMMITTED_RESULTS

    committed = COMMITTED_RESULTS / "latest.json"
    committed_before = committed.read_bytes() if committed.exists() else None
    monkeypatch.setattr(service_qa, "load_encoder", lambda _s: encoder)
    monkeypatch.setenv("AKHBAR_HOME", str(fresh_home))
    monkeypatch.setenv("AKHBAR_PRECISION", "fp32")
    result = _run("eval", "--limit", "2", "--no-distractors")
    assert result.exit_code == 0, result.output
    runs = list((fresh_home / "eval").iterdir())
    assert len(runs) == 1 and (runs[0] / "latest.json").is_file()
    assert str(runs[0]) in result.output
    report = json.loads((runs[0] / "latest.json").read_text(encoding="utf-8"))
    assert committed_before == (committed.read_bytes() if committed.exists() else None)
    # The first two questions are answerable: abstention F1 has no data, and says so.
    assert report["eval_set"]["unanswerable"] == 0
    assert report["eval_set"]["retrievers"]["hybrid"]["abstention"]["f1"] is None
    assert "n/a" in result.stdout
    md = (runs[0] / "latest.md").read_text(encoding="utf-8")
    assert "n/a" in md


def test_serve_prints_its_address_once_loaded(sample_settings: Settings) -> None:
    """The address comes after the model and index are loaded, and logs stay quiet."""
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "AKHBAR_HOME": str(sample_settings.home),
        "AKHBAR_PRECISION": "fp32",
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "akhbar.service.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        if f"http://127.0.0.1:{port}/" not in line:
            proc.kill()
            pytest.fail(f"serve printed {line!r}, then: {proc.communicate(timeout=30)}")
        version = VersionStore(sample_settings.index_dir).current_name()
        assert f"index {version}" in line
        deadline = time.monotonic() + 30
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert ready.status_code == 200 and ready.json()["index_version"] == version
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert "INFO" not in stderr and "DEBUG" not in stderr, stderr
