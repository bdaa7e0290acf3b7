"""summarize_run over the large run, with two scores on every result.

The raw side is one hand-written query that computes the same figures: counts, failures,
latency mean, min, max and the 50/90/95/99th continuous percentiles, and per score name
its count, mean, min, max and median. On Postgres it uses ``percentile_cont`` (one
ordered-set aggregate for the four latency percentiles); SQLite has none, so it reads the
values around each latency rank by ``LIMIT 1 OFFSET`` from the latency index and ranks the
scores with window functions, interpolating as ``percentile_cont`` does. Before timing,
both sides' figures are checked to agree.

Peak memory: each side's call in a fresh process (see :mod:`bench.answer`), its
``ru_maxrss`` after the call less before it: what the call added to the process's peak.
"""

from __future__ import annotations

import json
import math
import statistics
from typing import Any

from bench import answer
from bench.backends import Backend
from bench.cases.iterate import in_child
from bench.harness import fixed
from bench.report import Measurement
from bench.report import Target
from runstore import RunSummary
from runstore.engine import DEFAULT_SQLITE_PRAGMAS
from runstore.figures import PERCENTILES
from runstore.tables import results_table
from runstore.tables import scores_table

R, S = results_table.name, scores_table.name

POSTGRES = f"""
SELECT count(*), count(*) FILTER (WHERE error IS NOT NULL),
       avg(latency), min(latency), max(latency),
       percentile_cont(ARRAY[{", ".join(map(str, PERCENTILES))}]) WITHIN GROUP (ORDER BY latency),
       (SELECT json_agg(json_build_array(name, n, mean, lo, hi, p50) ORDER BY name)
        FROM (SELECT name, count(*) AS n, avg(value) AS mean, min(value) AS lo,
                     max(value) AS hi, percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS p50
              FROM {S} WHERE "runId" = %(run)s GROUP BY name) AS per_score)
FROM {R} WHERE "runId" = %(run)s
"""


def _sqlite_percentile(p: float) -> str:
    position = f"({p} * (n - 1))"
    lower = f"CAST({position} AS INTEGER)"

    def at(offset: str) -> str:
        return (
            f'(SELECT latency FROM {R} WHERE "runId" = :run ORDER BY latency '
            f"LIMIT 1 OFFSET (SELECT {offset} FROM totals))"
        )

    below, above = at(lower), at(f"min({lower} + 1, n - 1)")
    return f"{below} + ({position} - {lower}) * ({above} - {below})"


SQLITE = f"""
WITH totals AS (
  SELECT count(*) AS n, count(*) FILTER (WHERE error IS NOT NULL) AS failed,
         avg(latency) AS mean, min(latency) AS lo, max(latency) AS hi
  FROM {R} WHERE "runId" = :run),
ranked AS (
  SELECT name, value, row_number() OVER (PARTITION BY name ORDER BY value) - 1 AS rk,
         count(*) OVER (PARTITION BY name) AS n
  FROM {S} WHERE "runId" = :run),
per_score AS (
  SELECT name, max(n) AS n, avg(value) AS mean, min(value) AS lo, max(value) AS hi,
         max(value) FILTER (WHERE rk = CAST(0.5 * (n - 1) AS INTEGER)) AS below,
         max(value) FILTER (WHERE rk = min(CAST(0.5 * (n - 1) AS INTEGER) + 1, n - 1)) AS above,
         0.5 * (max(n) - 1) - CAST(0.5 * (max(n) - 1) AS INTEGER) AS weight
  FROM ranked GROUP BY name)
SELECT n, failed, mean, lo, hi,
       {", ".join(f"({_sqlite_percentile(p)})" for p in PERCENTILES)},
       (SELECT json_group_array(json_array(name, n, mean, lo, hi,
                                           below + weight * (above - below)))
        FROM per_score)
FROM totals
"""


def _figures(row: Any, postgres: bool) -> tuple[Any, ...]:
    """(results, failed, mean, min, max, percentiles, {name: (count, mean, min, max, p50)})"""
    count, failed, mean, low, high = row[:5]
    percentiles = list(row[5]) if postgres else list(row[5:9])
    scores = row[-1] if postgres else json.loads(row[-1])
    per_name = {name: tuple(rest) for name, *rest in scores or []}
    return count, failed, mean, low, high, percentiles, per_name


