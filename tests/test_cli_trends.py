"""``runstore runs trend`` and ``runstore db keep-summaries`` on real databases, the read
commands that must not write, and the sparkline they draw."""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from runstore import Run
from runstore import SqlRunsStorage
from runstore.cli.output import SPARK_NOISE
from runstore.cli.output import SPARKS
from runstore.cli.output import sparkline
from runstore.testing.inputs import FrozenClock
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input
from runstore.testing.properties import DERANDOMIZED
from test_cli import failed
from test_cli import ok

START = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)

# -- the sparkline -----------------------------------------------------------------------


def test_a_sparkline_of_nothing_is_empty() -> None:
    assert sparkline([]) == ""


def test_one_value_or_equal_values_draw_the_middle_bar() -> None:
    assert sparkline([0.25]) == "▄"
    assert sparkline([3, 3, 3]) == "▄▄▄"
    assert sparkline([-1e300, None, -1e300]) == "▄ ▄"


def test_the_range_is_cut_into_eight_equal_parts() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([7, 0]) == "█▁"
    # 0.5 and 0.625 fall in the first and second eighths of 0..1, 0.999 in the last
    assert sparkline([0, 0.124, 0.125, 0.5, 0.999, 1]) == "▁▁▂▅██"


def test_a_missing_value_is_a_space() -> None:
    assert sparkline([0, None, 1]) == "▁ █"
    assert sparkline([None, 5, None]) == " ▄ "
    assert sparkline([None, None]) == "  "


def test_negative_values() -> None:
    assert sparkline([-3, -1, -2]) == "▁█▅"
    assert sparkline([-0.5, 0.5, 0]) == "▁█▅"


def test_huge_and_tiny_values() -> None:
    largest = sys.float_info.max
    assert sparkline([-largest, largest, 0]) == "▁█▅"  # the span overflows: taken in halves
    assert sparkline([1e308, 1.5e308, 1.25e308]) == "▁█▅"
    assert sparkline([0.0, 5e-324]) == "▁█"  # the smallest span there is


def test_values_apart_by_rounding_alone_draw_as_equal() -> None:
    assert 0.1 + 0.2 + 0.14 != 0.44
    assert sparkline([0.44, 0.1 + 0.2 + 0.14, 0.44]) == "▄▄▄"
    assert sparkline([1e16, 1e16 + 2, 1e16 + 4]) == "▄▄▄"  # a few units in the last place
    assert sparkline([0.5, 0.5000001]) == "▁█"  # a drift, however small, is drawn
    assert sparkline([0.0, 1e-300]) == "▁█"


def test_a_value_that_is_not_finite_is_drawn_as_missing() -> None:
    assert sparkline([0, math.nan, 1, math.inf, -math.inf]) == "▁ █  "


_VALUES = st.lists(
    st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)), max_size=40
)


@settings(derandomize=DERANDOMIZED)
@given(_VALUES)
def test_a_sparkline_has_a_bar_per_value_in_the_order_of_the_values(
    values: list[float | None],
) -> None:
    drawn = sparkline(values)
    assert len(drawn) == len(values)
    present = [value for value in values if value is not None]
    for value, bar in zip(values, drawn, strict=True):
        assert (bar == " ") == (value is None)
        assert bar == " " or bar in SPARKS
    if not present:
        return
    bars = {value: drawn[index] for index, value in enumerate(values) if value is not None}
    low, high = min(present), max(present)
    half_span, magnitude = high / 2 - low / 2, max(abs(low), abs(high))
    if half_span <= SPARK_NOISE * magnitude / 4:
        assert set(bars.values()) == {"▄"}  # equal, or apart by rounding alone
        return
    if half_span < SPARK_NOISE * magnitude:
        return  # near the line between the two: either way will do
    assert bars[min(present)] == SPARKS[0]
    assert bars[max(present)] == SPARKS[-1]
    ordered = sorted(bars)
    assert [SPARKS.index(bars[value]) for value in ordered] == sorted(
        SPARKS.index(bars[value]) for value in ordered
    )  # a greater value never has a lower bar


# -- a dataset's runs --------------------------------------------------------------------


@dataclass
class Trended:
    url: str
    runs: list[Run]
    """Of dataset ``qa``, oldest first: completed, failed, completed (agent-2, tagged
    ``pr``, uncosted, scored ``tone`` too), completed, and one still running."""
    other: Run
    """A completed run of dataset ``other``."""


