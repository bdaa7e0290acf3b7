"""``runstore runs``: list, show, edit, compare, gate, trend and prune the runs in a
database.

``--json`` prints what the storage returned, as ``model_dump(mode="json")`` gives it
(snake_case keys, timestamps in ISO-8601 UTC); the keys are listed in the README.
``edit`` and ``prune`` write, so they take no read replica; the other commands only read
(a summary they compute is not kept). ``gate`` lives in :mod:`runstore.cli.gate`,
``trend`` in :mod:`runstore.cli.trends`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

import click
from pydantic import TypeAdapter
from pydantic import ValidationError

from runstore.cli.common import DatabaseAddress
from runstore.cli.common import confidence_option
from runstore.cli.common import cutoff_option
from runstore.cli.common import database_options
from runstore.cli.common import json_option
from runstore.cli.common import meta_option
from runstore.cli.common import meta_text
from runstore.cli.common import tags_option
from runstore.cli.comparisons import echo_comparison
from runstore.cli.gate import gate
from runstore.cli.output import COST_DIGITS
from runstore.cli.output import echo_json
from runstore.cli.output import echo_pairs
from runstore.cli.output import echo_table
from runstore.cli.output import moment
from runstore.cli.output import number
from runstore.cli.output import one_line
from runstore.cli.output import signed
from runstore.cli.trends import trend
from runstore.errors import RunNotFoundError
from runstore.figures import verdict
from runstore.jsonvalues import JsonValue
from runstore.limits import MAX_NAME_LENGTH
from runstore.limits import MAX_PAGE_SIZE
from runstore.models import ComparisonKind
from runstore.models import ItemComparison
from runstore.models import ListRunsInput
from runstore.models import Run
from runstore.models import RunName
from runstore.models import RunStatus
from runstore.models import RunSummary
from runstore.models import StoragePagination
from runstore.models import TargetType

__all__ = ["runs"]

_STATUSES = [status.value for status in RunStatus]
_TARGET_TYPES = [target_type.value for target_type in TargetType]
_DRY_RUN_SHOWN = 20
"""How many of the runs a dry run would delete it lists."""


@click.group()
def runs() -> None:
    """List, inspect, edit, compare, gate, trend and prune runs."""


runs.add_command(gate)
runs.add_command(trend)


def _tags(tags: Iterable[str]) -> str:
    return ", ".join(tags) or "-"


def _runs_table(shown: list[Run] | tuple[Run, ...]) -> None:
    echo_table(
        [
            "ID",
            "NAME",
            "DATASET",
            "TARGET",
            "STATUS",
            "CREATED",
            "TAGS",
            "ITEMS",
            "RESULTS",
            "OK",
            "FAILED",
        ],
        [
            [
                run.id,
                "-" if run.name is None else one_line(run.name),
                run.dataset_id,
                f"{run.target_type.value}:{run.target_id}",
                run.status.value,
                moment(run.created_at),
                one_line(_tags(run.tags)),
                str(run.total_items),
                str(run.result_count),
                str(run.succeeded_count),
                str(run.failed_count),
            ]
            for run in shown
        ],
        right=4,
    )


_RUN_NAME: TypeAdapter[str] = TypeAdapter(RunName)


def _valid_name(value: str) -> str:
    if not 1 <= len(value) <= MAX_NAME_LENGTH:
        raise click.BadParameter(
            f"{value!r:.80}: a run's name has 1 to {MAX_NAME_LENGTH} characters, not {len(value)}"
        )
    try:
        return _RUN_NAME.validate_python(value)
    except ValidationError as exc:
        raise click.BadParameter(f"{value!r:.80}: {exc.errors()[0]['msg']}") from None


def _name_filter(
    context: click.Context, parameter: click.Parameter, value: str | None
) -> str | None:
    """A run's name as a filter: a name the storage could hold."""
    return None if value is None else _valid_name(value)


