"""The viewer's pages, in process, on real SQLite and Postgres databases: what each page
shows, every filter and page link, the errors, and the security defaults.

(The browser drives the installed command in ``test_ui_browser.py``.)
"""

from __future__ import annotations

import html
import io
import json
import re
import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import quote
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

pytest.importorskip("starlette")
pytest.importorskip("jinja2")

from click.testing import CliRunner
from click.testing import Result
from starlette.testclient import TestClient

from runstore import AddScoreInput
from runstore import SqlRunsStorage
from runstore.cli import main
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input
from runstore.testing.servers import stop_process
from runstore.ui import create_app
from runstore.ui.queries import COMPARED_PER_PAGE
from runstore.ui.queries import RESULTS_PER_PAGE
from runstore.ui.queries import RUNS_PER_PAGE
from runstore.ui.queries import BadQueryError
from runstore.ui.queries import meta_param
from runstore.ui.queries import meta_value

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
SCRIPT_NAME = "</code></td><script>alert(4)</script>"
"""A score's name that would close the cells it is shown in."""
BASE = "http://127.0.0.1:8765"


def client(storage: SqlRunsStorage, **options: object) -> TestClient:
    return TestClient(create_app(storage, **options), base_url=BASE)  # type: ignore[arg-type]


def fill(storage: SqlRunsStorage, results: int = 60) -> tuple[str, str]:
    """Two runs of the same items: the candidate faster on odd items, with other scores,
    errors and outputs; ids that need quoting in a path."""
    baseline = storage.create_run(run_input(id="base/line %1", dataset_id="qa"))
    candidate = storage.create_run(run_input(id="cand?date#2", dataset_id="qa"))
    storage.add_results(
        [
            result_input(
                run,
                n,
                latency=float(10 + n + (side * 5 if n % 2 else 0)),
                error="timeout" if (n + side) % 9 == 0 else None,
                output={"answer": f"a{n + side * (n % 3 == 0)}", "note": HOSTILE},
                scores={"accuracy": ((n * (side + 1)) % 5) / 4, "len": float(n % 7)},
            )
            for side, run in enumerate((baseline, candidate))
            for n in range(results)
        ]
    )
    return baseline.id, candidate.id


def page(c: TestClient, url: str, status: int = 200) -> str:
    response = c.get(url)
    assert response.status_code == status, (url, response.status_code, response.text[-500:])
    return response.text


def links(text: str, rel: str = "next") -> list[str]:
    return [html.unescape(href) for href in re.findall(rf'rel="{rel}" href="([^"]+)"', text)]


def rows(text: str, table: str) -> list[str]:
    body = text.split(f'id="{table}"', 1)[1].split("</tbody>", 1)[0]
    return [
        row
        for row in re.split(r"<tr(?=[ >])", body)[2:]
        if not row.startswith((' class="empty"', ' class="same"', ' class="changed"'))
        and not row.startswith((' class="added"', ' class="removed"', ' class="errors"'))
    ]


def run_path(run_id: str, *tail: str) -> str:
    return "/".join(["/runs", quote(run_id, safe=""), *tail])


def listed(text: str) -> list[str]:
    """The ids of the runs a runs page lists, in order."""
    return [
        html.unescape(run_id)
        for run_id in re.findall(r'<input type="radio" name="baseline" value="([^"]*)"', text)
    ]


def hrefs(text: str, css_class: str) -> list[tuple[str, str]]:
    """The links of class ``css_class``: (address, text) each, unescaped."""
    return [
        (html.unescape(href), html.unescape(shown))
        for href, shown in re.findall(
            rf'<a class="{css_class}" href="([^"]*)"[^>]*>([^<]*)</a>', text
        )
    ]


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


# -- pages ---------------------------------------------------------------------------------


def test_the_runs_page_lists_runs_newest_first_with_their_figures(
    storage: SqlRunsStorage,
) -> None:
    baseline, candidate = fill(storage, 12)
    storage.create_run(run_input(id="other", dataset_id="elsewhere"))
    c = client(storage)
    text = page(c, "/")
    order = [text.index(html.escape(run_id)) for run_id in ("other", candidate, baseline)]
    assert order == sorted(order)
    summary = storage.summarize_run(baseline)
    assert f">{summary.results}<" in text
    assert "accuracy" in text
    # pass rate, p50 and the score's mean, as the page rounds them
    assert f"{summary.succeeded / summary.results:.1%}" in text
    filtered = page(c, "/?dataset_id=qa")
    assert "other" not in rows(filtered, "runs")[0]
    assert len(rows(filtered, "runs")) == 2
    assert len(rows(page(c, "/?status=running"), "runs")) == 0
    assert "status must be one of" in page(c, "/?status=sideways", 400)


def test_the_runs_page_pages_by_cursor_keeping_the_filters(storage: SqlRunsStorage) -> None:
    for n in range(30):
        storage.create_run(run_input(id=f"run-{n:02}", dataset_id="a" if n % 3 else "b"))
    c = client(storage)
    seen: list[str] = []
    url: str | None = "/?dataset_id=a"
    while url is not None:
        text = page(c, url)
        seen += re.findall(r'href="/runs/(run-\d\d)"', text)
        following = links(text)
        url = following[0] if following else None
        if url is not None:
            assert parse_qs(urlsplit(url).query)["dataset_id"] == ["a"]
    assert sorted(seen) == sorted(f"run-{n:02}" for n in range(30) if n % 3)
    assert len(seen) == len(set(seen))


def test_a_run_page_shows_its_summary_histograms_and_results(storage: SqlRunsStorage) -> None:
    baseline, _ = fill(storage)
    c = client(storage)
    text = page(c, run_path(baseline))
    summary = storage.summarize_run(baseline)
    assert f"<td>{summary.failed}</td>" in text
    for figure in ("p50", "p90", "p95", "p99"):
        assert f">{figure}<" in text
    assert len(rows(text, "results")) == RESULTS_PER_PAGE
    # the histograms: drawn by a page of their own, which the run's page fetches
    assert f'data-charts="{run_path(baseline, "charts")}"' in text
    assert "<rect" not in text
    text = page(c, run_path(baseline, "charts"))
    histograms = storage.histogram_run(baseline, bins=24)
    assert histograms.latency is not None
    assert text.count('<rect class="bar"') == len(histograms.latency.counts) + sum(
        len(h.counts) for h in histograms.scores.values()
    )
    for count in histograms.latency.counts:  # each bar says how many values it holds
        assert f": {count}</title></rect>" in text


def test_a_run_pages_results_cover_every_result_once_under_each_filter(
    storage: SqlRunsStorage,
) -> None:
    baseline, _ = fill(storage, 120)
    c = client(storage)
    for query, expected in [
        ({}, storage.list_results({"run_id": baseline, "pagination": {"per_page": False}})),
        (
            {"has_error": "true", "order": "slowest"},
            storage.list_results(
                {
                    "run_id": baseline,
                    "has_error": True,
                    "order": "slowest",
                    "pagination": {"per_page": False},
                }
            ),
        ),
        (
            {"score": "accuracy", "min": "0.5", "max": "0.75"},
            storage.list_results(
                {
                    "run_id": baseline,
                    "score": {"name": "accuracy", "min": 0.5, "max": 0.75},
                    "pagination": {"per_page": False},
                }
            ),
        ),
    ]:
        tail = "&".join(f"{name}={value}" for name, value in query.items())
        url: str | None = run_path(baseline) + (f"?{tail}" if tail else "")
        shown: list[str] = []
        while url is not None:
            text = page(c, url)
            shown += [html.unescape(m) for m in re.findall(r'/results/([^"]+)">', text)]
            following = links(text)
            url = following[0] if following else None
            if url is not None:
                kept = parse_qs(urlsplit(url).query)
                assert {name: kept[name][0] for name in query} == query
        assert shown == [quote(result.id, safe="") for result in expected.results]


