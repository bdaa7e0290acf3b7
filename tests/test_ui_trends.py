"""The viewer's trend page and its line charts, a run's histograms drawn after its page,
the links between them, and that viewing never keeps a summary: in process, on the
in-memory storage and on real SQLite and Postgres databases.

(The browser draws them in ``test_ui_browser.py``.)
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import quote
from urllib.parse import urlencode

import pytest

pytest.importorskip("starlette")
pytest.importorskip("jinja2")

from starlette.testclient import TestClient

from runstore import AddScoreInput
from runstore import InMemoryRunsStorage
from runstore import SqlRunsStorage
from runstore.base import RunsStorage
from runstore.cli.output import number
from runstore.models import RunStatus
from runstore.models import RunTrend
from runstore.models import TrendPoint
from runstore.testing.inputs import T0
from runstore.testing.inputs import FrozenClock
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input
from runstore.ui import create_app
from runstore.ui.charts import PLOT_BOTTOM
from runstore.ui.charts import PLOT_LEFT
from runstore.ui.charts import PLOT_RIGHT
from runstore.ui.charts import PLOT_TOP
from runstore.ui.charts import Series
from runstore.ui.charts import line_chart

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BASE = "http://127.0.0.1:8765"
SCRIPT = "<script>alert(1)</script>"
MIDDLE = (PLOT_TOP + PLOT_BOTTOM) / 2


# -- the line charts' geometry -------------------------------------------------------------


def points(count: int) -> list[TrendPoint]:
    """``count`` runs a day apart, oldest first; every other one named."""
    return [
        TrendPoint(
            run_id=f"run-{index}",
            name=None if index % 2 else f"name {index}",
            created_at=T0 + timedelta(days=index),
            status=RunStatus.COMPLETED,
            results=10,
            error_rate=0.0,
            latency_p50=1.0,
            latency_p95=2.0,
            cost=None,
            cost_per_result=None,
            scores={},
        )
        for index in range(count)
    ]


def xy(segment: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (pair.split(",") for pair in segment.split())]


def test_a_line_chart_draws_the_oldest_run_at_the_left_the_least_value_at_the_bottom() -> None:
    drawn = line_chart("accuracy", points(3), [Series("accuracy", [0.5, 0.9, 0.7])])
    (line,) = drawn.lines
    assert [marker.run_id for marker in line.markers] == ["run-0", "run-1", "run-2"]
    assert [marker.x for marker in line.markers] == [
        PLOT_LEFT,
        (PLOT_LEFT + PLOT_RIGHT) / 2,
        PLOT_RIGHT,
    ]
    assert [marker.y for marker in line.markers] == pytest.approx([PLOT_BOTTOM, PLOT_TOP, MIDDLE])
    assert [marker.label for marker in line.markers] == ["name 0", "run-1", "name 2"]
    assert [marker.value for marker in line.markers] == [0.5, 0.9, 0.7]
    assert (drawn.low, drawn.high) == (0.5, 0.9)
    assert (drawn.first, drawn.last) == (T0, T0 + timedelta(days=2))
    assert drawn.zero is None
    assert not drawn.empty
    (segment,) = line.segments
    assert xy(segment) == [(round(marker.x, 2), round(marker.y, 2)) for marker in line.markers]


def test_a_lone_run_is_a_marker_in_the_middle_without_a_line() -> None:
    drawn = line_chart("accuracy", points(1), [Series("accuracy", [0.25])])
    (line,) = drawn.lines
    (marker,) = line.markers
    assert (marker.x, marker.y) == ((PLOT_LEFT + PLOT_RIGHT) / 2, MIDDLE)
    assert line.segments == ()
    assert drawn.low == drawn.high == 0.25
    assert drawn.first == drawn.last == T0


def test_equal_values_are_drawn_halfway_up() -> None:
    drawn = line_chart("error rate", points(4), [Series("error rate", [0.0] * 4)])
    (line,) = drawn.lines
    assert {marker.y for marker in line.markers} == {MIDDLE}
    assert len(line.segments) == 1
    assert len(xy(line.segments[0])) == 4


def test_a_missing_value_breaks_the_line() -> None:
    drawn = line_chart("cost", points(6), [Series("cost", [1.0, 2.0, None, 3.0, 4.0, 5.0])])
    (line,) = drawn.lines
    assert [marker.run_id for marker in line.markers] == [
        "run-0",
        "run-1",
        "run-3",
        "run-4",
        "run-5",
    ]
    assert [len(xy(segment)) for segment in line.segments] == [2, 3]
    # a stretch of one value is its marker alone; a value that is not finite is missing
    drawn = line_chart("cost", points(5), [Series("cost", [1.0, None, 2.0, float("nan"), 3.0])])
    assert drawn.lines[0].segments == ()
    assert len(drawn.lines[0].markers) == 3
    assert (drawn.low, drawn.high) == (1.0, 3.0)


def test_no_value_at_all_is_an_empty_chart() -> None:
    drawn = line_chart("cost", points(3), [Series("cost", [None, None, None])])
    assert drawn.empty
    assert (drawn.low, drawn.high, drawn.zero) == (None, None, None)
    assert drawn.lines[0].markers == ()
    assert drawn.lines[0].segments == ()
    assert line_chart("cost", [], [Series("cost", [])]).first is None


def test_negative_values_and_a_zero_line() -> None:
    drawn = line_chart("delta", points(3), [Series("delta", [-2.0, 0.0, 6.0])])
    ys = [marker.y for marker in drawn.lines[0].markers]
    assert ys == pytest.approx([PLOT_BOTTOM, PLOT_BOTTOM - (PLOT_BOTTOM - PLOT_TOP) / 4, PLOT_TOP])
    assert drawn.zero == pytest.approx(ys[1])
    below = line_chart("delta", points(2), [Series("delta", [-3.0, -1.0])])
    assert [marker.y for marker in below.lines[0].markers] == pytest.approx([PLOT_BOTTOM, PLOT_TOP])
    assert below.zero is None  # 0 is not within the values
    # the largest floats of both signs: their span overflows, the drawing does not
    extreme = line_chart("x", points(3), [Series("x", [-1.7e308, 0.0, 1.7e308])])
    assert [marker.y for marker in extreme.lines[0].markers] == pytest.approx(
        [PLOT_BOTTOM, MIDDLE, PLOT_TOP]
    )


def test_lines_of_one_chart_share_its_scale() -> None:
    drawn = line_chart(
        "latency",
        points(2),
        [Series("p50", [10.0, 20.0]), Series("p95", [30.0, 50.0])],
    )
    p50, p95 = drawn.lines
    assert (drawn.low, drawn.high) == (10.0, 50.0)
    assert p50.markers[0].y == PLOT_BOTTOM
    assert p95.markers[1].y == PLOT_TOP
    assert p50.markers[1].y == pytest.approx(PLOT_BOTTOM - (PLOT_BOTTOM - PLOT_TOP) / 4)
    with pytest.raises(ValueError, match="2 runs"):
        line_chart("latency", points(2), [Series("p50", [1.0])])


# -- the pages -----------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite_file", "postgres"])
def viewed(request: pytest.FixtureRequest) -> Iterator[tuple[RunsStorage, FrozenClock]]:
    """A storage of each adapter and backend, and the clock it stamps runs with."""
    clock = FrozenClock(T0)
    if request.param == "memory":
        yield InMemoryRunsStorage(clock=clock), clock
        return
    if request.param == "sqlite_file":
        url = str(request.getfixturevalue("sqlite_url"))
    else:
        url = str(request.getfixturevalue("new_postgres_url")())
    with SqlRunsStorage(url, clock=clock) as storage:
        storage.init()
        yield storage, clock


def client(storage: RunsStorage, **options: object) -> TestClient:
    return TestClient(create_app(storage, **options), base_url=BASE)  # type: ignore[arg-type]


def page(c: TestClient, url: str, status: int = 200) -> str:
    response = c.get(url)
    assert response.status_code == status, (url, response.status_code, response.text[-500:])
    return response.text


def trend_url(**query: str | list[str]) -> str:
    return f"/trend?{urlencode(query, doseq=True)}"


def finished_run(
    storage: RunsStorage,
    clock: FrozenClock,
    run_id: str,
    *,
    day: int,
    accuracy: float | None,
    latency: float,
    failed: int = 0,
    cost: float | None = None,
    status: str = "completed",
    **fields: object,
) -> None:
    """A run of four results created ``day`` days after T0, its accuracy (when given)
    the same on each, ``failed`` of them failed, and then ``status``."""
    clock.now = T0 + timedelta(days=day)
    run = storage.create_run(run_input(id=run_id, **fields))
    storage.add_results(
        [
            result_input(
                run,
                n,
                latency=latency + n,
                error="timeout" if n < failed else None,
                cost=cost,
                scores=None if accuracy is None else {"accuracy": accuracy},
            )
            for n in range(4)
        ],
        update_counts=True,
    )
    if status != "pending":
        storage.update_run({"id": run_id, "status": status})


def figures(text: str) -> dict[str, str]:
    """Each line chart of a page, by its caption."""
    return {
        html.unescape(caption).strip(): drawn
        for caption, drawn in re.findall(
            r'<figure class="chart line">\s*<figcaption>([^<]*).*?</figcaption>(.*?)</figure>',
            text,
            re.S,
        )
    }


def point_links(drawn: str) -> list[tuple[str, str]]:
    """A chart's points: the address each leads to and its tooltip, in drawing order."""
    return [
        (html.unescape(href), html.unescape(title))
        for href, title in re.findall(
            r'<a class="point" href="([^"]*)"><circle [^>]*><title>([^<]*)</title>', drawn
        )
    ]


