"""The web viewer's pages (``runstore.ui``) on the large run with two scores.

``create_app(storage)`` is served in process by Starlette's ``TestClient``: each request
goes through the real ASGI application -- its middleware, routing, a worker thread for
the storage's calls, the template -- to the same database, and the whole body is read.
The raw column is the public storage calls that page makes, called directly: the ratio
is what the viewer adds on top of the storage.

A finished run's summary is kept in the database (stored when the run finished) and read
back by every page; the figures a page computes -- a run's histograms, two runs'
comparison, the summary of a run that is not finished -- the viewer keeps in memory until
the runs change. So pages that show them are timed twice: a first view (a fresh
application per sample, nothing kept in it) and a later view (one application, figures
kept). A run's page waits on its summary and first results only; its histograms are a
request of their own (``/runs/ID/charts``, which the page fetches after loading), timed
on a first view. The big run and a small run of its first items, with other latencies
and scores, are marked completed first, as finished runs are -- which keeps their
summaries: the viewer keeps the figures of a pending or running run for a few seconds
only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any
from urllib.parse import quote
from urllib.parse import urlencode

from bench.backends import Backend
from bench.backends import log
from bench.cases.compare import SHIFT
from bench.harness import Prepare
from bench.harness import fixed
from bench.report import Target
from runstore import ItemComparison
from runstore import ListRunResultsInput
from runstore import ListRunResultsOutput
from runstore import ListRunsInput
from runstore import ListRunsOutput
from runstore import UpdateRunInput

PER_PAGE = 50
"""The viewer's results per run page, and items per comparison page."""
RUNS_PER_PAGE = 25
BINS = 24
"""The bins of each histogram a run page draws."""
SMALL_ROWS = 1000
"""The run compared with the big one: its first items, with other latencies and scores."""
SCORE = "accuracy"
LATER_VIEW = Target("below", 300)
RUN_FIRST_VIEW = Target("below", 1000)
"""The issue's target: a finished run of 1,000,000 results' page, first view, within 1 s."""
COLD_SAMPLES = 3
"""First views that compute figures compute them again each time: few samples."""


