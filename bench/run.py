"""runstore against the raw drivers on a SQLite file and on Postgres, and a peer store.

Usage (from the repository root)::

    python -m bench.run [--quick] [--only sqlite|postgres] [--output docs/benchmarks.md]
                        [--postgres-url URL] [--show-sql]
    python -m bench.run --huge [--output docs/benchmarks-huge.md] [--postgres-url URL]

Prints the results table and writes the document -- method, machine, results, peer,
targets, analysis -- to ``--output``. ``--huge`` instead follows one run of 10,000,000
results on Postgres through its life (:mod:`bench.huge`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC
from datetime import datetime
from pathlib import Path

import psycopg

from bench import huge
from bench.backends import Settings
from bench.backends import conninfo
from bench.backends import log
from bench.backends import open_backend
from bench.cases import add_result
from bench.cases import add_results
from bench.cases import async_writes
from bench.cases import compare
from bench.cases import export
from bench.cases import iterate
from bench.cases import kept
from bench.cases import list_filters
from bench.cases import list_pages
from bench.cases import list_sizes
from bench.cases import peer
from bench.cases import preparation
from bench.cases import prune
from bench.cases import replace
from bench.cases import runs
from bench.cases import summarize
from bench.cases import update_run
from bench.cases import viewer
from bench.machine import describe_machine
from bench.report import Measurement
from bench.report import render_document
from bench.report import render_table

DEFAULT_POSTGRES_URL = os.environ.get(
    "RUNSTORE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def run_backend(name: str, settings: Settings, url: str, show_sql: bool) -> list[Measurement]:
    with open_backend(name, settings, url, show_sql) as b:
        log(f"{b.label}: seeding")
        list_run, iteration_run = b.seed(settings.list_rows), b.seed(settings.iteration_rows)
        log(f"{b.label}: reads")  # first, on freshly loaded tables
        runs.measure(b)
        list_pages.measure(b, list_run, settings.list_rows)
        list_filters.measure(b, iteration_run, settings.iteration_rows)
        list_sizes.measure(b, iteration_run, settings.iteration_rows)
        log(f"{b.label}: iteration")
        iterate.measure(b, iteration_run, settings.iteration_rows)
        export.measure(b)
        log(f"{b.label}: answers")  # the large runs get their scores now, after the reads
        b.seed_scores(list_run)
        if settings.summary_rows == settings.iteration_rows:
            b.seed_scores(iteration_run)
            scored, scored_rows = iteration_run, settings.iteration_rows
        else:
            scored, scored_rows = list_run, settings.list_rows
        summarize.measure(b, scored, scored_rows)
        compare.measure(b, list_run, settings.list_rows)
        log(f"{b.label}: viewer")  # the scored run's pages, through the web viewer
        viewer.measure(b, scored, scored_rows)
        log(f"{b.label}: kept summaries")  # the scored run, which the viewer case finished
        kept.measure(b, scored, scored_rows)
        log(f"{b.label}: writes")
        add_result.measure(b)
        add_results.measure(b)
        replace.measure(b)
        update_run.measure(b)
        preparation.measure(b, list_run)
        async_writes.measure(b)
        log(f"{b.label}: retention")
        prune.measure(b)
        return b.measurements


def postgres_facts(url: str) -> dict[str, str]:
    """The server's version and the settings that move write timings."""
    with psycopg.connect(conninfo(url)) as connection:
        names = ("server_version", "shared_buffers", "fsync", "synchronous_commit")
        return {n: str(connection.execute(f"SHOW {n}").fetchone()[0]) for n in names}  # type: ignore[index]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and samples, no peer")
    parser.add_argument("--only", choices=("sqlite", "postgres"), help="one backend only")
    parser.add_argument(
        "--huge", action="store_true", help="a run of 10,000,000 results on Postgres instead"
    )
    parser.add_argument(
        "--output",
        help="the markdown to write (default: docs/benchmarks.md, with --huge "
        "docs/benchmarks-huge.md)",
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--show-sql", action="store_true", help="print both sides' statements")
    arguments = parser.parse_args()
    if arguments.huge:
        if arguments.quick or arguments.show_sql or arguments.only == "sqlite":
            parser.error("--huge runs on Postgres, with --output and --postgres-url only")
        machine = describe_machine(postgres_facts(arguments.postgres_url))
        output = Path(arguments.output or "docs/benchmarks-huge.md")
        return huge.main(arguments.postgres_url, output, machine)
    settings = Settings.of(quick=arguments.quick)
    started, date = time.perf_counter(), datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    backends = [arguments.only] if arguments.only else ["sqlite", "postgres"]
    facts = postgres_facts(arguments.postgres_url) if "postgres" in backends else None
    rows = [
        row
        for name in backends
        for row in run_backend(name, settings, arguments.postgres_url, arguments.show_sql)
    ]
    operations = list(dict.fromkeys(row.operation for row in rows))  # in the order measured
    rows.sort(key=lambda row: (operations.index(row.operation), row.backend == "Postgres"))
    peer_results = peer.section(settings, arguments.postgres_url, rows)
    elapsed = time.perf_counter() - started
    duration = f"{elapsed / 60:.1f} min" if elapsed >= 90 else f"{elapsed:.0f} s"
    print(render_table(rows))
    log(f"done in {duration}")
    command = "python -m bench.run" + " --quick" * settings.quick
    command += f" --only {arguments.only}" if arguments.only else ""
    mode = "quick mode" if settings.quick else "full mode"
    document = render_document(
        rows,
        describe_machine(facts),
        heading=f"Measured {date}, {mode}, with `{command}`; the whole run took {duration}.",
        peer=peer_results,
        list_rows=settings.list_rows,
        iteration_rows=settings.iteration_rows,
        batch_rows=settings.batch_rows,
        small_rows=settings.small_rows,
        summary_rows=settings.summary_rows,
        prune_runs=settings.prune_runs,
        prune_results=settings.prune_results,
        trend_runs=settings.trend_runs,
        trend_results=settings.trend_results,
    )
    output = Path(arguments.output or "docs/benchmarks.md")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(document)
    log(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
