"""Answers: what a run's results add up to, how they are spread, and how two runs
compare -- computed where the results are stored, scoped to the runs asked about and
served by their indexes.

Postgres summarizes a run in one statement, with ``percentile_cont``; SQLite, which has
none, reads the two values around each percentile's rank from an index, in one snapshot,
and interpolates them as Postgres does (:mod:`runstore.figures`). Means never overflow
(:func:`runstore.sql.compiler.mean`). A run's histograms are one statement on both: each
value's bin (:func:`runstore.sql.compiler.bucket`), counted by name and bin. Comparisons
pair two runs' results by item, an item's repetitions averaged;
:func:`iter_item_comparisons` walks both runs' results in item order. Statements first;
the operations below them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from runstore import calls
from runstore.figures import PERCENTILES
from runstore.figures import Sided
from runstore.figures import compared
from runstore.figures import exact_total
from runstore.figures import histogram
from runstore.figures import interpolate
from runstore.figures import pair_items
from runstore.figures import paired_delta
from runstore.figures import rank
from runstore.figures import split_scales
from runstore.figures import usage_summary
from runstore.models import ItemComparison
from runstore.models import LatencySummary
from runstore.models import PairedDelta
from runstore.models import RunComparison
from runstore.models import RunHistograms
from runstore.models import RunSummary
from runstore.models import ScoreComparison
from runstore.models import ScoreSummary
from runstore.models import UsageSummary
from runstore.plans import AnyQuery
from runstore.plans import Emit
from runstore.plans import Mode
from runstore.plans import Query
from runstore.plans import Steps
from runstore.plans import Walk
from runstore.plans import execute
from runstore.plans import one
from runstore.plans import operation
from runstore.plans import reading
from runstore.plans import rows
from runstore.plans import run
from runstore.plans import scalars
from runstore.sql.compiler import bucket
from runstore.sql.compiler import decimal_sum
from runstore.sql.compiler import half
from runstore.sql.compiler import mean
from runstore.sql.compiler import scaled_square
from runstore.sql.compiler import scores_of
from runstore.sql.compiler import shifted
from runstore.sql.compiler import split_sums
from runstore.sql.database import Database
from runstore.sql.database import Plans
from runstore.sql.database import Walks
from runstore.sql.results import scored_results
from runstore.sql.runs import require_runs
from runstore.tables import result_columns
from runstore.tables import results_table
from runstore.tables import score_columns
from runstore.tables import scores_table

__all__ = ["PLANS", "WALKS", "computed_summary"]

_results = result_columns
_scores = score_columns

# -- statements --------------------------------------------------------------------------


def _failed() -> Any:
    return sa.func.count().filter(_results.error.is_not(None))


def _usage(cost: sa.ColumnElement[Any]) -> list[sa.ColumnElement[Any]]:
    """A run's input and output tokens (sums, NULL for none), how many results have a
    cost, and ``cost`` -- the costs' sum, as the database sums them exactly."""
    return [
        sa.func.sum(_results.input_tokens),
        sa.func.sum(_results.output_tokens),
        sa.func.count(_results.cost),
        cost,
    ]


def _summary_postgres() -> sa.CompoundSelect[Any]:
    run_id: sa.BindParameter[str] = sa.bindparam("run_id")
    latency = sa.select(
        sa.null().label("name"),
        sa.func.count(),
        _failed(),
        mean(_results.latency),
        sa.func.min(_results.latency),
        sa.func.max(_results.latency),
        *[sa.func.percentile_cont(p).within_group(_results.latency) for p in PERCENTILES],
        *_usage(decimal_sum(_results.cost)),
    ).where(_results.run_id == run_id)
    scores = (
        sa.select(
            _scores.name,
            sa.func.count(),
            sa.null(),
            mean(_scores.value),
            sa.func.min(_scores.value),
            sa.func.max(_scores.value),
            sa.func.percentile_cont(0.5).within_group(_scores.value),
            *[sa.null()] * 7,
        )
        .where(_scores.run_id == run_id)
        .group_by(_scores.name)
    )
    return sa.union_all(latency, scores)


_SUMMARY = _summary_postgres()


def summary(run_id: str) -> AnyQuery:
    """Postgres: a run's whole summary in one statement -- a row for the latencies (name
    NULL; count, failed, mean, min, max, p50, p90, p95, p99; then the usage: input and
    output tokens, results with a cost, the costs' exact sum) and one per score name
    (count, NULL, mean, min, max, p50) -- computed by ``percentile_cont``."""
    return Query(_SUMMARY, {"run_id": run_id})


_LATENCY_AGGREGATES = sa.select(
    sa.func.count(),
    _failed(),
    mean(_results.latency),
    sa.func.min(_results.latency),
    sa.func.max(_results.latency),
    *_usage(sa.func.max(_results.cost)),
).where(_results.run_id == sa.bindparam("run_id"))


def latency_aggregates(run_id: str) -> AnyQuery:
    """A run's result count, failed count, and mean, min and max latency; then input and
    output tokens (sums, NULL for none), how many results have a cost, and the greatest
    cost (what :func:`cost_parts` needs)."""
    return Query(_LATENCY_AGGREGATES, {"run_id": run_id})


