"""Means with 95 % confidence intervals over a few seeds, and what they allow one to say.

A method study has 2-5 seeds per method, so intervals use Student's t distribution, not the
normal one (with 3 seeds the 97.5 % quantile is 4.30, not 1.96). SciPy is only a test
dependency, so the quantiles are tabulated here (checked against scipy.stats.t in the tests).
Comparisons between two methods are paired by seed: seed s of both runs shares the data
order, crops and initialisation draws, so the per-seed difference removes that variation.
"""
import dataclasses
import math

# Student's t 97.5 % quantiles (two-sided 95 %) for 1..30 degrees of freedom.
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
         2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
         2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)
_NORMAL975 = 1.95996


def t_quantile_975(degrees_of_freedom):
    """The 97.5 % quantile of Student's t: tabulated up to 30 degrees of freedom, beyond that
    the Cornish-Fisher expansion around the normal quantile (within 1e-4 there)."""
    if degrees_of_freedom < 1:
        raise ValueError(f"a t interval needs at least 2 values; got {degrees_of_freedom + 1}")
    if degrees_of_freedom <= len(_T975):
        return _T975[degrees_of_freedom - 1]
    z, df = _NORMAL975, degrees_of_freedom
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


@dataclasses.dataclass(frozen=True)
class Interval:
    """mean ± half_width (95 %), over n values; half_width is None for a single value."""
    mean: float
    half_width: float | None
    n: int

    @property
    def low(self):
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self):
        return None if self.half_width is None else self.mean + self.half_width

    def contains_zero(self):
        return self.half_width is None or self.low <= 0.0 <= self.high

    def overlaps(self, other):
        """Whether the two intervals share a value; False when either is a single value."""
        if self.half_width is None or other.half_width is None:
            return False
        return self.low <= other.high and other.low <= self.high

    def format(self, digits=3):
        if self.half_width is None:
            return f"{self.mean:.{digits}f} (n=1)"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f}"

    def to_dict(self):
        return {"mean": self.mean, "ci95": self.half_width, "low": self.low,
                "high": self.high, "n": self.n}


def mean_interval(values):
    """Mean and 95 % t interval of `values` (sample standard deviation, n - 1)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("no values to average")
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return Interval(mean, None, 1)
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return Interval(mean, t_quantile_975(n - 1) * math.sqrt(variance / n), n)


def paired_difference(method, reference):
    """The 95 % interval of method - reference over the seeds both have.

    method, reference: {seed: value}. Returns (Interval, the seeds used), or (None, []) when
    they share no seed.
    """
    seeds = sorted(set(method) & set(reference))
    if not seeds:
        return None, []
    return mean_interval([method[s] - reference[s] for s in seeds]), seeds


def describe_difference(interval, metric, name, reference, higher_is_better=True):
    """One sentence on a paired difference, claiming nothing its interval does not show."""
    if interval is None:
        return f"{name} vs {reference} ({metric}): no seed in common, no comparison."
    if interval.half_width is None:
        return (f"{name} vs {reference} ({metric}): {interval.mean:+.3f} on one seed; one "
                f"seed gives no interval, so no conclusion.")
    if interval.contains_zero():
        return (f"{name} vs {reference} ({metric}): {interval.mean:+.3f} "
                f"(95 % CI [{interval.low:+.3f}, {interval.high:+.3f}], {interval.n} seeds): "
                f"not distinguishable at this budget.")
    better = (interval.mean > 0) == higher_is_better
    return (f"{name} vs {reference} ({metric}): {interval.mean:+.3f} "
            f"(95 % CI [{interval.low:+.3f}, {interval.high:+.3f}], {interval.n} seeds): "
            f"{name} is {'better' if better else 'worse'} at this budget.")
