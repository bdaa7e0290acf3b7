"""The ``runstore`` command, driven through click's test runner on real databases."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from click.testing import Result
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from runstore import TABLE_SCHEMAS
from runstore import Run
from runstore import SqlRunsStorage
from runstore.cli import main
from runstore.cli.common import meta_text
from runstore.cli.common import parse_meta
from runstore.migrations import VERSION_TABLE
from runstore.migrations import head_revision
from runstore.testing.inputs import FrozenClock
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input
from runstore.testing.properties import DERANDOMIZED

NOW = datetime.now(UTC)


def invoke(*arguments: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    """Run ``runstore ARGUMENTS``; stdout and stderr apart, the URL only from arguments."""
    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        runner = CliRunner()  # click >= 8.2 keeps stderr apart always
    environment = {
        "RUNSTORE_DATABASE_URL": None,
        "RUNSTORE_SCHEMA": None,
        "RUNSTORE_READ_REPLICAS": None,
        **(env or {}),
    }
    return runner.invoke(main, list(arguments), input=input, env=environment)


def ok(*arguments: str, **options: object) -> Result:
    result = invoke(*arguments, **options)  # type: ignore[arg-type]
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def failed(*arguments: str, exit_code: int = 1, error: bool = True, **options: object) -> Result:
    """Run a command that must fail with ``exit_code`` and no traceback: with ``error``
    and exit status 1, one ``Error: ...`` line on stderr."""
    result = invoke(*arguments, **options)  # type: ignore[arg-type]
    assert result.exit_code == exit_code, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stderr + result.stdout
    if exit_code == 1 and error:
        assert result.stderr.startswith("Error: "), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
    return result


def not_at_head(url: str, **options: object) -> Result:
    """``db current --check-head`` on a database that is not at head: exit status 3."""
    return failed(
        "db", "current", "--check-head", "--url", url, exit_code=3, error=False, **options
    )


def table_names(url: str, schema: str | None = None) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names(schema=schema))
    finally:
        engine.dispose()


# -- db ----------------------------------------------------------------------------------


def test_upgrade_current_and_check_head(empty_url: str) -> None:
    before = not_at_head(empty_url)
    assert before.stdout == ""
    assert "has no runstore schema" in before.stderr
    assert ok("db", "current", "--url", empty_url).stdout == ""  # without --check-head: 0

    upgraded = ok("db", "upgrade", "--url", empty_url)
    assert f"revision {head_revision()} (head)" in upgraded.stdout
    assert set(TABLE_SCHEMAS) | {VERSION_TABLE} <= table_names(empty_url)

    assert ok("db", "current", "--check-head", "--url", empty_url).stdout == f"{head_revision()}\n"
    assert "No new upgrade operations detected" in ok("db", "check", "--url", empty_url).stdout
    ok("db", "upgrade", "--url", empty_url)  # at head already: nothing to do

    ok("db", "downgrade", "0003_scores_and_answers", "--url", empty_url)
    assert ok("db", "current", "--url", empty_url).stdout == "0003_scores_and_answers\n"
    behind = not_at_head(empty_url)
    assert behind.stdout == "0003_scores_and_answers\n"
    assert "is at revision 0003_scores_and_answers" in behind.stderr
    failed("db", "check", "--url", empty_url)  # not up to date

    ok("db", "downgrade", "base", "--url", empty_url)
    assert not set(TABLE_SCHEMAS) & table_names(empty_url)
    ok("db", "upgrade", "0002_run_filter_indexes", "--url", empty_url)
    assert ok("db", "current", "--url", empty_url).stdout == "0002_run_filter_indexes\n"
    ok("db", "upgrade", "--url", empty_url)
    ok("db", "current", "--check-head", "--url", empty_url)


def test_check_head_tells_an_unreachable_database_from_one_behind() -> None:
    """Not at head exits 3; a database that cannot be reached is an error, exit 1."""
    unreachable = "postgresql+psycopg://runstore:secret@127.0.0.1:9/nowhere?connect_timeout=2"
    refused = failed("db", "current", "--check-head", "--url", unreachable)
    assert "secret" not in refused.stderr


def test_check_finds_a_schema_changed_by_hand(sqlite_url: str) -> None:
    ok("db", "upgrade", "--url", sqlite_url)
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(sa.text('DROP INDEX "ix_mastra_dataset_runs_createdAt_id"'))
    engine.dispose()
    assert "New upgrade operations detected" in failed("db", "check", "--url", sqlite_url).stderr


def test_history_lists_every_revision_and_marks_the_current_one(sqlite_url: str) -> None:
    listed = ok("db", "history").stdout
    assert listed.index(head_revision()) < listed.index("0001_initial")
    assert "(current)" not in listed
    ok("db", "upgrade", "0003_scores_and_answers", "--url", sqlite_url)
    marked = ok("db", "history", "--url", sqlite_url).stdout
    (line,) = [line for line in marked.splitlines() if "(current)" in line]
    assert "-> 0003_scores_and_answers" in line


def test_an_unknown_revision_is_an_error(sqlite_url: str) -> None:
    ok("db", "upgrade", "--url", sqlite_url)
    assert "nope" in failed("db", "downgrade", "nope", "--url", sqlite_url).stderr


def test_a_downgrade_that_would_lose_rows_refuses(sqlite_url: str) -> None:
    ok("db", "upgrade", "--url", sqlite_url)
    storage = SqlRunsStorage(sqlite_url)
    run = storage.create_run(run_input())
    storage.add_result(result_input(run, scores={"accuracy": 0.5}))
    storage.close()
    refused = failed("db", "downgrade", "0002_run_filter_indexes", "--url", sqlite_url)
    assert "scores" in refused.stderr
    assert ok("db", "current", "--check-head", "--url", sqlite_url).stdout == f"{head_revision()}\n"


@pytest.mark.postgres
def test_a_postgres_schema_from_the_option_or_the_environment(
    new_postgres_url: Callable[[], str],
) -> None:
    url = new_postgres_url()
    ok("db", "upgrade", "--url", url, "--schema", "evals")
    assert set(TABLE_SCHEMAS) <= table_names(url, schema="evals")
    assert not set(TABLE_SCHEMAS) & table_names(url)
    from_environment = {"RUNSTORE_DATABASE_URL": url, "RUNSTORE_SCHEMA": "evals"}
    assert ok("db", "current", "--check-head", env=from_environment).stdout == (
        f"{head_revision()}\n"
    )
    ok("db", "check", env=from_environment)
    not_at_head(url)  # the public schema has none
    assert ok("runs", "list", "--json", env=from_environment).stdout == "[]\n"
    ok("db", "downgrade", "base", "--url", url, "--schema", "evals")
    assert not set(TABLE_SCHEMAS) & table_names(url, schema="evals")


def test_a_schema_on_sqlite_is_refused(sqlite_url: str) -> None:
    refused = failed("db", "upgrade", "--url", sqlite_url, "--schema", "evals")
    assert "Postgres setting" in refused.stderr


# -- runs ----------------------------------------------------------------------------------


@dataclass
class Seeded:
    url: str
    old_completed: Run
    old_failed: Run
    old_other_dataset: Run
    recent: Run
    baseline: Run
    candidate: Run


def _storage_at(url: str, moment: datetime) -> SqlRunsStorage:
    return SqlRunsStorage(url, clock=FrozenClock(moment))


@pytest.fixture
def seeded(empty_url: str) -> Seeded:
    """Runs 40 days old (two of dataset-1, one of dataset-2), one a day old, and a
    baseline and a candidate an hour old with results and scores."""
    url = empty_url
    ok("db", "upgrade", "--url", url)

    def create(age: timedelta, status: str, **fields: object) -> Run:
        storage = _storage_at(url, NOW - age)
        try:
            run = storage.create_run(run_input(**fields))
            return storage.update_run({"id": run.id, "status": status})
        finally:
            storage.close()

    old_completed = create(timedelta(days=40), "completed")
    old_failed = create(timedelta(days=40, minutes=1), "failed")
    old_other_dataset = create(timedelta(days=41), "completed", dataset_id="dataset-2")
    recent = create(timedelta(days=1), "completed")
    baseline = create(timedelta(hours=2), "completed", target_id="agent-2", total_items=4)
    candidate = create(timedelta(hours=1), "running", target_id="agent-2", total_items=4)

    storage = SqlRunsStorage(url)
    # baseline: items 0-3, item 1 fails; candidate: items 0-2 and 4, item 2 fails
    storage.add_results(
        [
            result_input(
                baseline,
                item,
                latency=100.0 + item,
                error="boom" if item == 1 else None,
                scores={"accuracy": 0.5},
            )
            for item in range(4)
        ],
        update_counts=True,
    )
    storage.add_results(
        [
            result_input(
                candidate,
                item,
                latency=90.0 + item,
                error="boom" if item == 2 else None,
                scores={"accuracy": 0.75 if item == 0 else 0.25 if item == 1 else 0.5},
            )
            for item in (0, 1, 2, 4)
        ],
        update_counts=True,
    )
    storage.close()
    return Seeded(url, old_completed, old_failed, old_other_dataset, recent, baseline, candidate)


def _ids(url: str) -> list[str]:
    storage = SqlRunsStorage(url)
    try:
        return [run.id for run in storage.iter_runs()]
    finally:
        storage.close()


def _pairs(printed: str) -> dict[str, str]:
    """The ``label  value`` lines that open ``printed`` (up to the first blank line), by
    label; a value's further lines joined to it with newlines."""
    block = printed.split("\n\n")[0].splitlines()
    start = re.match(r"\S+(?: \S+)*  +", block[0])
    assert start is not None, block[0]
    column = start.end()
    pairs: dict[str, str] = {}
    label = ""
    for line in block:
        if line[:column].strip():
            label = line[:column].strip()
            pairs[label] = line[column:]
        else:
            pairs[label] += "\n" + line[column:]
    return pairs