_COST_PARTS = sa.select(*split_sums(_results.cost)).where(
    _results.run_id == sa.bindparam("run_id"), _results.cost.is_not(None)
)


def cost_parts(run_id: str, priced: int, largest: float) -> tuple[AnyQuery, float]:
    """SQLite: the three partial sums of a run's costs that add up to their exact total
    (see :func:`runstore.figures.split_scales`), and the factor to undo -- given how many
    results have a cost, and the greatest."""
    first, second, factor = split_scales(priced, largest)
    values = {"run_id": run_id, "split_1": first, "split_2": second, "split_factor": factor}
    return Query(_COST_PARTS, values), factor


_LATENCY_AT = (
    sa.select(_results.latency)
    .where(_results.run_id == sa.bindparam("run_id"))
    .order_by(_results.latency)
    .limit(2)
    .offset(sa.bindparam("rank", type_=sa.BigInteger()))
)


def latency_at(run_id: str, rank: int) -> Query[float]:
    """The run's latencies at ranks ``rank`` and ``rank + 1`` in ascending order, read
    from the latency index (for percentiles where the database has no
    ``percentile_cont``)."""
    return reading(_LATENCY_AT, {"run_id": run_id, "rank": rank})


_SCORE_AGGREGATES = (
    sa.select(
        _scores.name,
        sa.func.count(),
        mean(_scores.value),
        sa.func.min(_scores.value),
        sa.func.max(_scores.value),
    )
    .where(_scores.run_id == sa.bindparam("run_id"))
    .group_by(_scores.name)
)


def score_aggregates(run_id: str) -> Query[str, int, float, float, float]:
    """Per score name of a run: count, mean, min and max."""
    return reading(_SCORE_AGGREGATES, {"run_id": run_id})


_SCORE_VALUE_AT = (
    sa.select(_scores.value)
    .where(_scores.run_id == sa.bindparam("run_id"), _scores.name == sa.bindparam("name"))
    .order_by(_scores.value)
    .limit(2)
    .offset(sa.bindparam("rank", type_=sa.BigInteger()))
)


def score_value_at(run_id: str, name: str, rank: int) -> Query[float]:
    """A score's values at ranks ``rank`` and ``rank + 1``, from the score index."""
    return reading(_SCORE_VALUE_AT, {"run_id": run_id, "name": name, "rank": rank})


LATENCY, COST, SCORE = "l", "c", "s:"
"""What a row of :func:`histogram_bins` counts: the latencies, the costs, or (followed
by its name) a score."""


def _histogram_bins() -> sa.Select[Any]:
    run_id: sa.BindParameter[str] = sa.bindparam("run_id")
    latency = (
        sa.select(
            sa.func.min(_results.latency).label("low"), sa.func.max(_results.latency).label("high")
        )
        .where(_results.run_id == run_id)
        .cte("latency_range")
    )
    cost = (
        sa.select(sa.func.min(_results.cost).label("low"), sa.func.max(_results.cost).label("high"))
        .where(_results.run_id == run_id)
        .cte("cost_range")
    )
    scores = (
        sa.select(
            _scores.name,
            sa.func.min(_scores.value).label("low"),
            sa.func.max(_scores.value).label("high"),
        )
        .where(_scores.run_id == run_id)
        .group_by(_scores.name)
        .cte("score_ranges")
    )

    def ranged(name: Any, value: Any, extent: sa.CTE) -> sa.Select[Any]:
        low, high = extent.c.low, extent.c.high
        return sa.select(
            name.label("name"),
            low,
            high,
            (half(value) - half(low)).label("offset"),
            (half(high) - half(low)).label("span"),
        )

    text = sa.Text()
    values = sa.union_all(
        ranged(sa.literal(LATENCY, text), _results.latency, latency)
        .select_from(results_table.join(latency, sa.true()))
        .where(_results.run_id == run_id),
        ranged(sa.literal(COST, text), _results.cost, cost)
        .select_from(results_table.join(cost, sa.true()))
        .where(_results.run_id == run_id, _results.cost.is_not(None)),
        ranged(sa.literal(SCORE, text) + _scores.name, _scores.value, scores)
        .select_from(scores_table.join(scores, scores.c.name == _scores.name))
        .where(_scores.run_id == run_id),
    ).subquery("ranged")
    bins: sa.BindParameter[float] = sa.bindparam("bins", type_=sa.Double())
    binned = sa.select(
        values.c.name,
        values.c.low,
        values.c.high,
        bucket(values.c.offset, values.c.span, bins).label("bin"),
    ).subquery("binned")
    every = list(binned.c)
    return sa.select(*every, sa.func.count()).group_by(*every)


_HISTOGRAM_BINS = _histogram_bins()


def histogram_bins(run_id: str, bins: int) -> Query[str, float, float, int, int]:
    """A run's values counted by bin: for the latencies (named :data:`LATENCY`), the costs
    (:data:`COST`) and each score (:data:`SCORE` and its name), the least and greatest
    value and, per bin that holds any (see :func:`~runstore.sql.compiler.bucket`; the
    values at the greatest are at ``bins``), how many -- the latencies' and scores'
    ranges read first from the (run, latency) and (run, name, value) indexes, then each
    value's bin."""
    return Query(_HISTOGRAM_BINS, {"run_id": run_id, "bins": float(bins)})


