"""Comparisons of large runs take one pass over the paired items, their deviations from
an estimate of the mean (``runstore.sql.answers.ONE_PASS_FROM``); small ones take two.
Here every comparison takes the one-pass path -- with the estimate from all items, and
from the first item alone (the worst estimate: a second pass must take over where it is
not close enough) -- and the statistics contract holds it against SciPy, on both
databases."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from contextlib import AbstractContextManager

import pytest
import sqlalchemy as sa

from runstore import RunsStorage
from runstore import SqlRunsStorage
from runstore.sql import answers
from runstore.testing import StorageFactory
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input
from runstore.testing.statistics import StatisticsContract
from test_contract import sql_factory


@pytest.fixture(params=[1_000_000, 1], ids=["estimate-of-all-items", "estimate-of-one-item"])
def one_pass(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(answers, "ONE_PASS_FROM", 0)
    monkeypatch.setattr(answers, "SHIFT_ITEMS", request.param)
    return request.param


class _OnePass(StatisticsContract):
    @pytest.fixture
    def make_storage(
        self, storage_factory: StorageFactory, one_pass: int
    ) -> Iterator[StorageFactory]:
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
        return make_storage()


class TestSqliteOnePass(_OnePass):
    @pytest.fixture
    def storage_factory(self, migrated_sqlite_url: str) -> StorageFactory:
        return sql_factory(migrated_sqlite_url)


@pytest.mark.postgres
class TestPostgresOnePass(_OnePass):
    @pytest.fixture
    def storage_factory(self, postgres_url: str) -> StorageFactory:
        return sql_factory(postgres_url)


def test_one_pass_and_two_agree(
    empty_url: str,
    monkeypatch: pytest.MonkeyPatch,
    statements_seen: Callable[[sa.Engine], AbstractContextManager[list[str]]],
) -> None:
    """The same comparison, both ways, on drifting and noisy data: with an estimate of
    many items the one pass is exact enough, with one item's it falls back to two."""
    with SqlRunsStorage(empty_url) as storage:
        baseline, candidate = (storage.create_run(run_input()) for _ in range(2))
        for run, shift in ((baseline, 0.0), (candidate, 0.25)):
            storage.add_results(
                [
                    result_input(
                        run,
                        n,
                        latency=100.0 + n * 3.5 + (n * 7919 % 13) * shift,
                        cost=0.001 * (n % 17) + shift,
                        scores={"accuracy": (n * 31 % 97) / 97 + shift * (n % 3)},
                    )
                    for n in range(300)
                ]
            )
        two = storage.compare_runs(baseline.id, candidate.id)
        monkeypatch.setattr(answers, "ONE_PASS_FROM", 0)
        for first in (1, 10, 1000):
            monkeypatch.setattr(answers, "SHIFT_ITEMS", first)
            with statements_seen(storage.engine) as seen:
                one = storage.compare_runs(baseline.id, candidate.id)
            second_pass = [sql for sql in seen if "paired_deviations" in sql]
            assert bool(second_pass) == (first == 1), (first, len(seen))
            for figure in ("latency", "cost"):
                ours, theirs = getattr(one, figure), getattr(two, figure)
                assert ours is not None
                assert theirs is not None
                assert ours.std_error == pytest.approx(theirs.std_error, rel=1e-12)
            ours_score, theirs_score = one.scores["accuracy"], two.scores["accuracy"]
            assert ours_score.std_error == pytest.approx(theirs_score.std_error, rel=1e-12)
            assert ours_score.p_value == pytest.approx(theirs_score.p_value, rel=1e-9)


@pytest.mark.postgres
def test_a_large_comparison_plans_without_optimizing_its_expressions_for_its_own_transaction(
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    statements_seen: Callable[[sa.Engine], AbstractContextManager[list[str]]],
) -> None:
    """On Postgres a one-pass comparison sets JIT's optimizing and inlining off for its
    transaction alone (``set_config(..., true)``): the connection goes back to the pool
    with the server's settings."""
    monkeypatch.setattr(answers, "ONE_PASS_FROM", 0)
    with SqlRunsStorage(postgres_url, pool_size=1, max_overflow=0) as storage:
        baseline, candidate = (storage.create_run(run_input()) for _ in range(2))
        for run in (baseline, candidate):
            storage.add_results([result_input(run, n, scores={"s": n / 10}) for n in range(5)])
        with storage.engine.connect() as connection:
            before = connection.exec_driver_sql("SHOW jit_optimize_above_cost").scalar()
        with statements_seen(storage.engine) as seen:
            storage.compare_runs(baseline.id, candidate.id)
        assert any("set_config" in sql for sql in seen)
        with storage.engine.connect() as connection:  # the pool's one connection
            settings = [
                connection.exec_driver_sql(f"SHOW {name}").scalar()
                for name in ("jit_optimize_above_cost", "jit_inline_above_cost")
            ]
        assert settings[0] == before
        assert settings[1] != "-1"