def test_runs_list_newest_first_as_a_table_and_as_json(seeded: Seeded) -> None:
    newest_first = _ids(seeded.url)
    assert newest_first[0] == seeded.candidate.id
    assert newest_first[-1] == seeded.old_other_dataset.id

    lines = ok("runs", "list", "--url", seeded.url).stdout.splitlines()
    assert lines[0].split() == [
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
    ]
    assert [line.split()[0] for line in lines[1:]] == newest_first
    candidate_row = lines[1].split()
    assert candidate_row[1:5] == ["-", "dataset-1", "agent:agent-2", "running"]
    assert candidate_row[-5:-4] == ["-"]  # no tags
    assert candidate_row[-4:] == ["4", "4", "3", "1"]
    # aligned: the counts to the right, so every line ends at the same column
    assert len({len(line) for line in lines}) == 1
    created = lines[0].index("CREATED")
    for line in lines[1:]:
        datetime.strptime(line[created : created + 20] + "+0000", "%Y-%m-%d %H:%M:%SZ%z")

    listed = json.loads(ok("runs", "list", "--json", "--url", seeded.url).stdout)
    storage = SqlRunsStorage(seeded.url)
    expected = [run.model_dump(mode="json") for run in storage.iter_runs()]
    storage.close()
    assert listed == expected
    assert list(listed[0]) == list(Run.model_fields)


def test_runs_list_filters_and_limit(seeded: Seeded) -> None:
    def listed(*arguments: str) -> list[str]:
        output = ok("runs", "list", "--json", "--url", seeded.url, *arguments).stdout
        return [run["id"] for run in json.loads(output)]

    assert listed("--dataset", "dataset-2") == [seeded.old_other_dataset.id]
    assert listed("--status", "failed") == [seeded.old_failed.id]
    assert listed("--target-id", "agent-2") == [seeded.candidate.id, seeded.baseline.id]
    assert listed("--target-type", "workflow") == []
    assert listed("--dataset", "dataset-1", "--status", "completed", "--limit", "2") == [
        seeded.baseline.id,
        seeded.recent.id,
    ]
    limited = ok("runs", "list", "--limit", "2", "--url", seeded.url).stdout.splitlines()
    assert len(limited) == 4
    assert limited[-1] == "(2 of 6 runs; --limit shows more)"
    assert ok("runs", "list", "--dataset", "none", "--url", seeded.url).stdout == "No runs.\n"
    failed("runs", "list", "--status", "done", "--url", seeded.url, exit_code=2)
    failed("runs", "list", "--limit", "0", "--url", seeded.url, exit_code=2)


def test_runs_show_the_run_and_its_summary(seeded: Seeded) -> None:
    shown = ok("runs", "show", seeded.candidate.id, "--url", seeded.url).stdout
    pairs = _pairs(shown)
    assert pairs["run"] == seeded.candidate.id
    assert pairs["error rate"] == "25.0%"
    assert pairs["target"] == "agent:agent-2"
    assert [pairs[label] for label in ("name", "description", "tags", "metadata")] == ["-"] * 4
    latency = shown.splitlines()[shown.splitlines().index("Latency (ms):") + 2].split()
    assert latency == ["91.8", "90", "91.5", "93.4", "93.7", "93.9", "94"]  # 90, 91, 92, 94
    (accuracy,) = [line.split() for line in shown.splitlines() if line.startswith("accuracy")]
    assert accuracy == ["accuracy", "4", "0.5", "0.25", "0.5", "0.75"]

    document = json.loads(
        ok("runs", "show", seeded.candidate.id, "--json", "--url", seeded.url).stdout
    )
    storage = SqlRunsStorage(seeded.url)
    run = storage.get_run_by_id(seeded.candidate.id)
    summary = storage.summarize_run(seeded.candidate.id)
    storage.close()
    assert run is not None
    assert document == {
        "run": run.model_dump(mode="json"),
        "summary": summary.model_dump(mode="json"),
    }
    assert document["summary"]["error_rate"] == 0.25

    empty = ok("runs", "show", seeded.recent.id, "--url", seeded.url).stdout
    assert _pairs(empty)["error rate"] == "-"
    assert "No scores." in empty

    missing = failed("runs", "show", "no-such-run", "--url", seeded.url)
    assert missing.stderr == "Error: run 'no-such-run' does not exist\n"


def test_runs_compare(seeded: Seeded) -> None:
    compared = ok(
        "runs", "compare", seeded.baseline.id, seeded.candidate.id, "--url", seeded.url
    ).stdout
    pairs = dict(line.rsplit("  ", 1) for line in compared.split("\n\n")[0].splitlines())
    assert {label.strip(): value.strip() for label, value in pairs.items()} == {
        "baseline": seeded.baseline.id,
        "candidate": seeded.candidate.id,
        "items in both": "3",
        "only in baseline": "1",
        "only in candidate": "1",
        "errors fixed": "1",
        "errors introduced": "1",
        # every item 10 ms faster: no spread, so the interval is the delta itself
        "latency mean delta": "-10 ms (95% CI -10 to -10 ms, p<0.001)",
    }
    header, accuracy = compared.split("\n\n")[1].splitlines()
    assert re.split(r"  +", header) == [
        "SCORE",
        "PAIRED",
        "BASELINE",
        "CANDIDATE",
        "DELTA",
        "95% CI LOW",
        "95% CI HIGH",
        "P",
        "IMPROVED",
        "REGRESSED",
        "SAME",
    ]
    # deltas +0.25, -0.25 and 0: the interval from SciPy, -0.6210 to +0.6210, p 1
    assert accuracy.split() == [
        "accuracy",
        "3",
        "0.5",
        "0.5",
        "0",
        "-0.621",
        "+0.621",
        "1",
        "1",
        "1",
        "1",
    ]

    document = json.loads(
        ok(
            "runs",
            "compare",
            seeded.baseline.id,
            seeded.candidate.id,
            "--json",
            "--url",
            seeded.url,
        ).stdout
    )
    storage = SqlRunsStorage(seeded.url)
    expected = storage.compare_runs(seeded.baseline.id, seeded.candidate.id)
    storage.close()
    assert document == expected.model_dump(mode="json")
    assert document["scores"]["accuracy"]["improved"] == 1
    assert document["scores"]["accuracy"]["ci_high"] == pytest.approx(0.6210344279375825)
    assert document["latency"]["p_value"] == 0.0

    unknown = failed("runs", "compare", seeded.baseline.id, "no-such-run", "--url", seeded.url)
    assert unknown.stderr == "Error: run 'no-such-run' does not exist\n"
    failed("runs", "compare", seeded.baseline.id, "--url", seeded.url, exit_code=2)


