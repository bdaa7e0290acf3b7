"""Student's t distribution, runstore's own, against SciPy's and closed forms."""

from __future__ import annotations

import math

import pytest

from runstore.testing.statistics import SCIPY

pytest.importorskip("scipy", minversion=SCIPY)
from scipy import stats  # after the version check

from runstore.student import critical_value
from runstore.student import two_sided_p

DEGREES = [1, 2, 3, 4, 5, 7, 10, 19, 24, 25, 26, 29, 30, 31, 49, 50, 99, 100, 999]
DEGREES += [1000, 9_999, 99_999, 999_999, 1.5, 2.5]
STATISTICS = [1e-6, 1e-3, 0.1, 0.5, 0.9, 1.0, 1.5, 1.96, 2.0, 2.5, 3.0, 4.0, 5.0, 6.5, 8.0]
STATISTICS += [10.0, 15.0, 20.0, 40.0, 100.0, 1e3, 1e5]
CONFIDENCES = [0.01, 0.5, 0.8, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999, 0.999999, 1 - 1e-10]


def close(actual: float, expected: float, rel: float = 1e-12) -> bool:
    return math.isclose(actual, expected, rel_tol=rel, abs_tol=1e-300)


@pytest.mark.parametrize("df", DEGREES)
def test_p_values_agree_with_scipy(df: float) -> None:
    for t in STATISTICS:
        expected = float(2 * stats.t.sf(t, df))
        if expected < 1e-300:
            assert two_sided_p(t, df) < 1e-290
            continue
        if df == 1 and t < 1e-3:
            continue  # SciPy's Cauchy tail loses digits there; see the closed form below
        # 1e-11 (1e-10 past ten thousand degrees) where the p-value is a normal double;
        # the comparisons promise 1e-9
        rel = (1e-11 if df < 10_000 else 1e-10) if expected > 1e-250 else 1e-6
        assert close(two_sided_p(t, df), expected, rel), (df, t, two_sided_p(t, df), expected)
        assert two_sided_p(-t, df) == two_sided_p(t, df)


@pytest.mark.parametrize("t", [1e-12, 1e-8, 1e-3, 0.5, 1.0, 3.0, 1e3, 1e8])
def test_one_and_two_degrees_of_freedom_have_closed_forms(t: float) -> None:
    cauchy = 2.0 * math.atan2(1.0, t) / math.pi
    assert close(two_sided_p(t, 1), cauchy, 1e-13)
    two = (
        1.0 - t / math.sqrt(2.0 + t * t)
        if t < 1
        else 2.0 / (math.sqrt(2.0 + t * t) * (math.sqrt(2.0 + t * t) + t))
    )
    assert close(two_sided_p(t, 2), two, 1e-12)


@pytest.mark.parametrize("df", DEGREES)
def test_critical_values_agree_with_scipy(df: float) -> None:
    for confidence in CONFIDENCES:
        tail = 1.0 - (1.0 + confidence) / 2.0
        expected = float(stats.t.interval(confidence, df)[1])
        actual = critical_value(2.0 * tail, df)
        assert close(actual, expected, 1e-10), (df, confidence, actual, expected)
        # and it is the inverse of the p-value
        assert close(two_sided_p(actual, df), 2.0 * tail, 1e-9)


def test_the_edges() -> None:
    assert two_sided_p(0.0, 5) == 1.0
    assert two_sided_p(math.inf, 5) == 0.0
    assert two_sided_p(1e-200, 5) == 1.0  # t squared vanishes
    assert two_sided_p(1e200, 5) == 0.0
    assert two_sided_p(1e-160, 1e6) == 1.0
    for bad in ((math.nan, 3.0), (1.0, 0.0), (1.0, -2.0), (1.0, math.nan)):
        with pytest.raises(ValueError, match="t distribution"):
            two_sided_p(*bad)
    for alpha in (0.0, 1.0, -0.1, math.nan):
        with pytest.raises(ValueError, match="critical value"):
            critical_value(alpha, 5)