def _item_tokens() -> sa.ColumnElement[float | None]:
    """The mean of a group's results' input plus output tokens (one it lacks counts 0)
    over the results that have either (NULL: none has): their sum, an exact integer (the
    two columns' sums), over their count -- what ``mean`` of them as doubles gives, with
    none of its work per row."""
    tokens: sa.ColumnElement[float] = sa.cast(
        sa.func.coalesce(sa.func.sum(_results.input_tokens), 0)
        + sa.func.coalesce(sa.func.sum(_results.output_tokens), 0),
        sa.Double(),
    )
    given = sa.func.count(sa.func.coalesce(_results.input_tokens, _results.output_tokens))
    counted: sa.ColumnElement[float] = sa.cast(sa.func.nullif(given, 0), sa.Double())
    return sa.type_coerce(tokens / counted, sa.Double())


def _result_tokens() -> sa.ColumnElement[float | None]:
    """:func:`_item_tokens` of one result: its input plus output tokens (one it lacks
    counts 0) as a double; NULL where it has neither."""
    neither = sa.and_(_results.input_tokens.is_(None), _results.output_tokens.is_(None))
    tokens = sa.func.coalesce(_results.input_tokens, 0) + sa.func.coalesce(
        _results.output_tokens, 0
    )
    return sa.case((neither, sa.null()), else_=sa.cast(tokens, sa.Double()))


SHIFT_ITEMS = 1000
"""The baseline's first items (in item order) whose paired differences estimate their
mean, from which one-pass sums take their deviations (see :func:`_shifted_sums`)."""

ONE_PASS_FROM = 20_000
"""A baseline of at least this many results is compared in one pass over the paired
items, their deviations taken from an estimate of the mean; smaller ones, and any whose
estimate is not close enough, in two (see :func:`_compare_runs`)."""

_first_results = (
    sa.select(_results.item_id.label("item"))
    .where(_results.run_id == sa.bindparam("baseline"))
    .order_by(_results.item_id)
    .limit(sa.bindparam("first_items", type_=sa.Integer()))
    .subquery("first_results")
)
_FIRST_ITEMS = sa.select(_first_results.c.item)
"""The items of the baseline's first ``first_items`` results in item order (its index read
that far): a semi-join of so few rows that each run's results and scores of them are read
by index, not scanned."""


_ITEM_FIGURES = ("latency", "failed", "cost", "tokens")


def _items_of(run: str, *, first: bool = False, single: bool = False) -> sa.CTE:
    """Per item of a run: mean latency over its repetitions, whether any failed, and the
    mean cost and tokens over the repetitions that have them (NULL: none has). ``first``:
    the baseline's first :data:`SHIFT_ITEMS` items only. ``single``: the run has one
    result per item (see :func:`repeated_runs`), which is its own mean -- read as it is,
    with no grouping."""
    failed = sa.case((_results.error.is_not(None), 1), else_=0)
    columns: list[sa.ColumnElement[Any]]
    if single:
        columns = [_results.latency.expression, failed, _results.cost.expression, _result_tokens()]
    else:
        columns = [mean(_results.latency), sa.func.max(failed), mean(_results.cost), _item_tokens()]
    items: sa.Select[Any] = sa.select(
        _results.item_id.label("item"),
        *(column.label(name) for column, name in zip(columns, _ITEM_FIGURES, strict=True)),
    ).where(_results.run_id == sa.bindparam(run))
    if first:
        items = items.where(_results.item_id.in_(_FIRST_ITEMS))
    if not single:
        items = items.group_by(_results.item_id)
    return items.cte(f"{run}_items{'_first' if first else ''}")


def _item_scores_of(run: str, *, first: bool = False, single: bool = False) -> sa.CTE:
    """Per item and score name of a run: the score's mean over the item's repetitions.
    ``first``: the baseline's first :data:`SHIFT_ITEMS` items only (read from the
    results' index, their scores by result). ``single``: the run has one result per item,
    whose score is its own mean (see :func:`_items_of`)."""
    scores = (
        sa.select(
            _results.item_id.label("item"),
            _scores.name.label("name"),
            (_scores.value if single else mean(_scores.value)).label("value"),
        )
        .select_from(scores_table.join(results_table, _results.id == _scores.result_id))
        .where(_scores.run_id == sa.bindparam(run))
    )
    if first or single:  # each result read by its run's index, not only by id
        scores = scores.where(_results.run_id == sa.bindparam(run))
    if first:
        scores = scores.where(_results.item_id.in_(_FIRST_ITEMS))
    if not single:
        scores = scores.group_by(_results.item_id, _scores.name)
    return scores.cte(f"{run}_scores{'_first' if first else ''}")


def _larger(a: sa.ColumnElement[float], b: sa.ColumnElement[float]) -> sa.ColumnElement[float]:
    return sa.case((a > b, a), else_=b)


def _spread(name: str, delta: sa.ColumnElement[Any]) -> list[sa.ColumnElement[Any]]:
    """The first pass over paired deltas: how many, their mean, least and greatest."""
    return [
        sa.func.count(delta).label(f"{name}_count"),
        mean(delta).label(f"{name}_mean"),
        sa.func.min(delta).label(f"{name}_low"),
        sa.func.max(delta).label(f"{name}_high"),
    ]


