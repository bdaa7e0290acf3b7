"""What a comparison of two large runs costs: ``compare_runs`` of two runs of N results
each (two scores per result), timed on a SQLite file and on Postgres.

Usage (from the repository root)::

    python -m bench.comparison_cost [--results 1000000] [--repeat 3] [--only sqlite|postgres]
                                    [--against OTHER/src]

It uses runstore's public API only, so the same script measures any release (put its
``src`` first on ``PYTHONPATH``): the cost of a release's comparison against another's on
the same machine, the same rows. The runs are written with ``add_results`` (their items
the same, latencies, errors and scores shifted), the tables analyzed, then each
comparison timed ``--repeat`` times after one untimed call; prints the median and the
spread, one Markdown table row per database.

``--against`` measures this checkout's runstore against another's (a release's ``src``
directory, e.g. a ``git worktree`` of it) on the same machine in the same minutes: each
writes the same rows into a database of its own, then the two are timed in turns -- a
call of one, a call of the other, their order swapped each round, each call in a fresh
process after an untimed one -- so that whatever else the machine does falls on both.
Prints each one's median, and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from bench.backends import conninfo
from bench.backends import log
from bench.data import BASE_TIME
from runstore import SqlRunsStorage

DEFAULT_POSTGRES_URL = os.environ.get(
    "RUNSTORE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BATCH = 20_000


def _results(run_id: str, count: int, shift: int) -> Iterator[list[dict[str, Any]]]:
    """A run's results in batches: item ``n``'s latency, error and scores vary with
    ``n + shift``."""
    version = datetime(2026, 11, 1, tzinfo=UTC)
    for start in range(0, count, BATCH):
        batch = []
        for n in range(start, min(start + BATCH, count)):
            varied = n + shift
            started = BASE_TIME + timedelta(milliseconds=10 * n)
            took = 250 + (varied * 37) % 1900
            batch.append(
                {
                    "run_id": run_id,
                    "item_id": f"item-{n:07d}",
                    "item_version": version,
                    "input": {"question": n},
                    "output": "answer",
                    "latency": took + 0.125,
                    "error": "timeout" if varied % 50 == 49 else None,
                    "started_at": started,
                    "completed_at": started + timedelta(milliseconds=took),
                    "scores": {
                        "accuracy": (varied % 101) / 100,
                        "relevance": ((varied * 7) % 1001) / 1000,
                    },
                }
            )
        yield batch


def _seed(storage: SqlRunsStorage, count: int) -> tuple[str, str]:
    runs = []
    for shift in (0, 7):
        run = storage.create_run(
            {
                "dataset_id": "bench",
                "dataset_version": datetime(2026, 11, 1, tzinfo=UTC),
                "target_type": "agent",
                "target_id": "support-bot",
                "total_items": count,
            }
        )
        for batch in _results(run.id, count, shift):
            storage.add_results(batch)
        runs.append(run.id)
    with storage.engine.begin() as connection:  # committed: statistics rolled back are lost
        connection.execute(sa.text("ANALYZE"))
    return runs[0], runs[1]


@contextmanager
def _database(name: str, postgres_url: str) -> Iterator[str]:
    if name == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{Path(directory) / 'comparison.db'}"
        return
    database = f"bench_compare_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo(postgres_url), autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {database}")
    try:
        yield postgres_url.rsplit("/", 1)[0] + f"/{database}"
    finally:
        with psycopg.connect(conninfo(postgres_url), autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def measure(name: str, count: int, repeat: int, postgres_url: str) -> str:
    with _database(name, postgres_url) as url:
        storage = SqlRunsStorage(url)
        storage.init()
        started = time.perf_counter()
        baseline, candidate = _seed(storage, count)
        log(f"{name}: seeded 2 x {count:,} results in {time.perf_counter() - started:.1f} s")
        storage.compare_runs(baseline, candidate)  # caches warm, plans made
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            storage.compare_runs(baseline, candidate)
            times.append(time.perf_counter() - started)
        storage.close()
    median = statistics.median(times)
    return (
        f"| {name} | {count:,} | {median:.3f} s | {min(times):.3f}-{max(times):.3f} s "
        f"| {len(times)} |"
    )


def _in(src: Path, *arguments: str) -> str:
    """This module run with ``src``'s runstore (the benchmark's own modules from here)."""
    root = Path(__file__).resolve().parent.parent
    environment = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{root}"}
    command = [sys.executable, "-m", "bench.comparison_cost", *arguments]
    done = subprocess.run(command, env=environment, check=True, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


def against(name: str, other: Path, count: int, repeat: int, postgres_url: str) -> str:
    """This runstore's comparison against ``other``'s, timed in turns (see above)."""
    ours = Path(__file__).resolve().parent.parent / "src"
    sides = {"this": ours, "other": other.resolve()}
    with _database(name, postgres_url) as this_url, _database(name, postgres_url) as other_url:
        urls = {"this": this_url, "other": other_url}
        runs = {}
        for side, src in sides.items():
            started = time.perf_counter()
            runs[side] = _in(src, "--seed", urls[side], "--results", str(count))
            log(f"{name}: {side} seeded in {time.perf_counter() - started:.1f} s")
        times: dict[str, list[float]] = {"this": [], "other": []}
        for round_ in range(repeat):
            order = ["other", "this"] if round_ % 2 == 0 else ["this", "other"]
            for side in order:
                timed = _in(sides[side], "--time", urls[side], "--runs", runs[side])
                times[side].append(float(timed))
                log(f"{name}: {side} {float(timed):.2f} s")
    this, other_median = statistics.median(times["this"]), statistics.median(times["other"])
    return (
        f"| {name} | {count:,} | {other_median:.2f} s | {this:.2f} s | {this / other_median:.2f} "
        f"| {repeat} each |"
    )


def _seed_only(url: str, count: int) -> None:
    with SqlRunsStorage(url) as storage:
        storage.init()
        print(",".join(_seed(storage, count)))


def _time_only(url: str, runs: str) -> None:
    baseline, candidate = runs.split(",")
    with SqlRunsStorage(url) as storage:
        storage.compare_runs(baseline, candidate)  # caches warm, plans made
        started = time.perf_counter()
        storage.compare_runs(baseline, candidate)
        print(f"{time.perf_counter() - started:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.comparison_cost")
    parser.add_argument("--results", type=int, default=1_000_000, help="results per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--against", type=Path, help="another runstore's src, timed in turns")
    parser.add_argument("--seed", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--time", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--runs", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.seed:
        return _seed_only(arguments.seed, arguments.results)
    if arguments.time:
        return _time_only(arguments.time, arguments.runs)
    names = [arguments.only] if arguments.only else ["sqlite", "postgres"]
    if arguments.against:
        rows = [
            against(name, arguments.against, arguments.results, arguments.repeat,
                    arguments.postgres_url)
            for name in names
        ]  # fmt: skip
        print("| database | results per run | other | this | ratio | calls |")
        print("|---|---:|---:|---:|---:|---:|")
        print("\n".join(rows))
        return None
    rows = [
        measure(name, arguments.results, arguments.repeat, arguments.postgres_url) for name in names
    ]
    print("| database | results per run | compare_runs (median) | range | calls |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