def _check(summary: RunSummary, figures: tuple[Any, ...]) -> None:
    count, failed, mean, low, high, percentiles, per_name = figures
    assert (summary.results, summary.failed) == (count, failed), (summary, figures)
    latency = summary.latency
    ours = [latency.mean, latency.min, latency.max, latency.p50, latency.p90, latency.p95]
    ours.append(latency.p99)
    theirs = [mean, low, high, *percentiles]
    for a, b in zip(ours, theirs, strict=True):
        assert a is not None
        assert math.isclose(a, float(b), rel_tol=1e-9), (ours, theirs)
    assert summary.scores.keys() == per_name.keys(), (summary.scores, per_name)
    for name, score in summary.scores.items():
        n, score_mean, score_min, score_max, p50 = per_name[name]
        assert score.count == n, (name, score, per_name[name])
        pairs = zip(
            (score.mean, score.min, score.max, score.p50),
            (score_mean, score_min, score_max, p50),
            strict=True,
        )
        assert all(math.isclose(a, float(b), rel_tol=1e-9) for a, b in pairs), (name, score)


def operation(rows: int) -> str:
    """The row of this case that times ``summarize_run`` computing a summary."""
    return f"summarize_run, {rows:,} results with 2 scores each"


def raw_figures(b: Backend, run_id: str) -> tuple[Any, ...]:
    """The hand-written query's figures of a run (see :func:`_figures`)."""
    row = b.raw.execute(POSTGRES if b.postgres else SQLITE, {"run": run_id}).fetchone()
    return _figures(row, b.postgres)


def measure(b: Backend, run_id: str, rows: int) -> None:
    sql = POSTGRES if b.postgres else SQLITE
    b.show_raw(sql)

    summary, _ = b.caught("summarize_run", lambda s: s.summarize_run(run_id))
    assert summary.results == rows, summary
    assert len(summary.scores) == 2, summary
    _check(summary, raw_figures(b, run_id))
    b.measure(
        operation(rows),
        fixed(lambda: b.storage.summarize_run(run_id)),
        fixed(lambda: raw_figures(b, run_id)),
        unit="s",
        samples=b.settings.answer_samples,
        warmup=1,
        rounds=2,
        target=Target("ratio", 1.5) if b.postgres else None,
        details="the raw side: one hand-written query computing the same figures",
    )

    spec: answer.Spec = {
        "side": "raw",
        "dialect": b.dialect,
        "target": b.raw_target,
        "run_id": run_id,
        "sql": sql,
        "pragmas": [f"PRAGMA {name}={value}" for name, value in DEFAULT_SQLITE_PRAGMAS.items()],
    }
    sides = {"runstore": {**spec, "side": "runstore", "target": b.url}, "raw": spec}
    reports: dict[str, list[dict[str, float]]] = {"runstore": [], "raw": []}
    for _ in range(b.settings.iteration_repeats):
        for side, into in reports.items():
            into.append(in_child(sides[side], "bench.answer"))

    def median(side: str, key: str) -> float:
        return statistics.median(report[key] for report in reports[side])

    def growth(side: str) -> float:
        return statistics.median(r["peak_rss"] - r["baseline_rss"] for r in reports[side])

    before = {side: median(side, "baseline_rss") / 2**20 for side in reports}
    b.add(
        Measurement(
            f"summarize_run, {rows:,} results: peak RSS growth",
            b.label,
            "MB",
            growth("runstore"),
            growth("raw"),
            Target("below", 50),
            f"{b.settings.iteration_repeats} call(s) per side, each in a fresh process; peak "
            f"RSS before the call: runstore {before['runstore']:.0f} MB, raw {before['raw']:.0f} "
            f"MB; the call itself took {median('runstore', 'seconds'):.2f} s (runstore) and "
            f"{median('raw', 'seconds'):.2f} s (raw) there",
        )
    )