def _deviations(
    name: str, delta: sa.ColumnElement[Any], first: sa.CTE
) -> list[sa.ColumnElement[Any]]:
    """The second pass: the greatest deviation from the mean and the sum of the squared
    deviations scaled by it (:func:`~runstore.sql.compiler.scaled_square`) -- each halved
    first, so no difference of finite values overflows. Taken from the mean, not as
    squares less the squared mean, so that large values differing a little lose nothing
    to cancellation. (Their sum of squared deviations is ``(2 * scale) ** 2 * scaled``.)"""
    middle = half(first.c[f"{name}_mean"])
    scale = _larger(
        sa.func.abs(half(first.c[f"{name}_high"]) - middle),
        sa.func.abs(half(first.c[f"{name}_low"]) - middle),
    )
    return [
        sa.func.max(scale).label(f"{name}_scale"),
        sa.func.sum(scaled_square(half(delta) - middle, scale)).label(f"{name}_scaled"),
    ]


def _deviation_columns(
    name: str, delta: sa.ColumnElement[Any], shift: sa.ColumnElement[Any]
) -> list[sa.ColumnElement[Any]]:
    """A delta's (halved) deviation from ``shift`` -- an estimate of the deltas' mean, from
    the first items -- and whether it is tame (:func:`~runstore.sql.compiler.shifted`), as
    columns of a row: computed once per row, where the sums read them."""
    deviation, tame = shifted(delta, shift)
    return [
        shift.label(f"{name}_shift"),
        deviation.label(f"{name}_deviation"),
        sa.case((tame, 1), else_=0).label(f"{name}_tame"),
    ]


def _shifted_sums(name: str, rows: sa.Subquery) -> list[sa.ColumnElement[Any]]:
    """One pass over paired deltas, beside :func:`_spread`'s: the sum of their deviations
    (:func:`_deviation_columns`), the sum of those deviations' squares, and how many were
    not tame. With the mean from the first pass, the sum of squared deviations from the
    mean is ``squares - shifted**2 / count``: exact enough where the estimate is close to
    the mean, as :func:`_one_pass_deviations` checks."""
    deviation, tame = rows.c[f"{name}_deviation"], rows.c[f"{name}_tame"] == 1
    return [
        sa.func.max(rows.c[f"{name}_shift"]).label(f"{name}_shift"),
        sa.func.sum(sa.case((tame, deviation), else_=0.0)).label(f"{name}_shifted"),
        sa.func.sum(sa.case((tame, deviation * deviation), else_=0.0)).label(f"{name}_squares"),
        sa.func.count()
        .filter(sa.and_(rows.c[name].is_not(None), sa.not_(tame)))
        .label(f"{name}_wild"),
    ]


def _apart(rows: sa.Select[Any], name: str) -> sa.Subquery:
    """``rows`` as a subquery the planner keeps apart (``OFFSET 0``), so that each of its
    columns is computed once per row, not once for each place an outer query names it."""
    return rows.offset(0).subquery(name)


