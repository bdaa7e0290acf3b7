"""``runstore runs trend``: how a dataset's runs move, oldest first, for people (a table
with a sparkline under each figure) and for machines (a JSON object a line).

The trend reads; it never writes to the database: a run without a kept summary is
summarised for the table and its summary is not kept (``db keep-summaries`` keeps them).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass

import click

from runstore.cli.common import DatabaseAddress
from runstore.cli.common import database_options
from runstore.cli.common import json_option
from runstore.cli.common import meta_option
from runstore.cli.common import tags_option
from runstore.cli.comparisons import LATENCY_DIGITS
from runstore.cli.comparisons import SCORE_DIGITS
from runstore.cli.output import COST_DIGITS
from runstore.cli.output import echo_json_line
from runstore.cli.output import echo_table
from runstore.cli.output import moment
from runstore.cli.output import number
from runstore.cli.output import one_line
from runstore.cli.output import sparkline
from runstore.jsonvalues import JsonValue
from runstore.limits import MAX_TREND_RUNS
from runstore.models import RunStatus
from runstore.models import RunTrend
from runstore.models import TrendPoint

__all__ = ["trend"]

_STATUSES = [status.value for status in RunStatus]


@dataclass(frozen=True)
class _Figure:
    """A numeric column of the trend: its header, its value in a point, and how it prints."""

    header: str
    value: Callable[[TrendPoint], float | None]
    shown: Callable[[float | None], str]


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _mean_of(name: str) -> Callable[[TrendPoint], float | None]:
    """A point's mean of score ``name``; None where it has none."""
    return lambda point: point.scores.get(name)


def _figures(score_names: Sequence[str]) -> list[_Figure]:
    """The numeric columns, in order: the summary's headline figures, then the scores'
    means (a point without the score: ``-``)."""
    figures = [
        _Figure("RESULTS", lambda point: point.results, number),
        _Figure("ERROR RATE", lambda point: point.error_rate, _rate),
        _Figure("P50 MS", lambda point: point.latency_p50, lambda v: number(v, LATENCY_DIGITS)),
        _Figure("P95 MS", lambda point: point.latency_p95, lambda v: number(v, LATENCY_DIGITS)),
        _Figure("COST", lambda point: point.cost, lambda v: number(v, COST_DIGITS)),
        _Figure(
            "COST/RESULT", lambda point: point.cost_per_result, lambda v: number(v, COST_DIGITS)
        ),
    ]
    for name in score_names:
        figures.append(_Figure(one_line(name), _mean_of(name), lambda v: number(v, SCORE_DIGITS)))
    return figures


def _echo_trend(run_trend: RunTrend, score_names: Sequence[str]) -> None:
    """The trend as a table, a run a row, oldest first, and under each numeric column a
    sparkline of its values (one bar a run, a space where a run has none)."""
    figures = _figures(score_names)
    headers = ["RUN", "NAME", "CREATED", "STATUS", *(figure.header for figure in figures)]
    rows = []
    for point in run_trend.points:
        rows.append(
            [
                point.run_id,
                "-" if point.name is None else one_line(point.name),
                moment(point.created_at),
                point.status.value,
                *(figure.shown(figure.value(point)) for figure in figures),
            ]
        )
    sparklines = [
        sparkline([figure.value(point) for point in run_trend.points]) for figure in figures
    ]
    rows.append(["", "", "", "", *sparklines])
    echo_table(headers, rows, right=len(figures))


def _none_found(dataset_id: str, status: str | None) -> str:
    which = "completed or failed runs" if status is None else f"{status} runs"
    return f"No {which} of dataset {one_line(dataset_id)} match."


@click.command()
@click.argument("dataset_id", metavar="DATASET")
@click.option("--target", "target_id", metavar="ID", help="Only the runs against this target.")
@tags_option("--tag", help="Only the runs carrying this tag (repeatable: every one given).")
@meta_option(
    "--meta",
    scalar=True,
    help=(
        "Only the runs whose metadata has KEY with this value (read as --meta in `runs "
        "list` reads it; repeatable: every one given)."
    ),
)
@click.option(
    "--status",
    type=click.Choice(_STATUSES),
    help="Only the runs with this status (default: the finished ones, completed or failed).",
)
@click.option(
    "--last",
    type=click.IntRange(1, MAX_TREND_RUNS),
    default=20,
    show_default=True,
    help="How many runs: the newest that match, shown oldest first.",
)
@click.option(
    "--score",
    "scores",
    multiple=True,
    metavar="NAME",
    help="Show this score's mean (repeatable, in the order given; default: every score).",
)
@json_option
@database_options(reads=True)
def trend(
    database: DatabaseAddress,
    dataset_id: str,
    target_id: str | None,
    tag: tuple[str, ...],
    meta: dict[str, JsonValue],
    status: str | None,
    last: int,
    scores: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show how DATASET's runs move, oldest first: a row a run with its results, error
    rate, latency p50 and p95, cost, cost per result and each score's mean, and under
    each figure a sparkline (one bar a run, lowest to highest) so that a drift shows at a
    glance.

    By default the 20 newest finished runs (completed or failed). --json prints a JSON
    object a run, oldest first. Reads only: a summary it computes is not kept.
    """
    with database.storage() as storage:
        found = storage.trend_runs(
            dataset_id,
            target_id=target_id,
            tags=tag,
            metadata=meta,
            status=status,
            last=last,
            keep=False,
        )
    if as_json:
        for point in found.points:
            echo_json_line(point.model_dump(mode="json"))
        return
    if not found.points:
        click.echo(_none_found(dataset_id, status))
        return
    _echo_trend(found, list(dict.fromkeys(scores)) if scores else found.score_names())
