"""``runstore runs gate``: a candidate run judged against its baseline, for CI.

The exit status is the verdict -- 0 passed, 1 failed -- and 2 when there is none: a usage
error, a missing run, no baseline found, an error of the database (see
:func:`~runstore.cli.common.errors_exit_with`). The verdict prints as text for a log,
Markdown for a pull request (``--summary-file`` appends the Markdown to a file whatever
the format: GitHub's ``$GITHUB_STEP_SUMMARY``), or JSON. The gate reads; it never writes
to the database.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import TypeVar

import click
from pydantic import ValidationError

from runstore.cli.common import DatabaseAddress
from runstore.cli.common import confidence_option
from runstore.cli.common import database_options
from runstore.cli.common import errors_exit_with
from runstore.cli.common import meta_option
from runstore.cli.common import meta_text
from runstore.cli.common import tags_option
from runstore.cli.comparisons import LATENCY_DIGITS
from runstore.cli.comparisons import SCORE_DIGITS
from runstore.cli.comparisons import echo_scores
from runstore.cli.output import COST_DIGITS
from runstore.cli.output import echo_json
from runstore.cli.output import echo_pairs
from runstore.cli.output import echo_table
from runstore.cli.output import number
from runstore.cli.output import one_line
from runstore.cli.output import p_value
from runstore.cli.output import percent
from runstore.cli.output import signed
from runstore.jsonvalues import JsonValue
from runstore.limits import MAX_ID_LENGTH
from runstore.models import GateRules
from runstore.models import GateVerdict
from runstore.models import PairedDelta
from runstore.models import Run
from runstore.models import RunStatus

__all__ = ["NO_VERDICT", "NoVerdict", "gate"]

NO_VERDICT = 2
"""The exit status of a gate that could not judge (a failed gate exits with 1)."""

_FORMATS = ["text", "markdown", "json"]


class NoVerdict(click.ClickException):
    """What keeps a gate from judging (a run that does not exist, no baseline found) or
    its verdict from being kept (a summary file that cannot be written)."""

    exit_code = NO_VERDICT


# -- the options -------------------------------------------------------------------------


def _refusal(exc: ValidationError) -> str:
    return str(exc.errors()[0]["msg"])


def _rule(field: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A callback that checks an option's value by :class:`GateRules`' own rule for
    ``field``: a value the gate would refuse is a usage error, found before any reading."""

    def convert(context: click.Context, parameter: click.Parameter, value: Any) -> Any:
        if value is not None:
            try:
                GateRules.model_validate({field: value})
            except ValidationError as exc:
                raise click.BadParameter(f"{_refusal(exc)}, not {value}") from None
        return value

    return convert


def _min_deltas(
    context: click.Context, parameter: click.Parameter, values: tuple[str, ...]
) -> dict[str, float]:
    """``SCORE=DELTA`` options as ``min_score_delta`` (in the order given); split at the last
    ``=``, so that a score's name may hold one."""
    deltas: dict[str, float] = {}
    for text in values:
        name, equals, figure = text.rpartition("=")
        if not equals:
            raise click.BadParameter(f"{text!r:.80} is not SCORE=DELTA")
        if not name:
            raise click.BadParameter(f"{text!r:.80} names no score")
        try:
            delta = float(figure)
        except ValueError:
            raise click.BadParameter(f"{text!r:.80}: {figure!r:.40} is not a number") from None
        if len(name) > MAX_ID_LENGTH:
            raise click.BadParameter(
                f"{name!r:.80}: a score's name has at most {MAX_ID_LENGTH} characters, "
                f"not {len(name)}"
            )
        if name in deltas:
            raise click.BadParameter(f"the score {name!r:.80} is given twice")
        try:
            GateRules.model_validate({"min_score_delta": {name: delta}})
        except ValidationError as exc:
            raise click.BadParameter(f"{text!r:.80}: {_refusal(exc)}") from None
        deltas[name] = delta
    return deltas


def _summary_file(
    context: click.Context, parameter: click.Parameter, value: str | None
) -> Path | None:
    """The file to append the Markdown to; an empty path (a variable not set, like
    ``$GITHUB_STEP_SUMMARY`` outside GitHub Actions) is a usage error, found before the
    gate reads."""
    if value is None:
        return None
    if not value:
        raise click.BadParameter("the path is empty (is the variable that names it set?)")
    return Path(value)


@dataclass(frozen=True)
class _Search:
    """What the baseline must carry, when ``find_baseline`` chooses it."""

    tags: tuple[str, ...]
    metadata: dict[str, JsonValue]
    target_id: str | None

    def criteria(self) -> str:
        """``tag main and metadata model=gpt-4o``."""
        parts = []
        if self.tags:
            parts.append(f"{'tag' if len(self.tags) == 1 else 'tags'} {', '.join(self.tags)}")
        if self.metadata:
            pairs = ", ".join(meta_text(key, value) for key, value in self.metadata.items())
            parts.append(f"metadata {pairs}")
        if self.target_id is not None:
            parts.append(f"target {self.target_id}")
        return one_line(" and ".join(parts))

    def document(self) -> dict[str, Any]:
        return {"tags": list(self.tags), "metadata": self.metadata, "target_id": self.target_id}