def test_a_result_page_shows_everything_stored(storage: SqlRunsStorage) -> None:
    run = storage.create_run(run_input(id="r"))
    [result] = storage.add_results(
        [
            result_input(
                run,
                1,
                input={"question": "two plus two?", "big": 2**70},
                output={"answer": "4"},
                expected_output={"answer": "four"},
                error=HOSTILE,
                retry_count=3,
            )
        ]
    )
    storage.add_scores(
        [
            {
                "result_id": result.id,
                "name": "exact",
                "value": 0.25,
                "label": "partly",
                "explanation": "</pre><b>not bold</b>",
            }
        ]
    )
    text = page(client(storage), run_path("r", "results", result.id))
    assert "two plus two?" in text
    assert str(2**70) in text
    assert "four" in text
    assert "partly" in text
    assert html.escape("</pre><b>not bold</b>") in text
    assert "<td>3</td>" in text
    assert HOSTILE in html.unescape(text)
    assert "<img" not in text


def test_the_comparison_page_shows_figures_items_and_the_command(
    storage: SqlRunsStorage,
) -> None:
    baseline, candidate = fill(storage, 30)
    c = client(storage)
    query = f"/compare?baseline={quote(baseline)}&candidate={quote(candidate)}"
    text = page(c, query)
    comparison = storage.compare_runs(baseline, candidate)
    assert f"<td>{comparison.errors_fixed}</td>" in text
    assert f"<td>{comparison.items_in_both}</td>" in text
    assert len(rows(text, "items")) == 30
    assert f"runstore runs compare '{baseline}' '{candidate}'" in html.unescape(text)
    assert 'class="changed"' in text  # the outputs' differing lines are marked
    regressed = page(c, f"{query}&only=regressed&score=accuracy")
    expected = [
        item.item_id
        for item in storage.iter_item_comparisons(
            baseline, candidate, only="regressed", score="accuracy"
        )
    ]
    assert len(rows(regressed, "items")) == len(expected) > 0
    assert "--items regressed --score accuracy" in regressed
    assert "only must be one of" in page(c, f"{query}&only=better", 400)
    assert "give both runs" in page(c, "/compare?baseline=x", 400)
    assert "does not exist" in page(c, "/compare?baseline=x&candidate=y", 404)


def test_the_comparison_pages_its_items(storage: SqlRunsStorage) -> None:
    baseline, candidate = fill(storage, COMPARED_PER_PAGE * 2 + 7)
    c = client(storage)
    url: str | None = f"/compare?baseline={quote(baseline)}&candidate={quote(candidate)}"
    shown: list[str] = []
    while url is not None:
        text = page(c, url)
        shown += re.findall(r"<td>(item-\d+)<br>", text)
        following = links(text)
        url = following[0] if following else None
    every = [item.item_id for item in storage.iter_item_comparisons(baseline, candidate)]
    assert shown == every
    assert len(every) == COMPARED_PER_PAGE * 2 + 7


# -- paired statistics and the gate line ----------------------------------------------------


