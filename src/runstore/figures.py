"""How runstore's answers are figured: percentiles and item verdicts, the same everywhere.

Postgres computes percentiles with ``percentile_cont``; SQLite reads the two values around
each rank from an index, and the in-memory adapter sorts. Both of those interpolate here,
with Postgres' formula, so all three agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence

from runstore.models import ComparisonKind, ItemComparison, RunResult

__all__ = [
    "PERCENTILES",
    "Pair",
    "compared",
    "interpolate",
    "pair_items",
    "percentile",
    "rank",
    "score_deltas",
    "verdict",
]

PERCENTILES = (0.5, 0.9, 0.95, 0.99)
"""The latency percentiles of a run summary."""


def rank(count: int, fraction: float) -> tuple[int, float]:
    """Where the ``fraction`` percentile of ``count`` sorted values lies: the lower rank
    (0-based) and how far towards the next one (``percentile_cont``'s definition)."""
    position = fraction * (count - 1)
    lower = math.floor(position)
    return lower, position - lower


def interpolate(lower: float, upper: float, weight: float) -> float:
    """The value ``weight`` of the way from ``lower`` to ``upper`` (as Postgres does)."""
    return lower if weight == 0 else lower + weight * (upper - lower)


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """The continuous percentile of values in ascending order; None if there are none."""
    if not ordered:
        return None
    lower, weight = rank(len(ordered), fraction)
    upper = min(lower + 1, len(ordered) - 1)
    return interpolate(ordered[lower], ordered[upper], weight)


def score_deltas(baseline: RunResult | None, candidate: RunResult | None) -> dict[str, float]:
    """Candidate minus baseline, for each score both results have."""
    if baseline is None or candidate is None:
        return {}
    return {
        name: candidate.scores[name] - value
        for name, value in baseline.scores.items()
        if name in candidate.scores
    }


def verdict(
    baseline: RunResult | None,
    candidate: RunResult | None,
    deltas: Mapping[str, float],
    score: str | None,
) -> ComparisonKind | None:
    """How an item changed from baseline to candidate; None if it did not.

    With ``score``, that score alone decides: higher is an improvement (items without it
    in both runs have no verdict). Otherwise an item regressed if it gained an error or any
    score went down, improved if it lost an error or a score went up (and none went down),
    and changed if it is in one run only or its error changed in another way.
    """
    if score is not None:
        delta = deltas.get(score)
        if delta is None or delta == 0:
            return None
        return ComparisonKind.IMPROVED if delta > 0 else ComparisonKind.REGRESSED
    if baseline is None or candidate is None:
        return ComparisonKind.CHANGED
    failed_before, failed_now = baseline.error is not None, candidate.error is not None
    if (failed_now and not failed_before) or any(delta < 0 for delta in deltas.values()):
        return ComparisonKind.REGRESSED
    if (failed_before and not failed_now) or any(delta > 0 for delta in deltas.values()):
        return ComparisonKind.IMPROVED
    if baseline.error != candidate.error:
        return ComparisonKind.CHANGED
    return None


Pair = tuple[str, RunResult | None, RunResult | None]


def pair_items(
    results: Sequence[RunResult], baseline_run_id: str, size: int, after: str
) -> tuple[list[Pair], str | None]:
    """Pair a batch of two runs' results, read together in ``item_id`` order (so an
    item's results are adjacent), by item.

    A batch that came back full (``size`` results) may have cut its last item short: that
    item is left for the next batch. Returns the pairs, and the item to read on after
    (still ``after`` if the batch held one item only: read a larger one) -- None when the
    runs are done. Only equality of ids is used, never their order, which the database's
    collation decides.
    """
    groups: list[list[RunResult]] = []
    for result in results:
        if groups and groups[-1][0].item_id == result.item_id:
            groups[-1].append(result)
        else:
            groups.append([result])
    done = len(results) < size
    if not done:
        groups.pop()
    pairs = []
    for group in groups:
        sides: list[RunResult | None] = [None, None]
        for result in group:
            sides[result.run_id != baseline_run_id] = result
        pairs.append((group[0].item_id, sides[0], sides[1]))
    if done:
        return pairs, None
    return pairs, pairs[-1][0] if pairs else after


def compared(
    pairs: Iterable[Pair], only: ComparisonKind | None, score: str | None
) -> Iterator[ItemComparison]:
    """The pairs as item comparisons, keeping those ``only`` asks for (see :func:`verdict`;
    ``"changed"`` keeps every item with a verdict)."""
    for item, baseline, candidate in pairs:
        deltas = score_deltas(baseline, candidate)
        kind = verdict(baseline, candidate, deltas, score)
        if only is None or kind is only or (only is ComparisonKind.CHANGED and kind is not None):
            yield ItemComparison(
                item_id=item, baseline=baseline, candidate=candidate, score_deltas=deltas
            )