def _pairs_statements(single: bool) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The statements of :func:`comparison_pairs` and :func:`comparison_pairs_one_pass`;
    ``single``: both runs have one result per item (see :func:`_items_of`)."""
    baseline, candidate = (
        _items_of("baseline", single=single),
        _items_of("candidate", single=single),
    )
    pairs = (
        sa.select(
            baseline.c.failed.label("failed_before"),
            candidate.c.failed.label("failed_after"),
            # latencies and costs are >= 0: their differences do not overflow
            (candidate.c.latency - baseline.c.latency).label("latency"),
            (candidate.c.cost - baseline.c.cost).label("cost"),  # NULL where either has none
            (candidate.c.tokens - baseline.c.tokens).label("tokens"),
        )
        .select_from(baseline.join(candidate, candidate.c.item == baseline.c.item))
        .cte("paired_items")
    )
    pairs_first = sa.select(
        sa.func.count().label("paired"),
        sa.func.count()
        .filter(sa.and_(pairs.c.failed_before == 1, pairs.c.failed_after == 0))
        .label("fixed"),
        sa.func.count()
        .filter(sa.and_(pairs.c.failed_before == 0, pairs.c.failed_after == 1))
        .label("introduced"),
        *_spread("latency", pairs.c.latency),
        *_spread("cost", pairs.c.cost),
        mean(pairs.c.tokens).label("tokens_mean"),
    ).cte("paired_figures")
    pairs_second = (
        sa.select(
            *_deviations("latency", pairs.c.latency, pairs_first),
            *_deviations("cost", pairs.c.cost, pairs_first),
        )
        .select_from(pairs.join(pairs_first, sa.true()))
        .cte("paired_deviations")
    )
    two_passes = sa.select(
        *pairs_first.c,
        sa.select(sa.func.count()).select_from(baseline).scalar_subquery().label("baseline_items"),
        sa.select(sa.func.count())
        .select_from(candidate)
        .scalar_subquery()
        .label("candidate_items"),
        *pairs_second.c,
    ).select_from(pairs_first.join(pairs_second, sa.true()))

    baseline_first = _items_of("baseline", first=True, single=single)
    candidate_first = _items_of("candidate", first=True, single=single)
    pair_shifts = (
        sa.select(
            mean(candidate_first.c.latency - baseline_first.c.latency).label("latency"),
            mean(candidate_first.c.cost - baseline_first.c.cost).label("cost"),
        )
        .select_from(
            baseline_first.join(candidate_first, candidate_first.c.item == baseline_first.c.item)
        )
        .cte("pair_shifts")
    )
    pair_deviations = _apart(
        sa.select(
            *pairs.c,
            # each estimate read once (a scalar subquery), not joined: the pairs' join stays a
            # hash join of the two runs' items
            *_deviation_columns(
                "latency", pairs.c.latency, sa.select(pair_shifts.c.latency).scalar_subquery()
            ),
            *_deviation_columns(
                "cost", pairs.c.cost, sa.select(pair_shifts.c.cost).scalar_subquery()
            ),
        ),
        "pair_deviations",
    )
    pairs_one_pass = sa.select(
        sa.func.count().label("paired"),
        sa.func.count()
        .filter(sa.and_(pair_deviations.c.failed_before == 1, pair_deviations.c.failed_after == 0))
        .label("fixed"),
        sa.func.count()
        .filter(sa.and_(pair_deviations.c.failed_before == 0, pair_deviations.c.failed_after == 1))
        .label("introduced"),
        *_spread("latency", pair_deviations.c.latency),
        *_spread("cost", pair_deviations.c.cost),
        mean(pair_deviations.c.tokens).label("tokens_mean"),
        *_shifted_sums("latency", pair_deviations),
        *_shifted_sums("cost", pair_deviations),
    ).cte("paired_one_pass")
    one_pass = sa.select(
        *pairs_one_pass.c,
        sa.select(sa.func.count()).select_from(baseline).scalar_subquery().label("baseline_items"),
        sa.select(sa.func.count())
        .select_from(candidate)
        .scalar_subquery()
        .label("candidate_items"),
    )
    return two_passes, one_pass


_PAIRS = {single: _pairs_statements(single) for single in (False, True)}
"""The paired items' statements (two passes, one pass), by whether both runs have one
result per item."""


def comparison_pairs_one_pass(baseline: str, candidate: str, *, single: bool = False) -> AnyQuery:
    """What :func:`comparison_pairs` gives, in one pass over the paired items: the
    latency and cost differences' sums of deviations from an estimate of their mean
    (:func:`_shifted_sums`) in place of the second pass."""
    values = {"baseline": baseline, "candidate": candidate, "first_items": SHIFT_ITEMS}
    return Query(_PAIRS[single][1], values)


def comparison_pairs(baseline: str, candidate: str, *, single: bool = False) -> AnyQuery:
    """Over the items both runs have (each item's repetitions averaged): how many, errors
    fixed and introduced; the latency and cost differences' (candidate minus baseline)
    count, mean, least and greatest (costs over the items priced in both); the mean token
    difference; how many items each run has; then the latency and cost differences'
    greatest deviation from their mean and their scaled squared deviations' sum (see
    :func:`_deviations`). ``single``: both runs have one result per item (see
    :func:`repeated_runs`)."""
    return Query(_PAIRS[single][0], {"baseline": baseline, "candidate": candidate})


def _scores_statements(single: bool) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The statements of :func:`comparison_scores` and :func:`comparison_scores_one_pass`;
    ``single``: both runs have one result per item (see :func:`_items_of`)."""
    baseline, candidate = (
        _item_scores_of("baseline", single=single),
        _item_scores_of("candidate", single=single),
    )
    before, after = baseline.c.value, candidate.c.value
    score_pairs = (
        sa.select(
            baseline.c.name,
            before.label("before"),
            after.label("after"),
            # half the difference: two scores' own may pass the largest double
            (half(after) - half(before)).label("delta"),
        )
        .select_from(
            baseline.join(
                candidate,
                sa.and_(
                    candidate.c.item == baseline.c.item,
                    candidate.c.name == baseline.c.name,
                ),
            )
        )
        .cte("paired_scores")
    )
    scores_first = (
        sa.select(
            score_pairs.c.name,
            mean(score_pairs.c.before).label("baseline_mean"),
            mean(score_pairs.c.after).label("candidate_mean"),
            sa.func.count().filter(score_pairs.c.after > score_pairs.c.before).label("improved"),
            sa.func.count().filter(score_pairs.c.after < score_pairs.c.before).label("regressed"),
            *_spread("delta", score_pairs.c.delta),
        )
        .group_by(score_pairs.c.name)
        .cte("score_figures")
    )
    scores_second = (
        sa.select(score_pairs.c.name, *_deviations("delta", score_pairs.c.delta, scores_first))
        .select_from(score_pairs.join(scores_first, scores_first.c.name == score_pairs.c.name))
        .group_by(score_pairs.c.name)
        .cte("score_deviations")
    )
    two_passes = sa.select(
        *scores_first.c, scores_second.c.delta_scale, scores_second.c.delta_scaled
    ).select_from(scores_first.join(scores_second, scores_second.c.name == scores_first.c.name))

    baseline_first = _item_scores_of("baseline", first=True, single=single)
    candidate_first = _item_scores_of("candidate", first=True, single=single)
    score_shifts = (
        sa.select(
            baseline_first.c.name,
            mean(half(candidate_first.c.value) - half(baseline_first.c.value)).label("shift"),
        )
        .select_from(
            baseline_first.join(
                candidate_first,
                sa.and_(
                    candidate_first.c.item == baseline_first.c.item,
                    candidate_first.c.name == baseline_first.c.name,
                ),
            )
        )
        .group_by(baseline_first.c.name)
        .cte("score_shifts")
    )
    score_deviations = _apart(
        sa.select(
            *score_pairs.c,
            *_deviation_columns("delta", score_pairs.c.delta, score_shifts.c.shift),
        ).select_from(
            score_pairs.outerjoin(score_shifts, score_shifts.c.name == score_pairs.c.name)
        ),
        "score_deviations",
    )
    one_pass = sa.select(
        score_deviations.c.name,
        mean(score_deviations.c.before).label("baseline_mean"),
        mean(score_deviations.c.after).label("candidate_mean"),
        sa.func.count()
        .filter(score_deviations.c.after > score_deviations.c.before)
        .label("improved"),
        sa.func.count()
        .filter(score_deviations.c.after < score_deviations.c.before)
        .label("regressed"),
        *_spread("delta", score_deviations.c.delta),
        *_shifted_sums("delta", score_deviations),
    ).group_by(score_deviations.c.name)
    return two_passes, one_pass


