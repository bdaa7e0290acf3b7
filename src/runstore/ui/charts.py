"""Histograms drawn as inline SVG: the geometry of each bar, computed here from the bins
the database counted (:meth:`~runstore.base.RunsStorage.histogram_run`); the template
writes the elements, escaping every text."""

from __future__ import annotations

from dataclasses import dataclass

from runstore.models import Histogram

__all__ = ["Bar", "Chart", "chart"]

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