def test_runs_compare_lists_the_items(seeded: Seeded) -> None:
    ids = (seeded.baseline.id, seeded.candidate.id)
    regressed = ok("runs", "compare", *ids, "--items", "regressed", "--url", seeded.url).stdout
    assert regressed.splitlines() == [
        "ITEM\tSTATUS\tSCORE DELTAS",
        "item-1\tregressed\taccuracy -0.25",
        "item-2\tregressed\taccuracy 0",
    ]
    changed = ok("runs", "compare", *ids, "--items", "changed", "--json", "--url", seeded.url)
    lines = [json.loads(line) for line in changed.stdout.splitlines()]
    assert [(line["item_id"], line["status"]) for line in lines] == [
        ("item-0", "improved"),
        ("item-1", "regressed"),
        ("item-2", "regressed"),
        ("item-3", "changed"),
        ("item-4", "changed"),
    ]
    assert lines[0]["score_deltas"] == {"accuracy": 0.25}
    assert lines[3]["candidate_result_id"] is None
    assert lines[3]["baseline_result_id"] is not None
    by_score = ok(
        "runs", "compare", *ids, "--items", "improved", "--score", "accuracy", "--url", seeded.url
    ).stdout
    assert by_score.splitlines()[1:] == ["item-0\timproved\taccuracy +0.25"]
    nothing = ok(
        "runs", "compare", *ids, "--items", "improved", "--score", "fluency", "--url", seeded.url
    )
    assert nothing.stdout == "No such items.\n"
    refused = failed(
        "runs", "compare", *ids, "--score", "accuracy", "--url", seeded.url, exit_code=2
    )
    assert "--items" in refused.stderr
    failed("runs", "compare", *ids, "--items", "better", "--url", seeded.url, exit_code=2)
    refused = failed(
        "runs",
        "compare",
        *ids,
        "--items",
        "changed",
        "--confidence",
        "0.9",
        "--url",
        seeded.url,
        exit_code=2,
    )
    assert "--items lists none" in refused.stderr
    unknown = failed(
        "runs", "compare", ids[0], "no-such-run", "--items", "changed", "--url", seeded.url
    )
    assert unknown.stderr == "Error: run 'no-such-run' does not exist\n"


def test_prune_dry_run_deletes_nothing(seeded: Seeded) -> None:
    before = _ids(seeded.url)
    shown = ok("runs", "prune", "--older-than", "30d", "--dry-run", "--url", seeded.url).stdout
    assert shown.startswith("Would delete 3 runs created before ")
    listed = [line.split()[0] for line in shown.splitlines()[2:]]
    assert listed == [seeded.old_completed.id, seeded.old_failed.id, seeded.old_other_dataset.id]
    assert _ids(seeded.url) == before

    only_failed = ok(
        "runs",
        "prune",
        "--older-than",
        "30d",
        "--status",
        "failed",
        "--dry-run",
        "--url",
        seeded.url,
    ).stdout
    assert only_failed.startswith("Would delete 1 run created before ")
    assert "with status failed" in only_failed
    assert _ids(seeded.url) == before


def test_prune_with_yes_deletes_exactly_the_old_runs(seeded: Seeded) -> None:
    deleted = ok(
        "runs",
        "prune",
        "--older-than",
        "30d",
        "--dataset",
        "dataset-1",
        "--yes",
        "--url",
        seeded.url,
    ).stdout
    assert deleted.startswith("Deleted 2 runs created before ")
    assert _ids(seeded.url) == [
        seeded.candidate.id,
        seeded.baseline.id,
        seeded.recent.id,
        seeded.old_other_dataset.id,
    ]
    cutoff = (NOW - timedelta(hours=1, minutes=30)).isoformat()
    assert ok("runs", "prune", "--older-than", cutoff, "-y", "--url", seeded.url).stdout.startswith(
        "Deleted 3 runs"
    )
    assert _ids(seeded.url) == [seeded.candidate.id]
    storage = SqlRunsStorage(seeded.url)
    assert len(list(storage.iter_results(seeded.candidate.id))) == 4
    storage.close()
    nothing = ok("runs", "prune", "--older-than", "2w", "--url", seeded.url).stdout
    assert nothing.startswith("No runs created before ")


def test_prune_asks_first(seeded: Seeded) -> None:
    before = _ids(seeded.url)
    declined = invoke("runs", "prune", "--older-than", "30d", "--url", seeded.url, input="n\n")
    assert declined.exit_code == 1
    assert "Delete 3 runs created before " in declined.stdout
    assert _ids(seeded.url) == before

    no_answer = invoke("runs", "prune", "--older-than", "30d", "--url", seeded.url, input="")
    assert no_answer.exit_code == 1
    assert _ids(seeded.url) == before

    accepted = ok("runs", "prune", "--older-than", "30d", "--url", seeded.url, input="y\n")
    assert "Deleted 3 runs" in accepted.stdout
    assert _ids(seeded.url) == before[:3]


@pytest.mark.parametrize(
    "older_than",
    [
        "30",
        "30x",
        "d",
        "-3d",
        "0d",
        "2026-11-01",
        "2026-11-01T00:00:00",
        "yesterday",
        "9" * 30 + "w",
    ],
)
def test_a_malformed_older_than_is_a_usage_error(sqlite_url: str, older_than: str) -> None:
    ok("db", "upgrade", "--url", sqlite_url)
    refused = failed(
        "runs", "prune", "--older-than", older_than, "--yes", "--url", sqlite_url, exit_code=2
    )
    assert "--older-than" in refused.stderr


@pytest.mark.parametrize(
    "older_than", ["90m", "12h", "30d", "2w", "2026-11-01T00:00:00Z", "2026-11-01T02:00:00+02:00"]
)
def test_every_form_of_older_than_is_taken(sqlite_url: str, older_than: str) -> None:
    ok("db", "upgrade", "--url", sqlite_url)
    ok("runs", "prune", "--older-than", older_than, "--dry-run", "--url", sqlite_url)


# -- names, tags, metadata and usage --------------------------------------------------------


@dataclass
class Described:
    url: str
    tagged: Run
    flagged: Run
    plain: Run


@pytest.fixture
def described(empty_url: str) -> Described:
    """Three runs, newest first: ``plain`` (no name or tags), ``flagged`` and ``tagged``
    -- named, tagged, with metadata, and results with tokens and costs."""
    url = empty_url
    ok("db", "upgrade", "--url", url)

    def create(age: timedelta, **fields: object) -> Run:
        with _storage_at(url, NOW - age) as storage:
            return storage.create_run(run_input(**fields))

    tagged = create(
        timedelta(hours=3),
        id="tagged",
        name="nightly gpt-4o",
        description="The nightly run.\nPrompt v2.",
        tags=["prod", "nightly"],
        metadata={"model": "gpt-4o", "n": 1.0, "flag": 1, "commit": "1234567", "v": "1.10"},
    )
    flagged = create(
        timedelta(hours=2),
        id="flagged",
        tags=["nightly"],
        metadata={"model": "gpt-4o-mini", "n": 2, "flag": True, "cfg": {"t": 0.2}},
    )
    plain = create(timedelta(hours=1), id="plain", metadata={"reviewer": None})
    with SqlRunsStorage(url) as storage:
        # tagged: items 0-2 priced, item 3 neither priced nor counted
        storage.add_results(
            [
                result_input(
                    tagged,
                    item,
                    input_tokens=100 + item,
                    output_tokens=10,
                    cost=0.002 * (item + 1),
                    trace_id=f"trace-{item}",
                )
                for item in range(3)
            ]
            + [result_input(tagged, 3)],
            update_counts=True,
        )
        storage.add_results(
            [
                result_input(flagged, item, input_tokens=120, output_tokens=10, cost=0.001)
                for item in range(3)
            ],
            update_counts=True,
        )
    return Described(url, tagged, flagged, plain)


def _stored(url: str, run_id: str) -> Run:
    with SqlRunsStorage(url) as storage:
        run = storage.get_run_by_id(run_id)
    assert run is not None
    return run


def test_runs_list_shows_names_and_tags(described: Described) -> None:
    lines = ok("runs", "list", "--url", described.url).stdout.splitlines()
    name, tags = lines[0].index("NAME"), lines[0].index("TAGS")
    dataset, items = lines[0].index("DATASET"), lines[0].index("ITEMS")
    rows = {line.split()[0]: line for line in lines[1:]}
    assert list(rows) == ["plain", "flagged", "tagged"]
    assert rows["tagged"][name:dataset].strip() == "nightly gpt-4o"
    assert rows["tagged"][tags:items].strip() == "nightly, prod"
    assert rows["flagged"][name:dataset].strip() == "-"
    assert rows["flagged"][tags:items].strip() == "nightly"
    assert rows["plain"][tags:items].strip() == "-"

    listed = json.loads(ok("runs", "list", "--json", "--url", described.url).stdout)
    assert listed[2]["name"] == "nightly gpt-4o"
    assert listed[2]["tags"] == ["nightly", "prod"]
    assert listed[2]["metadata"]["commit"] == "1234567"
    assert listed == [
        _stored(described.url, run_id).model_dump(mode="json")
        for run_id in ("plain", "flagged", "tagged")
    ]


