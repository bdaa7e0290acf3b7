"""The viewer's pages: each reads through the storage's public calls and renders a
template; nothing here writes.

Routes are matched on the request's raw path, segment by segment, so that an id holding
``/`` or ``%`` (ids are any text) reaches its page when its link quoted it. Each page runs
in a worker thread (the storage's calls block); what they raise becomes a status with a
message -- 400 for a query the viewer or the storage cannot read, 404 for an unknown run
or result, 503 when the database does not answer -- and never a traceback.

A page waits only on what it shows at once. A run's page shows its summary (kept in the
database for a finished run, so read in milliseconds) and its first results; its
histograms, which take seconds on a million results, are a page of their own
(``/runs/ID/charts``) that ``viewer.js`` fetches after the run's page has loaded and
puts in its place -- the way Turbo Frames do: the fragment is a whole page, so that
without script the placeholder's link opens it.
"""

from __future__ import annotations

import itertools
import json
import math
import shlex
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote
from urllib.parse import unquote
from urllib.parse import urlencode

import jinja2
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.responses import HTMLResponse
from starlette.responses import Response
from starlette.routing import Mount
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from runstore.base import RunsStorage
from runstore.display import moment
from runstore.display import number
from runstore.display import p_value
from runstore.display import percent
from runstore.display import signed
from runstore.errors import DatabaseError
from runstore.errors import InvalidInputError
from runstore.errors import ResultNotFoundError
from runstore.errors import RunNotFoundError
from runstore.figures import verdict
from runstore.models import ItemComparison
from runstore.models import PairedDelta
from runstore.models import Run
from runstore.models import RunComparison
from runstore.models import RunHistograms
from runstore.models import RunResult
from runstore.models import RunStatus
from runstore.models import RunSummary
from runstore.models import RunTrend
from runstore.ui import diff
from runstore.ui.cache import FiguresCache
from runstore.ui.charts import Chart
from runstore.ui.charts import LineChart
from runstore.ui.charts import Series
from runstore.ui.charts import Shown
from runstore.ui.charts import chart
from runstore.ui.charts import line_chart
from runstore.ui.guard import LOOPBACK_HOSTS
from runstore.ui.guard import Guard
from runstore.ui.queries import COMPARED_PER_PAGE
from runstore.ui.queries import CONFIDENCE
from runstore.ui.queries import BadQueryError
from runstore.ui.queries import CompareQuery
from runstore.ui.queries import QueryString
from runstore.ui.queries import compare_query
from runstore.ui.queries import meta_param
from runstore.ui.queries import results_query
from runstore.ui.queries import runs_query
from runstore.ui.queries import trend_query

__all__ = ["create_app"]

_FORMATS = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


class _NotFoundError(LookupError):
    """A page or a result that does not exist."""


def _figure(value: float | int | None, digits: int = 3) -> str:
    """A figure for a page: a few decimals, or powers of ten for the very large."""
    if isinstance(value, float) and math.isfinite(value) and value and not 1e-3 <= abs(value) < 1e9:
        return f"{value:.4g}"
    return number(value, digits)


def _signed_figure(value: float | None, digits: int = 3) -> str:
    if isinstance(value, float) and value and not 1e-3 <= abs(value) < 1e9:
        return f"{value:+.4g}"
    return signed(value, digits)


def _cost(value: float | None, *, sign: bool = False) -> str:
    """A cost (or a difference of costs, with ``sign``) to four significant digits, and
    never fewer than two decimals: costs per call are often fractions of a cent."""
    if value is None or not value or not math.isfinite(value):
        return (signed if sign else number)(value)
    magnitude = math.floor(math.log10(abs(value)))
    if not -9 <= magnitude < 15:
        return f"{value:+.4g}" if sign else f"{value:.4g}"
    return (signed if sign else number)(value, max(2, 3 - magnitude))