def ticks(drawn: str) -> dict[str, str]:
    return dict(re.findall(r'<text class="tick (\w+)"[^>]*>([^<]*)</text>', drawn))


def listed(text: str) -> list[str]:
    """The runs a trend page lists in its table, in order."""
    body = text.split('id="points"', 1)[1].split("</tbody>", 1)[0]
    return [
        html.unescape(run_id)
        for run_id in re.findall(r'<td class="run"><a class="[a-z]+" href="/runs/([^"]*)"', body)
    ]


def test_the_trend_page_draws_each_figure_of_the_finished_runs_oldest_first(
    viewed: tuple[RunsStorage, FrozenClock],
) -> None:
    storage, clock = viewed
    finished_run(storage, clock, "r-3", day=3, accuracy=0.9, latency=10.0, cost=0.02)
    finished_run(storage, clock, "r-1", day=1, accuracy=0.5, latency=30.0, failed=2, name="one")
    finished_run(storage, clock, "r-2", day=2, accuracy=None, latency=20.0, status="failed")
    finished_run(storage, clock, "live", day=4, accuracy=0.1, latency=5.0, status="running")
    finished_run(storage, clock, "other", day=0, accuracy=0.1, latency=5.0, dataset_id="x")
    text = page(client(storage), trend_url(dataset_id="dataset-1"))
    assert "<title>Trend of dataset-1 · runstore</title>" in text
    order = ["r-1", "r-2", "r-3"]  # oldest first; neither the running run nor another dataset's
    assert listed(text) == order
    assert "3 runs, finished (completed or failed)" in text
    drawn = figures(text)
    assert list(drawn) == ["accuracy (mean)", "error rate", "latency (ms)", "cost per result"]

    # a point per run that has the figure, each a link to its run, its name or id and its
    # value on hover; a run without the figure breaks the line
    accuracy = drawn["accuracy (mean)"]
    assert point_links(accuracy) == [
        ("/runs/r-1", "one: 0.5 · 2026-01-03 03:04:05Z"),
        ("/runs/r-3", "r-3: 0.9 · 2026-01-05 03:04:05Z"),
    ]
    assert "<polyline" not in accuracy
    assert ticks(accuracy) == {
        "high": "0.9",
        "low": "0.5",
        "first": "2026-01-03 03:04:05Z",
        "last": "2026-01-05 03:04:05Z",
    }
    errors = drawn["error rate"]
    assert [title for _, title in point_links(errors)] == [
        "one: 50.0% · 2026-01-03 03:04:05Z",
        "r-2: 0.0% · 2026-01-04 03:04:05Z",
        "r-3: 0.0% · 2026-01-05 03:04:05Z",
    ]
    assert (ticks(errors)["high"], ticks(errors)["low"]) == ("50.0%", "0.0%")
    assert errors.count("<polyline") == 1
    latency = drawn["latency (ms)"]
    assert (
        '<span class="key series-0">p50</span> <span class="key series-1">p95</span>'
        in (text.split("<figcaption>latency (ms)", 1)[1])
    )
    trend = storage.trend_runs("dataset-1", keep=False)
    p50 = [point.latency_p50 for point in trend.points]
    p95 = [point.latency_p95 for point in trend.points]
    assert [title.split(" · ")[0] for _, title in point_links(latency)] == [
        f"{label}: {number(value, 1)} ({line})"
        for line, values in (("p50", p50), ("p95", p95))
        for label, value in zip(("one", "r-2", "r-3"), values, strict=True)
    ]
    assert latency.count("<polyline") == 2
    assert [href for href, _ in point_links(drawn["cost per result"])] == ["/runs/r-3"]
    # the table: the same runs and figures
    assert '<td class="n">50.0%</td>' in text
    assert '<td class="n cost">0.02</td>' in text