_SCORES = {single: _scores_statements(single) for single in (False, True)}
"""The paired scores' statements (two passes, one pass), by whether both runs have one
result per item."""


def comparison_scores_one_pass(baseline: str, candidate: str, *, single: bool = False) -> AnyQuery:
    """What :func:`comparison_scores` gives, in one pass (see
    :func:`comparison_pairs_one_pass`)."""
    values = {"baseline": baseline, "candidate": candidate, "first_items": SHIFT_ITEMS}
    return Query(_SCORES[single][1], values)


def comparison_scores(baseline: str, candidate: str, *, single: bool = False) -> AnyQuery:
    """Per score name, over the items both runs have it for (each item's repetitions
    averaged): both means, how many improved and regressed; then the halved differences'
    count, mean, least and greatest, and the greatest deviation and scaled squared
    deviations' sum (see :func:`_deviations`). (Differences are halved: two scores' own
    may pass the largest double.) ``single``: as for :func:`comparison_pairs`."""
    return Query(_SCORES[single][0], {"baseline": baseline, "candidate": candidate})


_REPEATED = sa.select(
    *(
        sa.exists().where(_results.run_id == sa.bindparam(side), _results.repetition != 0)
        for side in ("baseline", "candidate")
    )
)


def repeated_runs(baseline: str, candidate: str) -> Query[bool, bool]:
    """Whether each run has a result of a repetition past the first -- else it has one
    result per item, and its items' means are its results' own values. Read from the
    (run, item, repetition) index."""
    return Query(_REPEATED, {"baseline": baseline, "candidate": candidate})


def _next_items(run_id: str, side: int) -> sa.Subquery:
    return (
        sa.select(results_table, scores_of(_results.id), sa.literal(side, sa.Integer()))
        .where(_results.run_id == sa.bindparam(run_id), _results.item_id > sa.bindparam("after"))
        .order_by(_results.item_id, _results.repetition)
        .limit(sa.bindparam("size", type_=sa.Integer()))
        .subquery()
    )


_both = sa.union_all(
    _next_items("baseline", 0).select(), _next_items("candidate", 1).select()
).subquery("both")
_side = list(_both.c)[-1]
_ITEMS_AFTER = (
    sa.select(_both)
    .order_by(_both.c.item_id, _side, _both.c.repetition)
    .limit(sa.bindparam("size", type_=sa.Integer()))
)


def items_after(baseline: str, candidate: str, after_item: str, size: int) -> AnyQuery:
    """The next ``size`` results of two runs together, in the database's ``item_id``
    order (each run's own read from its (run, item) index), so that an item's results
    are adjacent, the baseline's first, each run's in repetition order; columns as
    :data:`~runstore.sql.rows.RESULT_ATTRIBUTES`, then 0 for the baseline's and 1 for the
    candidate's (the two may be the same run)."""
    values = {"baseline": baseline, "candidate": candidate, "after": after_item, "size": size}
    return Query(_ITEMS_AFTER, values)


# -- operations --------------------------------------------------------------------------


def computed_summary(run_id: str, database: Database) -> Steps[RunSummary]:
    """A run's summary, computed (in a snapshot: the steps of ``summarize_run`` when no
    summary is kept, :mod:`runstore.sql.summaries`). Postgres: one statement with
    ``percentile_cont``. SQLite, which has none: the aggregates, then the two values
    around each percentile's rank, read from an index."""
    if database.postgres:
        return (yield from _summarize_in_one_statement(run_id))
    return (yield from _summarize_by_ranks(run_id))


def _summary(
    run_id: str,
    counts: tuple[int, int],
    latency: Sequence[float | None],
    scores: dict[str, ScoreSummary],
    usage: UsageSummary,
) -> RunSummary:
    results, failed = counts
    mean_latency, minimum, maximum, *percentiles = latency
    return RunSummary(
        run_id=run_id,
        results=results,
        succeeded=results - failed,
        failed=failed,
        error_rate=failed / results if results else None,
        latency=LatencySummary(
            mean=mean_latency,
            min=minimum,
            max=maximum,
            **{
                f"p{round(p * 100)}": value
                for p, value in zip(PERCENTILES, percentiles, strict=True)
            },
        ),
        scores=scores,
        usage=usage,
    )