def paired_runs(
    storage: SqlRunsStorage, items: int = 20, ids: tuple[str, str] = ("base", "cand")
) -> tuple[str, str]:
    """Two runs of the same ``items`` items, their changes known: the candidate better at
    ``clear`` (each item up 0.2, give or take 0.05), worse at ``worse`` (down 0.15, give or
    take 0.03), no different at ``noise`` (differences that cancel in pairs: mean 0);
    slower by about 40 ms, and cheaper."""
    baseline = storage.create_run(run_input(id=ids[0], dataset_id="qa"))
    candidate = storage.create_run(run_input(id=ids[1], dataset_id="qa"))
    inputs = []
    for n in range(items):
        base = 0.4 + (n % 4) * 0.05
        swing = (0.1 if n % 2 else -0.1) * (1 + n // 2 % 3) / 2
        for run, scores, latency, cost in [
            (baseline, {"clear": base, "worse": base, "noise": base}, 100.0 + n, 0.002),
            (
                candidate,
                {
                    "clear": base + 0.2 + (n % 3 - 1) * 0.05,
                    "worse": base - 0.15 + (n % 3 - 1) * 0.03,
                    "noise": base + swing,
                },
                140.0 + n + (n % 3) * 5,
                0.0015 + (n % 2) * 0.0001,
            ),
        ]:
            inputs.append(result_input(run, n, scores=scores, latency=latency, cost=cost))
    storage.add_results(inputs)
    return baseline.id, candidate.id


def compare_url(baseline: str, candidate: str, **query: str) -> str:
    tail = "".join(f"&{name}={quote(value)}" for name, value in query.items())
    return (
        f"/compare?baseline={quote(baseline, safe='')}&candidate={quote(candidate, safe='')}{tail}"
    )


def statistics(text: str, table: str) -> dict[str, dict[str, str]]:
    """A table of changes as shown: by its first column, each cell by its header, tags
    dropped and text unescaped."""
    part = text.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    head, body = part.split("</thead>", 1)
    headers = [html.unescape(name) for name in re.findall(r"<th[^>]*>([^<]*)</th>", head)]
    shown = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        shown[cells[0]] = dict(zip(headers, cells, strict=True))
    return shown


def interval_shown(cell: str) -> list[float]:
    """``-0.2 to +0.1``: both ends."""
    return [float(end) for end in cell.split(" to ")]


def p_value_agrees(shown: str, p_value: float | None) -> bool:
    """A p-value as shown (three decimals, ``<0.001`` below) is ``p_value``."""
    assert p_value is not None
    if shown == "<0.001":
        return p_value < 0.0005
    return float(shown) == pytest.approx(p_value, abs=1e-3)


def test_each_change_is_shown_with_its_standard_error_interval_and_p_value(
    storage: SqlRunsStorage,
) -> None:
    baseline, candidate = paired_runs(storage)
    text = page(client(storage), compare_url(baseline, candidate))
    comparison = storage.compare_runs(baseline, candidate)
    scores = statistics(text, "score-deltas")
    assert sorted(scores) == ["clear", "noise", "worse"]
    for name, expected in comparison.scores.items():  # to three decimals
        shown = scores[name]
        assert shown["paired"] == str(expected.paired) == "20"
        assert float(shown["baseline"]) == pytest.approx(expected.baseline_mean, abs=1e-3)
        assert float(shown["candidate"]) == pytest.approx(expected.candidate_mean, abs=1e-3)
        assert float(shown["delta"]) == pytest.approx(expected.mean_delta, abs=1e-3)
        assert float(shown["std error"]) == pytest.approx(expected.std_error, abs=1e-3)
        low, high = interval_shown(shown["95% CI"])
        assert low == pytest.approx(expected.ci_low, abs=1e-3)
        assert high == pytest.approx(expected.ci_high, abs=1e-3)
        assert p_value_agrees(shown["p-value"], expected.p_value)
        assert shown["improved"] == str(expected.improved)
    usage = statistics(text, "usage-deltas")
    assert sorted(usage) == ["cost", "latency (ms)"]
    # latency to a tenth of a millisecond, cost to four significant digits
    for figure, delta, absolute, relative in [
        ("latency (ms)", comparison.latency, 0.05, 0.0),
        ("cost", comparison.cost, 0.0, 1e-3),
    ]:
        assert delta is not None
        assert delta.std_error is not None
        shown = usage[figure]
        assert shown["paired"] == str(delta.paired) == "20"
        expected_figures = [delta.mean_delta, delta.std_error, delta.ci_low, delta.ci_high]
        shown_figures = [float(shown["delta"]), float(shown["std error"])]
        shown_figures += interval_shown(shown["95% CI"])
        assert shown_figures == pytest.approx(expected_figures, abs=absolute, rel=relative)
        assert p_value_agrees(shown["p-value"], delta.p_value)


def test_a_change_whose_interval_excludes_zero_is_marked_significant(
    storage: SqlRunsStorage,
) -> None:
    baseline, candidate = paired_runs(storage)
    text = page(client(storage), compare_url(baseline, candidate))
    comparison = storage.compare_runs(baseline, candidate)
    assert comparison.scores["clear"].significant
    assert comparison.scores["worse"].significant
    noise = comparison.scores["noise"]
    assert not noise.significant
    assert noise.p_value is not None
    assert noise.p_value > 0.5
    scores, usage = statistics(text, "score-deltas"), statistics(text, "usage-deltas")
    marks = {name: shown["significance"] for name, shown in (scores | usage).items()}
    assert marks == {
        "clear": "significantly better",
        "worse": "significantly worse",
        "noise": "not significant",
        "latency (ms)": "significantly worse",  # slower
        "cost": "significantly better",  # cheaper
    }
    # the badges are coloured by better and worse, and only the significant have one
    badges = re.findall(r'<span class="mark (\w+)"[^>]*>significantly (\w+)</span>', text)
    assert sorted(badges) == [("better", "better")] * 2 + [("worse", "worse")] * 2
    assert f'<td class="n down">{scores["worse"]["delta"]}</td>' in text  # red
    assert f'<td class="n up">{scores["clear"]["delta"]}</td>' in text  # green
    assert f'<td class="n down">{usage["latency (ms)"]["delta"]}</td>' in text  # slower too
    assert f'<td class="n up">{usage["cost"]["delta"]}</td>' in text  # cheaper: green


def test_fewer_than_two_pairs_have_no_interval(storage: SqlRunsStorage) -> None:
    baseline = storage.create_run(run_input(id="b"))
    candidate = storage.create_run(run_input(id="c"))
    storage.add_results(
        [
            result_input(run, 1, scores={"s": value}, latency=latency, cost=0.5)
            for run, value, latency in [(baseline, 0.25, 10.0), (candidate, 0.75, 30.0)]
        ]
    )
    text = page(client(storage), compare_url("b", "c"))
    for shown in (
        *statistics(text, "score-deltas").values(),
        *statistics(text, "usage-deltas").values(),
    ):
        assert shown["paired"] == "1"
        figures = [shown[name] for name in ("std error", "95% CI", "p-value", "significance")]
        assert figures == ["n/a"] * 4
    assert statistics(text, "score-deltas")["s"]["delta"] == "+0.5"
    assert statistics(text, "usage-deltas")["latency (ms)"]["delta"] == "+20"


def test_the_confidence_parameter_sets_the_intervals_and_is_kept_apart_in_the_cache(
    storage: SqlRunsStorage,
) -> None:
    baseline, candidate = paired_runs(storage, COMPARED_PER_PAGE + 5)
    c = client(storage)
    # each confidence asked in turn, the same runs: the figures kept for one (cache.py)
    # must not answer another
    for confidence in ("0.95", "0.8", "0.99", "0.8", "0.95"):
        text = page(c, compare_url(baseline, candidate, confidence=confidence))
        expected = storage.compare_runs(baseline, candidate, confidence=float(confidence))
        percent = f"{float(confidence):.0%}"
        for name, shown in statistics(text, "score-deltas").items():
            low, high = interval_shown(shown[f"{percent} CI"])
            assert low == pytest.approx(expected.scores[name].ci_low, abs=5e-4)
            assert high == pytest.approx(expected.scores[name].ci_high, abs=5e-4)
        latency = statistics(text, "usage-deltas")["latency (ms)"]
        assert expected.latency is not None
        assert interval_shown(latency[f"{percent} CI"]) == pytest.approx(
            (expected.latency.ci_low, expected.latency.ci_high), abs=0.05
        )
        assert f'<option value="{confidence}" selected>{percent}</option>' in text
    narrow = statistics(page(c, compare_url(baseline, candidate, confidence="0.5")), "usage-deltas")
    wide = statistics(page(c, compare_url(baseline, candidate)), "usage-deltas")
    (narrow_low, narrow_high), (wide_low, wide_high) = (
        interval_shown(narrow["latency (ms)"]["50% CI"]),
        interval_shown(wide["latency (ms)"]["95% CI"]),
    )
    assert wide_low < narrow_low < narrow_high < wide_high
    # an empty field is the default; the links and forms keep a confidence given
    assert "95% CI" in page(c, compare_url(baseline, candidate, confidence=""))
    text = page(c, compare_url(baseline, candidate, confidence="0.9", only="changed"))
    [following] = links(text)
    assert query_of(following)["confidence"] == ["0.9"]
    assert query_of(following)["only"] == ["changed"]
    assert '<option value="0.9" selected>90%</option>' in text
    forms = text.split('<form class="filters"')[1:]
    confidence_form, items_form = forms
    assert '<input type="hidden" name="only" value="changed">' in confidence_form
    assert 'name="confidence" value' not in confidence_form  # the select gives it
    assert '<input type="hidden" name="confidence" value="0.9">' in items_form


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            "0",
            "confidence must be between 0 and 1, both excluded (0.95 for a 95% interval), not '0'",
        ),
        ("1", "confidence must be between 0 and 1, both excluded"),
        ("95", "not '95'"),
        ("-0.5", "confidence must be between 0 and 1"),
        ("NaN", "confidence must be a finite number, not 'NaN'"),
        ("inf", "confidence must be a finite number"),
        ("high", "confidence must be a number, not 'high'"),
    ],
)
def test_a_confidence_not_strictly_between_0_and_1_is_a_400(
    storage: SqlRunsStorage, given: str, message: str
) -> None:
    baseline, candidate = paired_runs(storage, 3)
    text = page(client(storage), compare_url(baseline, candidate, confidence=given), 400)
    assert message in html.unescape(text)
    assert "Traceback" not in text


