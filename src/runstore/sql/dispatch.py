"""The SQL adapters' table of calls: which operation plans each call of
:mod:`runstore.calls`, and which walk streams each ``iter_*`` call -- each feature
module's own table, together."""

from __future__ import annotations

from typing import TypeVar
from typing import cast

from runstore import calls
from runstore.plans import Plan
from runstore.plans import Walk
from runstore.sql import answers
from runstore.sql import lists
from runstore.sql import results
from runstore.sql import runs
from runstore.sql import scores
from runstore.sql import summaries
from runstore.sql.database import Database
from runstore.sql.database import Plans
from runstore.sql.database import Walks

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