def _summarize_in_one_statement(run_id: str) -> Steps[RunSummary]:
    yield from require_runs([run_id])
    found = yield from rows(summary(run_id))
    latency_row = next(row for row in found if row[0] is None)
    scores = {
        row[0]: ScoreSummary(count=row[1], mean=row[3], min=row[4], max=row[5], p50=row[6])
        for row in found
        if row[0] is not None
    }
    count, failed = latency_row[1], latency_row[2]
    input_tokens, output_tokens, priced, cost = latency_row[10:14]
    total = None if cost is None else float(cost)  # the exact sum, correctly rounded
    usage = usage_summary(input_tokens, output_tokens, priced, total)
    return _summary(run_id, (count, failed), latency_row[3:10], scores, usage)


def _summarize_by_ranks(run_id: str) -> Steps[RunSummary]:
    yield from require_runs([run_id])
    aggregates = yield from one(latency_aggregates(run_id))
    count, failed, mean_latency, minimum, maximum = aggregates[:5]
    input_tokens, output_tokens, priced, largest_cost = aggregates[5:]
    cost = None
    if priced:
        query, factor = cost_parts(run_id, priced, largest_cost)
        cost = exact_total((yield from one(query)), factor)
    usage = usage_summary(input_tokens, output_tokens, priced, cost)
    percentiles: list[float | None] = []
    for fraction in PERCENTILES:
        if not count:
            percentiles.append(None)
            continue
        lower, weight = rank(count, fraction)
        values = yield from scalars(latency_at(run_id, lower))
        percentiles.append(interpolate(values[0], values[-1], weight))
    scores = {}
    for name, scored, score_mean, score_min, score_max in (
        yield from rows(score_aggregates(run_id))
    ):
        lower, weight = rank(scored, 0.5)
        values = yield from scalars(score_value_at(run_id, name, lower))
        scores[name] = ScoreSummary(
            count=scored,
            mean=score_mean,
            min=score_min,
            max=score_max,
            p50=interpolate(values[0], values[-1], weight),
        )
    latency = [mean_latency, minimum, maximum, *percentiles]
    return _summary(run_id, (count, failed), latency, scores, usage)


@operation(Mode.SNAPSHOT)
def _histogram_run(call: calls.HistogramRun, database: Database) -> Steps[RunHistograms]:
    """The run check, then one statement: each value's bin, counted in the database."""
    run_id, bins = call.run_id, call.bins
    yield from require_runs([run_id])
    counted: dict[str, tuple[float, float, dict[int, int]]] = {}
    for name, low, high, index, count in (yield from rows(histogram_bins(run_id, bins))):
        counted.setdefault(name, (low, high, {}))[2][index] = count
    made = {name: histogram(low, high, each, bins) for name, (low, high, each) in counted.items()}
    latency, cost = made.pop(LATENCY, None), made.pop(COST, None)
    scores = {name.removeprefix(SCORE): each for name, each in made.items()}
    return RunHistograms(run_id=run_id, bins=bins, latency=latency, scores=scores, cost=cost)


def _one_pass_deviations(figures: dict[str, Any], name: str) -> bool:
    """Whether one pass's sums give the deltas' squared deviations from their mean
    exactly enough -- every deviation from the estimate tame, and the estimate no farther
    from the mean than the deltas' own spread, so that taking the estimate's share out
    (``squares - shifted**2 / count``) loses at most a bit more than a second pass
    would; if so, set them as :func:`_paired_delta` reads a second pass's."""
    count, low, high = (figures[f"{name}_{part}"] for part in ("count", "low", "high"))
    if count < 2 or low == high:  # no deviations to sum: paired_delta needs none
        figures[f"{name}_scale"], figures[f"{name}_scaled"] = 0.0, 0.0
        return True
    if figures[f"{name}_shift"] is None or figures[f"{name}_wild"]:
        return False
    shifted_sum, squares = figures[f"{name}_shifted"], figures[f"{name}_squares"]
    centre = shifted_sum * shifted_sum / count
    spread = squares - centre
    if not (spread > 0.0 and centre <= spread):
        return False
    # the deviations were halved: the squared deviations sum to (2 * sqrt(spread))**2
    figures[f"{name}_scale"], figures[f"{name}_scaled"] = math.sqrt(spread), 1.0
    return True