def gate_options(words: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """A ``runstore runs gate`` command line's arguments and options (each option's
    values in order), as click reads them: ``--`` ends the options."""
    assert words[:3] == ["runstore", "runs", "gate"]
    arguments: list[str] = []
    options: dict[str, list[str]] = {}
    rest = iter(words[3:])
    for word in rest:
        if word == "--":
            arguments += rest
        elif word.startswith("--"):
            options.setdefault(word, []).append(next(rest))
        else:
            arguments.append(word)
    return arguments, options


def shown_command(text: str, element: str) -> list[str]:
    [command] = re.findall(rf'<code id="{element}">([^<]*)</code>', text)
    return shlex.split(html.unescape(command))


def runstore(words: list[str], url: str) -> Result:
    """``words`` (a command line, ``runstore`` first) run by the command, on ``url``."""
    assert words[0] == "runstore"
    environment = {
        "RUNSTORE_DATABASE_URL": url,
        "RUNSTORE_SCHEMA": None,
        "RUNSTORE_READ_REPLICAS": None,
    }
    return CliRunner().invoke(main, words[1:], env=environment)


def test_the_gate_line_fails_on_the_scores_marked_significantly_worse(
    storage: SqlRunsStorage, empty_url: str
) -> None:
    baseline, candidate = paired_runs(storage, ids=('-base "v1"', "cand's run"))
    name = 'it\'s = "ok"'  # spaces, quotes and = in a score's name
    storage.add_results(  # an item more, with that score alone
        [result_input(run, 99, scores={name: 1.0}) for run in (baseline, candidate)]
    )
    c = client(storage)
    text = page(c, compare_url(baseline, candidate))
    words = shown_command(text, "gate-command")
    arguments, options = gate_options(words)
    assert arguments == [candidate]
    assert options == {
        "--baseline": [baseline],
        "--min-delta": ["clear=0", f"{name}=0", "noise=0", "worse=0"],
    }
    marks = statistics(text, "score-deltas")
    assert [score for score, shown in marks.items() if "worse" in shown["significance"]] == [
        "worse"
    ]
    # the line, run: the gate fails (status 1) on that score alone, every score judged
    # against 0 at the page's 95%
    judged = runstore([*words, "--format", "json"], empty_url)
    assert judged.exit_code == 1, judged.output
    verdict = json.loads(judged.stdout)
    assert [verdict["baseline_run_id"], verdict["candidate_run_id"]] == [baseline, candidate]
    assert verdict["rules"]["min_score_delta"] == {
        "clear": 0,
        name: 0,
        "noise": 0,
        "worse": 0,
    }
    assert verdict["rules"]["significance"] is True
    assert verdict["rules"]["confidence"] == 0.95
    assert [check["name"] for check in verdict["checks"] if not check["passed"]] == [
        "min_score_delta.worse"
    ]
    # the page's confidence is the gate's
    text = page(c, compare_url(baseline, candidate, confidence="0.9"))
    words = shown_command(text, "gate-command")
    assert gate_options(words)[1]["--confidence"] == ["0.9"]
    assert "its whole 90% CI below 0" in text
    judged = runstore([*words, "--format", "json"], empty_url)
    assert judged.exit_code == 1, judged.output
    assert json.loads(judged.stdout)["rules"]["confidence"] == 0.9


def test_the_command_lines_quote_what_they_name_and_run(
    storage: SqlRunsStorage, empty_url: str
) -> None:
    baseline, candidate = paired_runs(storage, 4, ids=("-base 'v1'", '-cand "$HOME" `x`'))
    c = client(storage)
    text = page(c, compare_url(baseline, candidate, confidence="0.99"))
    # an id read as an option would not reach the command: -- ends the options
    words = shown_command(text, "command")
    assert words == [
        "runstore",
        "runs",
        "compare",
        "--confidence",
        "0.99",
        "--",
        baseline,
        candidate,
    ]
    compared = runstore(words, empty_url)
    assert compared.exit_code == 0, compared.output
    assert baseline in compared.stdout
    assert candidate in compared.stdout
    assert "99% CI" in compared.stdout
    words = shown_command(text, "gate-command")
    assert words[-2:] == ["--", candidate]
    assert gate_options(words) == (
        [candidate],
        {
            "--baseline": [baseline],
            "--min-delta": ["clear=0", "noise=0", "worse=0"],
            "--confidence": ["0.99"],
        },
    )
    judged = runstore(words, empty_url)
    assert judged.exit_code in (0, 1), judged.output  # a verdict, whichever
    assert candidate in judged.stdout
    assert baseline in judged.stdout
    listing = shown_command(
        page(c, compare_url(baseline, candidate, only="regressed", score="worse")), "command"
    )
    assert listing == [
        "runstore",
        "runs",
        "compare",
        "--items",
        "regressed",
        "--score",
        "worse",
        "--",
        baseline,
        candidate,
    ]
    listed = runstore(listing, empty_url)
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.count("\tregressed\t") == 4


def test_no_gate_line_where_none_can_be_written(storage: SqlRunsStorage) -> None:
    baseline, _ = paired_runs(storage, 3)
    c = client(storage)
    text = page(c, compare_url(baseline, baseline))
    assert 'id="gate-command"' not in text
    assert "No gate command: a run is not gated against itself." in text
    storage.create_run(run_input(id="unscored"))
    storage.add_results([result_input("unscored", n) for n in range(3)])
    text = page(c, compare_url(baseline, "unscored"))
    assert "No gate command: no score is in both runs to gate on." in text


@pytest.mark.parametrize("format", ["jsonl", "csv", "parquet"])
def test_an_export_is_the_file_export_results_writes(
    storage: SqlRunsStorage, format: str, tmp_path: Path
) -> None:
    baseline, _ = fill(storage, 25)
    response = client(storage).get(run_path(baseline, "export") + f"?format={format}")
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["content-disposition"].endswith(f'.{format}"')
    storage.export_results(baseline, tmp_path / "expected", format=format)
    assert response.content == (tmp_path / "expected").read_bytes()


def test_head_of_an_export_says_what_it_would_be(storage: SqlRunsStorage) -> None:
    baseline, _ = fill(storage, 3)
    response = client(storage).head(run_path(baseline, "export") + "?format=csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment;")


def test_malformed_parameters_are_a_400_with_the_message_and_unknowns_a_404(
    storage: SqlRunsStorage,
) -> None:
    baseline, _ = fill(storage, 3)
    c = client(storage)
    for query, message in [
        ("has_error=maybe", "has_error must be true or false"),
        ("order=fastest", "order must be one of"),
        ("score=accuracy&min=0.9&max=0.1", "is above max"),
        ("score=accuracy&min=lots", "min must be a number"),
        ("min=0.5", "give score=NAME too"),
        ("cursor=not-a-cursor", "cursor"),
    ]:
        text = page(c, run_path(baseline) + f"?{query}", 400)
        assert message in html.unescape(text)
        assert "Traceback" not in text
    assert "format must be one of" in page(c, run_path(baseline, "export") + "?format=xls", 400)
    assert "does not exist" in html.unescape(page(c, run_path("no-such-run"), 404))
    assert "does not exist" in html.unescape(page(c, run_path("nope", "export"), 404))
    assert "has no result" in html.unescape(page(c, run_path(baseline, "results", "nope"), 404))
    [other] = storage.add_results([result_input(storage.create_run(run_input()), 1)])
    page(c, run_path(baseline, "results", other.id), 404)  # a result of another run
    page(c, "/no/such/page", 404)


# -- provenance and cost ---------------------------------------------------------------------


def described(storage: SqlRunsStorage) -> None:
    """Runs named, described, tagged and with metadata, oldest first, without results:
    what the runs page filters by."""
    made = [
        ("r-a", "nightly 12", ["nightly", "prod"], {"model": "gpt-4o", "temperature": 0.2}),
        ("r-b", "nightly 13", ["nightly"], {"model": "gpt-4o", "temperature": 0, "build": "1234"}),
        ("r-c", "ad hoc", ["prod"], {"model": "model-b", "build": 1234, "cached": True}),
        ("r-d", "nightly 12", [], {"cached": 1, "commit": None, "nested": {"a": [1, 2]}}),
    ]
    for run_id, name, tags, metadata in made:
        storage.create_run(
            run_input(
                id=run_id,
                name=name,
                description=f"{name}: what changed\nsecond line",
                tags=tags,
                metadata=metadata,
            )
        )


def test_the_runs_page_shows_names_descriptions_and_tags_as_chips(
    storage: SqlRunsStorage,
) -> None:
    described(storage)
    storage.create_run(run_input(id="plain"))
    text = page(client(storage), "/")
    rows_by_run = dict(zip(listed(text), rows(text, "runs"), strict=True))
    assert list(rows_by_run) == ["plain", "r-d", "r-c", "r-b", "r-a"]
    assert '<a class="name" href="/runs/r-a">nightly 12</a>' in rows_by_run["r-a"]
    assert '<span class="id muted">r-a</span>' in rows_by_run["r-a"]
    assert "nightly 12: what changed second line" in rows_by_run["r-a"]  # on one line
    assert '<a class="id" href="/runs/plain">plain</a>' in rows_by_run["plain"]
    assert hrefs(rows_by_run["r-a"], "tag") == [
        ("/?tag=nightly", "nightly"),
        ("/?tag=prod", "prod"),
    ]
    assert hrefs(rows_by_run["r-d"], "tag") == []
    assert "cost/result" not in text  # no run has a cost


def test_the_runs_page_shows_each_runs_cost_per_result(storage: SqlRunsStorage) -> None:
    priced = storage.create_run(run_input(id="priced"))
    storage.add_results(
        [result_input(priced, n, cost=cost) for n, cost in enumerate([0.001, 0.002, None])]
    )
    free = storage.create_run(run_input(id="free"))
    storage.add_results([result_input(free, 1)])
    text = page(client(storage), "/")
    assert '<th class="n">cost/result</th>' in text
    shown = dict(zip(listed(text), rows(text, "runs"), strict=True))
    assert storage.summarize_run("priced").usage.cost_per_result == pytest.approx(0.0015)
    assert '<td class="n cost">0.0015</td>' in shown["priced"]  # the mean of the priced two
    assert '<td class="n cost">-</td>' in shown["free"]


def test_the_runs_list_reads_its_costs_from_the_summaries_it_keeps(
    storage: SqlRunsStorage,
    statements_seen: Callable[[sa.Engine], AbstractContextManager[list[str]]],
) -> None:
    """The cost per result is part of each listed run's summary, which the list reads
    anyway and keeps: a first view makes list_runs and one summary per run, and a later
    view list_runs only."""
    for n in range(3):
        run = storage.create_run(run_input(id=f"run-{n}", tags=["t"]))
        storage.add_results([result_input(run, i, cost=0.5 * i) for i in range(4)])
        storage.update_run({"id": run.id, "status": "completed"})
    c = client(storage)
    with statements_seen(storage.engine) as direct:
        listing = storage.list_runs({"tags": ["t"], "pagination": {"per_page": RUNS_PER_PAGE}})
        for run in listing.runs:
            storage.summarize_run(run.id)
    with statements_seen(storage.engine) as first:
        page(c, "/?tag=t")
    with statements_seen(storage.engine) as later:
        assert '<td class="n cost">0.75</td>' in page(c, "/?tag=t")
    with statements_seen(storage.engine) as listing_only:
        storage.list_runs({"tags": ["t"], "pagination": {"per_page": RUNS_PER_PAGE}})
    assert len(first) == len(direct)
    assert later == listing_only


def test_the_runs_page_filters_by_name_tags_and_metadata(storage: SqlRunsStorage) -> None:
    described(storage)
    c = client(storage)
    for query, expected in [
        ("tag=nightly", ["r-b", "r-a"]),
        ("tag=nightly&tag=prod", ["r-a"]),
        ("tag=prod&tag=nightly&tag=prod", ["r-a"]),
        ("tag=nowhere", []),
        ("tag=", ["r-d", "r-c", "r-b", "r-a"]),  # an empty field filters nothing
        ("name=nightly+12", ["r-d", "r-a"]),
        ("name=nightly", []),  # the name exactly
        ("meta=model=gpt-4o", ["r-b", "r-a"]),  # text that is no JSON
        ("meta=model=%22gpt-4o%22", ["r-b", "r-a"]),  # the same, as JSON
        ("meta=temperature=0.2", ["r-a"]),
        ("meta=temperature=0", ["r-b"]),
        ("meta=temperature=0.0", ["r-b"]),  # numbers equal by value
        ("meta=build=1234", ["r-c"]),  # JSON: the number
        ("meta=build=%221234%22", ["r-b"]),  # the text
        ("meta=cached=true", ["r-c"]),  # true is not 1
        ("meta=cached=1", ["r-d"]),
        ("meta=commit=null", ["r-d"]),  # the key, holding null
        ("meta=model=gpt-4o&meta=temperature=0.2", ["r-a"]),
        ("meta=model=gpt-4o&tag=prod&name=nightly+12", ["r-a"]),
        ("meta=a%3Db=1", []),  # the key ends at the first "=": "a", "b=1" as text
        ("meta=", ["r-d", "r-c", "r-b", "r-a"]),
    ]:
        assert listed(page(c, f"/?{query}")) == expected, query


def test_a_runs_filters_survive_its_pages(storage: SqlRunsStorage) -> None:
    for n in range(RUNS_PER_PAGE * 3 + 5):
        storage.create_run(
            run_input(
                id=f"run-{n:03}",
                tags=["eval", "even" if n % 2 else "odd"],
                metadata={"model": "m1" if n % 3 else "m2", "n": n},
            )
        )
    expected = [
        run.id for run in storage.iter_runs(tags=["eval", "even"], metadata={"model": "m1"})
    ]
    assert len(expected) > RUNS_PER_PAGE
    c = client(storage)
    url: str | None = "/?tag=eval&tag=even&meta=model=m1"
    seen: list[str] = []
    pages = 0
    while url is not None:
        text = page(c, url)
        seen += listed(text)
        pages += 1
        following = links(text)
        url = following[0] if following else None
        if url is not None:
            kept = query_of(url)
            assert kept["tag"] == ["eval", "even"]
            assert kept["meta"] == ["model=m1"]
    assert seen == expected
    assert pages == 2
    # a cursor of one list is refused by another
    cursor = query_of(links(page(c, "/?tag=eval&tag=even&meta=model=m1"))[0])["cursor"][0]
    text = page(c, f"/?tag=eval&cursor={quote(cursor)}", 400)
    assert "cursor belongs to another list" in html.unescape(text)


def test_a_tag_chip_adds_its_tag_to_the_filters_and_an_active_one_drops_it(
    storage: SqlRunsStorage,
) -> None:
    described(storage)
    c = client(storage)
    text = page(c, "/?meta=model=gpt-4o")
    [(chip, _)] = [link for link in hrefs(text, "tag") if link[1] == "prod"]
    assert query_of(chip) == {"tag": ["prod"], "meta": ["model=gpt-4o"]}
    narrowed = page(c, chip)
    assert listed(narrowed) == ["r-a"]
    active = narrowed.split('id="active-filters"', 1)[1].split("</p>", 1)[0]
    assert '<span class="tag active">prod' in active
    assert '<span class="meta active">model=gpt-4o' in active
    drops = [html.unescape(href) for href in re.findall(r'class="drop" href="([^"]*)"', active)]
    assert [query_of(drop) for drop in drops] == [
        {"meta": ["model=gpt-4o"]},  # the tag dropped
        {"tag": ["prod"]},  # the metadata filter dropped
    ]
    assert listed(page(c, drops[1])) == ["r-c", "r-a"]
    # the tags and metadata filters given ride along in the form, which adds one more
    assert '<input type="hidden" name="tag" value="prod">' in narrowed
    assert '<input type="hidden" name="meta" value="model=gpt-4o">' in narrowed
    assert 'id="all-runs" href="/"' in narrowed
    assert 'id="active-filters"' not in page(c, "/")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("meta=model", "meta must be KEY=VALUE"),
        ("meta=model=%7B%22a%22%3A1%7D", "not an object"),
        ("meta=model=%5B1%2C2%5D", "not a list"),
        ("meta=n=1e400", "too large"),
        ("meta=n=1&meta=n=2", "gives the key 'n' twice"),
        ("tag=" + "t" * 65, "tags.0"),
        ("tag=a%00b", "NUL"),
        ("name=" + "n" * 257, "name"),
        ("status=sideways", "status must be one of"),
    ],
)
def test_a_runs_filter_that_cannot_be_read_is_a_400_saying_why(
    storage: SqlRunsStorage, query: str, message: str
) -> None:
    text = page(client(storage), f"/?{query}", 400)
    assert message in html.unescape(text)
    assert "Traceback" not in text