def _scalar(value: object) -> str:
    """A JSON scalar as a person reads it: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            ": ".join(
                part
                for part in (
                    ".".join(str(part) for part in error["loc"]),
                    error["msg"].removeprefix("Value error, "),
                )
                if part
            )
            for error in exc.errors()
        )
    return " ".join(str(exc).split()) or type(exc).__name__


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("runstore.ui", "templates"),
        autoescape=True,  # every stored text is escaped, whatever the template
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        figure=_figure,
        signed=_signed_figure,
        moment=moment,
        short=diff.short,
        pretty=diff.pretty,
        percent=lambda value: "-" if value is None else f"{value:.1%}",
        cost=_cost,
        signed_cost=lambda value: _cost(value, sign=True),
        meta_param=meta_param,
        scalar=_scalar,
    )
    return environment


@dataclass
class _Links:
    """Addresses within the viewer, under the root it is served at."""

    root: str

    def to(self, *segments: str, **query: Any) -> str:
        """The page at ``segments``; ``query``'s values given (a list: each of its
        values, the name repeated), None and empty ones left out."""
        path = "/".join(quote(segment, safe="") for segment in segments)
        given = {name: value for name, value in query.items() if value not in (None, "", [])}
        tail = f"?{urlencode(given, doseq=True)}" if given else ""
        return f"{self.root}/{path}{tail}"

    def run(self, run_id: str, **query: Any) -> str:
        return self.to("runs", run_id, **query)

    def result(self, result: RunResult) -> str:
        return self.to("runs", result.run_id, "results", result.id)

    def compare(self, **query: Any) -> str:
        return self.to("compare", **query)

    def trend(self, **query: Any) -> str:
        return self.to("trend", **query)

    def charts(self, run_id: str) -> str:
        """The page of a run's histograms (what its page fetches to show them)."""
        return self.to("runs", run_id, "charts")

    def static(self, name: str) -> str:
        return self.to("static", name)


@dataclass(frozen=True)
class _ComparedItem:
    item: ItemComparison
    status: str
    lines: list[diff.Line]


_Shown = Callable[[float | None], str]


@dataclass(frozen=True)
class _Change:
    """A paired change as the comparison page shows it: its statistics written out, and
    ``verdict`` -- ``"better"`` or ``"worse"`` -- when its interval excludes zero."""

    name: str
    delta: PairedDelta
    mean_delta: str
    tone: str
    """``up`` (better) or ``down`` (worse) for a delta that is not zero, else empty."""
    std_error: str
    interval: str
    p_value: str
    verdict: str | None


def _change(
    name: str, delta: PairedDelta, plain: _Shown, with_sign: _Shown, *, lower_is_better: bool
) -> _Change:
    """``delta`` written with ``plain`` (its standard error) and ``with_sign`` (the mean
    delta and the interval's ends); "n/a" for what fewer than two pairs cannot give."""
    better = delta.mean_delta < 0 if lower_is_better else delta.mean_delta > 0
    tone = "" if delta.mean_delta == 0 else ("up" if better else "down")
    if delta.ci_low is None or delta.ci_high is None:
        interval = "n/a"
    else:
        interval = f"{with_sign(delta.ci_low)} to {with_sign(delta.ci_high)}"
    return _Change(
        name=name,
        delta=delta,
        mean_delta=with_sign(delta.mean_delta),
        tone=tone,
        std_error="n/a" if delta.std_error is None else plain(delta.std_error),
        interval=interval,
        p_value="n/a" if delta.p_value is None else p_value(delta.p_value),
        verdict=("better" if better else "worse") if delta.significant else None,
    )


def _changes(comparison: RunComparison) -> tuple[list[_Change], list[_Change]]:
    """The scores' changes (by name; higher is better), and the latency's and cost's
    (lower is better) where the runs have them."""
    scores = [
        _change(name, delta, _figure, _signed_figure, lower_is_better=False)
        for name, delta in sorted(comparison.scores.items())
    ]
    usage = []
    if comparison.latency is not None:
        usage.append(
            _change(
                "latency (ms)",
                comparison.latency,
                lambda value: _figure(value, 1),
                lambda value: _signed_figure(value, 1),
                lower_is_better=True,
            )
        )
    if comparison.cost is not None:
        usage.append(
            _change(
                "cost",
                comparison.cost,
                _cost,
                lambda value: _cost(value, sign=True),
                lower_is_better=True,
            )
        )
    return scores, usage


_CONFIDENCES = (0.8, 0.9, 0.95, 0.99)
"""The confidences the comparison page offers (any other is given in its address)."""