def test_a_name_with_a_line_break_keeps_its_row_on_one_line(described: Described) -> None:
    ok("runs", "edit", "plain", "--name", "two\nlines", "--tag", "a\tb", "--url", described.url)
    lines = ok("runs", "list", "--url", described.url).stdout.splitlines()
    assert len(lines) == 4
    assert "two lines" in lines[1]
    assert "a b" in lines[1]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["--name", "nightly gpt-4o"], ["tagged"]),
        (["--name", "nightly"], []),
        (["--tag", "nightly"], ["flagged", "tagged"]),
        (["--tag", "nightly", "--tag", "prod"], ["tagged"]),
        (["--tag", "prod", "--tag", "prod"], ["tagged"]),
        (["--tag", "nightly", "--tag", "staging"], []),
        (["--meta", "n=1"], ["tagged"]),  # 1 matches the stored 1.0
        (["--meta", "n=1.0"], ["tagged"]),
        (["--meta", "n=2.0"], ["flagged"]),
        (["--meta", "flag=true"], ["flagged"]),  # true never matches 1
        (["--meta", "flag=1"], ["tagged"]),
        (["--meta", "model=gpt-4o"], ["tagged"]),  # not JSON: the string
        (["--meta", 'model="gpt-4o-mini"'], ["flagged"]),
        (["--meta", "commit=1234567"], []),  # JSON: the number, not the stored string
        (["--meta", 'commit="1234567"'], ["tagged"]),
        (["--meta", "v=1.10"], []),
        (["--meta", 'v="1.10"'], ["tagged"]),
        (["--meta", "reviewer=null"], ["plain"]),
        (["--meta", "missing=null"], []),
        (["--meta", "model=gpt-4o", "--meta", "n=1"], ["tagged"]),
        (["--tag", "nightly", "--meta", "model=gpt-4o-mini"], ["flagged"]),
        (["--tag", "nightly", "--meta", "n=1", "--name", "nightly gpt-4o"], ["tagged"]),
        (["--tag", "nightly", "--meta", "n=3"], []),
    ],
)
def test_runs_list_filters_by_name_tags_and_metadata(
    described: Described, filters: list[str], expected: list[str]
) -> None:
    output = ok("runs", "list", "--json", "--url", described.url, *filters).stdout
    assert [run["id"] for run in json.loads(output)] == expected


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (["--meta", "model"], "is not KEY=VALUE"),
        (["--meta", "=gpt-4o"], "has no key"),
        (["--meta", 'cfg={"t": 0.2}'], "not an object"),
        (["--meta", "cfg=[1, 2]"], "not a list"),
        (["--meta", "n=1", "--meta", "n=2"], "given twice"),
        (["--meta", "n=1e999"], "too large"),
        (["--meta", "n=" + "9" * 5000], "digits"),
        (["--tag", ""], "1 to 64 characters"),
        (["--tag", "t" * 65], "1 to 64 characters"),
        ([arg for n in range(65) for arg in ("--tag", f"t{n}")], "at most 64 tags"),
        (["--name", ""], "1 to 256 characters"),
        (["--name", "n" * 257], "1 to 256 characters"),
    ],
)
def test_a_malformed_filter_is_a_usage_error(
    sqlite_url: str, filters: list[str], message: str
) -> None:
    ok("db", "upgrade", "--url", sqlite_url)
    refused = failed("runs", "list", *filters, "--url", sqlite_url, exit_code=2)
    assert message in refused.stderr
    assert f"Invalid value for '{filters[0]}'" in refused.stderr


def test_an_object_filter_says_how_to_match_the_text(sqlite_url: str) -> None:
    ok("db", "upgrade", "--url", sqlite_url)
    refused = failed("runs", "list", "--meta", "cfg={}", "--url", sqlite_url, exit_code=2)
    assert "a filter compares a JSON scalar" in refused.stderr
    assert 'cfg="{}"' in refused.stderr


def test_runs_show_prints_name_tags_metadata_and_usage(described: Described) -> None:
    shown = ok("runs", "show", "tagged", "--url", described.url).stdout
    pairs = _pairs(shown)
    assert pairs["name"] == "nightly gpt-4o"
    assert pairs["description"] == "The nightly run.\nPrompt v2."
    assert pairs["tags"] == "nightly, prod"
    # a key a line, as --meta takes it back (in the order the database keeps the keys)
    assert sorted(pairs["metadata"].splitlines()) == [
        'commit="1234567"',
        "flag=1",
        "model=gpt-4o",
        "n=1.0",
        'v="1.10"',
    ]
    usage = shown.split("Usage:\n")[1].split("\n\n")[0]
    assert _pairs(usage) == {
        "input tokens": "303",
        "output tokens": "30",
        "priced results": "3 of 4",
        "cost": "0.012",
        "cost per result": "0.004",
    }

    plain = ok("runs", "show", "plain", "--url", described.url).stdout
    assert _pairs(plain)["metadata"] == "reviewer=null"
    assert _pairs(plain.split("Usage:\n")[1]) == {
        "input tokens": "0",
        "output tokens": "0",
        "priced results": "0 of 0",
        "cost": "-",
        "cost per result": "-",
    }

    document = json.loads(ok("runs", "show", "tagged", "--json", "--url", described.url).stdout)
    with SqlRunsStorage(described.url) as storage:
        summary = storage.summarize_run("tagged")
    assert document["run"] == _stored(described.url, "tagged").model_dump(mode="json")
    assert document["summary"] == summary.model_dump(mode="json")
    assert document["summary"]["usage"]["priced"] == 3


def test_runs_compare_prints_the_cost_and_token_deltas(described: Described) -> None:
    compared = ok("runs", "compare", "tagged", "flagged", "--url", described.url).stdout
    pairs = _pairs(compared)
    # 0.001 against 0.002, 0.004, 0.006: SciPy's interval -0.007968 to +0.001968, p 0.1217
    assert pairs["cost mean delta"] == "-0.003 (95% CI -0.007968 to +0.001968, p 0.122)"
    assert pairs["tokens mean delta"] == "+19"  # 130 against 110, 111, 112
    document = json.loads(
        ok("runs", "compare", "tagged", "flagged", "--json", "--url", described.url).stdout
    )
    assert document["cost_mean_delta"] == pytest.approx(-0.003)
    assert document["cost"]["paired"] == 3
    assert document["tokens_mean_delta"] == 19
    # at 80% the interval no longer holds 0: SciPy's -0.005177 to -0.000823
    at_80 = ok(
        "runs", "compare", "tagged", "flagged", "--confidence", "0.8", "--url", described.url
    )
    assert _pairs(at_80.stdout)["cost mean delta"] == (
        "-0.003 (80% CI -0.005177 to -0.000823, p 0.122)"
    )
    for confidence in ("0", "1", "nan", "95"):
        refused = failed(
            "runs",
            "compare",
            "tagged",
            "flagged",
            "--confidence",
            confidence,
            "--url",
            described.url,
            exit_code=2,
        )
        assert "between 0 and 1" in refused.stderr
    unpriced = _pairs(ok("runs", "compare", "tagged", "plain", "--url", described.url).stdout)
    assert "cost mean delta" not in unpriced
    assert "tokens mean delta" not in unpriced


def test_runs_edit_adds_and_removes_tags_and_keys(described: Described) -> None:
    url = described.url
    before = _stored(url, "tagged")
    edited = ok(
        "runs",
        "edit",
        "tagged",
        "--tag",
        "reviewed",
        "--tag",
        "nightly",  # carried already
        "--untag",
        "prod",
        "--untag",
        "never-there",
        "--meta",
        "n=3",
        "--meta",
        'cfg={"t": 0.5, "stop": ["\\n"]}',
        "--meta",
        "model=gpt-5",
        "--unmeta",
        "flag",
        "--unmeta",
        "never-there",
        "--url",
        url,
    ).stdout
    after = _stored(url, "tagged")
    assert after.tags == ("nightly", "reviewed")
    assert after.metadata == {
        "model": "gpt-5",
        "n": 3,
        "commit": "1234567",
        "v": "1.10",
        "cfg": {"t": 0.5, "stop": ["\n"]},
    }
    assert (after.name, after.description) == (before.name, before.description)
    assert after.updated_at > before.updated_at
    pairs = _pairs(edited)
    assert pairs["run"] == "tagged"
    assert pairs["tags"] == "nightly, reviewed"
    assert 'cfg={"t": 0.5, "stop": ["\\n"]}' in pairs["metadata"].splitlines()
    assert "Usage:" not in edited

    # what show prints of the metadata sets it again unchanged
    lines = _pairs(ok("runs", "show", "tagged", "--url", url).stdout)["metadata"].splitlines()
    ok("runs", "edit", "tagged", *[arg for line in lines for arg in ("--meta", line)], "--url", url)
    assert _stored(url, "tagged").metadata == after.metadata
    as_json = ok("runs", "edit", "tagged", "--tag", "x", "--json", "--url", url).stdout
    assert json.loads(as_json) == _stored(url, "tagged").model_dump(mode="json")

    # only what is named changes: tags alone leave the metadata, and the other way round
    ok("runs", "edit", "flagged", "--untag", "nightly", "--url", url)
    flagged = _stored(url, "flagged")
    assert flagged.tags == ()
    assert flagged.metadata == described.flagged.metadata
    ok("runs", "edit", "flagged", "--unmeta", "cfg", "--unmeta", "n", "--url", url)
    assert _stored(url, "flagged").metadata == {"model": "gpt-4o-mini", "flag": True}
    for key in ("model", "flag"):
        ok("runs", "edit", "flagged", "--unmeta", key, "--url", url)
    assert _stored(url, "flagged").metadata == {}
    assert _pairs(ok("runs", "show", "flagged", "--url", url).stdout)["metadata"] == "-"


