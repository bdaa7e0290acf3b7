"""The SQL adapters' table of calls: which operation plans each call of
:mod:`runstore.calls` (and which walk streams each ``iter_*`` call)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from runstore import calls
from runstore.plans import Plan, Walk
from runstore.sql import answers, lists, results, runs, scores
from runstore.sql.database import Database

__all__ = ["PLANS", "WALKS", "plan_of", "walk_of"]

_T = TypeVar("_T")

PLANS: dict[type[calls.Call[Any]], Callable[[Any, Database], Plan[Any]]] = {
    calls.CreateRun: runs.create_run,
    calls.UpdateRun: runs.update_run,
    calls.GetRunById: runs.get_run_by_id,
    calls.ListRuns: lists.list_runs,
    calls.DeleteRun: runs.delete_run,
    calls.RecountRun: runs.recount_run,
    calls.PruneRuns: runs.prune_runs,
    calls.AddResult: results.add_result,
    calls.AddResults: results.add_results,
    calls.GetResultById: results.get_result_by_id,
    calls.ListResults: lists.list_results,
    calls.DeleteResultsByRunId: results.delete_results_by_run_id,
    calls.AddScores: scores.add_scores,
    calls.ListScores: scores.list_scores,
    calls.SummarizeRun: answers.summarize_run,
    calls.CompareRuns: answers.compare_runs,
    calls.DangerouslyClearAll: runs.dangerously_clear_all,
}

WALKS: dict[type[calls.Stream[Any]], Callable[[Any, Database], Walk[Any]]] = {
    calls.IterRuns: lists.iter_runs,
    calls.IterResults: lists.iter_results,
    calls.IterResultRows: lists.iter_result_rows,
    calls.IterScores: scores.iter_scores,
    calls.IterItemComparisons: answers.iter_item_comparisons,
}


def plan_of(call: calls.Call[_T], database: Database) -> Plan[_T]:
    """The plan of ``call``'s operation."""
    return cast("Plan[_T]", PLANS[type(call)](call, database))


def walk_of(stream: calls.Stream[_T], database: Database) -> Walk[_T]:
    """The walk of an ``iter_*`` call."""
    return cast("Walk[_T]", WALKS[type(stream)](stream, database))
