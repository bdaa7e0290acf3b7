"""``runstore runs``: list, show, compare and prune the runs in a database.

``--json`` prints what the storage returned, as ``model_dump(mode="json")`` gives it
(snake_case keys, timestamps in ISO-8601 UTC); the keys are listed in the README.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

import click

from runstore.cli.common import Database, cutoff_option, database_options, json_option
from runstore.cli.output import echo_json, echo_pairs, echo_table, moment, number, signed
from runstore.errors import RunNotFoundError
from runstore.figures import verdict
from runstore.limits import MAX_PAGE_SIZE
from runstore.models import (
    ComparisonKind,
    ItemComparison,
    ListRunsInput,
    Run,
    RunComparison,
    RunStatus,
    RunSummary,
    StoragePagination,
    TargetType,
)

__all__ = ["runs"]

_STATUSES = [status.value for status in RunStatus]
_TARGET_TYPES = [target_type.value for target_type in TargetType]
_DRY_RUN_SHOWN = 20
"""How many of the runs a dry run would delete it lists."""


@click.group()
def runs() -> None:
    """List, inspect, compare and prune runs."""


def _runs_table(shown: list[Run] | tuple[Run, ...]) -> None:
    echo_table(
        ["ID", "DATASET", "TARGET", "STATUS", "CREATED", "ITEMS", "RESULTS", "OK", "FAILED"],
        [
            [
                run.id,
                run.dataset_id,
                f"{run.target_type.value}:{run.target_id}",
                run.status.value,
                moment(run.created_at),
                str(run.total_items),
                str(run.result_count),
                str(run.succeeded_count),
                str(run.failed_count),
            ]
            for run in shown
        ],
        right=4,
    )


@runs.command("list")
@click.option("--dataset", "dataset_id", metavar="ID", help="Only the runs of this dataset.")
@click.option("--status", type=click.Choice(_STATUSES), help="Only the runs with this status.")
@click.option(
    "--target-type", type=click.Choice(_TARGET_TYPES), help="Only runs against this kind."
)
@click.option("--target-id", metavar="ID", help="Only the runs against this target.")
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_PAGE_SIZE),
    default=20,
    show_default=True,
    help="How many runs to show, newest first.",
)
@json_option
@database_options(reads=True)
def list_runs(
    database: Database,
    dataset_id: str | None,
    status: str | None,
    target_type: str | None,
    target_id: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List runs, newest first."""
    query = ListRunsInput(
        dataset_id=dataset_id,
        status=status,
        target_type=target_type,
        target_id=target_id,
        pagination=StoragePagination(per_page=limit),
    )
    with database.storage() as storage:
        page = storage.list_runs(query)
    if as_json:
        echo_json([run.model_dump(mode="json") for run in page.runs])
        return
    if not page.runs:
        click.echo("No runs.")
        return
    _runs_table(page.runs)
    if page.pagination.has_more:
        click.echo(f"({len(page.runs)} of {page.pagination.total} runs; --limit shows more)")


