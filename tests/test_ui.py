"""The viewer's pages, in process, on real SQLite and Postgres databases: what each page
shows, every filter and page link, the errors, and the security defaults.

(The browser drives the installed command in ``test_ui_browser.py``.)
"""

from __future__ import annotations

import html
import io
import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import sqlalchemy as sa

pytest.importorskip("starlette")
pytest.importorskip("jinja2")

from starlette.testclient import TestClient

from runstore import SqlRunsStorage
from runstore.testing.inputs import result_input, run_input
from runstore.testing.servers import stop_process
from runstore.ui import create_app
from runstore.ui.queries import COMPARED_PER_PAGE, RESULTS_PER_PAGE

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
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
    histograms = storage.histogram_run(baseline, bins=24)
    assert histograms.latency is not None
    assert text.count('<rect class="bar"') == len(histograms.latency.counts) + sum(
        len(h.counts) for h in histograms.scores.values()
    )
    for count in histograms.latency.counts:  # each bar says how many values it holds
        assert f": {count}</title></rect>" in text
    assert len(rows(text, "results")) == RESULTS_PER_PAGE


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


# -- safety ------------------------------------------------------------------------------


def test_stored_text_never_becomes_markup(storage: SqlRunsStorage) -> None:
    run = storage.create_run(run_input(id=HOSTILE, dataset_id="<i>ds</i>"))
    storage.add_results(
        [result_input(run, 1, output=HOSTILE, error=HOSTILE, scores={"<b>s</b>": 1.0})]
    )
    c = client(storage)
    result = storage.list_results({"run_id": run.id}).results[0]
    for url in (
        "/",
        run_path(run.id),
        run_path(run.id, "results", result.id),
        f"/compare?baseline={quote(run.id)}&candidate={quote(run.id)}",
    ):
        text = page(c, url)
        assert "<img" not in text
        assert "<b>s</b>" not in text
        assert "<i>ds</i>" not in text
        assert re.findall(r"<script[^>]*>", text) == ['<script src="/static/viewer.js" defer>']
        assert HOSTILE in html.unescape(text)  # shown, as text
    text = page(c, f"/compare?baseline={quote(HOSTILE)}&candidate=nope", 404)
    assert "<img" not in text
    assert "does not exist" in text


def test_every_response_forbids_inline_script_and_framing(storage: SqlRunsStorage) -> None:
    c = client(storage)
    for url, status in [("/", 200), ("/runs/none", 404), ("/static/viewer.css", 200)]:
        response = c.get(url)
        assert response.status_code == status
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
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
    with statements_seen(storage.engine) as seen:
        for url in (
            "/",
            run_path(baseline),
            run_path(baseline, "results", result.id),
            f"/compare?baseline={quote(baseline)}&candidate={quote(candidate)}",
            run_path(baseline, "export") + "?format=csv",
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
