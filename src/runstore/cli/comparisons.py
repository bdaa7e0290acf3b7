"""How the command line prints a comparison of two runs for people: each figure's change
with its interval and p-value (``runs compare``, and under a gate's checks ``runs gate``).
"""

from __future__ import annotations

import click

from runstore.cli.output import COST_DIGITS
from runstore.cli.output import echo_pairs
from runstore.cli.output import echo_table
from runstore.cli.output import number
from runstore.cli.output import one_line
from runstore.cli.output import p_value
from runstore.cli.output import percent
from runstore.cli.output import signed
from runstore.models import PairedDelta
from runstore.models import RunComparison

__all__ = ["LATENCY_DIGITS", "SCORE_DIGITS", "echo_comparison", "echo_scores", "interval"]

LATENCY_DIGITS = 1
"""Decimals of a latency, in milliseconds."""
SCORE_DIGITS = 3
"""Decimals of a score and its changes."""


def interval(delta: PairedDelta, digits: int = SCORE_DIGITS, unit: str = "") -> str:
    """``-0.05 (95% CI -0.08 to -0.02, p 0.003)``: a mean delta, its interval and p-value;
    ``(no interval: 1 item)`` where fewer than two items pair."""
    shown = f"{signed(delta.mean_delta, digits)}{unit}"
    if delta.ci_low is None or delta.ci_high is None:
        items = "1 item" if delta.paired == 1 else f"{delta.paired} items"
        return f"{shown} (no interval: {items})"
    low, high = signed(delta.ci_low, digits), signed(delta.ci_high, digits)
    p = p_value(delta.p_value)
    p = p if p.startswith("<") else f" {p}"
    return f"{shown} ({percent(delta.confidence)} CI {low} to {high}{unit}, p{p})"


def echo_comparison(comparison: RunComparison) -> None:
    """What ``runs compare`` prints: the counts, the latency's, cost's and tokens' changes
    and the table of scores."""
    pairs = [
        ("baseline", comparison.baseline_run_id),
        ("candidate", comparison.candidate_run_id),
        ("items in both", str(comparison.items_in_both)),
        ("only in baseline", str(comparison.only_in_baseline)),
        ("only in candidate", str(comparison.only_in_candidate)),
        ("errors fixed", str(comparison.errors_fixed)),
        ("errors introduced", str(comparison.errors_introduced)),
    ]
    if comparison.latency is not None:
        pairs.append(
            ("latency mean delta", interval(comparison.latency, LATENCY_DIGITS, unit=" ms"))
        )
    else:
        pairs.append(("latency mean delta", "-"))
    # only where both runs have the figure: a pipeline that records no cost sees no line
    if comparison.cost is not None:
        pairs.append(("cost mean delta", interval(comparison.cost, COST_DIGITS)))
    if comparison.tokens_mean_delta is not None:
        pairs.append(("tokens mean delta", signed(comparison.tokens_mean_delta, 1)))
    echo_pairs(pairs)
    click.echo()
    echo_scores(comparison, counts=True)


def echo_scores(comparison: RunComparison, *, counts: bool) -> None:
    """The table of scores: both means, the delta, its interval and p-value, and with
    ``counts`` how many items improved, regressed or stayed."""
    if not comparison.scores:
        click.echo("No scores in both runs.")
        return
    scores = sorted(comparison.scores.items())
    level = percent(scores[0][1].confidence)
    headers = ["SCORE", "PAIRED", "BASELINE", "CANDIDATE", "DELTA"]
    headers += [f"{level} CI LOW", f"{level} CI HIGH", "P"]
    if counts:
        headers += ["IMPROVED", "REGRESSED", "SAME"]
    rows = []
    for name, score in scores:
        row = [
            one_line(name),
            str(score.paired),
            number(score.baseline_mean),
            number(score.candidate_mean),
            signed(score.mean_delta),
            signed(score.ci_low),
            signed(score.ci_high),
            p_value(score.p_value),
        ]
        if counts:
            row += [str(score.improved), str(score.regressed), str(score.unchanged)]
        rows.append(row)
    echo_table(headers, rows, right=len(headers) - 1)