def test_runs_edit_sets_and_clears_the_name_and_description(described: Described) -> None:
    url = described.url
    shown = ok(
        "runs", "edit", "plain", "--name", "smoke test", "--description", "By hand.", "--url", url
    ).stdout
    assert (_pairs(shown)["name"], _pairs(shown)["description"]) == ("smoke test", "By hand.")
    plain = _stored(url, "plain")
    assert (plain.name, plain.description, plain.tags) == ("smoke test", "By hand.", ())
    assert plain.metadata == {"reviewer": None}

    ok("runs", "edit", "plain", "--name", "", "--url", url)
    plain = _stored(url, "plain")
    assert (plain.name, plain.description) == (None, "By hand.")
    ok("runs", "edit", "plain", "--description", "", "--url", url)
    assert _stored(url, "plain").description is None
    assert ok("runs", "list", "--name", "smoke test", "--json", "--url", url).stdout == "[]\n"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "Nothing to change"),
        (["--meta", "model"], "is not KEY=VALUE"),
        (["--meta", "=1"], "has no key"),
        (["--meta", "n=1", "--meta", "n=2"], "given twice"),
        (["--meta", "n=1e999"], "too large"),
        (["--tag", "x", "--untag", "x"], "--tag and --untag both name x"),
        (["--meta", "n=1", "--unmeta", "n"], "--meta and --unmeta both name n"),
        (["--tag", ""], "1 to 64 characters"),
        (["--name", "n" * 257], "1 to 256 characters"),
        (["--tag", "x", "--read-replica", "postgresql+psycopg://r@127.0.0.1:1/x"], "No such"),
    ],
)
def test_runs_edit_refuses_bad_input_and_writes_nothing(
    described: Described, arguments: list[str], message: str
) -> None:
    before = _stored(described.url, "tagged")
    refused = failed("runs", "edit", "tagged", *arguments, "--url", described.url, exit_code=2)
    assert message in refused.stderr
    assert _stored(described.url, "tagged") == before


def test_runs_edit_of_a_missing_run_or_past_the_limits_is_an_error(described: Described) -> None:
    url = described.url
    missing = failed("runs", "edit", "no-such-run", "--tag", "x", "--url", url)
    assert missing.stderr == "Error: run 'no-such-run' does not exist\n"
    assert _ids(url) == ["plain", "flagged", "tagged"]

    before = _stored(url, "tagged")  # 2 tags: 63 more are one too many
    many = [arg for n in range(63) for arg in ("--tag", f"t{n}")]
    refused = failed("runs", "edit", "tagged", *many, "--url", url)
    assert "at most 64 tags" in refused.stderr
    assert _stored(url, "tagged") == before
    ok("runs", "edit", "tagged", *many[:-2], "--url", url)
    assert len(_stored(url, "tagged").tags) == 64


def test_runs_edit_writes_to_the_primary_never_a_replica(described: Described) -> None:
    """An edit takes no --read-replica, and ignores RUNSTORE_READ_REPLICAS: it reads the
    run it changes where it writes it."""
    unreachable = {"RUNSTORE_READ_REPLICAS": "postgresql+psycopg://r@127.0.0.1:1/replica"}
    ok("runs", "edit", "tagged", "--tag", "reviewed", "--url", described.url, env=unreachable)
    assert "reviewed" in _stored(described.url, "tagged").tags


def test_prune_by_tag(described: Described) -> None:
    url = described.url
    dry = ok(
        "runs", "prune", "--older-than", "90m", "--tag", "nightly", "--dry-run", "--url", url
    ).stdout
    assert dry.startswith("Would delete 2 runs created before ")
    assert "carrying tag nightly:" in dry
    assert [line.split()[0] for line in dry.splitlines()[2:]] == ["flagged", "tagged"]
    both = ok(
        "runs",
        "prune",
        "--older-than",
        "90m",
        "--tag",
        "nightly",
        "--tag",
        "prod",
        "--yes",
        "--url",
        url,
    ).stdout
    assert both.startswith("Deleted 1 run created before ")
    assert "carrying tags nightly, prod." in both
    assert _ids(url) == ["plain", "flagged"]
    nothing = ok("runs", "prune", "--older-than", "90m", "--tag", "prod", "--url", url).stdout
    assert nothing.startswith("No runs created before ")
    asked = invoke(
        "runs", "prune", "--older-than", "90m", "--tag", "nightly", "--url", url, input="n\n"
    )
    assert "Delete 1 run created before " in asked.stdout
    assert _ids(url) == ["plain", "flagged"]
    failed("runs", "prune", "--older-than", "90m", "--tag", "", "--url", url, exit_code=2)


json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
)
texts = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))


@settings(derandomize=DERANDOMIZED)
@given(
    key=texts.filter(lambda key: key != "" and "=" not in key),
    value=texts
    | json_scalars
    | st.lists(json_scalars | texts, max_size=3)
    | st.dictionaries(texts, json_scalars | texts, max_size=3),
)
def test_metadata_as_shown_is_read_back_as_it_is(key: str, value: object) -> None:
    """``runs show`` prints a key of metadata as ``--meta`` takes it back."""
    assert parse_meta(meta_text(key, value)) == (key, value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("k=1", 1),
        ("k=-2.5", -2.5),
        ("k=true", True),
        ("k=null", None),
        ('k="1"', "1"),
        ("k=gpt-4o", "gpt-4o"),
        ("k=", ""),
        ("k=NaN", "NaN"),  # not JSON
        ("k==", "="),
        ("k=a=b", "a=b"),
        ("k= 7 ", 7),
        ('k={"a": [1]}', {"a": [1]}),
    ],
)
def test_meta_values_are_read_as_json_when_they_parse(text: str, value: object) -> None:
    assert parse_meta(text) == ("k", value)


# -- the gate ------------------------------------------------------------------------------

GATE_ITEMS = 30
GATE_NAME = "main | nightly\nv2"
"""The baseline's name: a pipe and a line break, which Markdown must escape."""


def _gate_delta(item: int) -> float:
    """The candidate's change of score ``s`` on an item: widely spread around a mean of
    -0.01 -- below a limit of -0.005, with an interval (about -0.12 to +0.10) that is not."""
    return -0.01 + (0.3 if item % 2 == 0 else -0.3)


@pytest.fixture
def gated(empty_url: str) -> str:
    """Runs of dataset-1, oldest first: ``old-main`` and ``main`` (completed, tagged main,
    30 scored items), ``other-target`` (tagged main, against agent-2), ``main-failed``,
    the candidate ``pr-7`` (item 0 failing) and ``later-main`` (created after it)."""
    url = empty_url
    ok("db", "upgrade", "--url", url)

    def create(age: timedelta, status: str = "completed", **fields: object) -> Run:
        with _storage_at(url, NOW - age) as storage:
            run = storage.create_run(run_input(total_items=GATE_ITEMS, **fields))
            return storage.update_run({"id": run.id, "status": status})

    old_main = create(
        timedelta(hours=6), id="old-main", tags=["main"], metadata={"branch": "main", "model": "a"}
    )
    main = create(
        timedelta(hours=5),
        id="main",
        name=GATE_NAME,
        tags=["main", "nightly"],
        metadata={"branch": "main", "model": "b"},
    )
    create(timedelta(hours=4), id="other-target", tags=["main"], target_id="agent-2")
    create(timedelta(hours=3), "failed", id="main-failed", tags=["main"])
    candidate = create(timedelta(hours=1), id="pr-7", name="pr 7", tags=["pr-7"])
    create(timedelta(minutes=30), id="later-main", tags=["main"])
    with SqlRunsStorage(url) as storage:
        for run, score in ((old_main, 0.4), (main, 0.5)):
            storage.add_results(
                [
                    result_input(run, item, latency=100.0, cost=0.01, scores={"s": score, "x|y": 1})
                    for item in range(GATE_ITEMS)
                ],
                update_counts=True,
            )
        storage.add_results(
            [
                result_input(
                    candidate,
                    item,
                    latency=110.0,
                    cost=0.012,
                    error="boom" if item == 0 else None,
                    scores={"s": 0.5 + _gate_delta(item), "x|y": 1},
                )
                for item in range(GATE_ITEMS)
            ],
            update_counts=True,
        )
    return url