def test_no_cost_chart_where_no_run_has_a_cost(viewed: tuple[RunsStorage, FrozenClock]) -> None:
    storage, clock = viewed
    finished_run(storage, clock, "a", day=1, accuracy=0.5, latency=10.0)
    text = page(client(storage), trend_url(dataset_id="dataset-1"))
    assert list(figures(text)) == ["accuracy (mean)", "error rate", "latency (ms)"]
    assert "cost/result" not in text


def test_run_names_on_the_trend_page_are_text(viewed: tuple[RunsStorage, FrozenClock]) -> None:
    storage, clock = viewed
    finished_run(
        storage,
        clock,
        f"{SCRIPT} id",
        day=1,
        accuracy=0.5,
        latency=10.0,
        name=SCRIPT,
        dataset_id=f"<i>{SCRIPT}</i>",
        tags=[SCRIPT],
    )
    finished_run(
        storage, clock, SCRIPT, day=2, accuracy=0.7, latency=10.0, dataset_id=f"<i>{SCRIPT}</i>"
    )
    c = client(storage)
    for url in (
        trend_url(dataset_id=f"<i>{SCRIPT}</i>"),
        trend_url(dataset_id=f"<i>{SCRIPT}</i>", tag=SCRIPT, meta=f"{SCRIPT}={SCRIPT}"),
        trend_url(dataset_id=SCRIPT),
    ):
        text = page(c, url)
        assert re.findall(r"<script[^>]*>", text) == ['<script src="/static/viewer.js" defer>']
        assert "<i>" not in text
        assert SCRIPT in html.unescape(text)
    text = page(c, trend_url(dataset_id=f"<i>{SCRIPT}</i>"))
    accuracy = figures(text)["accuracy (mean)"]
    assert [title.split(" · ")[0] for _, title in point_links(accuracy)] == [
        f"{SCRIPT}: 0.5",  # the name
        f"{SCRIPT}: 0.7",  # the id, the run having no name
    ]
    assert [href for href, _ in point_links(accuracy)] == [
        f"/runs/{quote(f'{SCRIPT} id', safe='')}",
        f"/runs/{quote(SCRIPT, safe='')}",
    ]
    assert page(c, point_links(accuracy)[0][0]).count(html.escape(SCRIPT)) >= 1