def _comparison_sums(
    baseline: str, candidate: str, one_pass: bool, database: Database
) -> Steps[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The sums of a comparison: in one pass where asked and exact enough (see
    :func:`_one_pass_deviations`), else in two; where the database asks for it
    (:attr:`~runstore.sql.database.Database.ungrouped_items`) and neither run has a
    repetition, with no grouping of the results into items."""
    single = database.ungrouped_items and not any(
        (yield from one(repeated_runs(baseline, candidate)))
    )
    if one_pass:
        pairs_query = comparison_pairs_one_pass(baseline, candidate, single=single)
        pairs = dict((yield from one(pairs_query))._mapping)
        found = yield from rows(comparison_scores_one_pass(baseline, candidate, single=single))
        scores = [dict(row._mapping) for row in found]
        if all(_one_pass_deviations(pairs, name) for name in ("latency", "cost")) and all(
            _one_pass_deviations(figures, "delta") for figures in scores
        ):
            return pairs, scores
    pairs = dict((yield from one(comparison_pairs(baseline, candidate, single=single)))._mapping)
    found = yield from rows(comparison_scores(baseline, candidate, single=single))
    return pairs, [dict(row._mapping) for row in found]


_PLAIN_JIT = sa.select(
    sa.func.set_config("jit_optimize_above_cost", "-1", True),
    sa.func.set_config("jit_inline_above_cost", "-1", True),
)
"""For the rest of the transaction, Postgres compiles a plan's expressions (where its JIT
is on) without optimizing or inlining them: with the many aggregates of a comparison's
statements, that took over a second per statement, more than it saved below a million
results each (at a million, the two are even)."""


@operation(Mode.SNAPSHOT)
def _compare_runs(call: calls.CompareRuns, database: Database) -> Steps[RunComparison]:
    """Two statements -- over the paired items, and per score over the paired scores --
    each in one pass for a large baseline (:data:`ONE_PASS_FROM`), with a second pass
    only where one is not exact enough."""
    baseline, candidate, confidence = call.baseline_run_id, call.candidate_run_id, call.confidence
    sizes = yield from require_runs([baseline, candidate])
    one_pass = sizes[baseline] >= ONE_PASS_FROM
    if one_pass and database.postgres:
        yield from execute(Query(_PLAIN_JIT))
    pairs, score_figures = yield from _comparison_sums(baseline, candidate, one_pass, database)
    scores = {}
    for figures in score_figures:
        delta = _paired_delta(figures, "delta", confidence, halved=True)
        assert delta is not None  # a score name is listed where some item has it in both
        scores[figures["name"]] = ScoreComparison(
            **dict(delta),
            baseline_mean=figures["baseline_mean"],
            candidate_mean=figures["candidate_mean"],
            improved=figures["improved"],
            regressed=figures["regressed"],
            unchanged=delta.paired - figures["improved"] - figures["regressed"],
        )
    paired = pairs["paired"]
    baseline_items, candidate_items = pairs["baseline_items"], pairs["candidate_items"]
    cost = _paired_delta(pairs, "cost", confidence)
    latency = _paired_delta(pairs, "latency", confidence)
    return RunComparison(
        baseline_run_id=baseline,
        candidate_run_id=candidate,
        items_in_both=paired,
        only_in_baseline=baseline_items - paired,
        only_in_candidate=candidate_items - paired,
        errors_fixed=pairs["fixed"],
        errors_introduced=pairs["introduced"],
        latency_mean_delta=None if latency is None else latency.mean_delta,
        scores=scores,
        cost_mean_delta=None if cost is None else cost.mean_delta,
        tokens_mean_delta=pairs["tokens_mean"],
        latency=latency,
        cost=cost,
    )


def _paired_delta(
    figures: Any, name: str, confidence: float, *, halved: bool = False
) -> PairedDelta | None:
    """The paired comparison of one delta of a comparison's row (None: no item pairs),
    from the sums :func:`_spread` and :func:`_deviations` named by ``name``; ``halved``:
    the deltas summed were half the differences."""
    count = figures[f"{name}_count"]
    if not count:
        return None
    # the deviations were halved once more: their squares' sum is (2 * scale)^2 * scaled
    return paired_delta(
        count,
        figures[f"{name}_mean"],
        (figures[f"{name}_low"], figures[f"{name}_high"]),
        (2.0 * (figures[f"{name}_scale"] or 0.0), figures[f"{name}_scaled"] or 0.0),
        confidence,
        unit=2.0 if halved else 1.0,
    )


@operation(Mode.SNAPSHOT)
def _items_batch(
    call: calls.IterItemComparisons, after_item: str, size: int, database: Database
) -> Steps[list[Sided]]:
    """The next ``size`` results of both runs, in ``item_id`` order, each with its side
    (see :func:`runstore.figures.pair_items`)."""
    baseline, candidate = call.baseline_run_id, call.candidate_run_id
    yield from require_runs([baseline, candidate])
    found = yield from rows(items_after(baseline, candidate, after_item, size))
    results = yield from scored_results(found, database)
    return [(row[-1] == 1, result) for row, result in zip(found, results, strict=True)]


def _iter_item_comparisons(
    call: calls.IterItemComparisons, database: Database
) -> Walk[ItemComparison]:
    after, reading = call.after_item or "", max(call.batch_size, 2)
    while True:
        results = yield from run(_items_batch(call, after, reading, database))
        pairs, following = pair_items(results, reading, after)
        if not pairs and following == after:  # one item filled the batch
            reading *= 2
            continue
        yield Emit(list(compared(pairs, call.only, call.score)))
        if following is None:
            return
        after, reading = following, max(call.batch_size, 2)


PLANS: Plans = {
    calls.HistogramRun: _histogram_run,
    calls.CompareRuns: _compare_runs,
}
"""The operation of each call for an answer."""
WALKS: Walks = {calls.IterItemComparisons: _iter_item_comparisons}
"""The walk of each ``iter_*`` call for answers."""