@runs.command()
@click.argument("run_id")
@json_option
@database_options(reads=True)
def show(database: Database, run_id: str, as_json: bool) -> None:
    """Show a run and the summary of its results: counts, error rate, latency, scores."""
    with database.storage() as storage:
        run = storage.get_run_by_id(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        summary = storage.summarize_run(run_id)
    if as_json:
        echo_json({"run": run.model_dump(mode="json"), "summary": summary.model_dump(mode="json")})
        return
    _show_run(run, summary)


def _show_run(run: Run, summary: RunSummary) -> None:
    echo_pairs(
        [
            ("run", run.id),
            ("dataset", f"{run.dataset_id} (version {moment(run.dataset_version)})"),
            ("target", f"{run.target_type.value}:{run.target_id}"),
            ("status", run.status.value),
            ("created", moment(run.created_at)),
            ("started", moment(run.started_at)),
            ("completed", moment(run.completed_at)),
            ("updated", moment(run.updated_at)),
            ("items", str(run.total_items)),
            ("results", str(summary.results)),
            ("succeeded", str(summary.succeeded)),
            ("failed", str(summary.failed)),
            (
                "error rate",
                "-" if summary.error_rate is None else f"{summary.error_rate:.1%}",
            ),
        ]
    )
    click.echo()
    latency = summary.latency
    click.echo("Latency (ms):")
    echo_table(
        ["MEAN", "MIN", "P50", "P90", "P95", "P99", "MAX"],
        [
            [
                number(value, 1)
                for value in (
                    latency.mean,
                    latency.min,
                    latency.p50,
                    latency.p90,
                    latency.p95,
                    latency.p99,
                    latency.max,
                )
            ]
        ],
        right=7,
    )
    click.echo()
    if not summary.scores:
        click.echo("No scores.")
        return
    echo_table(
        ["SCORE", "COUNT", "MEAN", "MIN", "P50", "MAX"],
        [
            [
                name,
                str(score.count),
                number(score.mean),
                number(score.min),
                number(score.p50),
                number(score.max),
            ]
            for name, score in sorted(summary.scores.items())
        ],
        right=5,
    )


_KINDS = [kind.value for kind in ComparisonKind]


@runs.command()
@click.argument("baseline")
@click.argument("candidate")
@click.option(
    "--items",
    "only",
    type=click.Choice(_KINDS),
    help="List the items with this verdict (streamed) instead of the figures.",
)
@click.option(
    "--score",
    metavar="NAME",
    help="With --items: judge items by this score alone (higher is better).",
)
@json_option
@database_options(reads=True)
def compare(
    database: Database,
    baseline: str,
    candidate: str,
    only: str | None,
    score: str | None,
    as_json: bool,
) -> None:
    """Compare run CANDIDATE against run BASELINE, their results paired by item.

    Per score, higher is better: an item improved when the candidate's score is higher.
    With --items, list the items that changed, improved or regressed -- id, verdict and
    score deltas, in item order, as they are read (--json: a JSON object a line).
    """
    if score is not None and only is None:
        raise click.UsageError("--score judges the items --items lists: give --items too.")
    with database.storage() as storage:
        if only is not None:
            _show_items(
                storage.iter_item_comparisons(baseline, candidate, only=only, score=score),
                score,
                as_json,
            )
            return
        comparison = storage.compare_runs(baseline, candidate)
    if as_json:
        echo_json(comparison.model_dump(mode="json"))
        return
    _show_comparison(comparison)


def _show_items(items: Iterable[ItemComparison], score: str | None, as_json: bool) -> None:
    """One line an item, printed as it is read: memory stays bounded on large runs."""
    shown = 0
    for item in items:
        kind = verdict(
            item.baseline_repetitions, item.candidate_repetitions, item.score_deltas, score
        )
        status = "unchanged" if kind is None else kind.value
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "item_id": item.item_id,
                        "status": status,
                        "score_deltas": item.score_deltas,
                        "baseline_result_id": None if item.baseline is None else item.baseline.id,
                        "candidate_result_id": None
                        if item.candidate is None
                        else item.candidate.id,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            if shown == 0:
                click.echo("ITEM\tSTATUS\tSCORE DELTAS")
            deltas = ", ".join(
                f"{name} {signed(delta)}" for name, delta in sorted(item.score_deltas.items())
            )
            click.echo(f"{item.item_id}\t{status}\t{deltas or '-'}")
        shown += 1
    if shown == 0 and not as_json:
        click.echo("No such items.")


def _show_comparison(comparison: RunComparison) -> None:
    delta = comparison.latency_mean_delta
    echo_pairs(
        [
            ("baseline", comparison.baseline_run_id),
            ("candidate", comparison.candidate_run_id),
            ("items in both", str(comparison.items_in_both)),
            ("only in baseline", str(comparison.only_in_baseline)),
            ("only in candidate", str(comparison.only_in_candidate)),
            ("errors fixed", str(comparison.errors_fixed)),
            ("errors introduced", str(comparison.errors_introduced)),
            ("latency mean delta", "-" if delta is None else f"{signed(delta, 1)} ms"),
        ]
    )
    click.echo()
    if not comparison.scores:
        click.echo("No scores in both runs.")
        return
    echo_table(
        ["SCORE", "PAIRED", "BASELINE", "CANDIDATE", "DELTA", "IMPROVED", "REGRESSED", "SAME"],
        [
            [
                name,
                str(score.paired),
                number(score.baseline_mean),
                number(score.candidate_mean),
                signed(score.mean_delta),
                str(score.improved),
                str(score.regressed),
                str(score.unchanged),
            ]
            for name, score in sorted(comparison.scores.items())
        ],
        right=7,
    )


def _which(cutoff: datetime, status: str | None, dataset_id: str | None) -> str:
    scope = [f"created before {moment(cutoff)}"]
    if status is not None:
        scope.append(f"with status {status}")
    if dataset_id is not None:
        scope.append(f"of dataset {dataset_id}")
    return ", ".join(scope)


def _plural(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


@runs.command()
@cutoff_option(
    "--older-than",
    "cutoff",
    help=(
        "Delete the runs created before this: an age (90m, 12h, 30d, 2w) or an ISO-8601 "
        "timestamp with a time zone."
    ),
)
@click.option("--status", type=click.Choice(_STATUSES), help="Only the runs with this status.")
@click.option("--dataset", "dataset_id", metavar="ID", help="Only the runs of this dataset.")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@database_options()
def prune(
    database: Database,
    cutoff: datetime,
    status: str | None,
    dataset_id: str | None,
    dry_run: bool,
    yes: bool,
) -> None:
    """Delete old runs, with their results and scores (oldest first, in short batches)."""
    which = _which(cutoff, status, dataset_id)
    with database.storage() as storage:
        if dry_run or not yes:
            doomed: list[Run] = []
            count = 0
            for run in storage.iter_runs(dataset_id=dataset_id, status=status):
                if run.created_at < cutoff:
                    count += 1
                    if len(doomed) < _DRY_RUN_SHOWN:
                        doomed.append(run)
            if count == 0:
                click.echo(f"No runs {which}.")
                return
            if dry_run:
                click.echo(f"Would delete {_plural(count)} {which}:")
                _runs_table(doomed)
                if count > len(doomed):
                    click.echo(f"... and {count - len(doomed)} more")
                return
            click.confirm(
                f"Delete {_plural(count)} {which}, with their results and scores?",
                abort=True,
            )
        deleted = storage.prune_runs(older_than=cutoff, status=status, dataset_id=dataset_id)
    click.echo(f"Deleted {_plural(deleted)} {which}.")