def test_the_trend_page_takes_the_filters_trend_runs_takes(
    viewed: tuple[RunsStorage, FrozenClock],
) -> None:
    storage, clock = viewed
    for day in range(1, 9):
        finished_run(
            storage,
            clock,
            f"d{day}",
            day=day,
            accuracy=day / 10,
            latency=10.0,
            target_id="bot-a" if day % 2 else "bot-b",
            tags=["nightly"] if day % 3 else ["weekly"],
            metadata={"model": "m1" if day < 5 else "m2", "temperature": 0.2},
            status="failed" if day == 8 else "completed",
        )
    c = client(storage)
    asked: list[tuple[dict[str, str | list[str]], RunTrend]] = [
        ({}, storage.trend_runs("dataset-1", keep=False)),
        ({"target_id": "bot-a"}, storage.trend_runs("dataset-1", target_id="bot-a", keep=False)),
        ({"tag": "nightly"}, storage.trend_runs("dataset-1", tags=["nightly"], keep=False)),
        (
            {"meta": ["model=m2", "temperature=0.2"]},
            storage.trend_runs(
                "dataset-1", metadata={"model": "m2", "temperature": 0.2}, keep=False
            ),
        ),
        ({"status": "failed"}, storage.trend_runs("dataset-1", status="failed", keep=False)),
        ({"last": "3"}, storage.trend_runs("dataset-1", last=3, keep=False)),
        (
            {"target_id": "bot-b", "tag": "nightly", "last": "1"},
            storage.trend_runs(
                "dataset-1", target_id="bot-b", tags=["nightly"], last=1, keep=False
            ),
        ),
    ]
    for query, expected in asked:
        text = page(c, trend_url(dataset_id="dataset-1", **query))
        assert listed(text) == [point.run_id for point in expected.points], query
        assert expected.points, query
    assert listed(page(c, trend_url(dataset_id="dataset-1", last="3"))) == ["d6", "d7", "d8"]
    # the form keeps what was asked; a tag or a metadata pair given can be dropped
    text = page(c, trend_url(dataset_id="dataset-1", tag="nightly", meta="model=m1", last="5"))
    assert '<input name="last" size="4" value="5">' in text
    assert '<input type="hidden" name="tag" value="nightly">' in text
    drops = [html.unescape(href) for href in re.findall(r'<a class="drop" href="([^"]*)"', text)]
    assert drops == [
        "/trend?dataset_id=dataset-1&last=5&meta=model%3Dm1",
        "/trend?dataset_id=dataset-1&last=5&tag=nightly",
    ]
    runs_list = html.unescape(re.findall(r'<a id="runs-list" href="([^"]*)"', text)[0])
    assert runs_list == "/?dataset_id=dataset-1&tag=nightly&meta=model%3Dm1"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, "give a dataset"),
        ({"dataset_id": ""}, "give a dataset"),
        ({"dataset_id": "d", "last": "0"}, "last must be a whole number from 1 to 1000"),
        ({"dataset_id": "d", "last": "1001"}, "last must be a whole number from 1 to 1000"),
        ({"dataset_id": "d", "last": "ten"}, "last must be a whole number from 1 to 1000"),
        ({"dataset_id": "d", "last": "2.5"}, "last must be a whole number from 1 to 1000"),
        ({"dataset_id": "d", "meta": "model"}, "meta must be KEY=VALUE"),
        ({"dataset_id": "d", "meta": 'cfg={"t": 1}'}, "meta must be KEY=VALUE"),
        ({"dataset_id": "d", "meta": ["m=1", "m=2"]}, "gives the key 'm' twice"),
        ({"dataset_id": "d", "status": "sideways"}, "status must be one of"),
    ],
)
def test_a_trend_query_that_cannot_be_read_is_a_400_saying_why(
    viewed: tuple[RunsStorage, FrozenClock], query: dict[str, str | list[str]], message: str
) -> None:
    text = page(client(viewed[0]), trend_url(**query), 400)
    assert message in html.unescape(text)


