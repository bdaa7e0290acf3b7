"""Figures kept between page views: a run's summary and histograms, two runs' comparison
(one for each confidence asked: the intervals differ).

Figures are computed in the database (percentiles, bins, items paired), which on a run of
a million results takes a second or more; a page that shows them again needs them again.
(A finished run's summary is kept in the database itself and read back in milliseconds;
its histograms and comparisons are not.)
So the viewer keeps the last :data:`KEPT` figures it showed, each tagged with what the
rows of its runs say of their results (``updated_at``, status and counters): figures of
a run that changed in any of these are computed afresh. A run still being written may add
results without changing its row (``update_counts=False``), so figures of a run that is
pending or running are kept :data:`FRESH_FOR` seconds at most. The memory this takes is a
few figures per entry, whatever the runs' sizes.

Only figures are kept: every page reads its runs' rows afresh, so a run's name,
description, tags and metadata are shown as they are now. Editing them moves the run's
``updated_at``, and so computes its figures again, although they cannot have changed: the
row cannot tell an edit from a result written over in place (which moves ``updated_at``
and may leave every counter as it was), and figures kept past such a write would be
wrong.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Hashable
from typing import Any
from typing import TypeVar

from runstore.base import RunsStorage
from runstore.models import Run
from runstore.models import RunComparison
from runstore.models import RunHistograms
from runstore.models import RunStatus
from runstore.models import RunSummary

__all__ = ["BINS", "FRESH_FOR", "KEPT", "FiguresCache"]

KEPT = 256
FRESH_FOR = 5.0
BINS = 24
"""Bins of each histogram a run page draws."""

_FINISHED = frozenset({RunStatus.COMPLETED, RunStatus.FAILED})
_T = TypeVar("_T")


def _tag(run: Run) -> tuple[object, ...]:
    return (run.updated_at, run.status, run.result_count, run.succeeded_count, run.failed_count)


class FiguresCache:
    """The figures of recently shown runs; safe to share between threads."""

    def __init__(self, storage: RunsStorage, *, kept: int = KEPT) -> None:
        self.storage = storage
        self.kept = kept
        self._entries: OrderedDict[Hashable, tuple[object, float, bool, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def _figures(self, key: Hashable, runs: tuple[Run, ...], compute: Callable[[], _T]) -> _T:
        tag = tuple(_tag(run) for run in runs)
        live = any(run.status not in _FINISHED for run in runs)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                kept_tag, at, kept_live, value = entry
                if kept_tag == tag and not (kept_live and time.monotonic() - at > FRESH_FOR):
                    self._entries.move_to_end(key)
                    return value  # type: ignore[no-any-return]
        value = compute()  # outside the lock: other pages go on meanwhile
        with self._lock:
            self._entries[key] = (tag, time.monotonic(), live, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.kept:
                self._entries.popitem(last=False)
        return value

    def summary(self, run: Run) -> RunSummary:
        """:meth:`~runstore.base.RunsStorage.summarize_run`, unless kept here.

        It only reads (``keep=False``): a finished run's summary kept in the database is
        read back, a run without one is summarised and nothing is stored -- the viewer
        never writes.
        """
        return self._figures(
            ("summary", run.id),
            (run,),
            lambda: self.storage.summarize_run(run.id, keep=False),
        )

    def histograms(self, run: Run) -> RunHistograms:
        """:meth:`~runstore.base.RunsStorage.histogram_run` with :data:`BINS` bins, unless
        kept."""
        return self._figures(
            ("histograms", run.id),
            (run,),
            lambda: self.storage.histogram_run(run.id, bins=BINS),
        )

    def comparison(
        self, baseline: Run, candidate: Run, *, confidence: float = 0.95
    ) -> RunComparison:
        """:meth:`~runstore.base.RunsStorage.compare_runs` at ``confidence``, unless kept
        (one entry per confidence: the intervals and p-values differ)."""
        return self._figures(
            ("comparison", baseline.id, candidate.id, confidence),
            (baseline, candidate),
            lambda: self.storage.compare_runs(baseline.id, candidate.id, confidence=confidence),
        )