def _command_line(words: list[str], arguments: list[str], options: list[str]) -> str:
    """A shell command line: the arguments first, as people write them -- unless one
    starts with ``-`` and would read as an option: then the options, ``--``, and the
    arguments."""
    if any(argument.startswith("-") for argument in arguments):
        return shlex.join([*words, *options, "--", *arguments])
    return shlex.join([*words, *arguments, *options])


def _confidence_option(asked: CompareQuery) -> list[str]:
    """``--confidence C`` when the page's is not the default (the command line's too)."""
    return [] if asked.confidence == CONFIDENCE else ["--confidence", str(asked.confidence)]


def _compare_command(asked: CompareQuery) -> str:
    """The page as a ``runstore runs compare`` command: its figures at its confidence,
    or the items it lists."""
    options = []
    if asked.only is not None:
        options += ["--items", asked.only.value]
        if asked.score is not None:
            options += ["--score", asked.score]
    else:
        options += _confidence_option(asked)
    return _command_line(
        ["runstore", "runs", "compare"], [asked.baseline, asked.candidate], options
    )


@dataclass(frozen=True)
class _Gate:
    """The gate command line a comparison page offers; None when there is none, ``note``
    saying why."""

    command: str | None
    note: str | None = None


def _gate_command(asked: CompareQuery, comparison: RunComparison) -> _Gate:
    """``runstore runs gate`` failing the candidate on any score it is significantly
    worse at: each score's least delta 0, judged with significance on (the gate's
    default) -- it fails a score whose whole interval lies below 0, exactly the scores
    this page marks "significantly worse" -- at the page's confidence.

    (``--min-delta`` splits ``NAME=0`` at its last ``=``: any score's name can be given.)
    """
    if asked.baseline == asked.candidate:
        return _Gate(None, "a run is not gated against itself")
    if not comparison.scores:
        return _Gate(None, "no score is in both runs to gate on")
    options = ["--baseline", asked.baseline]
    for name in sorted(comparison.scores):
        options += ["--min-delta", f"{name}=0"]
    options += _confidence_option(asked)
    return _Gate(_command_line(["runstore", "runs", "gate"], [asked.candidate], options))