_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class _Limit:
    """A rule's option: its flag sets the :class:`GateRules` field of that name."""

    flag: str
    field: str
    type: type[int] | type[float]
    metavar: str
    help: str


_LIMITS = (
    _Limit(
        "--max-regressed",
        "max_regressed_items",
        int,
        "N",
        "Fail if more than N items regressed (gained an error, or any score went down).",
    ),
    _Limit(
        "--max-errors-introduced",
        "max_errors_introduced",
        int,
        "N",
        "Fail if more than N items fail in the candidate and not in the baseline.",
    ),
    _Limit(
        "--max-error-rate",
        "max_error_rate",
        float,
        "R",
        "Fail if more than this share of the candidate's results failed (0.05: 5%).",
    ),
    _Limit(
        "--max-latency-p95-ratio",
        "max_latency_p95_ratio",
        float,
        "X",
        "Fail if the candidate's latency p95 is more than X times the baseline's.",
    ),
    _Limit(
        "--max-cost-ratio",
        "max_cost_ratio",
        float,
        "X",
        "Fail if the candidate's cost per result is more than X times the baseline's.",
    ),
    _Limit(
        "--min-items", "min_items_in_both", int, "N", "Fail if fewer than N items are in both runs."
    ),
)


def _limit_options(command: _F) -> _F:
    """The options of :data:`_LIMITS`, in its order, each checked by its field's rule and
    handed to the command under the field's name."""
    for limit in reversed(_LIMITS):
        command = click.option(
            limit.flag,
            limit.field,
            type=limit.type,
            metavar=limit.metavar,
            callback=_rule(limit.field),
            help=limit.help,
        )(command)
    return command


def _baseline(
    baseline_id: str | None,
    tags: tuple[str, ...],
    metadata: dict[str, JsonValue],
    target_id: str | None,
) -> str | _Search:
    """The baseline's id when ``--baseline`` names it, else how to find it."""
    searching = bool(tags or metadata or target_id is not None)
    if baseline_id is not None and searching:
        raise click.UsageError(
            "Give --baseline RUN, or --baseline-tag, --baseline-meta and --baseline-target "
            "to find the baseline -- not both."
        )
    if baseline_id is not None:
        return baseline_id
    if not searching:
        raise click.UsageError(
            "No baseline: give --baseline RUN, or --baseline-tag TAG (with --baseline-meta "
            "KEY=VALUE, --baseline-target ID) to find the newest completed run that has them."
        )
    return _Search(tags, metadata, target_id)


# -- the command ---------------------------------------------------------------------------