def measure(b: Backend, run_id: str, rows: int) -> None:
    try:
        from starlette.testclient import TestClient

        from runstore.ui import create_app
    except (ImportError, RuntimeError) as exc:  # the test client raises RuntimeError without httpx
        log(f"{b.label}: viewer skipped (needs the ui extra and httpx): {exc}")
        return
    storage = b.storage
    small = b.seed(SMALL_ROWS, shift=SHIFT, analyze=False)
    b.seed_scores(small)
    for finished in (run_id, small):
        storage.update_run(UpdateRunInput(id=finished, status="completed"))

    def client() -> Any:
        return TestClient(create_app(storage), base_url="http://127.0.0.1")

    def get(viewer: Any, url: str) -> Callable[[], bytes]:
        def call() -> bytes:
            response = viewer.get(url)
            assert response.status_code == 200, (url, response.status_code, response.text[:300])
            return bytes(response.content)

        return call

    def first_view(url: str, warm: str) -> Prepare:
        """A fresh application per sample, nothing of the big run kept in it, its template
        compiled by the page at ``warm`` (both untimed): a first view on a viewer that
        has served other pages."""

        def prepare() -> Callable[[], bytes]:
            fresh = client()
            get(fresh, warm)()
            return get(fresh, url)

        return prepare

    later = {"samples": b.settings.deep_samples, "warmup": 2, "rounds": 2}
    first = {"samples": COLD_SAMPLES, "warmup": 0, "rounds": 2}
    size = f"{rows:,} results"
    run_url = f"/runs/{quote(run_id, safe='')}"

    def runs_raw() -> ListRunsOutput:
        return storage.list_runs(ListRunsInput(pagination={"per_page": RUNS_PER_PAGE}))

    def runs_first_raw() -> object:
        return [storage.summarize_run(run.id, keep=False) for run in runs_raw().runs]

    def run_raw(**query: Any) -> Callable[[], ListRunResultsOutput]:
        def call() -> ListRunResultsOutput:
            assert storage.get_run_by_id(run_id) is not None
            pagination = {"per_page": PER_PAGE}
            return storage.list_results(
                ListRunResultsInput(run_id=run_id, pagination=pagination, **query)
            )

        return call

    def run_first_raw() -> object:
        return run_raw()(), storage.summarize_run(run_id, keep=False)

    def charts_raw() -> object:
        assert storage.get_run_by_id(run_id) is not None
        return storage.histogram_run(run_id, bins=BINS)

    with client() as viewer:  # one application: what a first view computes is kept
        listed = len(runs_raw().runs)
        b.measure(
            f"viewer: runs list, first view ({listed} newest runs)",
            first_view("/", "/?dataset_id=none"),
            fixed(runs_first_raw),
            unit="ms",
            **first,
            details="a fresh application per sample, its template compiled by a list of no "
            "runs (untimed), so the page summarizes each run listed (reading the kept summary "
            "of a finished run); the raw side: list_runs and summarize_run(keep=False) of each "
            "run",
        )
        b.measure(
            f"viewer: runs list, later view ({listed} newest runs)",
            fixed(get(viewer, "/")),
            fixed(runs_raw),
            unit="ms",
            target=LATER_VIEW,
            **later,
            details="the runs' summaries kept (a pending run's for 5 s only); the raw side: "
            "list_runs",
        )
        b.measure(
            f"viewer: run page, first view ({size})",
            first_view(run_url, f"/runs/{quote(small, safe='')}"),
            fixed(run_first_raw),
            unit="ms",
            target=RUN_FIRST_VIEW,
            **later,
            details="a fresh application per sample, its template compiled by the small "
            "run's page (untimed): the page reads the run's kept summary and its first "
            "results, and leaves the histograms to the charts request; the raw side: "
            f"get_run_by_id, list_results ({PER_PAGE}) and summarize_run(keep=False)",
        )
        b.measure(
            f"viewer: run's charts, first view ({size})",
            first_view(f"{run_url}/charts", f"/runs/{quote(small, safe='')}/charts"),
            fixed(charts_raw),
            unit="ms",
            **first,
            details="the histograms the run page fetches after it has loaded; a fresh "
            "application per sample, its template compiled by the small run's charts "
            "(untimed), so they are computed; the raw side: get_run_by_id and "
            f"histogram_run(bins={BINS})",
        )
        b.measure(
            f"viewer: run page, later view ({size})",
            fixed(get(viewer, run_url)),
            fixed(run_raw()),
            unit="ms",
            target=LATER_VIEW,
            **later,
            details=f"figures kept; the raw side: get_run_by_id and list_results ({PER_PAGE})",
        )
        failed_slowest = urlencode({"has_error": "true", "order": "slowest"})
        b.measure(
            f"viewer: run page, has_error=true, slowest first ({size})",
            fixed(get(viewer, f"{run_url}?{failed_slowest}")),
            fixed(run_raw(has_error=True, order="slowest")),
            unit="ms",
            target=LATER_VIEW,
            **later,
            details="figures kept; the raw side: get_run_by_id and list_results filtered and "
            "ordered alike (which counts the failed results for its total)",
        )

        deep = rows * 9 // 10 // PER_PAGE
        before = storage.list_results(
            ListRunResultsInput(run_id=run_id, pagination={"page": deep - 1, "per_page": PER_PAGE})
        )
        cursor = before.next_cursor
        assert cursor is not None
        deep_page = get(viewer, f"{run_url}?{urlencode({'cursor': cursor})}")
        listed_deep = run_raw(cursor=cursor)()
        assert listed_deep.results[0].id in deep_page().decode(), "the page shows those rows"
        b.measure(
            f"viewer: run page at 90% depth by cursor ({size})",
            fixed(deep_page),
            fixed(run_raw(cursor=cursor)),
            unit="ms",
            target=LATER_VIEW,
            **later,
            details=f"the cursor: the next_cursor of page {deep - 1} (pages of {PER_PAGE}, "
            "read untimed); figures kept",
        )

        result = listed_deep.results[0]

        def result_raw() -> object:
            found = storage.get_result_by_id(result.id)
            assert found is not None
            return found, storage.list_scores(run_id, result_id=result.id)

        b.measure(
            f"viewer: result page ({size})",
            fixed(get(viewer, f"{run_url}/results/{quote(result.id, safe='')}")),
            fixed(result_raw),
            unit="ms",
            target=LATER_VIEW,
            **later,
            details="a result of the page at 90% depth; the raw side: get_result_by_id and "
            "list_scores(run_id, result_id=…)",
        )

        compare_url = "/compare?" + urlencode(
            {"baseline": small, "candidate": run_id, "only": "regressed", "score": SCORE}
        )

        def items_raw() -> list[ItemComparison]:
            for compared in (small, run_id):
                assert storage.get_run_by_id(compared) is not None
            stream = storage.iter_item_comparisons(
                small, run_id, only="regressed", score=SCORE, batch_size=PER_PAGE + 1
            )
            try:
                return list(itertools.islice(stream, PER_PAGE + 1))
            finally:
                close: Callable[[], None] | None = getattr(stream, "close", None)
                if close is not None:  # as the viewer does: the stream's snapshot ends
                    close()

        def compare_first_raw() -> object:
            return items_raw(), storage.compare_runs(small, run_id)

        regressed = items_raw()
        assert regressed, "the small run has items regressed in the big one"
        assert regressed[0].item_id in get(viewer, compare_url)().decode(), "the page shows them"
        compared = (
            f"the small run ({SMALL_ROWS:,} of the big run's items, other scores) as baseline, "
            f"only the items regressed by {SCORE}"
        )
        items = f"get_run_by_id of both and iter_item_comparisons to {PER_PAGE + 1} items"
        b.measure(
            f"viewer: comparison page, first view ({SMALL_ROWS:,} vs {size})",
            first_view(
                compare_url, "/compare?" + urlencode({"baseline": small, "candidate": small})
            ),
            fixed(compare_first_raw),
            unit="ms",
            **first,
            details=f"{compared}; a fresh application per sample, its template compiled by "
            "the small run compared with itself (untimed), so the page compares the runs; the "
            f"raw side: compare_runs, {items}",
        )
        b.measure(
            f"viewer: comparison page, later view ({SMALL_ROWS:,} vs {size})",
            fixed(get(viewer, compare_url)),
            fixed(items_raw),
            unit="ms",
            target=LATER_VIEW,
            **later,
            details=f"{compared}; the comparison kept; the raw side: {items}",
        )