@runs.command("list")
@click.option("--dataset", "dataset_id", metavar="ID", help="Only the runs of this dataset.")
@click.option("--status", type=click.Choice(_STATUSES), help="Only the runs with this status.")
@click.option(
    "--target-type", type=click.Choice(_TARGET_TYPES), help="Only runs against this kind."
)
@click.option("--target-id", metavar="ID", help="Only the runs against this target.")
@click.option(
    "--name", metavar="NAME", callback=_name_filter, help="Only the runs of this name, exactly."
)
@tags_option("--tag", help="Only the runs carrying this tag (repeatable: every one given).")
@meta_option(
    "--meta",
    scalar=True,
    help=(
        "Only the runs whose metadata has KEY with this value: read as JSON when it "
        'parses (1, true, null, "7"), else as a string; numbers equal by value '
        "(repeatable: every one given)."
    ),
)
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
    database: DatabaseAddress,
    dataset_id: str | None,
    status: str | None,
    target_type: str | None,
    target_id: str | None,
    name: str | None,
    tag: tuple[str, ...],
    meta: dict[str, JsonValue],
    limit: int,
    as_json: bool,
) -> None:
    """List runs, newest first: id, name, dataset, target, status, tags and counts."""
    query = ListRunsInput(
        dataset_id=dataset_id,
        status=status,
        target_type=target_type,
        target_id=target_id,
        name=name,
        tags=list(tag),
        metadata=meta,
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
def show(database: DatabaseAddress, run_id: str, as_json: bool) -> None:
    """Show a run and the summary of its results: counts, error rate, latency, usage
    (tokens and cost), scores."""
    with database.storage() as storage:
        run = storage.get_run_by_id(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        summary = storage.summarize_run(run_id, keep=False)  # a read command never writes
    if as_json:
        echo_json({"run": run.model_dump(mode="json"), "summary": summary.model_dump(mode="json")})
        return
    _show_run(run, summary)


def _run_pairs(run: Run) -> list[tuple[str, str]]:
    """What ``show`` and ``edit`` print of a run itself; metadata a ``KEY=VALUE`` line a
    key, as ``--meta`` takes it."""
    return [
        ("run", run.id),
        ("name", "-" if run.name is None else run.name),
        ("description", "-" if run.description is None else run.description),
        ("tags", _tags(run.tags)),
        (
            "metadata",
            "\n".join(meta_text(key, value) for key, value in run.metadata.items()) or "-",
        ),
        ("dataset", f"{run.dataset_id} (version {moment(run.dataset_version)})"),
        ("target", f"{run.target_type.value}:{run.target_id}"),
        ("status", run.status.value),
        ("created", moment(run.created_at)),
        ("started", moment(run.started_at)),
        ("completed", moment(run.completed_at)),
        ("updated", moment(run.updated_at)),
        ("items", str(run.total_items)),
    ]


def _show_run(run: Run, summary: RunSummary) -> None:
    echo_pairs(
        [
            *_run_pairs(run),
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
    usage = summary.usage
    click.echo("Usage:")
    echo_pairs(
        [
            ("input tokens", str(usage.input_tokens)),
            ("output tokens", str(usage.output_tokens)),
            ("priced results", f"{usage.priced} of {summary.results}"),
            ("cost", number(usage.cost, COST_DIGITS)),
            ("cost per result", number(usage.cost_per_result, COST_DIGITS)),
        ]
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


def _name_edit(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    """A new name for a run; ``''`` clears it."""
    return value if not value else _valid_name(value)


@runs.command()
@click.argument("run_id")
@click.option(
    "--name", metavar="NAME", callback=_name_edit, help="Name the run ('' clears its name)."
)
@click.option("--description", metavar="TEXT", help="Describe the run ('' clears its description).")
@tags_option("--tag", help="Add this tag to the run's tags (repeatable).")
@tags_option("--untag", help="Remove this tag from the run's tags (repeatable).")
@meta_option(
    "--meta",
    scalar=False,
    help=(
        "Set this top-level key of the run's metadata: VALUE is read as JSON when it "
        'parses (1, true, null, "7", [1, 2]), else as a string (repeatable).'
    ),
)
@click.option(
    "--unmeta",
    multiple=True,
    metavar="KEY",
    help="Remove this top-level key from the run's metadata (repeatable).",
)
@json_option
@database_options()
def edit(
    database: DatabaseAddress,
    run_id: str,
    name: str | None,
    description: str | None,
    tag: tuple[str, ...],
    untag: tuple[str, ...],
    meta: dict[str, JsonValue],
    unmeta: tuple[str, ...],
    as_json: bool,
) -> None:
    """Change a run's name, description, tags or metadata, and print the run as edited.

    --tag and --untag add tags to and remove them from the run's tags; --meta sets a key
    of its metadata and --unmeta removes one (a tag or key the run lacks is no error).
    What no option names stays as it is.
    """
    if name is None and description is None and not (tag or untag or meta or unmeta):
        raise click.UsageError(
            "Nothing to change: give --name, --description, --tag, --untag, --meta or --unmeta."
        )
    both_tagged = sorted(set(tag) & set(untag))
    if both_tagged:
        raise click.UsageError(f"--tag and --untag both name {', '.join(both_tagged)}.")
    both_keyed = sorted(set(meta) & set(unmeta))
    if both_keyed:
        raise click.UsageError(f"--meta and --unmeta both name {', '.join(both_keyed)}.")
    changes: dict[str, object] = {"id": run_id}
    if name is not None:
        changes["name"] = name or None
    if description is not None:
        changes["description"] = description or None
    with database.storage() as storage:
        run = storage.get_run_by_id(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        # tags and metadata are replaced whole: only the ones edited are sent
        if tag or untag:
            changes["tags"] = sorted((set(run.tags) | set(tag)) - set(untag))
        if meta or unmeta:
            metadata = {key: value for key, value in run.metadata.items() if key not in unmeta}
            changes["metadata"] = metadata | meta
        edited = storage.update_run(changes)
    if as_json:
        echo_json(edited.model_dump(mode="json"))
        return
    echo_pairs(_run_pairs(edited))


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
@confidence_option
@json_option
@database_options(reads=True)
def compare(
    database: DatabaseAddress,
    baseline: str,
    candidate: str,
    only: str | None,
    score: str | None,
    confidence: float,
    as_json: bool,
) -> None:
    """Compare run CANDIDATE against run BASELINE, their results paired by item.

    Per score, higher is better: an item improved when the candidate's score is higher.
    Each score's mean delta, and the latency's and cost's, comes with its interval and
    p-value (a paired t-test over the items): a change whose interval holds 0 may be
    noise. With --items, list the items that changed, improved or regressed -- id,
    verdict and score deltas, in item order, as they are read (--json: a JSON object a
    line).
    """
    if score is not None and only is None:
        raise click.UsageError("--score judges the items --items lists: give --items too.")
    given = click.get_current_context().get_parameter_source("confidence")
    if only is not None and given is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--confidence is of the figures' intervals: --items lists none.")
    with database.storage() as storage:
        if only is not None:
            _show_items(
                storage.iter_item_comparisons(baseline, candidate, only=only, score=score),
                score,
                as_json,
            )
            return
        comparison = storage.compare_runs(baseline, candidate, confidence=confidence)
    if as_json:
        echo_json(comparison.model_dump(mode="json"))
        return
    echo_comparison(comparison)


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


def _which(
    cutoff: datetime, status: str | None, dataset_id: str | None, tags: tuple[str, ...]
) -> str:
    scope = [f"created before {moment(cutoff)}"]
    if status is not None:
        scope.append(f"with status {status}")
    if dataset_id is not None:
        scope.append(f"of dataset {dataset_id}")
    if tags:
        scope.append(f"carrying {'tag' if len(tags) == 1 else 'tags'} {', '.join(tags)}")
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
@tags_option("--tag", help="Only the runs carrying this tag (repeatable: every one given).")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@database_options()
def prune(
    database: DatabaseAddress,
    cutoff: datetime,
    status: str | None,
    dataset_id: str | None,
    tag: tuple[str, ...],
    dry_run: bool,
    yes: bool,
) -> None:
    """Delete old runs, with their results and scores (oldest first, in short batches)."""
    which = _which(cutoff, status, dataset_id, tag)
    with database.storage() as storage:
        if dry_run or not yes:
            doomed: list[Run] = []
            count = 0
            for run in storage.iter_runs(dataset_id=dataset_id, status=status, tags=tag):
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
        deleted = storage.prune_runs(
            older_than=cutoff, status=status, dataset_id=dataset_id, tags=tag
        )
    click.echo(f"Deleted {_plural(deleted)} {which}.")