@pytest.mark.parametrize(
    "value",
    [
        "gpt-4o",
        "1234",
        "true",
        "null",
        '"quoted"',
        "[1]",
        "{}",
        "NaN",
        "1e400",
        "",
        " spaced ",
        "a=b",
        1234,
        0.2,
        -0.5,
        2**70,
        True,
        False,
        None,
    ],
)
def test_a_meta_parameter_reads_back_as_the_value_it_was_written_for(value: object) -> None:
    param = meta_param("key", value)
    assert param is not None
    key, _, text = param.partition("=")
    read = meta_value(text)
    assert key == "key"
    assert read == value
    assert type(read) is type(value)


def test_meta_value_refuses_what_no_metadata_filter_takes() -> None:
    assert meta_param("a=b", 1) is None  # a key ends at its first "="
    assert meta_param("key", {"a": 1}) is None
    assert meta_param("key", [1]) is None
    for text in ('{"a": 1}', "[1]", "1e999", "-1e999"):
        with pytest.raises(BadQueryError):
            meta_value(text)


def test_a_run_page_shows_its_name_description_tags_and_metadata(
    storage: SqlRunsStorage,
) -> None:
    described(storage)
    c = client(storage)
    text = page(c, run_path("r-b"))
    assert '<span id="name">nightly 13</span>' in text
    assert (
        '<p class="description" id="description">nightly 13: what changed\nsecond line</p>' in text
    )
    assert hrefs(text, "tag") == [("/?tag=nightly", "nightly")]
    metadata = text.split('<section id="metadata">', 1)[1].split("</section>", 1)[0]
    shown = dict(re.findall(r"<tr><th>([^<]*)</th><td>(.*?)</td></tr>", metadata, re.S))
    assert set(shown) == {"build", "model", "temperature"}
    assert ">1234</a>" in shown["build"]
    # each value links to the runs with the same one: the text "1234", not the number
    assert listed(page(c, html.unescape(re.findall(r'href="([^"]*)"', shown["build"])[0]))) == [
        "r-b"
    ]
    for key, expected in [("model", ["r-b", "r-a"]), ("temperature", ["r-b"])]:
        [href] = re.findall(r'href="([^"]*)"', shown[key])
        assert listed(page(c, html.unescape(href))) == expected, key
    other = page(c, run_path("r-d"))
    nested = other.split('<section id="metadata">', 1)[1].split("</section>", 1)[0]
    assert '<pre class="json">{\n  &#34;a&#34;: [' in nested  # an object, pretty
    [cached, commit] = [
        html.unescape(href)
        for key in ("cached", "commit")
        for href in re.findall(rf'<th>{key}</th><td><a href="([^"]*)"', nested)
    ]
    assert listed(page(c, cached)) == ["r-d"]  # 1, not true
    assert listed(page(c, commit)) == ["r-d"]
    plain = page(c, run_path(storage.create_run(run_input(id="plain")).id))
    for absent in ('id="name"', 'id="description"', 'id="tags"', 'id="metadata"'):
        assert absent not in plain