def _every_run(url: str) -> list[dict[str, object]]:
    with SqlRunsStorage(url) as storage:
        return [run.model_dump() for run in storage.iter_runs()]


def _gate(url: str, *arguments: str, exit_code: int = 0) -> Result:
    """``runs gate ARGUMENTS`` on ``url``, which must exit with ``exit_code``; a failed
    gate (1) says so on stdout, not as an error."""
    return failed("runs", "gate", *arguments, "--url", url, exit_code=exit_code, error=False)


def _markdown_tables(text: str) -> list[list[list[str]]]:
    """The tables of a Markdown text: rows of cells (header, alignment, data), split at
    each pipe not escaped."""
    tables: list[list[list[str]]] = []
    rows: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            assert line.endswith(" |"), line
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
        elif rows:
            assert len({len(row) for row in rows}) == 1, rows  # every row as wide
            tables.append(rows)
            rows = []
    return tables


EVERY_RULE = [
    "--min-delta",
    "s=-0.05",
    "--max-regressed",
    "16",
    "--max-errors-introduced",
    "1",
    "--max-error-rate",
    "0.05",
    "--max-latency-p95-ratio",
    "1.2",
    "--max-cost-ratio",
    "1.5",
    "--min-items",
    "30",
]


def test_runs_gate_passes_with_exit_0_and_writes_nothing(gated: str) -> None:
    before = _every_run(gated)
    printed = _gate(gated, "pr-7", "--baseline", "main", *EVERY_RULE).stdout
    head, checks, scores = printed.split("\n\n")
    first, runs_block = head.split("\n", 1)
    assert first == "PASS: 7 of 7 checks passed"
    assert _pairs(runs_block) == {
        "candidate": "pr-7 (pr 7)",
        "baseline": "main (main | nightly v2)",
    }
    rows = [re.split(r"  +", line, maxsplit=2) for line in checks.splitlines()]
    assert rows[0] == ["STATUS", "CHECK", "MESSAGE"]
    assert [row[:2] for row in rows[1:]] == [
        ["PASS", "min_score_delta.s"],
        ["PASS", "max_regressed_items"],
        ["PASS", "max_errors_introduced"],
        ["PASS", "max_error_rate"],
        ["PASS", "max_latency_p95_ratio"],
        ["PASS", "max_cost_ratio"],
        ["PASS", "min_items_in_both"],
    ]
    assert rows[2][2] == "regressed items: 16 is at most 16"  # 15 scored lower, 1 failed
    assert rows[4][2] == "candidate error rate: 3.33% (1 of 30) is at most 5.00%"
    header, *score_rows = scores.splitlines()
    assert re.split(r"  +", header) == [
        "SCORE",
        "PAIRED",
        "BASELINE",
        "CANDIDATE",
        "DELTA",
        "95% CI LOW",
        "95% CI HIGH",
        "P",
    ]
    assert score_rows[0].split()[:5] == ["s", "30", "0.5", "0.49", "-0.01"]
    assert score_rows[1].split() == ["x|y", "30", "1", "1", "0", "0", "0", "1"]
    assert _every_run(gated) == before
    # a gate reads: it takes read replicas like the other read commands
    assert "--read-replica" in ok("runs", "gate", "--help").stdout


def test_runs_gate_fails_with_exit_1_in_every_format(gated: str) -> None:
    rules = ["--min-delta", "s=-0.005", "--no-significance", "--max-regressed", "10"]
    rules += ["--max-error-rate", "0.05"]
    text = _gate(gated, "pr-7", "--baseline", "main", *rules, exit_code=1)
    assert text.stdout.startswith("FAIL: 2 of 3 checks failed\n")
    assert text.stderr == ""
    statuses = [line.split()[:2] for line in text.stdout.split("\n\n")[1].splitlines()[1:]]
    assert statuses == [
        ["FAIL", "min_score_delta.s"],
        ["FAIL", "max_regressed_items"],
        ["PASS", "max_error_rate"],
    ]

    as_json = _gate(gated, "pr-7", "--baseline", "main", *rules, "--format", "json", exit_code=1)
    document = json.loads(as_json.stdout)
    with SqlRunsStorage(gated) as storage:
        expected = storage.gate_runs(
            "main",
            "pr-7",
            {
                "min_score_delta": {"s": -0.005},
                "significance": False,
                "max_regressed_items": 10,
                "max_error_rate": 0.05,
            },
        )
        main, candidate = storage.get_run_by_id("main"), storage.get_run_by_id("pr-7")
    assert main is not None
    assert candidate is not None
    assert list(document) == [
        "passed",
        "baseline_run_id",
        "candidate_run_id",
        "baseline_found_by",
        "rules",
        "checks",
        "comparison",
        "baseline",
        "candidate",
    ]
    assert document["passed"] is False
    assert (document["baseline_run_id"], document["candidate_run_id"]) == ("main", "pr-7")
    assert document["baseline_found_by"] is None
    assert document["rules"]["max_regressed_items"] == 10
    assert document["rules"]["significance"] is False
    assert document["checks"] == [check.model_dump(mode="json") for check in expected.checks]
    assert document["checks"][1]["observed"] == 16
    assert document["comparison"] == expected.comparison.model_dump(mode="json")
    assert document["baseline"] == main.model_dump(mode="json")
    assert document["candidate"] == candidate.model_dump(mode="json")

    markdown = _gate(
        gated, "pr-7", "--baseline", "main", *rules, "--format", "markdown", exit_code=1
    ).stdout
    lines = markdown.splitlines()
    assert lines[0] == r"### runstore gate FAIL: pr 7 against main \| nightly v2"
    assert lines[2].startswith(r"2 of 3 checks failed. Candidate: pr-7 (pr 7). Baseline: main")
    checks, scores, figures = _markdown_tables(markdown)
    assert checks[0] == ["Status", "Check", "Observed", "Limit", "Message"]
    assert checks[1] == ["---", "---", "---:", "---:", "---"]
    assert [row[:4] for row in checks[2:]] == [
        ["**FAIL**", r"min\_score\_delta.s", "-0.01", "-0.005"],
        ["**FAIL**", r"max\_regressed\_items", "16", "10"],
        ["PASS", r"max\_error\_rate", "0.0333", "0.05"],
    ]
    assert checks[2][4].startswith("s: mean delta -0.01 (95% CI -0.1")
    assert scores[0] == [
        "Score",
        "Paired",
        "Baseline",
        "Candidate",
        "Delta",
        "95% CI low",
        "95% CI high",
        "p-value",
        "Significant",
    ]
    score = expected.comparison.scores["s"]
    assert score.ci_low is not None
    assert score.ci_high is not None
    assert scores[2] == [
        "s",
        "30",
        "0.5",
        "0.49",
        "-0.01",
        f"{score.ci_low:.3f}",
        f"+{score.ci_high:.3f}",
        f"{score.p_value:.3f}",
        "no",
    ]
    assert scores[3] == [r"x\|y", "30", "1", "1", "0", "0", "0", "1", "no"]
    assert [row[:3] + row[-2:] for row in figures[2:]] == [
        ["latency (ms)", "30", "+10", r"\<0.001", "yes"],
        ["cost", "30", "+0.002", r"\<0.001", "yes"],
    ]


