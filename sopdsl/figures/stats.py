"""The statistics of an experiment's report: a proportion's 95% interval (Wilson), and whether two
proportions differ (a two-proportion z-test, or Fisher's exact test when counts are small).

Written out from their formulas with `math` (a few lines each) rather than taking scipy, a large
dependency, for three functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile: a two-sided 95% interval
SMALL = 5  # below this expected count in any cell, the z-test's normal approximation is poor


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (0, 0 for no trials)."""
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return (max(0.0, (centre - margin) / scale), min(1.0, (centre + margin) / scale))


def z_test(x1: int, n1: int, x2: int, n2: int) -> float:
    """The two-sided p-value of a pooled two-proportion z-test (1 when it cannot tell)."""
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / spread
    return math.erfc(abs(z) / math.sqrt(2))


def fisher_exact(x1: int, n1: int, x2: int, n2: int) -> float:
    """The two-sided p-value of Fisher's exact test on the 2×2 table [[x1, n1-x1], [x2, n2-x2]]:
    the probability, with the margins fixed, of every table no likelier than the one seen."""
    successes, total = x1 + x2, n1 + n2

    def log_p(k: int) -> float:  # hypergeometric: k successes in the first row
        return _log_choose(n1, k) + _log_choose(n2, successes - k) - _log_choose(total, successes)

    seen = log_p(x1)
    low, high = max(0, successes - n2), min(n1, successes)
    p = sum(math.exp(log_p(k)) for k in range(low, high + 1) if log_p(k) <= seen + 1e-7)
    return min(1.0, p)


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


@dataclass(frozen=True, slots=True)
class Comparison:
    """An arm against the control: the difference of their rates, the test used and its p-value."""

    difference: float
    test: str  # "z" or "fisher"
    p_value: float


def compare(x1: int, n1: int, x0: int, n0: int) -> Comparison:
    """Arm (x1 of n1) against control (x0 of n0): Fisher's exact test when an expected count of the
    2×2 table is under `SMALL`, else the z-test."""
    rate1 = x1 / n1 if n1 else 0.0
    rate0 = x0 / n0 if n0 else 0.0
    total = n1 + n0
    successes = x1 + x0
    expected = [n * s / total for n in (n1, n0) for s in (successes, total - successes)] if total else [0.0]
    if min(expected) < SMALL:
        return Comparison(rate1 - rate0, "fisher", fisher_exact(x1, n1, x0, n0))
    return Comparison(rate1 - rate0, "z", z_test(x1, n1, x0, n0))