def test_a_run_page_shows_its_usage_and_a_cost_histogram(storage: SqlRunsStorage) -> None:
    run = storage.create_run(run_input(id="costly"))
    storage.add_results(
        [
            result_input(
                run,
                n,
                input_tokens=100 + n,
                output_tokens=None if n == 0 else 20,
                cost=None if n % 4 == 0 else 0.0001 * n,
                scores={"accuracy": n / 20},
            )
            for n in range(20)
        ]
    )
    text = page(client(storage), run_path("costly"))
    usage = storage.summarize_run("costly").usage
    assert (usage.input_tokens, usage.output_tokens, usage.priced) == (2190, 380, 15)
    assert usage.cost == pytest.approx(0.0150)
    table = text.split('id="usage"', 1)[1].split("</table>", 1)[0]
    assert dict(re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td></tr>", table)) == {
        "input tokens": "2190",
        "output tokens": "380",
        "priced results": "15",
        "total cost": "0.015",
        "cost per result": "0.001",
    }
    histograms = storage.histogram_run("costly", bins=24)
    assert histograms.latency is not None
    assert histograms.cost is not None
    charts = page(client(storage), run_path("costly", "charts"))
    captions = re.findall(r"<figcaption>([^<]*) <span", charts)
    assert captions == ["latency (ms)", "cost per result", "accuracy"]
    assert 'cost per result <span class="muted">(15 values)</span>' in charts
    drawn = charts.split("<figcaption>cost per result", 1)[1].split("</figure>", 1)[0]
    assert (histograms.cost.low, histograms.cost.high) == pytest.approx((0.0001, 0.0019))
    ticks = re.findall(r'<text class="tick"[^>]*>([^<]*)</text>', drawn)
    assert ticks == ["0.0001", "0.0019", "most in a bin: 1"]  # as costs, not 1e-04
    assert drawn.count('<rect class="bar"') == len(histograms.cost.counts)
    for count in histograms.cost.counts:
        assert f": {count}</title></rect>" in drawn
    # the results list: tokens and cost of each
    first = rows(text, "results")[0]
    assert '<td class="n">100 / -</td>' in first
    assert '<td class="n">-</td>' in first  # item 0 has no cost
    assert '<td class="n">0.0001</td>' in rows(text, "results")[1]