def test_noise_fails_a_gate_only_without_significance(gated: str) -> None:
    """The mean delta (-0.01) is below the limit, its interval (to about +0.10) is not."""
    noisy = _gate(gated, "pr-7", "--baseline", "main", "--min-delta", "s=-0.005").stdout
    assert noisy.startswith("PASS: 1 of 1 check passed\n")
    assert "is below -0.005, but not significantly" in noisy
    strict = ["--min-delta", "s=-0.005", "--no-significance"]
    failing = _gate(gated, "pr-7", "--baseline", "main", *strict, exit_code=1).stdout
    assert failing.startswith("FAIL: 1 of 1 check failed\n")
    assert "is below -0.005\n" in failing
    # significance at a lower confidence: the interval narrows, and still holds the limit
    _gate(gated, "pr-7", "--baseline", "main", "--min-delta", "s=-0.005", "--confidence", "0.5")
    # a real loss fails with significance too: 0.4 against 0.5 on every item
    lost = _gate(gated, "old-main", "--baseline", "main", "--min-delta", "s=-0.01", exit_code=1)
    assert "s: mean delta -0.1 (95% CI -0.1 to -0.1, p=0) is below -0.01" in lost.stdout


def test_an_unknown_score_fails_its_check(gated: str) -> None:
    rules = ["--min-delta", "accuracy=0", "--min-delta", "s=-0.5"]
    failing = _gate(gated, "pr-7", "--baseline", "main", *rules, exit_code=1).stdout
    rows = [re.split(r"  +", line, maxsplit=2) for line in failing.split("\n\n")[1].splitlines()]
    assert rows[1] == [
        "FAIL",
        "min_score_delta.accuracy",
        "accuracy: no item has this score in both runs; nothing to judge",
    ]
    assert rows[2][:2] == ["PASS", "min_score_delta.s"]


def test_runs_gate_finds_the_baseline(gated: str) -> None:
    def chosen(*search: str) -> dict[str, object]:
        printed = _gate(gated, "pr-7", *search, "--min-items", "0", "--format", "json").stdout
        document = json.loads(printed)
        return {"id": document["baseline_run_id"], "by": document["baseline_found_by"]}

    # the newest completed run before the candidate: not main-failed, not later-main
    assert chosen("--baseline-tag", "main") == {
        "id": "other-target",
        "by": {"tags": ["main"], "metadata": {}, "target_id": None},
    }
    assert chosen("--baseline-tag", "main", "--baseline-tag", "nightly")["id"] == "main"
    assert chosen("--baseline-meta", "branch=main")["id"] == "main"
    assert chosen("--baseline-tag", "main", "--baseline-meta", "model=a") == {
        "id": "old-main",
        "by": {"tags": ["main"], "metadata": {"model": "a"}, "target_id": None},
    }
    assert chosen("--baseline-tag", "main", "--baseline-target", "agent-1")["id"] == "main"

    text = _gate(gated, "pr-7", "--baseline-tag", "nightly", "--min-items", "30").stdout
    assert _pairs(text.split("\n", 1)[1])["baseline"] == (
        "main (main | nightly v2), the newest completed run of dataset dataset-1 created "
        "before the candidate with tag nightly"
    )
    markdown = _gate(
        gated, "pr-7", "--baseline-tag", "nightly", "--min-items", "30", "--format", "markdown"
    ).stdout
    assert r"Baseline: main (main \| nightly v2), the newest completed run of dataset" in markdown

    search = ["--baseline-tag", "main", "--baseline-meta", "model=c", "--min-items", "0"]
    none = _gate(gated, "pr-7", *search, exit_code=2)
    assert none.stdout == ""
    assert none.stderr == (
        "Error: no baseline for run 'pr-7': no completed run of dataset 'dataset-1' created "
        "before it has tag main and metadata model=c\n"
    )
    oldest = _gate(gated, "old-main", "--baseline-tag", "main", "--min-items", "0", exit_code=2)
    assert "no baseline for run 'old-main'" in oldest.stderr


def test_runs_gate_appends_its_markdown_to_the_summary_file(gated: str, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# Evaluations\n\n")
    failing = ["pr-7", "--baseline", "main", "--max-regressed", "0"]
    passing = ["pr-7", "--baseline-tag", "nightly", "--min-items", "30"]
    _gate(gated, *failing, "--summary-file", str(summary), exit_code=1)
    _gate(gated, *passing, "--summary-file", str(summary), "--format", "json")
    written = summary.read_text()
    first = _gate(gated, *failing, "--format", "markdown", exit_code=1).stdout
    second = _gate(gated, *passing, "--format", "markdown").stdout
    assert written == f"# Evaluations\n\n{first}\n{second}\n"
    assert first.startswith("### runstore gate FAIL: ")
    assert second.startswith("### runstore gate PASS: ")

    created = tmp_path / "new" / "summary.md"
    created.parent.mkdir()
    _gate(gated, *passing, "--summary-file", str(created))
    assert created.read_text() == f"{second}\n"
    # no verdict, no summary: a usage error, a missing run, no baseline found
    for refused in (
        ["pr-7", "--baseline", "main"],
        ["pr-7", "--baseline", "main", "--max-error-rate", "2"],
        ["no-such-run", "--baseline", "main", "--min-items", "1"],
        ["pr-7", "--baseline-tag", "nope", "--min-items", "1"],
    ):
        _gate(gated, *refused, "--summary-file", str(created), exit_code=2)
        _gate(gated, *refused, "--summary-file", str(tmp_path / "never.md"), exit_code=2)
    assert created.read_text() == f"{second}\n"
    assert not (tmp_path / "never.md").exists()
    unwritable = _gate(
        gated, *passing, "--summary-file", str(tmp_path / "no" / "dir.md"), exit_code=2
    )
    assert unwritable.stdout.startswith("PASS: ")  # the verdict is printed all the same
    assert "could not be appended to" in unwritable.stderr


def test_runs_gate_without_a_verdict_exits_2(gated: str) -> None:
    before = _every_run(gated)
    missing = _gate(gated, "no-such-run", "--baseline", "main", "--min-items", "1", exit_code=2)
    assert missing.stderr == "Error: the candidate run 'no-such-run' does not exist\n"
    missing = _gate(gated, "pr-7", "--baseline", "no-such-run", "--min-items", "1", exit_code=2)
    assert missing.stderr == "Error: the baseline run 'no-such-run' does not exist\n"
    missing = _gate(gated, "no-such-run", "--baseline-tag", "main", "--min-items", "1", exit_code=2)
    assert missing.stderr == "Error: the candidate run 'no-such-run' does not exist\n"
    itself = _gate(gated, "pr-7", "--baseline", "pr-7", "--min-items", "1", exit_code=2)
    assert itself.stderr == (
        "Error: a run cannot be gated against itself: baseline and candidate are both 'pr-7'\n"
    )
    for result in (missing, itself):
        assert result.stdout == ""
    assert _every_run(gated) == before


def test_runs_gate_warns_of_a_run_not_completed(gated: str) -> None:
    with SqlRunsStorage(gated) as storage:
        storage.update_run({"id": "pr-7", "status": "running"})
    warned = _gate(gated, "pr-7", "--baseline", "main", "--min-items", "30", "--format", "json")
    assert json.loads(warned.stdout)["passed"] is True  # stdout stays JSON
    assert warned.stderr == (
        "Warning: the candidate run 'pr-7' is running, not completed: the gate judged the "
        "results written so far.\n"
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--baseline", "main"], "Nothing to check"),
        (["--baseline", "main", "--confidence", "0.9", "--no-significance"], "Nothing to check"),
        (["--min-items", "1"], "No baseline: give --baseline RUN, or --baseline-tag"),
        (["--baseline", "main", "--baseline-tag", "main", "--min-items", "1"], "not both"),
        (["--baseline", "main", "--baseline-meta", "k=1", "--min-items", "1"], "not both"),
        (["--baseline-meta", "k", "--min-items", "1"], "is not KEY=VALUE"),
        (["--baseline-tag", "", "--min-items", "1"], "1 to 64 characters"),
        (["--baseline", "main", "--min-delta", "s"], "is not SCORE=DELTA"),
        (["--baseline", "main", "--min-delta", "=0.1"], "names no score"),
        (["--baseline", "main", "--min-delta", "s=x"], "'x' is not a number"),
        (["--baseline", "main", "--min-delta", "s=nan"], "finite number"),
        (["--baseline", "main", "--min-delta", "s=-inf"], "finite number"),
        (["--baseline", "main", "--min-delta", "s=1", "--min-delta", "s=2"], "given twice"),
        (["--baseline", "main", "--min-delta", "s" * 257 + "=0"], "at most 256 characters"),
        (["--baseline", "main", "--max-regressed", "-1"], "greater than or equal to 0"),
        (["--baseline", "main", "--max-regressed", "1.5"], "is not a valid integer"),
        (["--baseline", "main", "--max-errors-introduced", "-2"], "greater than or equal to 0"),
        (["--baseline", "main", "--max-error-rate", "1.5"], "less than or equal to 1"),
        (["--baseline", "main", "--max-error-rate", "-0.1"], "greater than or equal to 0"),
        (["--baseline", "main", "--max-error-rate", "nan"], "finite number"),
        (["--baseline", "main", "--max-latency-p95-ratio", "0"], "greater than 0"),
        (["--baseline", "main", "--max-latency-p95-ratio", "inf"], "finite number"),
        (["--baseline", "main", "--max-cost-ratio", "-1"], "greater than 0"),
        (["--baseline", "main", "--min-items", "-3"], "greater than or equal to 0"),
        (["--baseline", "main", "--min-items", "1", "--confidence", "0"], "between 0 and 1"),
        (["--baseline", "main", "--min-items", "1", "--confidence", "1"], "between 0 and 1"),
        (["--baseline", "main", "--min-items", "1", "--confidence", "nan"], "between 0 and 1"),
        (["--baseline", "main", "--min-items", "1", "--format", "html"], "'html' is not one of"),
        (["--baseline", "main", "--min-items", "1", "--summary-file", ""], "the path is empty"),
    ],
)
def test_runs_gate_refuses_bad_usage(
    sqlite_url: str, tmp_path: Path, arguments: list[str], message: str
) -> None:
    ok("db", "upgrade", "--url", sqlite_url)
    summary = tmp_path / "summary.md"
    refused = _gate(sqlite_url, "pr-7", "--summary-file", str(summary), *arguments, exit_code=2)
    assert message in refused.stderr
    assert refused.stderr.startswith("Usage: ")
    assert not summary.exists()


