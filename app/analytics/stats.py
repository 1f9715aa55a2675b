"""Bayesian estimates of conversion rates: Beta posteriors, credible intervals, P(best).

With a uniform Beta(1, 1) prior, ``c`` conversions among ``n`` visitors give the posterior
Beta(1 + c, 1 + n - c). Its interval is exact (regularized incomplete beta, inverted by
bisection); the probability that an arm is the best is estimated by Monte Carlo with a fixed
seed, so the same data always gives the same figures.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from math import exp, lgamma, log, sqrt
from random import Random
from statistics import NormalDist

PRIOR = 1.0
INTERVAL = 0.90
# Pure Python (random.betavariate) costs microseconds a draw: 5,000 joint draws keep the
# estimate's standard error under 0.71 percentage points (sqrt(0.25 / 5000)), finer than the
# whole percent the dashboard shows, at some 20 ms to rank three arms on a busy machine.
DRAWS = 5_000
SEED = 20_261_123


@dataclass(frozen=True)
class Posterior:
    alpha: float
    beta: float

    @classmethod
    def of(cls, conversions: int, visitors: int) -> "Posterior":
        failures = max(visitors - conversions, 0)
        return cls(PRIOR + conversions, PRIOR + failures)

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def interval(self, level: float = INTERVAL) -> tuple[float, float]:
        tail = (1 - level) / 2
        return beta_quantile(tail, self.alpha, self.beta), beta_quantile(
            1 - tail, self.alpha, self.beta
        )


def _continued_fraction(a: float, b: float, x: float) -> float:
    # Lentz's method for the incomplete beta's continued fraction (Numerical Recipes 6.4).
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-12:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log(1.0 - x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _continued_fraction(a, b, x) / a
    return 1.0 - front * _continued_fraction(b, a, 1.0 - x) / b


def _log_pdf(x: float, a: float, b: float) -> float:
    return lgamma(a + b) - lgamma(a) - lgamma(b) + (a - 1) * log(x) + (b - 1) * log(1 - x)


def beta_quantile(p: float, a: float, b: float) -> float:
    """The x with I_x(a, b) = p: Newton steps from the normal approximation, kept inside a
    bracket that bisection narrows whenever a step would leave it."""
    low, high = 0.0, 1.0
    mean = a / (a + b)
    sd = sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    x = min(max(mean + NormalDist().inv_cdf(p) * sd, 1e-9), 1 - 1e-9)
    for _ in range(100):
        error = beta_cdf(x, a, b) - p
        if abs(error) < 1e-12:
            break
        if error < 0:
            low = x
        else:
            high = x
        step = x - error / exp(_log_pdf(x, a, b))
        x = step if low < step < high else (low + high) / 2
        if high - low < 1e-13:
            break
    return x


def probability_best(posteriors: Sequence[Posterior], draws: int = DRAWS) -> list[float]:
    """For each arm, the share of joint posterior draws in which it has the highest rate."""
    if not posteriors:
        return []
    if len(posteriors) == 1:
        return [1.0]
    beta = Random(SEED).betavariate
    arms = [(p.alpha, p.beta) for p in posteriors]
    wins = [0] * len(arms)
    for _ in range(draws):
        rates = [beta(a, b) for a, b in arms]
        wins[rates.index(max(rates))] += 1
    return [w / draws for w in wins]