def test_a_run_without_costs_draws_no_cost_histogram(storage: SqlRunsStorage) -> None:
    baseline, _ = fill(storage, 5)
    c = client(storage)
    charts = page(c, run_path(baseline, "charts"))
    assert "latency (ms) <span" in charts
    assert "cost per result <span" not in charts
    text = page(c, run_path(baseline))
    assert "tokens in/out" not in text
    assert '<th class="n">cost</th>' not in text
    table = text.split('id="usage"', 1)[1].split("</table>", 1)[0]
    assert "<tr><th>total cost</th><td>-</td></tr>" in table
    assert "<tr><th>input tokens</th><td>0</td></tr>" in table


def test_a_result_page_shows_tokens_cost_trace_and_metadata(storage: SqlRunsStorage) -> None:
    run = storage.create_run(run_input(id="r"))
    [result, bare] = storage.add_results(
        [
            result_input(
                run,
                1,
                input_tokens=1200,
                output_tokens=0,
                cost=0.000123456,
                trace_id="trace/0af7651916cd43dd8448eb211c80319c",
                metadata={"provider": "azure", "region": HOSTILE, "attempts": [1, 2]},
            ),
            result_input(run, 2),
        ]
    )
    c = client(storage)
    text = page(c, run_path("r", "results", result.id))
    facts = dict(re.findall(r"<tr><th>([^<]*)</th><td[^>]*>([^<]*)</td></tr>", text))
    assert facts["input tokens"] == "1200"
    assert facts["output tokens"] == "0"
    assert facts["cost"] == "0.0001235"
    assert facts["trace"] == "trace/0af7651916cd43dd8448eb211c80319c"
    shown = html.unescape(text.split('<pre class="json" id="metadata">', 1)[1].split("</pre>")[0])
    # pretty-printed (keys in the order the database keeps them)
    assert json.loads(shown) == {"provider": "azure", "region": HOSTILE, "attempts": [1, 2]}
    assert shown == json.dumps(json.loads(shown), indent=2, ensure_ascii=False)
    assert "<img" not in text
    text = page(c, run_path("r", "results", bare.id))
    facts = dict(re.findall(r"<tr><th>([^<]*)</th><td[^>]*>([^<]*)</td></tr>", text))
    assert [facts[name] for name in ("input tokens", "output tokens", "cost", "trace")] == ["-"] * 4
    assert '<pre class="json" id="metadata">-</pre>' in text


