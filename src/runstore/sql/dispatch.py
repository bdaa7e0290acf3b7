"""The SQL adapters' table of calls: which operation plans each call of
:mod:`runstore.calls`, and which walk streams each ``iter_*`` call -- each feature
module's own table, together."""

from __future__ import annotations

from typing import TypeVar, cast

from runstore import calls
from runstore.plans import Plan, Walk
from runstore.sql import answers, lists, results, runs, scores, summaries
from runstore.sql.database import Database, Plans, Walks

__all__ = ["PLANS", "WALKS", "plan_of", "walk_of"]

_T = TypeVar("_T")

PLANS: Plans = {
    **runs.PLANS,
    **results.PLANS,
    **scores.PLANS,
    **lists.PLANS,
    **answers.PLANS,
    **summaries.PLANS,
}

WALKS: Walks = {
    **scores.WALKS,
    **lists.WALKS,
    **answers.WALKS,
}


def plan_of(call: calls.Call[_T], database: Database) -> Plan[_T]:
    """The plan of ``call``'s operation."""
    return cast("Plan[_T]", PLANS[type(call)](call, database))


def walk_of(stream: calls.Stream[_T], database: Database) -> Walk[_T]:
    """The walk of an ``iter_*`` call."""
    return cast("Walk[_T]", WALKS[type(stream)](stream, database))
