"""The RunsStorage contract as a test suite, for runstore's adapters and anyone else's.

Subclass :class:`RunsStorageContract` in a pytest module and give it a
``storage_factory`` fixture: a callable that returns a new, *empty* storage each time,
passing on the keyword arguments it is given (``clock=`` at least; see
:class:`~runstore.base.RunsStorage`). Every test of the contract then runs against it::

    import pytest
    from runstore.testing import RunsStorageContract

    class TestMyStorage(RunsStorageContract):
        @pytest.fixture
        def storage_factory(self, tmp_path):
            return lambda **options: MyStorage(tmp_path / "runs", **options)

runstore's own adapters run exactly this suite (memory, a SQLite file, SQLite in memory,
Postgres, and the asyncio adapters through :class:`~runstore.testing.bridge.BlockingRunsStorage`).
It needs pytest and hypothesis: ``pip install "runstore[testing]"``.

Its modules follow the sections of :class:`~runstore.base.RunsStorage`: :mod:`.lifecycle`,
:mod:`.runs`, :mod:`.results`, :mod:`.exports`, :mod:`.scores` and :mod:`.answers`;
:mod:`.provenance` (what produced a run and what it cost, across those calls),
:mod:`.statistics` (comparisons' paired statistics against SciPy, the gate, baselines);
:mod:`.trends` (kept summaries, exactly and never stale, and trends across runs); and
three that go across every call: :mod:`.refusals` (what every call refuses),
:mod:`.properties` (round trips of any JSON value, instant and score) and :mod:`.fuzz`
(arbitrary calls, each succeeding or refused cleanly). :mod:`.inputs` has the inputs the
suite uses, for tests of your own.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator

import pytest

# Rewrite the suite's asserts, as pytest does for test modules, so failures explain themselves.
pytest.register_assert_rewrite(
    "runstore.testing.answers",
    "runstore.testing.exports",
    "runstore.testing.fuzz",
    "runstore.testing.lifecycle",
    "runstore.testing.properties",
    "runstore.testing.provenance",
    "runstore.testing.statistics",
    "runstore.testing.trends",
    "runstore.testing.refusals",
    "runstore.testing.results",
    "runstore.testing.runs",
    "runstore.testing.scores",
)

from runstore.base import RunsStorage
from runstore.testing.answers import AnswersContract
from runstore.testing.exports import ExportsContract
from runstore.testing.fuzz import FuzzContract
from runstore.testing.lifecycle import LifecycleContract
from runstore.testing.properties import PropertiesContract
from runstore.testing.provenance import ProvenanceContract
from runstore.testing.refusals import RefusalsContract
from runstore.testing.results import ResultsContract
from runstore.testing.runs import RunsContract
from runstore.testing.scores import ScoresContract
from runstore.testing.statistics import StatisticsContract
from runstore.testing.trends import TrendsContract

__all__ = ["RunsStorageContract", "StorageFactory"]

StorageFactory = Callable[..., RunsStorage]
"""Makes a new, empty storage; keyword arguments go to the storage (``clock=``)."""


class RunsStorageContract(
    LifecycleContract,
    RunsContract,
    ResultsContract,
    ScoresContract,
    AnswersContract,
    ProvenanceContract,
    StatisticsContract,
    TrendsContract,
    ExportsContract,
    RefusalsContract,
    PropertiesContract,
    FuzzContract,
):
    """Every test of the RunsStorage contract; provide a ``storage_factory`` fixture."""

    @pytest.fixture
    def storage_factory(self) -> StorageFactory:
        raise NotImplementedError(
            "define a storage_factory fixture that returns a new, empty storage "
            "(see runstore.testing)"
        )

    @pytest.fixture
    def make_storage(self, storage_factory: StorageFactory) -> Iterator[StorageFactory]:
        """``storage_factory``, with every storage it made closed after the test."""
        made: list[RunsStorage] = []

        def make(**options: object) -> RunsStorage:
            storage = storage_factory(**options)
            made.append(storage)
            return storage

        yield make
        for storage in made:
            storage.close()

    @pytest.fixture
    def storage(self, make_storage: StorageFactory) -> RunsStorage:
        """A new, empty storage with the system clock."""
        return make_storage()