def test_the_comparison_page_shows_the_cost_and_token_deltas(storage: SqlRunsStorage) -> None:
    baseline = storage.create_run(run_input(id="b", name="v12"))
    candidate = storage.create_run(run_input(id="c", name="v13"))
    storage.add_results(
        [
            result_input(
                run,
                n,
                cost=(0.004 if run is baseline else 0.0025) if n else None,
                input_tokens=1000 if run is baseline else 700,
                output_tokens=100,
            )
            for run in (baseline, candidate)
            for n in range(4)
        ]
    )
    comparison = storage.compare_runs("b", "c")
    assert comparison.cost_mean_delta == pytest.approx(-0.0015)
    assert comparison.tokens_mean_delta == pytest.approx(-300)
    text = page(client(storage), "/compare?baseline=b&candidate=c")
    figures = dict(re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td></tr>", text))
    assert figures["cost mean delta"] == "-0.0015"
    assert figures["tokens mean delta"] == "-300"
    assert (
        '<h1>Run <a href="/runs/c">v13</a> <span class="id muted">c</span> against '
        '<a href="/runs/b">v12</a> <span class="id muted">b</span></h1>'
    ) in text
    runs_without = fill(storage, 3)
    text = page(
        client(storage),
        f"/compare?baseline={quote(runs_without[0])}&candidate={quote(runs_without[1])}",
    )
    figures = dict(re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td></tr>", text))
    assert figures["cost mean delta"] == "-"
    assert figures["tokens mean delta"] == "-"


def test_costs_are_shown_to_four_significant_digits(storage: SqlRunsStorage) -> None:
    run = storage.create_run(run_input(id="r"))
    costs = [0.0, 0.000012346, 0.0012346, 0.5, 1.23456, 1234.5678, 2.5e-12, 3.5e16]
    written = storage.add_results([result_input(run, n, cost=cost) for n, cost in enumerate(costs)])
    c = client(storage)
    shown = []
    for result in written:
        text = page(c, run_path("r", "results", result.id))
        shown.append(re.findall(r"<tr><th>cost</th><td>([^<]*)</td></tr>", text)[0])
    assert shown == ["0", "0.00001235", "0.001235", "0.5", "1.235", "1234.57", "2.5e-12", "3.5e+16"]


def test_a_run_edit_shows_at_once_and_its_figures_stay_right(storage: SqlRunsStorage) -> None:
    run = storage.create_run(run_input(id="edited", name="first", tags=["a"]))
    storage.add_results([result_input(run, 1, latency=10.0, cost=0.25)], update_counts=True)
    storage.update_run({"id": "edited", "status": "completed"})
    c = client(storage)
    text = page(c, run_path("edited"))
    assert '<span id="name">first</span>' in text
    assert "<tr><th>total cost</th><td>0.25</td></tr>" in text
    storage.update_run(
        {"id": "edited", "name": "second", "tags": ["b"], "metadata": {"model": "m"}}
    )
    text = page(c, run_path("edited"))
    assert '<span id="name">second</span>' in text
    assert hrefs(text, "tag") == [("/?tag=b", "b")]
    assert ">model</th>" in text
    listing = page(c, "/")
    assert '<a class="name" href="/runs/edited">second</a>' in listing
    assert hrefs(listing, "tag") == [("/?tag=b", "b")]
    # a result written over in place moves updated_at only, as an edit does: the figures
    # are computed again
    storage.add_results(
        [result_input(run, 1, latency=10.0, cost=0.75)], on_conflict="replace", update_counts=True
    )
    edited = storage.get_run_by_id("edited")
    assert edited is not None
    assert edited.succeeded_count == 1  # counters as they were
    text = page(c, run_path("edited"))
    assert "<tr><th>total cost</th><td>0.75</td></tr>" in text
    assert '<td class="n cost">0.75</td>' in page(c, "/")


# -- safety ------------------------------------------------------------------------------


def test_stored_text_never_becomes_markup(storage: SqlRunsStorage) -> None:
    run = storage.create_run(
        run_input(
            id=HOSTILE,
            dataset_id="<i>ds</i>",
            name=HOSTILE,
            description=HOSTILE,
            tags=[HOSTILE[:30], HOSTILE[30:]],
            metadata={HOSTILE: HOSTILE, "nested": {HOSTILE: [HOSTILE]}},
        )
    )
    other = storage.create_run(run_input(id=f"{HOSTILE} 2", name=HOSTILE))
    storage.add_results(
        [
            result_input(
                made,
                n,
                output=HOSTILE,
                error=HOSTILE,
                scores={"<b>s</b>": 1.0 - n / 4, HOSTILE: n / 4, SCRIPT_NAME: 0.5},
                trace_id=HOSTILE,
                metadata={HOSTILE: HOSTILE},
                cost=0.5,
            )
            for made in (run, other)
            for n in (1, 2)
        ]
    )
    c = client(storage)
    result = storage.list_results({"run_id": run.id}).results[0]
    for url in (
        "/",
        f"/?tag={quote(HOSTILE[:30])}&meta={quote(HOSTILE)}={quote(HOSTILE)}",
        f"/?name={quote(HOSTILE)}",
        run_path(run.id),
        run_path(run.id, "charts"),
        run_path(run.id, "results", result.id),
        f"/compare?baseline={quote(run.id)}&candidate={quote(run.id)}",
        compare_url(run.id, other.id, confidence="0.9"),
        f"/trend?dataset_id={quote(run.dataset_id)}&status=pending",
    ):
        text = page(c, url)
        assert "<img" not in text
        assert "<b>s</b>" not in text
        assert "<i>ds</i>" not in text
        assert re.findall(r"<script[^>]*>", text) == ['<script src="/static/viewer.js" defer>']
        assert HOSTILE in html.unescape(text)  # shown, as text
    # the hostile score names stay text in the tables and in the gate's command line
    text = page(c, compare_url(run.id, other.id))
    assert SCRIPT_NAME not in text
    assert sorted(statistics(text, "score-deltas")) == sorted(["<b>s</b>", HOSTILE, SCRIPT_NAME])
    arguments, options = gate_options(shown_command(text, "gate-command"))
    assert arguments == [other.id]
    assert options["--min-delta"] == [
        f"{name}=0" for name in sorted(["<b>s</b>", HOSTILE, SCRIPT_NAME])
    ]
    text = page(c, f"/compare?baseline={quote(HOSTILE)}&candidate=nope", 404)
    assert "<img" not in text
    assert "does not exist" in text
    script = "<script>alert(3)</script>"
    text = page(c, f"/?meta={quote(script)}", 400)  # the bad value, quoted back as text
    assert "<script>alert" not in text
    assert script in html.unescape(text)


def test_every_response_forbids_inline_script_and_framing(storage: SqlRunsStorage) -> None:
    c = client(storage)
    for url, status in [("/", 200), ("/runs/none", 404), ("/static/viewer.css", 200)]:
        response = c.get(url)
        assert response.status_code == status
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "connect-src 'self'" in policy  # viewer.js fetches a run's histograms
        assert "'unsafe-inline'" not in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_the_viewer_only_reads(storage: SqlRunsStorage, method: str) -> None:
    response = client(storage).request(method, "/")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_head_answers_like_get(storage: SqlRunsStorage) -> None:
    response = client(storage).head("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_no_page_writes_to_the_database(
    storage: SqlRunsStorage,
    statements_seen: Callable[[sa.Engine], AbstractContextManager[list[str]]],
) -> None:
    baseline, candidate = fill(storage, 12)
    c = client(storage)
    result = storage.list_results({"run_id": baseline}).results[0]
    # the baseline finished (its summary kept), then scored again: its kept summary is
    # stale, and a page that kept summaries would keep it again
    storage.update_run({"id": baseline, "status": "completed"})
    storage.add_scores([AddScoreInput(result_id=result.id, name="late", value=1.0)])
    with statements_seen(storage.engine) as seen:
        for url in (
            "/",
            run_path(baseline),
            run_path(baseline, "charts"),
            run_path(baseline, "results", result.id),
            f"/compare?baseline={quote(baseline)}&candidate={quote(candidate)}",
            run_path(baseline, "export") + "?format=csv",
            "/trend?dataset_id=qa",
            "/trend?dataset_id=qa&status=pending",
        ):
            page(c, url)
    assert seen
    writes = [s for s in seen if re.match(r"\s*(INSERT|UPDATE|DELETE|CREATE|DROP|ALTER)", s, re.I)]
    assert writes == []


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.nip.io", "localhost.evil"])
def test_another_host_name_is_refused(storage: SqlRunsStorage, host: str) -> None:
    response = client(storage).get("/", headers={"host": host})
    assert response.status_code == 421


@pytest.mark.parametrize("host", ["localhost:8765", "127.0.0.1:8765", "[::1]:8765", "localhost"])
def test_loopback_names_are_answered(storage: SqlRunsStorage, host: str) -> None:
    assert client(storage).get("/", headers={"host": host}).status_code == 200


def test_a_token_is_needed_once_given(storage: SqlRunsStorage) -> None:
    fill(storage, 2)
    c = client(storage, token="s3cret")
    assert c.get("/").status_code == 401
    assert c.get("/?token=wrong").status_code == 401
    assert c.get("/", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/", headers={"authorization": "Bearer s3cret"}).status_code == 200
    assert c.get("/static/viewer.css").status_code == 401
    # ?token= answers with a cookie and the same address without the token
    response = c.get("/?dataset_id=qa&token=s3cret", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/?dataset_id=qa"
    assert "s3cret" not in response.headers["set-cookie"]
    assert "httponly" in response.headers["set-cookie"].lower()
    assert c.get("/?dataset_id=qa").status_code == 200  # the cookie now
    assert TestClient(c.app, base_url=BASE).get("/").status_code == 401  # not for others


def test_figures_are_computed_again_when_a_run_changes(storage: SqlRunsStorage) -> None:
    run = storage.create_run(run_input(id="growing"))
    storage.add_results([result_input(run, n, latency=10.0) for n in range(3)])
    c = client(storage)
    assert "<td>3</td>" in page(c, run_path("growing"))
    storage.add_results([result_input(run, n, latency=99.0) for n in range(3, 10)])
    text = page(c, run_path("growing"))
    assert "<td>10</td>" in text
    assert "99" in text


# -- the command ---------------------------------------------------------------------------


def _runstore() -> str:
    return str(Path(sys.executable).with_name("runstore"))


def test_the_command_refuses_another_interface_without_a_token(sqlite_url: str) -> None:
    with SqlRunsStorage(sqlite_url) as storage:
        storage.init()
    done = subprocess.run(
        [_runstore(), "ui", "--url", sqlite_url, "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode != 0
    assert "--token" in done.stderr


@pytest.fixture
def served(sqlite_url: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with SqlRunsStorage(sqlite_url) as storage:
        storage.init()
        fill(storage, 5)
    server = subprocess.Popen(
        [_runstore(), "ui", "--url", sqlite_url, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        yield server.stdout.readline().strip(), server
    finally:
        stop_process(server)


def test_the_command_serves_the_viewer_and_prints_its_address(
    served: tuple[str, subprocess.Popen[str]],
) -> None:
    address, _ = served
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", address), address
    with urllib.request.urlopen(address, timeout=30) as response:
        text = io.TextIOWrapper(response, encoding="utf-8").read()
    assert response.status == 200
    assert "base/line %1" in html.unescape(text)
    request = urllib.request.Request(address, method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 405


def test_a_served_run_page_is_found_by_its_quoted_id(
    served: tuple[str, subprocess.Popen[str]],
) -> None:
    address, _ = served
    url = address + "runs/" + quote("base/line %1", safe="") + "?has_error=false"
    with urllib.request.urlopen(url, timeout=30) as response:
        text = io.TextIOWrapper(response, encoding="utf-8").read()
    assert response.status == 200
    assert 'id="results"' in text
