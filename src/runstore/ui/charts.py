"""Charts drawn as inline SVG: the geometry is computed here, the templates write the
elements and escape every text.

- Histograms (``chart.html``): a bar per bin the database counted
  (:meth:`~runstore.base.RunsStorage.histogram_run`).
- Line charts (``line_chart.html``): a figure of each run of a trend
  (:meth:`~runstore.base.RunsStorage.trend_runs`), oldest at the left, a marker per run
  that has the figure -- a run without it breaks its line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from runstore.models import Histogram
from runstore.models import TrendPoint

__all__ = [
    "Bar",
    "Chart",
    "Line",
    "LineChart",
    "Marker",
    "Series",
    "Shown",
    "chart",
    "line_chart",
]

WIDTH, HEIGHT, BASELINE = 480, 140, 120
"""The drawing's size, and the y of its axis (labels below it)."""


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    low: float
    high: float


@dataclass(frozen=True)
class Chart:
    title: str
    bars: tuple[Bar, ...]
    low: float
    high: float
    most: int
    total: int
    costs: bool = False
    """The values are costs, written as the page writes costs (not in powers of ten)."""
    width: int = WIDTH
    height: int = HEIGHT
    baseline: int = BASELINE


def chart(title: str, histogram: Histogram, *, costs: bool = False) -> Chart:
    """A bar per bin, scaled so the fullest bin reaches the top; a bin with any value is
    at least a pixel high, so no value disappears."""
    counts = histogram.counts
    most = max(counts, default=0)
    step = WIDTH / max(len(counts), 1)
    span = (histogram.high - histogram.low) / max(len(counts), 1)
    bars = []
    for index, count in enumerate(counts):
        height = 0.0 if not most else max(1.0, (BASELINE - 4) * count / most)
        bars.append(
            Bar(
                x=index * step + 1,
                y=BASELINE - height,
                width=max(step - 2, 1.0),
                height=height,
                count=count,
                low=histogram.low + span * index,
                high=histogram.low + span * (index + 1),
            )
        )
    return Chart(title, tuple(bars), histogram.low, histogram.high, most, sum(counts), costs)


# -- line charts -----------------------------------------------------------------------------

LINE_WIDTH, LINE_HEIGHT = 520, 180
"""A line chart's size."""
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 72, 508, 10, 150
"""The box the values are drawn in: the values' labels left of it, the dates below."""


class Shown(StrEnum):
    """How a line chart's values are written (the template picks the filter)."""

    FIGURE = "figure"
    PERCENT = "percent"
    MILLISECONDS = "milliseconds"
    COST = "cost"


@dataclass(frozen=True)
class Series:
    """A line to draw: its name (in the legend) and a value per run, None where the run
    has none."""

    name: str
    values: Sequence[float | None]


@dataclass(frozen=True)
class Marker:
    """A run's value on a line: where it is drawn, and what its link and tooltip say."""

    x: float
    y: float
    value: float
    run_id: str
    label: str
    """The run's name, or its id when it has none."""
    created_at: datetime


@dataclass(frozen=True)
class Line:
    """A series as drawn: its stretches of line and its markers."""

    name: str
    segments: tuple[str, ...]
    """Each unbroken stretch of two or more values, as an SVG ``points`` attribute: a run
    without a value ends one stretch, the next run with one starts another."""
    markers: tuple[Marker, ...]


@dataclass(frozen=True)
class LineChart:
    """One or more lines on one scale, and the axes' labels: the least and greatest
    value, the first and last run's date."""

    title: str
    lines: tuple[Line, ...]
    low: float | None
    """The least value drawn (at the bottom), None when there is none."""
    high: float | None
    """The greatest value drawn (at the top)."""
    first: datetime | None
    """When the first (leftmost) run was created; None without runs."""
    last: datetime | None
    zero: float | None
    """The y of the value 0 when the values span it (both signs), else None."""
    shown: Shown = Shown.FIGURE
    width: int = LINE_WIDTH
    height: int = LINE_HEIGHT
    left: int = PLOT_LEFT
    right: int = PLOT_RIGHT
    top: int = PLOT_TOP
    bottom: int = PLOT_BOTTOM

    @property
    def empty(self) -> bool:
        """No run has a value to draw."""
        return self.low is None


def _x(index: int, count: int) -> float:
    """Runs spaced evenly, the first at the left edge and the last at the right; a lone
    run in the middle."""
    if count < 2:
        return (PLOT_LEFT + PLOT_RIGHT) / 2
    return PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) * index / (count - 1)


def _scale(low: float, high: float) -> tuple[float, float]:
    """The span of the values, and the factor a value and ``low`` are multiplied by
    before one is taken from the other: 1, or 1/2 where ``high - low`` would overflow
    (values near the largest floats, of both signs) -- the span then halved too."""
    span = high - low
    if math.isfinite(span):
        return span, 1.0
    return high / 2 - low / 2, 0.5


def line_chart(
    title: str,
    points: Sequence[TrendPoint],
    series: Sequence[Series],
    *,
    shown: Shown = Shown.FIGURE,
) -> LineChart:
    """Each series drawn over ``points`` (a value per point, in the points' order: oldest
    first), on one scale from the least value of every series (at the bottom) to the
    greatest (at the top); when every value is the same, they are drawn halfway up.
    A value that is None (or not finite) is not drawn, and breaks its line.
    """
    values = [
        value
        for line in series
        for value in line.values
        if value is not None and math.isfinite(value)
    ]
    low, high = (min(values), max(values)) if values else (None, None)
    least = 0.0 if low is None else low
    span, factor = (0.0, 1.0) if low is None or high is None else _scale(low, high)
    height = PLOT_BOTTOM - PLOT_TOP

    def y(value: float) -> float:
        if span == 0:
            return PLOT_TOP + height / 2
        return PLOT_BOTTOM - (value * factor - least * factor) / span * height

    lines = []
    for line in series:
        if len(line.values) != len(points):
            raise ValueError(f"{line.name!r} has {len(line.values)} values for {len(points)} runs")
        markers: list[Marker] = []
        segments: list[str] = []
        stretch: list[str] = []
        for index, (point, value) in enumerate(zip(points, line.values, strict=True)):
            if value is None or not math.isfinite(value):
                if len(stretch) > 1:
                    segments.append(" ".join(stretch))
                stretch = []
                continue
            marker = Marker(
                x=_x(index, len(points)),
                y=y(value),
                value=value,
                run_id=point.run_id,
                label=point.run_id if point.name is None else point.name,
                created_at=point.created_at,
            )
            markers.append(marker)
            stretch.append(f"{marker.x:.2f},{marker.y:.2f}")
        if len(stretch) > 1:
            segments.append(" ".join(stretch))
        lines.append(Line(line.name, tuple(segments), tuple(markers)))
    spans_zero = low is not None and high is not None and low < 0 < high
    return LineChart(
        title=title,
        lines=tuple(lines),
        low=low,
        high=high,
        first=points[0].created_at if points else None,
        last=points[-1].created_at if points else None,
        zero=y(0.0) if spans_zero else None,
        shown=shown,
    )