@pytest.fixture
def trended(empty_url: str) -> Trended:
    url = empty_url
    ok("db", "upgrade", "--url", url)
    plans = [
        # target, tags, model, final status, cost a result, scores a result
        ("agent-1", ["nightly"], "a", "completed", 0.001, {"accuracy": 0.5}),
        ("agent-1", ["nightly"], "b", "failed", 0.002, {"accuracy": 0.6}),
        ("agent-2", ["pr"], "a", "completed", None, {"accuracy": 0.7, "tone": 0.2}),
        ("agent-1", ["nightly"], "a", "completed", 0.004, {"accuracy": 0.8}),
        ("agent-1", ["nightly"], "a", "running", 0.004, {"accuracy": 0.9}),
    ]
    runs = []
    for index, (target, tags, model, status, cost, scores) in enumerate(plans):
        with SqlRunsStorage(url, clock=FrozenClock(START + timedelta(hours=index))) as storage:
            run = storage.create_run(
                run_input(
                    dataset_id="qa",
                    target_id=target,
                    total_items=4,
                    name=f"qa run {index}",
                    tags=tags,
                    metadata={"model": model},
                )
            )
            # latencies base+0, +10, +20, +30: p50 base+15, p95 base+28.5
            storage.add_results(
                [
                    result_input(
                        run,
                        item,
                        latency=100.0 + 50 * index + 10 * item,
                        error="boom" if status == "failed" and item == 0 else None,
                        cost=cost,
                        scores=scores,
                    )
                    for item in range(4)
                ],
                update_counts=True,
            )
            runs.append(storage.update_run({"id": run.id, "status": status}))
    with SqlRunsStorage(url, clock=FrozenClock(START - timedelta(days=1))) as storage:
        other = storage.create_run(run_input(dataset_id="other", name="other run"))
        storage.add_result(result_input(other, 0, scores={"accuracy": 0.1}))
        other = storage.update_run({"id": other.id, "status": "completed"})
    return Trended(url, runs, other)


def _trend(trended: Trended, *arguments: str) -> str:
    return ok("runs", "trend", *arguments, "--url", trended.url).stdout


def _trended_ids(trended: Trended, *arguments: str) -> list[str]:
    lines = _trend(trended, "--json", *arguments).splitlines()
    return [json.loads(line)["run_id"] for line in lines]


def _columns(header: str) -> list[tuple[str, int, int]]:
    """Each column of a table's header line: its name, where it starts and where it ends."""
    return [
        (found.group(), found.start(), found.end())
        for found in re.finditer(r"\S+(?: \S+)*", header)
    ]


def _cells(line: str, columns: list[tuple[str, int, int]]) -> dict[str, str]:
    """A row's cells by column name (no cell of these rows holds two spaces running)."""
    cells = re.split(r"  +", line.strip())
    assert len(cells) == len(columns), line
    return dict(zip((name for name, _, _ in columns), cells, strict=True))


FIGURES = ["RESULTS", "ERROR RATE", "P50 MS", "P95 MS", "COST", "COST/RESULT"]


def test_the_table_shows_the_finished_runs_oldest_first_with_a_sparkline_a_figure(
    trended: Trended,
) -> None:
    header, *rows, sparks = _trend(trended, "qa").splitlines()
    columns = _columns(header)
    names = [name for name, _, _ in columns]
    assert names == ["RUN", "NAME", "CREATED", "STATUS", *FIGURES, "accuracy", "tone"]
    table = [_cells(row, columns) for row in rows]
    finished = trended.runs[:4]
    assert [row["RUN"] for row in table] == [run.id for run in finished]  # oldest first
    assert [row["NAME"] for row in table] == [f"qa run {index}" for index in range(4)]
    assert [row["CREATED"] for row in table] == [
        (START + timedelta(hours=index)).strftime("%Y-%m-%d %H:%M:%SZ") for index in range(4)
    ]
    assert [row["STATUS"] for row in table] == ["completed", "failed", "completed", "completed"]
    assert [[row[figure] for figure in FIGURES] for row in table] == [
        ["4", "0.0%", "115", "128.5", "0.004", "0.001"],
        ["4", "25.0%", "165", "178.5", "0.008", "0.002"],
        ["4", "0.0%", "215", "228.5", "-", "-"],
        ["4", "0.0%", "265", "278.5", "0.016", "0.004"],
    ]
    assert [row["accuracy"] for row in table] == ["0.5", "0.6", "0.7", "0.8"]
    assert [row["tone"] for row in table] == ["-", "-", "0.2", "-"]  # a score some lack

    # the last line: a sparkline under each numeric column, a bar a run, nothing else
    assert sparks.ljust(len(header))[: columns[4][1]].strip() == ""
    assert {name: sparks.ljust(len(header))[end - 4 : end] for name, _, end in columns[4:]} == {
        "RESULTS": "▄▄▄▄",
        "ERROR RATE": "▁█▁▁",
        "P50 MS": "▁▃▆█",
        "P95 MS": "▁▃▆█",
        "COST": "▁▃ █",
        "COST/RESULT": "▁▃ █",
        "accuracy": "▁▃▆█",
        "tone": "  ▄ ",
    }


