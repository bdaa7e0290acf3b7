"""A call record's ``checked()`` takes its arguments by name, each typed as the public
method's: an argument in the wrong place is a type error, not a value checked as another."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from runstore import calls

# the floors job installs no type checker
api = pytest.importorskip("mypy.api")

PROJECT = Path(__file__).resolve().parents[1]

SNIPPET = """\
from runstore import calls

calls.HistogramRun.checked(run_id="run", bins=20)
calls.HistogramRun.checked(bins=20, run_id="run")
calls.CompareRuns.checked(baseline_run_id="a", candidate_run_id="b", confidence=0.9)
calls.IterScores.checked(run_id="run", result_id=None, name="accuracy", batch_size=10)
calls.HistogramRun.checked("run", 20)  # wrong
calls.HistogramRun.checked(run_id=20, bins="run")  # wrong
calls.CompareRuns.checked("a", "b")  # wrong
calls.IterScores.checked(run_id="run", result_id=None, name=10, batch_size="a")  # wrong
"""


def test_every_checked_takes_keywords_only() -> None:
    records = [record for record in calls.EVERY_CALL if hasattr(record, "checked")]
    assert len(records) == len(calls.EVERY_CALL) - 1  # all but DangerouslyClearAll
    for record in records:
        parameters = inspect.signature(record.checked).parameters.values()
        assert parameters, record.__name__
        for parameter in parameters:
            assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, (record, parameter)
            assert parameter.annotation not in ("object", object), (record, parameter)


def test_mypy_refuses_an_argument_out_of_place_and_accepts_the_right_ones(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    # mypy's cache kept between runs where pytest keeps one: only the first run is slow
    kept = getattr(pytestconfig, "cache", None)
    cache = kept.mkdir("mypy") if kept is not None else tmp_path / "mypy"
    report, errors, status = api.run(
        [
            "--config-file",
            str(PROJECT / "pyproject.toml"),
            "--strict",
            "--cache-dir",
            str(cache),
            "--no-error-summary",
            str(snippet),
        ]
    )
    assert errors == ""
    flagged = {int(line.split(":")[1]) for line in report.splitlines() if ": error:" in line}
    wrong = {
        number for number, line in enumerate(SNIPPET.splitlines(), 1) if line.endswith("# wrong")
    }
    assert flagged == wrong, report
    assert status == 1
