"""compare_runs of two runs of the same items, with two scores on every result.

The candidate run has the baseline's items with other latencies, errors and so scores
(:func:`bench.data.result_fields` with a shift). The raw side is one hand-written query
that computes the same figures: per run and item the mean latency and whether any
repetition failed, per run, item and score name the mean score; then, joined by item,
the items in both and in each run, errors fixed and introduced, the mean latency
difference, and per score name both means, their difference and how many items improved
or regressed. Before timing, both sides' figures are checked to agree.
"""

from __future__ import annotations

import json
import math
from typing import Any

from bench.backends import Backend
from bench.harness import fixed
from bench.report import Target
from runstore import RunComparison
from runstore.tables import results_table
from runstore.tables import scores_table

R, S = results_table.name, scores_table.name
SHIFT = 7


def _sql(postgres: bool) -> str:
    def param(name: str) -> str:
        return f"%({name})s" if postgres else f":{name}"

    def items(side: str) -> str:
        return f"""{side} AS (
  SELECT "itemId" AS item, avg(latency) AS latency,
         max(CASE WHEN error IS NOT NULL THEN 1 ELSE 0 END) AS failed
  FROM {R} WHERE "runId" = {param(side)} GROUP BY "itemId")"""

    def scores(side: str) -> str:
        return f"""{side}_scores AS (
  SELECT r."itemId" AS item, s.name, avg(s.value) AS value
  FROM {S} AS s JOIN {R} AS r ON r.id = s."resultId"
  WHERE s."runId" = {param(side)} GROUP BY r."itemId", s.name)"""

    array, group = (
        ("json_build_array", "json_agg") if postgres else ("json_array", "json_group_array")
    )
    return f"""
WITH {items("baseline")}, {items("candidate")},
{scores("baseline")}, {scores("candidate")},
per_score AS (
  SELECT b.name, count(*) AS n, avg(b.value) AS before, avg(c.value) AS after,
         avg(c.value - b.value) AS delta,
         count(*) FILTER (WHERE c.value > b.value) AS improved,
         count(*) FILTER (WHERE c.value < b.value) AS regressed
  FROM baseline_scores AS b JOIN candidate_scores AS c ON c.item = b.item AND c.name = b.name
  GROUP BY b.name)
SELECT count(*),
       count(*) FILTER (WHERE b.failed = 1 AND c.failed = 0),
       count(*) FILTER (WHERE b.failed = 0 AND c.failed = 1),
       avg(c.latency - b.latency),
       (SELECT count(*) FROM baseline), (SELECT count(*) FROM candidate),
       (SELECT {group}({array}(name, n, before, after, delta, improved, regressed))
        FROM per_score)
FROM baseline AS b JOIN candidate AS c ON c.item = b.item
"""


def _figures(row: Any) -> tuple[Any, ...]:
    *pairs, per_score = row
    scores = json.loads(per_score) if isinstance(per_score, str) else per_score
    return (*pairs, {name: tuple(rest) for name, *rest in scores or []})


def _check(comparison: RunComparison, figures: tuple[Any, ...]) -> None:
    paired, fixed_, introduced, delta, baseline_items, candidate_items, per_name = figures
    assert comparison.items_in_both == paired, (comparison, figures)
    assert (comparison.errors_fixed, comparison.errors_introduced) == (fixed_, introduced)
    assert comparison.only_in_baseline == baseline_items - paired
    assert comparison.only_in_candidate == candidate_items - paired
    assert comparison.latency_mean_delta is not None
    assert math.isclose(comparison.latency_mean_delta, float(delta), rel_tol=1e-9, abs_tol=1e-9)
    assert comparison.scores.keys() == per_name.keys(), (comparison.scores, per_name)
    for name, score in comparison.scores.items():
        n, before, after, mean_delta, improved, regressed = per_name[name]
        assert (score.paired, score.improved, score.regressed) == (n, improved, regressed)
        pairs = zip(
            (score.baseline_mean, score.candidate_mean, score.mean_delta),
            (before, after, mean_delta),
            strict=True,
        )
        assert all(math.isclose(a, float(b), rel_tol=1e-9, abs_tol=1e-12) for a, b in pairs)


def measure(b: Backend, baseline: str, rows: int) -> None:
    """``baseline``: a run of ``rows`` results with scores; the candidate is seeded here."""
    candidate = b.seed(rows, shift=SHIFT)
    b.seed_scores(candidate)
    sql = _sql(b.postgres)
    b.show_raw(sql)
    runs = {"baseline": baseline, "candidate": candidate}

    def raw() -> tuple[Any, ...]:
        return _figures(b.raw.execute(sql, runs).fetchone())

    comparison, _ = b.caught("compare_runs", lambda s: s.compare_runs(baseline, candidate))
    assert comparison.items_in_both == rows, comparison
    assert comparison.errors_introduced > 0, comparison
    _check(comparison, raw())
    b.measure(
        f"compare_runs, two runs of {rows:,} results with 2 scores each",
        fixed(lambda: b.storage.compare_runs(baseline, candidate)),
        fixed(raw),
        unit="ms",
        samples=b.settings.answer_samples,
        warmup=1,
        rounds=2,
        target=Target("ratio", 1.5) if b.postgres else None,
        details="the raw side: one hand-written join computing the same figures",
    )