@click.command()
@click.argument("candidate")
@click.option("--baseline", "baseline_id", metavar="RUN", help="Judge CANDIDATE against this run.")
@tags_option(
    "--baseline-tag",
    help=(
        "Find the baseline: the newest completed run of CANDIDATE's dataset created before "
        "it, carrying this tag (repeatable: every one given)."
    ),
)
@meta_option(
    "--baseline-meta",
    scalar=True,
    help=(
        "Find the baseline among the runs whose metadata has KEY with this value (read as "
        "--meta in `runs list` reads it; repeatable: every one given)."
    ),
)
@click.option(
    "--baseline-target", metavar="ID", help="Find the baseline among the runs against this target."
)
@click.option(
    "--min-delta",
    "min_deltas",
    multiple=True,
    metavar="SCORE=DELTA",
    callback=_min_deltas,
    help=(
        "Fail if the score's mean delta is below DELTA (accuracy=-0.01: at most a hundredth "
        "worse); with significance, only if its whole interval is (repeatable)."
    ),
)
@_limit_options
@confidence_option
@click.option(
    "--no-significance",
    is_flag=True,
    help="Fail a --min-delta on its mean delta alone, noise or not.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(_FORMATS),
    default="text",
    show_default=True,
    help="Text for a log, Markdown for a pull request, or JSON.",
)
@click.option(
    "--summary-file",
    type=click.Path(dir_okay=False),
    metavar="PATH",
    callback=_summary_file,
    help=(
        "Append the verdict as Markdown to this file, whatever --format says "
        '(GitHub Actions: "$GITHUB_STEP_SUMMARY").'
    ),
)
@database_options(reads=True)
def gate(
    database: DatabaseAddress,
    candidate: str,
    baseline_id: str | None,
    baseline_tag: tuple[str, ...],
    baseline_meta: dict[str, JsonValue],
    baseline_target: str | None,
    min_deltas: dict[str, float],
    confidence: float,
    no_significance: bool,
    output_format: str,
    summary_file: Path | None,
    **limits: float | None,
) -> None:
    """Judge run CANDIDATE against a baseline by the rules given, each a check.

    The baseline is --baseline RUN, or the newest completed run of CANDIDATE's dataset
    created before it that carries every --baseline-tag and --baseline-meta given (and,
    with --baseline-target, is against that target). A --min-delta fails, with
    significance (the default), only when the whole interval of the score's mean delta
    lies below DELTA -- so noise does not fail a build; a score one run lacks fails.

    Exit status: 0 when every check passes, 1 when one fails, 2 when there is no verdict
    (a usage error, a missing run, no baseline found, an error of the database).
    """
    errors_exit_with(NO_VERDICT)
    rules = GateRules(
        min_score_delta=min_deltas,
        significance=not no_significance,
        confidence=confidence,
        **limits,
    )
    if not _rules_given(rules):
        flags = ["--min-delta", *(limit.flag for limit in _LIMITS)]
        raise click.UsageError(f"Nothing to check: give {', '.join(flags[:-1])} or {flags[-1]}.")
    baseline = _baseline(baseline_id, baseline_tag, baseline_meta, baseline_target)
    search = None if isinstance(baseline, str) else baseline
    with database.storage() as storage:
        candidate_run = storage.get_run_by_id(candidate)
        if candidate_run is None:
            raise NoVerdict(f"the candidate run {candidate!r} does not exist")
        if isinstance(baseline, str):
            baseline_run = storage.get_run_by_id(baseline)
            if baseline_run is None:
                raise NoVerdict(f"the baseline run {baseline!r} does not exist")
        else:
            baseline_run = storage.find_baseline(
                candidate_run.id,
                tags=baseline.tags,
                metadata=baseline.metadata,
                target_id=baseline.target_id,
            )
            if baseline_run is None:
                raise NoVerdict(
                    f"no baseline for run {candidate_run.id!r}: no completed run of dataset "
                    f"{candidate_run.dataset_id!r} created before it has {baseline.criteria()}"
                )
        verdict = storage.gate_runs(baseline_run.id, candidate_run.id, rules)
    for role, run in (("candidate", candidate_run), ("baseline", baseline_run)):
        if run.status is not RunStatus.COMPLETED:
            click.echo(
                f"Warning: the {role} run {run.id!r} is {run.status.value}, not completed: "
                f"the gate judged the results written so far.",
                err=True,
            )
    judged = _Judged(verdict, rules, candidate_run, baseline_run, search)
    if output_format == "json":
        echo_json(judged.document())
    elif output_format == "markdown":
        click.echo(judged.markdown(), nl=False)
    else:
        judged.echo_text()
    if summary_file is not None:
        try:
            with summary_file.open("a", encoding="utf-8") as summary:
                summary.write(judged.markdown() + "\n")
        except OSError as exc:
            raise NoVerdict(
                f"the verdict could not be appended to {summary_file}: {exc.strerror or exc}"
            ) from exc
    if not verdict.passed:
        click.get_current_context().exit(1)


def _rules_given(rules: GateRules) -> bool:
    """Whether ``rules`` check anything (significance and confidence only qualify)."""
    qualifiers = {"significance", "confidence"}
    return bool(rules.min_score_delta) or any(
        getattr(rules, field) is not None
        for field in GateRules.model_fields
        if field not in qualifiers and field != "min_score_delta"
    )


# -- the verdict, printed ------------------------------------------------------------------


def _checks_line(verdict: GateVerdict) -> str:
    total = len(verdict.checks)
    checks = "check" if total == 1 else "checks"
    if verdict.passed:
        return f"PASS: {total} of {total} {checks} passed"
    failures = sum(1 for check in verdict.checks if not check.passed)
    return f"FAIL: {failures} of {total} {checks} failed"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#$!])")