def test_score_picks_the_scores_in_the_order_given(trended: Trended) -> None:
    header, *rows, sparks = _trend(
        trended, "qa", "--score", "tone", "--score", "accuracy", "--score", "tone"
    ).splitlines()
    columns = _columns(header)
    assert [name for name, _, _ in columns][len(FIGURES) + 4 :] == ["tone", "accuracy"]

    header, *rows, sparks = _trend(trended, "qa", "--score", "unheard-of").splitlines()
    columns = _columns(header)
    assert columns[-1][0] == "unheard-of"
    assert [_cells(row, columns)["unheard-of"] for row in rows] == ["-"] * 4
    assert sparks.ljust(len(header))[columns[-1][2] - 4 :] == "    "


def test_json_prints_a_point_a_line_as_the_storage_returns_them(trended: Trended) -> None:
    lines = _trend(trended, "qa", "--json").splitlines()
    with SqlRunsStorage(trended.url) as storage:
        expected = storage.trend_runs("qa", keep=False)
    assert [json.loads(line) for line in lines] == [
        point.model_dump(mode="json") for point in expected.points
    ]
    first = json.loads(lines[0])
    assert first["run_id"] == trended.runs[0].id
    assert first["scores"] == {"accuracy": 0.5}
    assert json.loads(lines[2])["cost"] is None

    filtered = _trend(trended, "qa", "--json", "--tag", "nightly", "--last", "2").splitlines()
    with SqlRunsStorage(trended.url) as storage:
        expected = storage.trend_runs("qa", tags=["nightly"], last=2, keep=False)
    assert [json.loads(line) for line in filtered] == [
        point.model_dump(mode="json") for point in expected.points
    ]


def test_the_filters(trended: Trended) -> None:
    run = [run.id for run in trended.runs]
    assert _trended_ids(trended, "qa") == run[:4]
    assert _trended_ids(trended, "qa", "--target", "agent-2") == [run[2]]
    assert _trended_ids(trended, "qa", "--tag", "nightly") == [run[0], run[1], run[3]]
    assert _trended_ids(trended, "qa", "--tag", "nightly", "--tag", "pr") == []
    assert _trended_ids(trended, "qa", "--meta", "model=a") == [run[0], run[2], run[3]]
    assert _trended_ids(trended, "qa", "--meta", "model=a", "--tag", "nightly") == [
        run[0],
        run[3],
    ]
    assert _trended_ids(trended, "qa", "--status", "completed") == [run[0], run[2], run[3]]
    assert _trended_ids(trended, "qa", "--status", "failed") == [run[1]]
    assert _trended_ids(trended, "qa", "--status", "running") == [run[4]]
    assert _trended_ids(trended, "qa", "--last", "2") == [run[2], run[3]]  # the newest two
    assert _trended_ids(trended, "qa", "--last", "1000") == run[:4]
    assert _trended_ids(trended, "other") == [trended.other.id]


@pytest.mark.parametrize(
    "arguments",
    [
        ["--last", "0"],
        ["--last", "1001"],
        ["--last", "-1"],
        ["--last", "many"],
        ["--status", "done"],
        ["--meta", "model"],  # no =
        ["--meta", 'model={"a": 1}'],  # a filter's value is a scalar
        ["--tag", ""],
    ],
)
def test_bad_options_are_usage_errors(trended: Trended, arguments: list[str]) -> None:
    refused = failed("runs", "trend", "qa", *arguments, "--url", trended.url, exit_code=2)
    assert refused.stdout == ""


