"""A regression gate: a candidate run judged against its baseline, rule by rule.

``gate_runs`` (on both contracts) gathers what the rules need -- the comparison, with its
paired statistics; the runs' summaries, when a rule reads them; the regressed items, when
a rule counts them -- and :func:`judge` decides, here, the same for every adapter: a check
per rule given, in :class:`~runstore.models.GateRules`' order, each with what it saw, its
limit and a line for a CI log. What a rule needs and does not find (a score one run lacks,
a run without costs) fails its check: a gate that cannot tell must not pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from runstore.models import GateCheck
from runstore.models import GateRules
from runstore.models import GateVerdict
from runstore.models import PairedDelta
from runstore.models import RunComparison
from runstore.models import RunSummary

__all__ = ["judge", "needs_regressed_items", "needs_summaries"]


def needs_summaries(rules: GateRules) -> bool:
    """Whether a rule reads the runs' summaries (error rate, latency p95, cost)."""
    return any(
        limit is not None
        for limit in (rules.max_error_rate, rules.max_latency_p95_ratio, rules.max_cost_ratio)
    )


def needs_regressed_items(rules: GateRules) -> bool:
    return rules.max_regressed_items is not None


def figure(value: float | None) -> str:
    """A number for a log line: four significant digits, no exponent for everyday sizes."""
    if value is None:
        return "none"
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if 1e-4 <= abs(value) < 1e6:
        return f"{value:.4g}" if abs(value) < 1 else f"{value:,.4g}".replace(",", "")
    return f"{value:.3e}"


def _p(value: float | None) -> str:
    if value is None:
        return "p n/a"
    return f"p={value:.2g}"


def _interval(delta: PairedDelta) -> str:
    percent = f"{delta.confidence * 100:g}%"
    if delta.ci_low is None or delta.ci_high is None:
        return f"no {percent} CI: fewer than two items"
    return f"{percent} CI {figure(delta.ci_low)} to {figure(delta.ci_high)}, {_p(delta.p_value)}"


def _score_check(
    name: str, limit: float, comparison: RunComparison, significance: bool
) -> GateCheck:
    check = f"min_score_delta.{name}"
    delta = comparison.scores.get(name)
    if delta is None:
        return GateCheck(
            name=check,
            passed=False,
            observed=None,
            limit=limit,
            message=f"{name}: no item has this score in both runs; nothing to judge",
        )
    said = f"{name}: mean delta {figure(delta.mean_delta)} ({_interval(delta)})"
    below = delta.mean_delta < limit
    if significance:
        failed = delta.ci_high is not None and delta.ci_high < limit
        if failed:
            verdict = f"is below {figure(limit)}"
        elif below:
            verdict = f"is below {figure(limit)}, but not significantly"
        else:
            verdict = f"is at least {figure(limit)}"
    else:
        failed = below
        verdict = f"is below {figure(limit)}" if below else f"is at least {figure(limit)}"
    return GateCheck(
        name=check,
        passed=not failed,
        observed=delta.mean_delta,
        limit=limit,
        message=f"{said} {verdict}",
    )


def _at_most(
    name: str,
    what: str,
    observed: float | None,
    limit: float,
    shown: str,
    limit_shown: str | None = None,
) -> GateCheck:
    """A check that ``observed`` is at most ``limit``; ``observed`` None (nothing to
    judge) fails, ``what`` then saying why."""
    if observed is None:
        return GateCheck(name=name, passed=False, observed=None, limit=limit, message=what)
    passed = observed <= limit
    relation = "at most" if passed else "above"
    return GateCheck(
        name=name,
        passed=passed,
        observed=observed,
        limit=limit,
        message=f"{what}: {shown} is {relation} {limit_shown or figure(limit)}",
    )


def _ratio(
    name: str,
    what: str,
    figures: Callable[[RunSummary], float | None],
    summaries: tuple[RunSummary, RunSummary],
    limit: float,
) -> GateCheck:
    baseline, candidate = (figures(summary) for summary in summaries)
    if baseline is None or candidate is None:
        sides = [
            side
            for side, value in zip(("baseline", "candidate"), (baseline, candidate), strict=True)
            if value is None
        ]
        return _at_most(name, f"{what}: the {' and the '.join(sides)} has none", None, limit, "")
    ratio = candidate / baseline if baseline else (1.0 if candidate == 0 else math.inf)
    shown = f"ratio {figure(ratio)} ({figure(candidate)} against {figure(baseline)})"
    return _at_most(name, what, ratio, limit, shown)


def judge(
    rules: GateRules,
    comparison: RunComparison,
    summaries: tuple[RunSummary, RunSummary] | None,
    regressed_items: int | None,
) -> GateVerdict:
    """The verdict of ``rules`` on a comparison -- and, where rules need them, the runs'
    summaries (baseline, candidate) and how many items regressed."""
    checks = [
        _score_check(name, limit, comparison, rules.significance)
        for name, limit in rules.min_score_delta.items()
    ]
    if rules.max_regressed_items is not None:
        checks.append(
            _at_most(
                "max_regressed_items",
                "regressed items",
                regressed_items,
                rules.max_regressed_items,
                f"{regressed_items}",
            )
        )
    if rules.max_errors_introduced is not None:
        introduced = comparison.errors_introduced
        checks.append(
            _at_most(
                "max_errors_introduced",
                "errors introduced",
                introduced,
                rules.max_errors_introduced,
                f"{introduced}",
            )
        )
    if summaries is not None:
        checks += _summary_checks(rules, summaries)
    if rules.min_items_in_both is not None:
        both = comparison.items_in_both
        passed = both >= rules.min_items_in_both
        relation = "at least" if passed else "fewer than"
        checks.append(
            GateCheck(
                name="min_items_in_both",
                passed=passed,
                observed=both,
                limit=rules.min_items_in_both,
                message=f"items in both runs: {both}, {relation} {rules.min_items_in_both}",
            )
        )
    return GateVerdict(
        passed=all(check.passed for check in checks), checks=tuple(checks), comparison=comparison
    )


def _summary_checks(rules: GateRules, summaries: tuple[RunSummary, RunSummary]) -> list[GateCheck]:
    checks = []
    if rules.max_error_rate is not None:
        candidate = summaries[1]
        rate = candidate.error_rate
        what = "candidate error rate" if rate is not None else "candidate error rate: no results"
        shown = f"{rate or 0:.2%} ({candidate.failed} of {candidate.results})"
        limit = rules.max_error_rate
        checks.append(_at_most("max_error_rate", what, rate, limit, shown, f"{limit:.2%}"))
    if rules.max_latency_p95_ratio is not None:
        checks.append(
            _ratio(
                "max_latency_p95_ratio",
                "latency p95 (ms)",
                lambda summary: summary.latency.p95,
                summaries,
                rules.max_latency_p95_ratio,
            )
        )
    if rules.max_cost_ratio is not None:
        checks.append(
            _ratio(
                "max_cost_ratio",
                "cost per result",
                lambda summary: summary.usage.cost_per_result,
                summaries,
                rules.max_cost_ratio,
            )
        )
    return checks