class _Viewer:
    """The pages, on one storage."""

    def __init__(self, storage: RunsStorage) -> None:
        self.storage = storage
        self.figures = FiguresCache(storage)
        self.templates = _environment()

    def page(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        links = _Links(request.scope.get("root_path", "").rstrip("/"))
        html = self.templates.get_template(template).render(links=links, **values)
        return HTMLResponse(html, status_code=status)

    def _run(self, run_id: str) -> Run:
        run = self.storage.get_run_by_id(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return run

    # -- pages ---------------------------------------------------------------------------

    def runs(self, request: Request, query: QueryString) -> Response:
        asked = runs_query(query)
        listing = self.storage.list_runs(asked.listing)
        # each listed run's summary is kept between views (cache.py); the cost per
        # result is part of it, so the cost column costs no call of its own
        summaries = {run.id: self.figures.summary(run) for run in listing.runs}
        names = sorted({name for summary in summaries.values() for name in summary.scores})
        return self.page(
            request,
            "runs.html",
            asked=asked,
            listing=listing,
            summaries=summaries,
            score_names=names,
            priced=any(summary.usage.priced for summary in summaries.values()),
            statuses=[status.value for status in RunStatus],
        )

    def run(self, request: Request, run_id: str, query: QueryString) -> Response:
        """A run's page: its summary and a page of its results; its histograms are a
        placeholder that ``viewer.js`` fills from :meth:`charts`."""
        run = self._run(run_id)
        asked = results_query(run_id, query)
        listing = self.storage.list_results(asked)
        summary = self.figures.summary(run)
        filters = {
            name: query.get(name) or ""
            for name in ("has_error", "order", "item_id", "score", "min", "max")
        }
        return self.page(
            request,
            "run.html",
            run=run,
            summary=summary,
            listing=listing,
            filters=filters,
            score_names=sorted(summary.scores),
            usage=_usage_columns(summary),
        )

    def charts(self, request: Request, run_id: str) -> Response:
        """A run's histograms: latency, cost per result, each score."""
        run = self._run(run_id)
        charts = _histogram_charts(self.figures.histograms(run))
        return self.page(request, "charts.html", run=run, charts=charts)

    def trend(self, request: Request, query: QueryString) -> Response:
        """A dataset's runs, oldest first, and a line chart of each figure over them."""
        asked = trend_query(query)
        trend = self.storage.trend_runs(
            asked.dataset_id,
            target_id=asked.target_id,
            tags=asked.tags or None,
            metadata=asked.metadata or None,
            status=asked.status,
            last=asked.last,
            keep=False,  # the viewer never writes
        )
        return self.page(
            request,
            "trend.html",
            asked=asked,
            trend=trend,
            charts=_trend_charts(trend),
            score_names=trend.score_names(),
            priced=any(point.cost_per_result is not None for point in trend.points),
            statuses=[status.value for status in RunStatus],
        )

    def result(self, request: Request, run_id: str, result_id: str) -> Response:
        result = self.storage.get_result_by_id(result_id)
        if result is None or result.run_id != run_id:
            raise _NotFoundError(f"run {run_id!r} has no result {result_id!r}")
        scores = self.storage.list_scores(run_id, result_id=result_id)
        return self.page(request, "result.html", result=result, scores=scores)

    def compare(self, request: Request, query: QueryString) -> Response:
        asked = compare_query(query)
        baseline, candidate = self._run(asked.baseline), self._run(asked.candidate)
        comparison = self.figures.comparison(baseline, candidate, confidence=asked.confidence)
        stream = self.storage.iter_item_comparisons(
            asked.baseline,
            asked.candidate,
            only=asked.only,
            score=asked.score,
            after_item=asked.after,
            batch_size=COMPARED_PER_PAGE + 1,
        )
        try:
            read = list(itertools.islice(stream, COMPARED_PER_PAGE + 1))
        finally:
            close: Callable[[], None] | None = getattr(stream, "close", None)
            if close is not None:
                close()
        shown = read[:COMPARED_PER_PAGE]
        items = [
            _ComparedItem(
                item,
                _status(item, asked.score),
                diff.side_by_side(
                    None if item.baseline is None else item.baseline.output,
                    None if item.candidate is None else item.candidate.output,
                ),
            )
            for item in shown
        ]
        scores, usage = _changes(comparison)
        return self.page(
            request,
            "compare.html",
            asked=asked,
            baseline=baseline,
            candidate=candidate,
            comparison=comparison,
            scores=scores,
            usage=usage,
            interval=f"{percent(asked.confidence)} CI",
            confidences=[
                (str(confidence), percent(confidence))
                for confidence in sorted({*_CONFIDENCES, asked.confidence})
            ],
            items=items,
            following=shown[-1].item_id if len(read) > COMPARED_PER_PAGE else None,
            command=_compare_command(asked),
            gate=_gate_command(asked, comparison),
            kinds=["changed", "improved", "regressed"],
        )

    def export(self, request: Request, run_id: str, query: QueryString) -> Response:
        format = query.get("format")
        if format is None:
            format = "jsonl"
        if format not in _FORMATS:
            raise BadQueryError(f"format must be one of {', '.join(_FORMATS)}, not {format!r}")
        self._run(run_id)
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)[:80]
        filename = f"{name or 'run'}.{format}"
        if request.method == "HEAD":  # what a download would be, without making it
            return Response(
                media_type=_FORMATS[format],
                headers={"content-disposition": f'attachment; filename="{filename}"'},
            )
        # export_results writes the file whole, a batch at a time; the response streams
        # it from disk, and the directory goes when the response has been sent
        folder = Path(tempfile.mkdtemp(prefix="runstore-export-"))
        try:
            path = folder / f"results.{format}"
            self.storage.export_results(run_id, path, format=format)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return FileResponse(
            path,
            media_type=_FORMATS[format],
            filename=filename,
            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
        )

    # -- dispatch ------------------------------------------------------------------------

    def respond(self, request: Request) -> Response:
        """The page the request's path names, or the error page saying why not."""
        query = request.query_params
        try:
            match _segments(request):
                case [] | [""]:
                    return self.runs(request, query)
                case ["compare"]:
                    return self.compare(request, query)
                case ["trend"]:
                    return self.trend(request, query)
                case ["runs", run_id]:
                    return self.run(request, run_id, query)
                case ["runs", run_id, "charts"]:
                    return self.charts(request, run_id)
                case ["runs", run_id, "results", result_id]:
                    return self.result(request, run_id, result_id)
                case ["runs", run_id, "export"]:
                    return self.export(request, run_id, query)
                case _:
                    raise _NotFoundError("no such page")
        except (BadQueryError, ValidationError, InvalidInputError, UnicodeDecodeError) as exc:
            return self.page(request, "error.html", 400, code=400, message=_one_line(exc))
        except (_NotFoundError, RunNotFoundError, ResultNotFoundError) as exc:
            return self.page(request, "error.html", 404, code=404, message=_one_line(exc))
        except DatabaseError as exc:
            message = f"the database did not answer: {_one_line(exc)}"
            return self.page(request, "error.html", 503, code=503, message=message)


@dataclass(frozen=True)
class _UsageColumns:
    """Which usage columns a run's results list shows: those some result has."""

    tokens: bool
    cost: bool


def _histogram_charts(histograms: RunHistograms) -> list[Chart]:
    """A run's histograms as its page draws them: latency, cost, each score by name."""
    charts = []
    if histograms.latency is not None:
        charts.append(chart("latency (ms)", histograms.latency))
    if histograms.cost is not None:
        charts.append(chart("cost per result", histograms.cost, costs=True))
    charts += [chart(name, drawn) for name, drawn in sorted(histograms.scores.items())]
    return charts


def _trend_charts(trend: RunTrend) -> list[LineChart]:
    """The trend page's line charts: each score's mean (by name), the error rate, the
    latency's p50 and p95 together, and the cost per result when some run has one."""
    points = trend.points
    charts = [
        line_chart(
            f"{name} (mean)",
            points,
            [Series(name, [point.scores.get(name) for point in points])],
        )
        for name in trend.score_names()
    ]
    charts.append(
        line_chart(
            "error rate",
            points,
            [Series("error rate", [point.error_rate for point in points])],
            shown=Shown.PERCENT,
        )
    )
    charts.append(
        line_chart(
            "latency (ms)",
            points,
            [
                Series("p50", [point.latency_p50 for point in points]),
                Series("p95", [point.latency_p95 for point in points]),
            ],
            shown=Shown.MILLISECONDS,
        )
    )
    costs = [point.cost_per_result for point in points]
    if any(cost is not None for cost in costs):
        charts.append(
            line_chart(
                "cost per result", points, [Series("cost per result", costs)], shown=Shown.COST
            )
        )
    return charts


def _usage_columns(summary: RunSummary) -> _UsageColumns:
    usage = summary.usage
    return _UsageColumns(bool(usage.input_tokens or usage.output_tokens), bool(usage.priced))


def _status(item: ItemComparison, score: str | None) -> str:
    kind = verdict(item.baseline_repetitions, item.candidate_repetitions, item.score_deltas, score)
    return "unchanged" if kind is None else kind.value


def _segments(request: Request) -> list[str]:
    """The path's segments under the viewer's root, each unquoted on its own (so an
    id's quoted ``/`` stays inside its segment)."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(request.scope["path"])
    root = quote(request.scope.get("root_path", "").rstrip("/"))
    if root and path.startswith(root):
        path = path[len(root) :]
    return [unquote(segment, errors="strict") for segment in path.strip("/").split("/")]


def create_app(
    storage: RunsStorage,
    *,
    token: str | None = None,
    hosts: tuple[str, ...] = LOOPBACK_HOSTS,
) -> Starlette:
    """The viewer as an ASGI application, reading ``storage``.

    Args:
        storage: what it shows; the viewer only reads it, and does not close it.
        token: when given, every request must carry it (``Authorization: Bearer TOKEN``,
            or ``?token=TOKEN`` once, then a cookie); else 401.
        hosts: the names the ``Host`` header may carry: by default this machine's
            loopback names only; ``("*",)`` takes any (only behind a token, please).
    """
    viewer = _Viewer(storage)

    async def respond(request: Request) -> Response:
        return await run_in_threadpool(viewer.respond, request)

    static = StaticFiles(directory=str(files("runstore.ui").joinpath("static")))
    app = Starlette(
        routes=[Mount("/static", static, name="static"), Route("/{path:path}", respond)],
    )
    app.add_middleware(Guard, hosts=hosts, token=token)
    return app