def test_no_matching_runs_is_one_line_and_exit_0(trended: Trended) -> None:
    assert _trend(trended, "nothing-here") == (
        "No completed or failed runs of dataset nothing-here match.\n"
    )
    assert _trend(trended, "qa", "--status", "pending") == (
        "No pending runs of dataset qa match.\n"
    )
    assert _trend(trended, "qa", "--tag", "absent") == (
        "No completed or failed runs of dataset qa match.\n"
    )
    assert _trend(trended, "nothing-here", "--json") == ""


def test_a_missing_url_or_database_is_an_error(trended: Trended, tmp_path: Path) -> None:
    failed("runs", "trend", "qa", exit_code=2)  # no --url
    missing = failed("runs", "trend", "qa", "--url", f"sqlite:///{tmp_path}/none.db")
    assert "there is no database" in missing.stderr


# -- the read commands write nothing; keep-summaries keeps -------------------------------


def _every_row(url: str) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table in the database, as text, sorted: what a write changes."""
    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            return {
                name: sorted(
                    tuple(repr(value) for value in row)
                    for row in connection.execute(sa.select(table))
                )
                for name, table in metadata.tables.items()
            }
    finally:
        engine.dispose()


def _make_stale(url: str, runs: list[Run]) -> None:
    """Score a result of each run after it finished: its kept summary is no longer kept."""
    with SqlRunsStorage(url) as storage:
        for run in runs:
            (result, *_) = storage.iter_results(run.id)
            storage.add_scores([{"result_id": result.id, "name": "late", "value": 1.0}])


def test_the_trend_and_show_write_nothing(trended: Trended) -> None:
    """Runs without kept summaries: the read commands summarise them and keep nothing
    (a storage call that keeps does change the database, so this could fail)."""
    _make_stale(trended.url, trended.runs[:4])
    before = _every_row(trended.url)
    _trend(trended, "qa")
    _trend(trended, "qa", "--json")
    _trend(trended, "qa", "--status", "completed", "--score", "late")
    for run in trended.runs:
        ok("runs", "show", run.id, "--url", trended.url)
        ok("runs", "show", run.id, "--json", "--url", trended.url)
    assert _every_row(trended.url) == before

    late = _trend(trended, "qa", "--json").splitlines()
    assert [json.loads(line)["scores"].get("late") for line in late] == [1.0] * 4  # current

    with SqlRunsStorage(trended.url) as storage:
        storage.summarize_run(trended.runs[0].id)  # keeps
    assert _every_row(trended.url) != before


def test_keep_summaries_keeps_those_of_finished_runs_that_have_none(trended: Trended) -> None:
    def keep(*arguments: str) -> str:
        return ok("db", "keep-summaries", *arguments, "--url", trended.url).stdout

    keep()  # whatever finishing the runs kept, now every finished run has its summary
    assert keep() == "Kept 0 summaries of finished runs.\n"

    _make_stale(trended.url, [trended.runs[0], trended.runs[1], trended.other])
    _make_stale(trended.url, [trended.runs[4]])  # running: it has no summary to keep
    with_stale = _every_row(trended.url)
    assert keep("--dataset", "qa") == "Kept 2 summaries of finished runs of dataset qa.\n"
    assert _every_row(trended.url) != with_stale
    assert keep("--dataset", "qa") == "Kept 0 summaries of finished runs of dataset qa.\n"
    assert keep() == "Kept 1 summary of finished runs.\n"  # the other dataset's
    assert keep() == "Kept 0 summaries of finished runs.\n"

    # the summaries kept are current: they count the late scores
    kept = _every_row(trended.url)
    stale = {trended.runs[0].id, trended.runs[1].id, trended.other.id}
    with SqlRunsStorage(trended.url) as storage:
        for run in [*trended.runs[:4], trended.other]:
            scores = storage.summarize_run(run.id, keep=False).scores
            assert ("late" in scores) == (run.id in stale)
    assert _every_row(trended.url) == kept


def test_keep_summaries_of_an_empty_database(sqlite_url: str) -> None:
    ok("db", "upgrade", "--url", sqlite_url)
    kept = ok("db", "keep-summaries", "--dataset", "qa", "--url", sqlite_url).stdout
    assert kept == "Kept 0 summaries of finished runs of dataset qa.\n"
    failed("db", "keep-summaries", exit_code=2)  # no --url