def test_an_infinite_ratio_is_null_in_json(sqlite_url: str) -> None:
    """A baseline that cost nothing: the ratio is infinite, which JSON cannot hold."""
    ok("db", "upgrade", "--url", sqlite_url)
    with SqlRunsStorage(sqlite_url) as storage:
        free, priced = storage.create_run(run_input(id="free")), storage.create_run(run_input())
        storage.add_results([result_input(free, 0, cost=0.0), result_input(priced, 0, cost=0.01)])
    arguments = [priced.id, "--baseline", "free", "--max-cost-ratio", "2"]
    text = _gate(sqlite_url, *arguments, exit_code=1).stdout
    assert "cost per result: ratio inf (0.01 against 0) is above 2" in text
    document = json.loads(
        _gate(sqlite_url, *arguments, "--format", "json", exit_code=1).stdout,
        parse_constant=lambda name: pytest.fail(f"not JSON: {name}"),
    )
    (check,) = document["checks"]
    assert (check["observed"], check["limit"], check["passed"]) == (None, 2, False)
    markdown = _gate(sqlite_url, *arguments, "--format", "markdown", exit_code=1).stdout
    assert _markdown_tables(markdown)[0][2][:4] == ["**FAIL**", r"max\_cost\_ratio", "inf", "2"]


def test_a_gate_that_cannot_reach_its_database_exits_2() -> None:
    url = "postgresql+psycopg://runstore:s3cret-Passw0rd@127.0.0.1:1/evals"
    refused = _gate(url, "pr-7", "--baseline", "main", "--min-items", "1", exit_code=2)
    assert refused.stderr.startswith("Error: ")
    assert refused.stderr.count("\n") == 1
    assert "s3cret-Passw0rd" not in refused.stderr
    assert "runstore:***@127.0.0.1:1/evals" in refused.stderr


# -- errors and the environment -------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        ["db", "upgrade"],
        ["db", "current"],
        ["db", "check"],
        ["runs", "list"],
        ["runs", "show", "some-run"],
        ["runs", "edit", "some-run", "--tag", "reviewed"],
        ["runs", "prune", "--older-than", "30d", "--yes"],
    ],
)
def test_no_message_shows_the_password(arguments: list[str]) -> None:
    url = "postgresql+psycopg://runstore:s3cret-Passw0rd@127.0.0.1:1/evals"
    refused = failed(*arguments, "--url", url)
    assert "s3cret-Passw0rd" not in refused.stderr + refused.stdout
    assert "runstore:***@127.0.0.1:1/evals" in refused.stderr


def test_the_url_comes_from_the_environment(sqlite_url: str, tmp_path: Path) -> None:
    environment = {"RUNSTORE_DATABASE_URL": sqlite_url}
    ok("db", "upgrade", env=environment)
    assert ok("db", "current", "--check-head", env=environment).stdout == f"{head_revision()}\n"
    other = f"sqlite:///{tmp_path / 'other.db'}"
    ok("db", "upgrade", "--url", other, env=environment)  # the option wins
    assert (tmp_path / "other.db").exists()
    assert "RUNSTORE_DATABASE_URL" in failed("runs", "list", exit_code=2).stderr


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    assert "no database at" in failed("runs", "list", "--url", url).stderr
    assert not_at_head(url).stdout == ""
    for arguments in (
        ["db", "downgrade", "base"],
        ["db", "check"],
        ["runs", "show", "a-run"],
        ["runs", "edit", "a-run", "--tag", "reviewed"],
    ):
        assert "no database at" in failed(*arguments, "--url", url).stderr
    assert "(current)" not in ok("db", "history", "--url", url).stdout
    assert not (tmp_path / "typo.db").exists()


def test_an_unsupported_url_is_an_error() -> None:
    assert "is not supported" in failed("runs", "list", "--url", "mysql://x@y/z").stderr


@pytest.mark.heavy
def test_python_dash_m_runstore(sqlite_url: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "runstore", "db", "current", "--check-head", "--url", sqlite_url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 3, completed.stderr  # not at head
    assert "has no runstore schema" in completed.stderr
    version = subprocess.run(
        [sys.executable, "-m", "runstore", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("runstore, version ")


# -- results export ---------------------------------------------------------------------


@pytest.fixture
def exported_run(empty_url: str) -> tuple[str, list[str]]:
    """A database at head with one run of 25 results; the run's id and its item ids."""
    with SqlRunsStorage(empty_url) as storage:
        run = storage.create_run(run_input(id="nightly"))
        written = storage.add_results(
            [result_input(run, n, scores={"acc": n / 25}) for n in range(25)], update_counts=True
        )
    return empty_url, [result.item_id for result in written]


def test_results_export_writes_every_result(
    exported_run: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, items = exported_run
    target = tmp_path / "out.jsonl"
    result = ok(
        "results", "export", "nightly", "-o", str(target), "--batch-size", "7", "--url", url
    )
    assert "25 results of nightly written to" in result.stderr
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [line["item_id"] for line in lines] == items
    assert lines[3]["scores"] == {"acc": 3 / 25}


def test_results_export_to_parquet_and_csv(
    exported_run: tuple[str, list[str]], tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    url, items = exported_run
    ok(
        "results",
        "export",
        "nightly",
        "--format",
        "parquet",
        "-o",
        str(tmp_path / "r.parquet"),
        "--url",
        url,
    )
    assert pq.read_table(tmp_path / "r.parquet").column("item_id").to_pylist() == items
    ok(
        "results",
        "export",
        "nightly",
        "--format",
        "csv",
        "-o",
        str(tmp_path / "r.csv"),
        "--url",
        url,
    )
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 26  # a header and 25 rows


def test_exporting_an_unknown_run_fails_and_writes_nothing(
    exported_run: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, _ = exported_run
    target = tmp_path / "out" / "kept.jsonl"
    target.parent.mkdir()
    target.write_text("what was here before\n")
    result = failed("results", "export", "no-such-run", "-o", str(target), "--url", url)
    assert "no-such-run" in result.stderr
    assert target.read_text() == "what was here before\n"
    assert [path.name for path in target.parent.iterdir()] == ["kept.jsonl"]


def test_upgrading_a_database_from_a_newer_runstore_says_so(empty_url: str) -> None:
    ok("db", "upgrade", "--url", empty_url)
    engine = sa.create_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999_future'"))
    finally:
        engine.dispose()
    result = failed("db", "upgrade", "--url", empty_url)
    assert "migrated by a newer runstore" in result.stderr


def test_stamping_tables_without_a_recorded_revision_lets_them_upgrade(empty_url: str) -> None:
    ok("db", "upgrade", "--url", empty_url)
    engine = sa.create_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DELETE FROM {VERSION_TABLE}"))
    finally:
        engine.dispose()
    refused = failed("db", "upgrade", "--url", empty_url)
    assert "runstore db stamp head" in refused.stderr
    ok("db", "stamp", "head", "--url", empty_url)
    assert ok("db", "current", "--check-head", "--url", empty_url).stdout.strip() == head_revision()