def _markdown(text: str) -> str:
    """``text`` as literal Markdown, on one line: each character Markdown (GitHub's) would
    read as markup escaped -- ``|`` above all, which would split a table's cell."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", one_line(text))


def _row(cells: Sequence[str]) -> str:
    return f"| {' | '.join(cells)} |"


def _table(headers: Sequence[str], right: Sequence[bool], rows: Sequence[Sequence[str]]) -> str:
    lines = [_row(headers), _row(["---:" if aligned else "---" for aligned in right])]
    lines += [_row(row) for row in rows]
    return "\n".join(lines) + "\n"


def _significant(delta: PairedDelta) -> str:
    if delta.ci_low is None or delta.ci_high is None:
        return "-"
    return "yes" if delta.significant else "no"


def _observed(value: float | None) -> str:
    return number(value, 4)


@dataclass(frozen=True)
class _Judged:
    """A verdict with the runs it judged, and how the baseline was chosen."""

    verdict: GateVerdict
    rules: GateRules
    candidate: Run
    baseline: Run
    search: _Search | None

    def chosen(self) -> str:
        """How the baseline was chosen, after its name: empty when it was given."""
        if self.search is None:
            return ""
        return (
            f", the newest completed run of dataset {self.candidate.dataset_id} created "
            f"before the candidate with {self.search.criteria()}"
        )

    def document(self) -> dict[str, Any]:
        """The JSON of ``--format json``."""
        return {
            "passed": self.verdict.passed,
            "baseline_run_id": self.baseline.id,
            "candidate_run_id": self.candidate.id,
            "baseline_found_by": None if self.search is None else self.search.document(),
            "rules": self.rules.model_dump(mode="json"),
            "checks": [check.model_dump(mode="json") for check in self.verdict.checks],
            "comparison": self.verdict.comparison.model_dump(mode="json"),
            "baseline": self.baseline.model_dump(mode="json"),
            "candidate": self.candidate.model_dump(mode="json"),
        }

    def echo_text(self) -> None:
        click.echo(_checks_line(self.verdict))
        echo_pairs(
            [
                ("candidate", _run_text(self.candidate)),
                ("baseline", f"{_run_text(self.baseline)}{self.chosen()}"),
            ]
        )
        click.echo()
        echo_table(
            ["STATUS", "CHECK", "MESSAGE"],
            [
                ["PASS" if check.passed else "FAIL", one_line(check.name), one_line(check.message)]
                for check in self.verdict.checks
            ],
        )
        click.echo()
        echo_scores(self.verdict.comparison, counts=False)

    def markdown(self) -> str:
        """The verdict for a pull request: a heading, the runs, a table of the checks and
        one of the deltas with their intervals."""
        verdict, comparison = self.verdict, self.verdict.comparison
        status, said = _checks_line(verdict).split(": ", 1)
        heading = (
            f"### runstore gate {status}: {_markdown(_run_title(self.candidate))} against "
            f"{_markdown(_run_title(self.baseline))}"
        )
        runs = (
            f"{said[0].upper()}{said[1:]}. Candidate: {_markdown(_run_text(self.candidate))}. "
            f"Baseline: {_markdown(_run_text(self.baseline) + self.chosen())}. Items in both "
            f"runs: {comparison.items_in_both}, only in the baseline: "
            f"{comparison.only_in_baseline}, only in the candidate: "
            f"{comparison.only_in_candidate}."
        )
        checks = _table(
            ["Status", "Check", "Observed", "Limit", "Message"],
            [False, False, True, True, False],
            [
                [
                    "PASS" if check.passed else "**FAIL**",
                    _markdown(check.name),
                    _observed(check.observed),
                    _observed(check.limit),
                    _markdown(check.message),
                ]
                for check in verdict.checks
            ],
        )
        parts = [heading, runs, checks]
        level = percent(self.rules.confidence)
        interval = [f"{level} CI low", f"{level} CI high", "p-value", "Significant"]
        if comparison.scores:
            parts.append(
                _table(
                    ["Score", "Paired", "Baseline", "Candidate", "Delta", *interval],
                    [False, True, True, True, True, True, True, True, False],
                    [
                        [
                            _markdown(name),
                            str(score.paired),
                            number(score.baseline_mean),
                            number(score.candidate_mean),
                            *_delta_cells(score, SCORE_DIGITS),
                        ]
                        for name, score in sorted(comparison.scores.items())
                    ],
                )
            )
        else:
            parts.append("No scores in both runs.\n")
        figures = [
            (label, delta, digits)
            for label, delta, digits in (
                ("latency (ms)", comparison.latency, LATENCY_DIGITS),
                ("cost", comparison.cost, COST_DIGITS),
            )
            if delta is not None
        ]
        if figures:
            parts.append(
                _table(
                    ["Figure", "Paired", "Delta", *interval],
                    [False, True, True, True, True, True, False],
                    [
                        [label, str(delta.paired), *_delta_cells(delta, digits)]
                        for label, delta, digits in figures
                    ],
                )
            )
        return "\n".join(f"{part.rstrip()}\n" for part in parts)


def _delta_cells(delta: PairedDelta, digits: int) -> list[str]:
    """Delta, interval, p-value and significance, as cells of a Markdown table."""
    return [
        signed(delta.mean_delta, digits),
        signed(delta.ci_low, digits),
        signed(delta.ci_high, digits),
        _markdown(p_value(delta.p_value)),
        _significant(delta),
    ]


def _run_text(run: Run) -> str:
    """``id (name)``, or the id of a run without a name."""
    return run.id if run.name is None else f"{run.id} ({one_line(run.name)})"


def _run_title(run: Run) -> str:
    """A run's name, or its id."""
    return run.id if run.name is None else run.name