def test_a_dataset_without_matching_runs_says_so(viewed: tuple[RunsStorage, FrozenClock]) -> None:
    storage, clock = viewed
    finished_run(storage, clock, "live", day=1, accuracy=0.5, latency=10.0, status="running")
    c = client(storage)
    text = page(c, trend_url(dataset_id="dataset-1"))
    assert "<svg" not in text
    assert 'id="points"' not in text
    message = re.findall(r'<p class="empty" id="no-runs">(.*?)</p>', text)[0]
    assert re.sub("<[^>]+>", "", message).startswith(
        "No finished runs of dataset dataset-1: nothing to draw."
    )
    text = page(c, trend_url(dataset_id="nothing-here", target_id="t"))
    assert "No finished runs of dataset" in text
    assert "match these filters" in text
    assert listed(page(c, trend_url(dataset_id="dataset-1", status="running"))) == ["live"]


# -- a run's histograms, after its page ----------------------------------------------------


def test_a_run_page_leaves_its_histograms_to_a_page_of_their_own(
    viewed: tuple[RunsStorage, FrozenClock],
) -> None:
    storage, clock = viewed
    finished_run(storage, clock, "a/b %1", day=1, accuracy=0.5, latency=10.0, cost=0.1, name=SCRIPT)
    c = client(storage)
    quoted = quote("a/b %1", safe="")
    text = page(c, f"/runs/{quoted}")
    assert "<rect" not in text
    section = re.findall(r'<section class="charts" id="charts"[^>]*>.*?</section>', text, re.S)[0]
    assert f'data-charts="/runs/{quoted}/charts"' in section
    assert f'<a href="/runs/{quoted}/charts">' in section  # without script: a link
    charts = page(c, f"/runs/{quoted}/charts")
    histograms = storage.histogram_run("a/b %1", bins=24)
    assert histograms.latency is not None
    assert histograms.cost is not None
    drawn = charts.split('<section class="charts" id="charts">', 1)[1].split("</section>", 1)[0]
    assert re.findall(r"<figcaption>([^<]*) <span", drawn) == [
        "latency (ms)",
        "cost per result",
        "accuracy",
    ]
    assert drawn.count('<rect class="bar"') == sum(
        len(h.counts) for h in (histograms.latency, histograms.cost, *histograms.scores.values())
    )
    for count in histograms.latency.counts:
        assert f": {count}</title></rect>" in drawn
    assert f'<a href="/runs/{quoted}">' in charts  # back to the run
    assert re.findall(r"<script[^>]*>", charts) == ['<script src="/static/viewer.js" defer>']
    assert "does not exist" in page(c, "/runs/nope/charts", 404)
    # a run without results: nothing to draw, and the page says so
    storage.create_run(run_input(id="bare"))
    assert "No values to draw" in page(c, "/runs/bare/charts")


