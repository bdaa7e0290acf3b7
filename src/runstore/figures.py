"""How runstore's answers are figured: percentiles, histogram bins and item verdicts, the
same everywhere.

Postgres computes percentiles with ``percentile_cont``; SQLite reads the two values around
each rank from an index, and the in-memory adapter sorts. Both of those interpolate here,
with Postgres' formula, so all three agree. A histogram's bins are counted in the
database (:func:`runstore.sql.compiler.bucket`) or here, with the one formula of
:func:`bin_of`, in the same double arithmetic, so the counts agree exactly.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence

from runstore.models import ComparisonKind
from runstore.models import Histogram
from runstore.models import ItemComparison
from runstore.models import PairedDelta
from runstore.models import RunResult
from runstore.models import UsageSummary
from runstore.student import critical_value
from runstore.student import two_sided_p

__all__ = [
    "PERCENTILES",
    "Pair",
    "Sided",
    "bin_of",
    "compared",
    "exact_total",
    "histogram",
    "interpolate",
    "item_failed",
    "item_scores",
    "mean",
    "pair_items",
    "paired_delta",
    "paired_sums",
    "percentile",
    "rank",
    "score_deltas",
    "split_scales",
    "total",
    "usage_summary",
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


def bin_of(value: float, low: float, high: float, bins: int) -> int:
    """The bin of ``value`` among ``bins`` equal-width bins over [low, high]:
    ``floor((value/2 - low/2) / (high/2 - low/2) * bins)``, ``high`` in the last bin.

    The values are halved first so that no finite ones overflow (``high - low`` may pass
    the largest double; half of it never does). Where the halves of ``low`` and ``high``
    are equal -- ``low == high``, or two neighbouring subnormals -- every value is in the
    first bin. The database computes the same, operation for operation, so the counts
    agree exactly (:func:`runstore.sql.compiler.bucket`).
    """
    span = high * 0.5 - low * 0.5
    if span == 0:
        return 0
    return min(math.floor((value * 0.5 - low * 0.5) / span * bins), bins - 1)


def histogram(low: float, high: float, counted: Mapping[int, int], bins: int) -> Histogram:
    """The histogram of values from ``low`` to ``high``, counted by bin (``counted``: how
    many values each bin of :func:`bin_of` holds -- a database's bins may also hold
    ``bins``, the values at ``high``, which go to the last bin). One bin when ``low ==
    high``."""
    if low == high:
        return Histogram(low=low, high=high, counts=(sum(counted.values()),))
    counts = [0] * bins
    for index, count in counted.items():
        counts[min(index, bins - 1)] += count
    return Histogram(low=low, high=high, counts=tuple(counts))


_SCALE = 2.0**64


def mean(values: Sequence[float]) -> float:
    """The mean of finite floats, never an overflow: their correctly rounded sum over
    their count -- or, where the sum passes the largest double, the same of the values
    scaled down by 2**64 (the mean itself is at most the largest value). The SQL adapter's
    ``mean`` (:func:`runstore.sql.compiler.mean`) sums the same way."""
    try:
        return math.fsum(values) / len(values)
    except OverflowError:
        return math.fsum(value / _SCALE for value in values) / len(values) * _SCALE


def total(values: Sequence[float]) -> float:
    """The sum of finite floats, correctly rounded (``math.fsum``); infinity where it
    passes the largest double."""
    try:
        return math.fsum(values)
    except OverflowError:
        return math.inf if math.fsum(v / _SCALE for v in values) > 0 else -math.inf


_HUGE = 2.0**900


def split_scales(count: int, largest: float) -> tuple[float, float, float]:
    """How to sum ``count`` values of at most ``largest`` (none negative) in a database
    that adds doubles one after another, with no rounding error per value: the scales at
    which :func:`runstore.sql.compiler.split_sums` splits each value, and a factor the
    values are multiplied by first (1, or for values near the largest double 2**-128,
    exact).

    The first scale is a power of two at least twice ``count * largest``: each value's
    high part, ``(value + scale) - scale``, is then a multiple of the scale's last unit,
    and so is every partial sum of them, below 2**53 units -- exact. The remainders are
    below half that unit; the second scale splits them again the same way. What remains
    of each value is under ``count * 2**-104`` of the first scale, so its rounded sum
    moves the total by far less than a unit in its last place. (The method is Rump, Ogita
    and Oishi's extraction, "Accurate floating-point summation", 2008.)
    """
    factor = 1.0
    if largest > _HUGE:
        factor, largest = 2.0**-128, largest * 2.0**-128
    bound = max(2.0 * count * largest, sys.float_info.min)
    first = 2.0 ** math.ceil(math.log2(bound))
    if first < bound:  # log2's rounding
        first *= 2.0
    second = 2.0 ** math.ceil(math.log2(max(2.0 * count * math.ulp(first), sys.float_info.min)))
    return first, second * 2.0, factor


def exact_total(parts: Sequence[float | None], factor: float = 1.0) -> float | None:
    """The total of the parts :func:`runstore.sql.compiler.split_sums` summed (None: there
    were no values), correctly rounded, undoing the ``factor`` of :func:`split_scales`."""
    if parts[0] is None:
        return None
    summed = math.fsum(part or 0.0 for part in parts)
    return summed / factor if factor != 1.0 else summed


def usage_summary(
    input_tokens: int | None, output_tokens: int | None, priced: int, cost: float | None
) -> UsageSummary:
    """A run's usage from its sums (None: no result has the figure) and how many results
    have a cost: the mean cost per priced result is the correctly rounded sum over their
    count."""
    return UsageSummary(
        input_tokens=input_tokens or 0,
        output_tokens=output_tokens or 0,
        priced=priced,
        cost=cost if priced else None,
        cost_per_result=cost / priced if priced and cost is not None else None,
    )


def paired_delta(
    paired: int,
    mean_delta: float,
    spread: tuple[float, float],
    deviations: tuple[float, float],
    confidence: float,
    *,
    unit: float = 1.0,
) -> PairedDelta:
    """A paired comparison from its sums: ``paired`` differences, their mean, their least
    and greatest (``spread``: equal, no spread), and ``deviations``, ``(scale, scaled)``
    such that the sum of their squared deviations from the mean is ``scale**2 * scaled``
    (computed where the differences are, in two passes, so that large values with small
    differences lose nothing, and scaled, so that no square overflows). The interval is
    Student's t with ``paired - 1`` degrees of freedom, as ``scipy.stats.t.interval``
    gives it; the p-value is the two-sided paired t-test's (``scipy.stats.ttest_rel``).

    ``unit``: the sums are of the differences divided by it (2: halved, as two scores' own
    difference may pass the largest double). Everything is computed in that unit and
    multiplied by it last, which is exact, so a figure past the largest double is an
    infinity of its sign -- never ``inf - inf``, never NaN."""
    if paired < 2:
        return PairedDelta(paired=paired, mean_delta=unit * mean_delta, confidence=confidence)
    low, high = spread
    if low == high:
        return PairedDelta(
            paired=paired,
            mean_delta=unit * mean_delta,
            std_error=0.0,
            ci_low=unit * mean_delta,
            ci_high=unit * mean_delta,
            p_value=1.0 if mean_delta == 0 else 0.0,
            confidence=confidence,
        )
    degrees = float(paired - 1)
    scale, scaled = deviations
    std_error = scale * math.sqrt(scaled / degrees / paired)
    tail = 1.0 - (1.0 + confidence) / 2.0  # as scipy.stats.t.interval rounds it
    half_width = critical_value(2.0 * tail, degrees) * std_error
    statistic = mean_delta / std_error if std_error > 0 else 0.0
    return PairedDelta(
        paired=paired,
        mean_delta=unit * mean_delta,
        std_error=unit * std_error,
        ci_low=unit * (mean_delta - half_width),
        ci_high=unit * (mean_delta + half_width),
        p_value=two_sided_p(statistic, degrees),
        confidence=confidence,
    )


def paired_sums(
    deltas: Sequence[float],
) -> tuple[int, float, tuple[float, float], tuple[float, float]]:
    """What :func:`paired_delta` takes, from the differences themselves (the in-memory
    adapter's; the SQL adapter's database computes the same sums): their count, mean,
    least and greatest, and the scaled sum of their squared deviations from the mean."""
    middle = mean(deltas)
    halves = [delta * 0.5 - middle * 0.5 for delta in deltas]
    scale = max(abs(value) for value in halves)
    scaled = math.fsum((value / scale) ** 2 for value in halves) if scale else 0.0
    return len(deltas), middle, (min(deltas), max(deltas)), (2.0 * scale, scaled)


def item_scores(results: Sequence[RunResult]) -> dict[str, float]:
    """An item's scores over its repetitions: each name's mean over the repetitions that
    have it."""
    values: dict[str, list[float]] = {}
    for result in results:
        for name, value in result.scores.items():
            values.setdefault(name, []).append(value)
    return {name: mean(each) for name, each in values.items()}


def score_deltas(baseline: Sequence[RunResult], candidate: Sequence[RunResult]) -> dict[str, float]:
    """Candidate minus baseline, for each score both sides have (an item's repetitions
    averaged, see :func:`item_scores`)."""
    if not baseline or not candidate:
        return {}
    before, after = item_scores(baseline), item_scores(candidate)
    return {name: after[name] - value for name, value in before.items() if name in after}


def item_failed(results: Sequence[RunResult]) -> bool:
    """Whether an item failed in a run: any of its repetitions has an error."""
    return any(result.error is not None for result in results)


def verdict(
    baseline: Sequence[RunResult],
    candidate: Sequence[RunResult],
    deltas: Mapping[str, float],
    score: str | None,
) -> ComparisonKind | None:
    """How an item changed from baseline to candidate (each side: its repetitions, none if
    the run lacks the item); None if it did not.

    With ``score``, that score alone decides: higher is an improvement (items without it
    in both runs have no verdict). Otherwise an item regressed if it gained an error (see
    :func:`item_failed`) or any score went down, improved if it lost an error or a score went
    up (and none went down), and changed if it is in one run only or its errors changed
    in another way.
    """
    if score is not None:
        delta = deltas.get(score)
        if delta is None or delta == 0:
            return None
        return ComparisonKind.IMPROVED if delta > 0 else ComparisonKind.REGRESSED
    if not baseline or not candidate:
        return ComparisonKind.CHANGED
    failed_before, failed_now = item_failed(baseline), item_failed(candidate)
    if (failed_now and not failed_before) or any(delta < 0 for delta in deltas.values()):
        return ComparisonKind.REGRESSED
    if (failed_before and not failed_now) or any(delta > 0 for delta in deltas.values()):
        return ComparisonKind.IMPROVED
    if _errors(baseline) != _errors(candidate):
        return ComparisonKind.CHANGED
    return None


def _errors(results: Sequence[RunResult]) -> set[str]:
    return {result.error for result in results if result.error is not None}


Pair = tuple[str, tuple[RunResult, ...], tuple[RunResult, ...]]
"""An item, and its results in the baseline and in the candidate (each in repetition
order; empty where the run lacks the item)."""


Sided = tuple[bool, RunResult]
"""A result read for a comparison, and whether it is the candidate's (else the
baseline's; a run compared with itself is read for both)."""


def pair_items(results: Sequence[Sided], size: int, after: str) -> tuple[list[Pair], str | None]:
    """Pair a batch of two runs' results, read together in ``item_id`` order (so an
    item's results are adjacent, each run's in repetition order), by item.

    A batch that came back full (``size`` results) may have cut its last item short: that
    item is left for the next batch. Returns the pairs, and the item to read on after
    (still ``after`` if the batch held one item only: read a larger one) -- None when the
    runs are done. Only equality of ids is used, never their order, which the database's
    collation decides.
    """
    groups: list[list[Sided]] = []
    for sided in results:
        if groups and groups[-1][0][1].item_id == sided[1].item_id:
            groups[-1].append(sided)
        else:
            groups.append([sided])
    done = len(results) < size
    if not done:
        groups.pop()
    pairs = []
    for group in groups:
        baseline = tuple(result for is_candidate, result in group if not is_candidate)
        candidate = tuple(result for is_candidate, result in group if is_candidate)
        pairs.append((group[0][1].item_id, baseline, candidate))
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
                item_id=item,
                baseline=baseline[0] if baseline else None,
                candidate=candidate[0] if candidate else None,
                baseline_repetitions=baseline,
                candidate_repetitions=candidate,
                score_deltas=deltas,
            )
