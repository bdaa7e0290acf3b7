"""The abstract storage: the contract every runstore adapter keeps.

:mod:`runstore.testing` holds the tests that prove it; an adapter passes them to keep it.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING
from typing import Any
from typing import Self
from typing import TypeVar

from runstore import calls
from runstore.arguments import gate_arguments
from runstore.export import export_arguments
from runstore.export import record_batch
from runstore.export import require_pyarrow
from runstore.export import result_schema
from runstore.export import write_export
from runstore.gate import judge
from runstore.gate import needs_regressed_items
from runstore.gate import needs_summaries
from runstore.models import AddRunResultInput
from runstore.models import AddScoreInput
from runstore.models import ComparisonKind
from runstore.models import CreateRunInput
from runstore.models import ExistingRun
from runstore.models import GateRules
from runstore.models import GateVerdict
from runstore.models import ItemComparison
from runstore.models import ListRunResultsInput
from runstore.models import ListRunResultsOutput
from runstore.models import ListRunsInput
from runstore.models import ListRunsOutput
from runstore.models import OnConflict
from runstore.models import ResultOrder
from runstore.models import Run
from runstore.models import RunComparison
from runstore.models import RunHistograms
from runstore.models import RunResult
from runstore.models import RunStatus
from runstore.models import RunSummary
from runstore.models import RunTrend
from runstore.models import Score
from runstore.models import ScoreFilter
from runstore.models import TargetType
from runstore.models import UpdateRunInput

if TYPE_CHECKING:
    import pyarrow

__all__ = ["RunsStorage"]

_T = TypeVar("_T")


class RunsStorage(abc.ABC):
    """Persists dataset runs and their per-item results.

    Every adapter keeps this contract, and one test suite (:mod:`runstore.testing`) proves
    it for all of them.

    * Methods take pydantic models -- or mappings of their fields, validated the same way
      -- and ids, and return frozen pydantic snapshots; no database object crosses the API.
    * Each method is one transaction: it happens entirely or not at all.
    * Adapters are safe to share between threads. The SQL adapter is also safe to share
      a database between processes.
    * Invalid input -- a wrong type, a value out of the limits in :mod:`runstore.limits`,
      a malformed cursor -- raises a ``ValueError`` (pydantic's ``ValidationError`` for
      models, :class:`~runstore.errors.InvalidInputError` otherwise) before anything is
      written.
    * Every other failure is a :class:`~runstore.errors.StorageError`; a database error is
      wrapped in :class:`~runstore.errors.DatabaseError` with the driver's error chained.
      Nothing else escapes.

    Each public method checks its arguments (:mod:`runstore.calls`) and hands the checked
    call to the adapter's one hook, :meth:`_perform` (or :meth:`_stream` for the
    ``iter_*`` calls): an adapter implements those two, and checks nothing itself.
    Adapters take ``clock=``: where ``created_at``/``updated_at`` come from, the system
    clock in UTC unless given (give one to make times deterministic in tests).
    """

    @abc.abstractmethod
    def _perform(self, call: calls.Call[_T]) -> _T:
        """Carry out a call whose arguments are checked; what the public method returns."""

    @abc.abstractmethod
    def _stream(self, call: calls.Stream[_T]) -> Iterator[_T]:
        """The items of an ``iter_*`` call whose arguments are checked, read lazily (a
        closed storage is refused at once)."""

    # -- lifecycle ---------------------------------------------------------------------

    def init(self) -> None:  # noqa: B027 - optional hook, a no-op where nothing is needed
        """Prepare the backing store (for SQL: migrate the schema to head). Idempotent."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Using the storage afterwards raises ``StorageClosedError``."""

    def dangerously_clear_all(self) -> None:
        """Delete every run and result. The schema stays."""
        self._perform(calls.DangerouslyClearAll())

    def __enter__(self) -> Self:
        self.init()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- runs --------------------------------------------------------------------------

    def create_run(
        self,
        input: CreateRunInput | Mapping[str, Any],
        *,
        if_exists: ExistingRun | str = ExistingRun.ERROR,
    ) -> Run:
        """Create a run: status ``pending``, counts 0, not started or completed.

        ``created_at`` and ``updated_at`` are both now (UTC). Without ``input.id`` a uuid4
        string is generated. What produced the run -- ``name``, ``description``,
        ``tags`` (stored as a sorted set) and ``metadata`` (a JSON object) -- is stored
        with it, in the same transaction.

        Args:
            if_exists: ``"error"``, or ``"return"``: when a run with ``input.id`` exists
                and was created with the same fields (dataset id and version, target
                type and id, total items), return it as stored -- so a pipeline that
                restarts can create its run again. (Its name, description, tags and
                metadata are not compared: they may have been edited since.)

        Raises:
            DuplicateError: a run with ``input.id`` exists (with ``"return"``: created
                with other fields, which the message names); it is left unchanged.
        """
        return self._perform(calls.CreateRun.checked(input=input, if_exists=if_exists))

    def update_run(self, input: UpdateRunInput | Mapping[str, Any]) -> Run:
        """Change the fields given in ``input``; ``updated_at`` moves forward.

        ``tags`` replaces the run's tags (``[]`` clears them) and ``metadata`` its
        metadata (``{}`` clears it), in one transaction; ``name`` or ``description`` set
        to None clears it. A field left out stays as it is.

        Returns:
            The run as stored after the change.

        Raises:
            RunNotFoundError: no run has ``input.id``.
        """
        return self._perform(calls.UpdateRun.checked(input=input))

    def get_run_by_id(self, id: str) -> Run | None:
        """The run with ``id``, or None."""
        return self._perform(calls.GetRunById.checked(id=id))

    def list_runs(self, input: ListRunsInput | Mapping[str, Any] | None = None) -> ListRunsOutput:
        """Runs newest first (``created_at`` descending, then ``id`` descending).

        Only the runs matching every filter given (``dataset_id``, ``status``,
        ``target_type``, ``target_id``, ``name``; ``tags``: runs carrying every tag given;
        ``metadata``: runs whose metadata has every key given with an equal JSON scalar,
        numbers by value -- see :class:`~runstore.models.RunFilters`). A tag filter is
        served by the tags' index on both databases, a metadata filter by a GIN index on
        Postgres.
        ``pagination.total`` counts every matching run; ``has_more`` tells whether rows lie
        past this page. The order is total, so no run is repeated or skipped across pages
        when timestamps tie. A page past the end is empty. Without ``input``, the first
        100 runs.

        Every output carries ``next_cursor`` (None on the last page): pass it back as
        ``input.cursor`` to read the next page by keyset, at a cost that does not grow
        with depth.

        Raises:
            InvalidInputError: ``input.cursor`` was not made by runstore, or came from
                another list.
        """
        return self._perform(calls.ListRuns.checked(input=input))

    def iter_runs(
        self,
        *,
        dataset_id: str | None = None,
        status: RunStatus | str | None = None,
        target_type: TargetType | str | None = None,
        target_id: str | None = None,
        name: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, object] | None = None,
        batch_size: int = 1000,
        **unknown: object,
    ) -> Iterator[Run]:
        """Every run matching the filters (as in :meth:`list_runs`), in its order.

        Read like :meth:`iter_results`. The filters are validated as
        :class:`~runstore.models.RunFilters` when the iterator is created (so an unknown
        one is a ``ValidationError``).
        """
        filters = {
            "dataset_id": dataset_id,
            "status": status,
            "target_type": target_type,
            "target_id": target_id,
            "name": name,
            "tags": tags,
            "metadata": metadata,
            **unknown,
        }
        return self._stream(calls.IterRuns.checked(filters=filters, batch_size=batch_size))

    def delete_run(self, id: str) -> None:
        """Delete a run and all its results in one transaction; an unknown id is a no-op."""
        self._perform(calls.DeleteRun.checked(id=id))

    def recount_run(self, run_id: str) -> Run:
        """Set a run's ``result_count``, ``succeeded_count`` and ``failed_count`` from its
        stored results, in one statement in the database -- for a run written without
        ``update_counts``, or whose counts a crash left behind. ``updated_at`` moves to
        now unless it is already later.

        Returns:
            The run as stored after the recount.

        Raises:
            RunNotFoundError: no run has ``run_id``.
        """
        return self._perform(calls.RecountRun.checked(run_id=run_id))

    def prune_runs(
        self,
        *,
        older_than: datetime,
        status: RunStatus | str | None = None,
        dataset_id: str | None = None,
        tags: Iterable[str] | None = None,
        batch_size: int = 100,
    ) -> int:
        """Delete every run created before ``older_than`` -- only those with ``status``,
        of ``dataset_id``, carrying every one of ``tags``, when given -- with its results,
        scores and tags. For retention.

        Oldest first, ``batch_size`` runs at a time, each batch in a short transaction
        of its own, so writers of other runs wait on none for long; a SQL batch also
        stops at 10,000 results (a run with more goes alone: runs go whole). If pruning
        stops with an error, the batches done stay done.

        Returns:
            How many runs were deleted.

        Raises:
            InvalidInputError: ``older_than`` is not a timezone-aware datetime, or an
                argument is out of range.
        """
        call = calls.PruneRuns.checked(
            older_than=older_than,
            status=status,
            dataset_id=dataset_id,
            batch_size=batch_size,
            tags=tags,
        )
        return self._perform(call)

    # -- results -----------------------------------------------------------------------

    def add_result(
        self,
        input: AddRunResultInput | Mapping[str, Any],
        *,
        update_counts: bool = False,
        on_conflict: OnConflict | str = OnConflict.ERROR,
    ) -> RunResult:
        """Record one item's result. Without ``input.id`` a uuid4 string is generated.

        A run holds one result per (item, repetition). JSON fields read back exactly as
        given (see :mod:`runstore.jsonvalues`); ``created_at`` is now (UTC). The run's
        ``result_count`` grows by one in the same transaction, and ``input.scores``, if
        any, are recorded with it (as :class:`Score` rows with no label, explanation or
        metadata).

        Args:
            update_counts: also add 1 to the run's ``failed_count`` (when ``input.error``
                is not None) or ``succeeded_count``, in the same transaction, by arithmetic
                in the database -- concurrent writers never lose a count. ``updated_at``
                then moves to now unless it is already later.
            on_conflict: when the run already holds a result for the same (item,
                repetition) -- a worker may write the same result twice, or retry a
                failure: ``"error"`` refuses it; ``"replace"`` overwrites every field of
                the stored result and replaces its scores with ``input.scores`` (the
                result keeps its id; ``input.id`` is then unused); ``"skip"`` keeps the
                stored result. Either returns what is then stored. With
                ``update_counts``, the counters follow exactly: a replaced failure that
                now succeeds moves one count from ``failed_count`` to
                ``succeeded_count``; ``result_count`` does not change. Writers of one run
                with ``"replace"`` or ``"skip"`` take turns (the run is locked first).

        Raises:
            RunNotFoundError: the run does not exist; nothing is written.
            DuplicateError: with ``on_conflict="error"``, the run already has a result
                for the item and repetition; or a result with ``input.id`` exists.
                Nothing is written.
            InvalidInputError: with ``update_counts``, a counter would pass
                :data:`~runstore.limits.MAX_COUNT`; nothing is written.
        """
        call = calls.AddResult.checked(
            input=input, update_counts=update_counts, on_conflict=on_conflict
        )
        return self._perform(call)

    def add_results(
        self,
        inputs: Iterable[AddRunResultInput | Mapping[str, Any]],
        *,
        update_counts: bool = False,
        on_conflict: OnConflict | str = OnConflict.ERROR,
    ) -> list[RunResult]:
        """Record many results in one transaction: all of them, or none.

        Items may belong to different runs. Mappings are validated like
        :class:`AddRunResultInput`. ``update_counts`` and ``on_conflict`` work as in
        :meth:`add_result`, once per run for the whole batch.

        Returns:
            The results as stored, in the order given.

        Raises:
            InvalidInputError: ``inputs`` is not an iterable of inputs, or an item is
                invalid, or repeats the id or the (run, item, repetition) of an earlier
                item; the message starts with ``inputs[i]``.
            RunNotFoundError: an item's run does not exist (``.position`` says which).
            DuplicateError: an item's id is already stored, or (with
                ``on_conflict="error"``) its (run, item, repetition) (``.position`` says
                which). Nothing is written in any of these cases.
        """
        call = calls.AddResults.checked(
            inputs=inputs, update_counts=update_counts, on_conflict=on_conflict
        )
        return self._perform(call)

    def get_result_by_id(self, id: str) -> RunResult | None:
        """The result with ``id``, or None."""
        return self._perform(calls.GetResultById.checked(id=id))

    def list_results(self, input: ListRunResultsInput | Mapping[str, Any]) -> ListRunResultsOutput:
        """One run's results in execution order (``started_at``, then ``id``, ascending),
        or slowest first (``order="slowest"``: ``latency``, then ``id``, descending).

        Optionally only the results matching every filter given: ``has_error``,
        ``item_id``, ``score`` (a :class:`~runstore.models.ScoreFilter`: a score's name
        and range). Paginated exactly like :meth:`list_runs`, cursors included, under
        every filter and order; ``pagination.total`` counts the matching results. Each
        result carries its ``scores``, read in the same snapshot. An unknown run has no
        results.
        """
        return self._perform(calls.ListResults.checked(input=input))

    def iter_results(
        self,
        run_id: str,
        *,
        batch_size: int = 1000,
        has_error: bool | None = None,
        item_id: str | None = None,
        score: ScoreFilter | Mapping[str, Any] | None = None,
        order: ResultOrder | str = ResultOrder.EXECUTION,
    ) -> Iterator[RunResult]:
        """Every matching result of a run, in :meth:`list_results` order, with bounded
        memory.

        Reads ``batch_size`` rows at a time, each batch in a short transaction of its own
        and continuing after the last row seen, so a long iteration holds no lock or
        snapshot; results recorded meanwhile after the current position are included.
        The arguments are checked when the iterator is created.
        """
        call = calls.IterResults.checked(
            run_id=run_id,
            batch_size=batch_size,
            has_error=has_error,
            item_id=item_id,
            score=score,
            order=order,
        )
        return self._stream(call)

    def delete_results_by_run_id(self, run_id: str) -> None:
        """Delete every result of a run, and their scores, keeping the run (its
        ``result_count`` becomes 0). An unknown run is a no-op."""
        self._perform(calls.DeleteResultsByRunId.checked(run_id=run_id))

    # -- exports -----------------------------------------------------------------------

    def iter_result_batches(
        self, run_id: str, *, batch_size: int = 2_000
    ) -> Iterator[pyarrow.RecordBatch]:
        """Every result of a run, in :meth:`iter_results` order, as Arrow record batches of
        up to ``batch_size`` rows -- none for a run without results.

        The schema is :func:`runstore.export.result_schema`: one column per
        :class:`RunResult` field; JSON fields as JSON text (``output`` and
        ``expected_output`` null when None), instants as ``timestamp[us, tz=UTC]``,
        ``scores`` as ``map<string, float64>``, tokens as ``int64`` and ``cost`` as
        ``float64`` (null when None). Read like :meth:`iter_results`: one batch
        in memory at a time, each read on its own. The SQL adapter builds the columns
        from the stored values, with no model per row.

        Raises:
            InvalidInputError: pyarrow is not installed (``pip install
                "runstore[parquet]"``), or an argument is out of range -- when called.
            RunNotFoundError: no run has ``run_id`` -- when iteration starts.
        """
        require_pyarrow()
        rows = self._stream(calls.IterResultRows.checked(run_id=run_id, batch_size=batch_size))
        schema = result_schema()
        return (record_batch(batch, schema) for batch in rows)

    def export_results(
        self,
        run_id: str,
        destination: str | os.PathLike[str],
        *,
        format: str = "jsonl",
        batch_size: int = 2_000,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Write every result of a run, in :meth:`iter_results` order, to a file.

        Formats: ``"jsonl"`` -- one JSON object per line, as
        ``RunResult.model_dump(mode="json")``; ``"csv"`` -- a header row, then one row per
        result with the columns of :meth:`iter_result_batches`, every text quoted (an empty
        field is None), JSON fields and the scores as JSON text; ``"parquet"`` -- the
        batches of :meth:`iter_result_batches` (needs pyarrow). Streams ``batch_size``
        results at a time, each read on its own.

        The file appears complete or not at all: it is written under a temporary name
        in the same directory and moved into place at the end; on any failure the
        temporary file is removed and an existing ``destination`` is left untouched.

        Args:
            destination: the file's path.
            progress: called with the number of results written so far after each batch;
                what it raises stops the export (and propagates).

        Returns:
            How many results were written.

        Raises:
            InvalidInputError: an unknown format, parquet without pyarrow, or an
                argument out of range -- before anything is read or written.
            RunNotFoundError: no run has ``run_id``; no file is created.
            OSError: the file could not be written.
        """
        path, format, progress = export_arguments(destination, format, progress)
        rows = self._stream(calls.IterResultRows.checked(run_id=run_id, batch_size=batch_size))
        return write_export(rows, path, format, progress)

    # -- scores ------------------------------------------------------------------------

    def add_scores(
        self, inputs: Iterable[AddScoreInput | Mapping[str, Any]], *, replace: bool = False
    ) -> list[Score]:
        """Record scores of results, in one transaction: all of them, or none.

        Each score belongs to its result's run. Without ``input.id`` a uuid4 string is
        generated.

        Args:
            replace: overwrite a stored score of the same (result, name) -- its value,
                label, explanation, metadata and ``created_at``; it keeps its id (scorers
                get re-run). Without it, such a score is a ``DuplicateError``.

        Returns:
            The scores as stored, in the order given.

        Raises:
            InvalidInputError: an item is invalid, or repeats the (result, name) or id of
                an earlier item; the message starts with ``inputs[i]``.
            ResultNotFoundError: an item's result does not exist (``.position``).
            DuplicateError: without ``replace``, an item's (result, name) or id is already
                stored (``.position``). Nothing is written in any of these cases.
        """
        return self._perform(calls.AddScores.checked(inputs=inputs, replace=replace))

    def list_scores(
        self, run_id: str, *, result_id: str | None = None, name: str | None = None
    ) -> list[Score]:
        """A run's scores -- of one result, of one name -- ordered by name, value and id."""
        call = calls.ListScores.checked(run_id=run_id, result_id=result_id, name=name)
        return self._perform(call)

    def iter_scores(
        self,
        run_id: str,
        *,
        result_id: str | None = None,
        name: str | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Score]:
        """:meth:`list_scores`, read ``batch_size`` at a time like :meth:`iter_results`."""
        call = calls.IterScores.checked(
            run_id=run_id, result_id=result_id, name=name, batch_size=batch_size
        )
        return self._stream(call)

    # -- answers -----------------------------------------------------------------------

    def summarize_run(self, run_id: str, *, keep: bool = True) -> RunSummary:
        """What a run's results add up to, computed where they are stored.

        Counts (``results``, ``succeeded``, ``failed`` -- ``error`` not None -- and
        ``error_rate``), latency (mean, min, max, p50, p90, p95, p99), per score name,
        count, mean, min, max and p50, and the usage (tokens and cost). Percentiles are
        continuous: linear interpolation between the closest ranks (Postgres'
        ``percentile_cont``, numpy's default), the same on every backend. Figures with
        nothing to measure are None.

        A finished run's summary (``completed`` or ``failed``) is kept: the call that
        finishes the run stores it, and this call reads it instead of computing it --
        a few milliseconds whatever the run's size. It is never stale: any write that
        changes what it covers (results added, replaced or deleted, scores added, a
        recount, the run set back to ``running``) makes the next call compute it afresh,
        and keep it again when the run is finished.

        Args:
            keep: store the summary computed of a finished run that had none kept (the
                default). False only reads: what a read-only role or a viewer wants. A
                storage with read replicas never keeps here (its reads go to a
                replica); :meth:`keep_summaries` does.

        Raises:
            RunNotFoundError: no run has ``run_id``.
        """
        return self._perform(calls.SummarizeRun.checked(run_id=run_id, keep=keep))

    def keep_summaries(self, *, dataset_id: str | None = None) -> int:
        """Keep the summary of every finished run (of ``dataset_id``, if given) that has
        none kept -- for runs finished before summaries were kept, or whose summary a
        write made stale. Each run is summarised and kept on its own; a run written to
        meanwhile is left for later.

        Returns:
            How many summaries it kept.
        """
        return self._perform(calls.KeepSummaries.checked(dataset_id=dataset_id))

    def histogram_run(self, run_id: str, *, bins: int = 20) -> RunHistograms:
        """How a run's latencies and each score's values are spread, counted where they
        are stored (the values never leave the database).

        Each histogram has ``bins`` equal-width bins from the least value to the
        greatest (see :class:`~runstore.models.Histogram`): a value's bin is
        ``floor((value/2 - low/2) / (high/2 - low/2) * bins)`` in double arithmetic,
        the greatest value in the last bin (:func:`runstore.figures.bin_of`) -- the same
        counts on every backend. Where every value is the same, one bin holds them all.

        Args:
            bins: the number of bins, an int from 1 to :data:`~runstore.limits.MAX_BINS`.

        Returns:
            The latencies' histogram (None for a run without results) and, per score
            name, its values'.

        Raises:
            RunNotFoundError: no run has ``run_id``.
            InvalidInputError: ``bins`` is not an int from 1 to
                :data:`~runstore.limits.MAX_BINS`.
        """
        return self._perform(calls.HistogramRun.checked(run_id=run_id, bins=bins))

    def compare_runs(
        self, baseline_run_id: str, candidate_run_id: str, *, confidence: float = 0.95
    ) -> RunComparison:
        """A candidate run against a baseline, their results paired by ``item_id``.

        How many items both have, and each alone; errors fixed (an error in the baseline,
        none in the candidate) and introduced; the mean latency difference over the paired
        items; and per score name, over the paired items that have it in both runs: both
        means, their difference, and how many improved, regressed or stayed (higher is
        better).

        An item with several repetitions in a run is one item: its latency and each of
        its scores are the means over its repetitions, and it failed if any repetition
        failed.

        Each score's change, and the latency's and cost's (``latency``, ``cost``), is a
        paired t-test of the items' differences: its standard error, its two-sided
        ``confidence`` interval (Student's t with one degree of freedom fewer than the
        paired items) and p-value -- what tells a change from noise. The sums are
        computed in the database, in two passes (the deviations from the mean, not
        squares less the squared mean), so that scores near a million that differ by a
        thousandth lose nothing; the t distribution is runstore's own
        (:mod:`runstore.student`), checked against SciPy.

        Raises:
            InvalidInputError: ``confidence`` is not strictly between 0 and 1.
            RunNotFoundError: either run does not exist.
        """
        call = calls.CompareRuns.checked(
            baseline_run_id=baseline_run_id,
            candidate_run_id=candidate_run_id,
            confidence=confidence,
        )
        return self._perform(call)

    def iter_item_comparisons(
        self,
        baseline_run_id: str,
        candidate_run_id: str,
        *,
        only: ComparisonKind | str | None = None,
        score: str | None = None,
        batch_size: int = 1000,
        after_item: str | None = None,
    ) -> Iterator[ItemComparison]:
        """Each item of either run with its results (all its repetitions) in both, in
        ``item_id`` order, with bounded memory (read ``batch_size`` items at a time from
        each run, in a snapshot each).

        Args:
            only: ``"changed"``, ``"improved"`` or ``"regressed"`` -- the items with that
                verdict (see :func:`runstore.figures.verdict`; "changed" takes every item
                that changed at all, one-sided items included); None for every item.
            score: judge items by this score alone (items without it in both runs have
                no verdict).
            after_item: start after this item (the ``item_id`` of the last item read),
                to continue a listing where an earlier one stopped.

        Raises:
            RunNotFoundError: either run does not exist (when iteration starts).
        """
        call = calls.IterItemComparisons.checked(
            baseline_run_id=baseline_run_id,
            candidate_run_id=candidate_run_id,
            only=only,
            score=score,
            batch_size=batch_size,
            after_item=after_item,
        )
        return self._stream(call)

    def gate_runs(
        self,
        baseline_run_id: str,
        candidate_run_id: str,
        rules: GateRules | Mapping[str, Any],
    ) -> GateVerdict:
        """Judge a candidate run against its baseline by ``rules``: a check per rule
        given, in :class:`~runstore.models.GateRules`' order, each with what it saw, its
        limit and a line for a CI log; the verdict passes when every check does.

        A score's rule fails, with ``significance`` on (the default), only when the whole
        of its ``confidence`` interval lies below its limit -- so noise does not fail a
        build -- and with it off when its mean delta does. What a rule needs and does not
        find (a score one run lacks, a run without costs or results) fails its check.
        The gate writes nothing. It reads the comparison (:meth:`compare_runs`), and the
        runs' summaries and regressed items only when a rule needs them, each in a
        snapshot of its own: gate finished runs.

        Raises:
            InvalidInputError: the baseline is the candidate, or an id is not one.
            ValidationError: ``rules`` is not a valid :class:`~runstore.models.GateRules`
                (a negative limit, a confidence outside (0, 1)...).
            RunNotFoundError: either run does not exist.
        """
        baseline, candidate, checked = gate_arguments(baseline_run_id, candidate_run_id, rules)
        comparison = self.compare_runs(baseline, candidate, confidence=checked.confidence)
        summaries = None
        if needs_summaries(checked):
            summaries = (
                self.summarize_run(baseline, keep=False),
                self.summarize_run(candidate, keep=False),
            )
        regressed = None
        if needs_regressed_items(checked):
            regressed = sum(
                1 for _ in self.iter_item_comparisons(baseline, candidate, only="regressed")
            )
        return judge(checked, comparison, summaries, regressed)

    def find_baseline(
        self,
        candidate_run_id: str,
        *,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, object] | None = None,
        target_id: str | None = None,
    ) -> Run | None:
        """The run to compare a candidate with: the newest ``completed`` run of the
        candidate's dataset created before it (in :meth:`list_runs` order; never the
        candidate itself), carrying every tag and metadata pair given, of ``target_id``
        when given -- so CI can say "the last run on main" without storing ids. None when
        no run qualifies.

        Raises:
            RunNotFoundError: no run has ``candidate_run_id``.
        """
        call = calls.FindBaseline.checked(
            candidate_run_id=candidate_run_id, tags=tags, metadata=metadata, target_id=target_id
        )
        return self._perform(call)

    def trend_runs(
        self,
        dataset_id: str,
        *,
        target_id: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, object] | None = None,
        status: RunStatus | str | None = None,
        last: int = 20,
        keep: bool = True,
    ) -> RunTrend:
        """How a dataset's runs move: the ``last`` newest runs of ``dataset_id`` that
        match (of ``target_id``, carrying every tag and metadata pair given, of
        ``status`` -- by default the finished ones, ``completed`` or ``failed``), oldest
        first, each a :class:`~runstore.models.TrendPoint` of its summary's figures.

        Kept summaries serve it: one indexed read of the runs, one of their summaries. A
        matching run without one is summarised in the call (and its summary kept, as
        :meth:`summarize_run` keeps it, unless ``keep`` is False).

        Args:
            last: how many runs, an int from 1 to :data:`~runstore.limits.MAX_TREND_RUNS`.

        Raises:
            InvalidInputError: ``last`` is out of range, or an id is not one.
            ValidationError: ``metadata`` is not a mapping of keys to JSON scalars.
        """
        call = calls.TrendRuns.checked(
            dataset_id=dataset_id,
            target_id=target_id,
            tags=tags,
            metadata=metadata,
            status=status,
            last=last,
            keep=keep,
        )
        return self._perform(call)