def test_the_histograms_and_trend_pages_are_guarded_like_every_page(
    viewed: tuple[RunsStorage, FrozenClock],
) -> None:
    storage, clock = viewed
    finished_run(storage, clock, "a", day=1, accuracy=0.5, latency=10.0)
    c = client(storage, token="s3cret")
    for url in ("/runs/a/charts", trend_url(dataset_id="dataset-1")):
        assert c.get(url).status_code == 401
        assert c.get(url, headers={"authorization": "Bearer s3cret"}).status_code == 200
        assert c.get(url, headers={"host": "evil.example"}).status_code == 421
        assert c.post(url).status_code == 405
    response = c.get("/runs/a/charts", headers={"authorization": "Bearer s3cret"})
    policy = response.headers["content-security-policy"]
    assert "connect-src 'self'" in policy  # viewer.js fetches it
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


# -- links ---------------------------------------------------------------------------------


def test_the_runs_list_and_a_run_page_link_to_their_datasets_trend(
    viewed: tuple[RunsStorage, FrozenClock],
) -> None:
    storage, clock = viewed
    finished_run(storage, clock, "a", day=1, accuracy=0.5, latency=10.0, target_id="bot/1")
    finished_run(storage, clock, "b", day=2, accuracy=0.5, latency=10.0, dataset_id="d&2")
    c = client(storage)
    text = page(c, "/")
    trends = [html.unescape(href) for href in re.findall(r'<a class="trend" href="([^"]*)"', text)]
    assert trends == ["/trend?dataset_id=d%262", "/trend?dataset_id=dataset-1"]  # newest first
    assert 'id="dataset-trend"' not in text
    # the list's filters that a trend takes go along; the name does not
    text = page(
        c, "/?dataset_id=dataset-1&target_id=bot/1&tag=t&meta=model=m&name=a&status=completed"
    )
    expected = "/trend?dataset_id=dataset-1&status=completed&target_id=bot%2F1&tag=t&meta=model%3Dm"
    assert html.unescape(re.findall(r'<a id="dataset-trend" href="([^"]*)"', text)[0]) == expected
    text = page(c, "/?target_id=bot/1")
    assert [html.unescape(h) for h in re.findall(r'<a class="trend" href="([^"]*)"', text)] == [
        "/trend?dataset_id=dataset-1&target_id=bot%2F1"
    ]
    assert listed(page(c, "/trend?dataset_id=dataset-1&target_id=bot%2F1")) == ["a"]
    # a run's page: its dataset's trend, of its target
    text = page(c, "/runs/a")
    link = html.unescape(re.findall(r'<a id="trend" href="([^"]*)"', text)[0])
    assert link == "/trend?dataset_id=dataset-1&target_id=bot%2F1"
    assert listed(page(c, link)) == ["a"]


# -- the viewer never writes ---------------------------------------------------------------


def test_viewing_keeps_no_summary(viewed: tuple[RunsStorage, FrozenClock]) -> None:
    """Finished runs' summaries are kept when they finish; a score added afterwards makes
    one stale. Every page shows the fresh figures, and none keeps them: afterwards
    ``keep_summaries`` still has that one summary to keep."""
    storage, clock = viewed
    finished_run(storage, clock, "a", day=1, accuracy=0.5, latency=10.0)
    finished_run(storage, clock, "b", day=2, accuracy=0.7, latency=10.0)
    result = storage.list_results({"run_id": "a"}).results[0]
    storage.add_scores([AddScoreInput(result_id=result.id, name="late", value=1.0)])
    stale = 1  # "a"'s kept summary no longer covers its scores
    c = client(storage)
    shown: tuple[tuple[str, bool | None], ...] = (
        ("/", True),
        ("/?dataset_id=dataset-1", True),
        ("/runs/a", True),
        ("/runs/a/charts", True),
        ("/compare?baseline=a&candidate=b", None),
        (trend_url(dataset_id="dataset-1"), True),
        (trend_url(dataset_id="dataset-1", status="completed", last="1000"), True),
    )
    for url, shows_late in shown:
        text = page(c, url)
        if shows_late is not None:
            assert "late" in text, url  # the figures as they are now
    assert storage.keep_summaries() == stale
    assert storage.keep_summaries() == 0
