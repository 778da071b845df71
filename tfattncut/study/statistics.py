"""What a study's few seeds allow one to say (docs/design/study.md, "Statistics").

A study has 3-10 seeds per method, so intervals and tests use Student's t, not the normal
distribution (with 3 seeds the 97.5 % quantile is 4.30, not 1.96). Comparisons between two
methods are paired by seed: seed s of both runs shares the data order, crops and
initialisation draws, so the per-seed difference removes that variation. Before any ordering
of several methods is called a ranking, an omnibus test over all of them (Friedman's rank
test and the two-way block ANOVA, seeds as blocks) must reject "all methods alike"; the
comparisons against the reference are Holm-corrected over the family they belong to; and the
study states the smallest difference its seeds detect with 80 % power.
"""
import dataclasses
import math

import numpy as np
from scipy import optimize, stats

ALPHA = 0.05
POWER = 0.8


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

    def format(self, digits=3):
        if self.half_width is None:
            return f"{self.mean:.{digits}f} (n=1)"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f}"

    def to_dict(self):
        return {"mean": self.mean, "ci95": self.half_width, "low": self.low,
                "high": self.high, "n": self.n}

    @classmethod
    def from_dict(cls, entry):
        return cls(entry["mean"], entry["ci95"], entry["n"])


def mean_interval(values):
    """Mean and 95 % t interval of `values` (sample standard deviation, n - 1)."""
    values = np.asarray([float(v) for v in values])
    if not values.size:
        raise ValueError("no values to average")
    if values.size == 1:
        return Interval(float(values[0]), None, 1)
    half = stats.t.ppf(1 - ALPHA / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(
        values.size)
    return Interval(float(values.mean()), float(half), int(values.size))


@dataclasses.dataclass(frozen=True)
class PairedComparison:
    """method - reference over shared seeds: the interval, the two-sided paired t-test's p
    and, once corrected within its family, Holm's adjusted p."""
    interval: Interval
    seeds: tuple
    p_value: float | None
    holm_p: float | None = None

    def to_dict(self):
        return {**self.interval.to_dict(), "seeds": list(self.seeds), "p": self.p_value,
                "holm_p": self.holm_p}

    @classmethod
    def from_dict(cls, entry):
        return cls(Interval.from_dict(entry), tuple(entry["seeds"]), entry["p"],
                   entry["holm_p"])


def paired_comparison(method, reference):
    """PairedComparison of {seed: value} dicts over the seeds both have; None if they share
    none. p is None below two seeds, or when every difference is the same (no spread)."""
    seeds = tuple(sorted(set(method) & set(reference)))
    if not seeds:
        return None
    differences = np.array([method[s] - reference[s] for s in seeds], float)
    p_value = None
    if differences.size >= 2 and differences.std() > 0:
        p_value = float(stats.ttest_1samp(differences, 0.0).pvalue)
    return PairedComparison(mean_interval(differences), seeds, p_value)


def holm(p_values):
    """Holm's step-down adjustment of a family of p-values (None stays None): the k-th
    smallest of m is multiplied by m - k + 1, then made non-decreasing, capped at 1."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (len(indexed) - rank) * p))
        adjusted[i] = running
    return adjusted


def describe_comparison(comparison, metric, name, reference, higher_is_better=True):
    """One sentence on a paired comparison, claiming only what its Holm-corrected test
    shows (a difference needs holm_p < ALPHA; without a correction, p < ALPHA)."""
    interval = comparison.interval
    if interval.half_width is None:
        return (f"{name} vs {reference} ({metric}): {interval.mean:+.3f} on one seed; one "
                f"seed gives no interval, so no conclusion.")
    p = comparison.holm_p if comparison.holm_p is not None else comparison.p_value
    text = (f"{name} vs {reference} ({metric}): {interval.mean:+.3f} (95 % CI "
            f"[{interval.low:+.3f}, {interval.high:+.3f}], {interval.n} seeds, "
            + ("Holm-adjusted " if comparison.holm_p is not None else "")
            + ("p = n/a" if p is None else f"p = {p:.3g}") + ")")
    if p is None or p >= ALPHA:
        return text + ": not distinguishable."
    better = (interval.mean > 0) == higher_is_better
    return text + f": {name} is {'better' if better else 'worse'}."


@dataclasses.dataclass(frozen=True)
class Omnibus:
    """Whether several methods differ at all, seeds as blocks: Friedman's rank test and the
    two-way ANOVA without replication (method + seed), over the complete blocks."""
    methods: tuple
    seeds: tuple
    friedman_statistic: float
    friedman_p: float
    anova_f: float
    anova_p: float

    @property
    def differ(self):
        """Both tests reject "all methods alike" at ALPHA: only then is an order a ranking."""
        return self.friedman_p < ALPHA and self.anova_p < ALPHA

    def to_dict(self):
        return dataclasses.asdict(self) | {"differ": self.differ}


def omnibus(values):
    """Omnibus of {method: {seed: value}} over the seeds every method has; None for fewer
    than 3 methods or 2 such seeds."""
    methods = tuple(sorted(values))
    seeds = tuple(sorted(set.intersection(*(set(v) for v in values.values())))) \
        if values else ()
    if len(methods) < 3 or len(seeds) < 2:
        return None
    table = np.array([[values[m][s] for m in methods] for s in seeds], float)  # [seeds, methods]
    friedman = stats.friedmanchisquare(*table.T)
    grand = table.mean()
    between = len(seeds) * ((table.mean(axis=0) - grand) ** 2).sum()
    blocks = len(methods) * ((table.mean(axis=1) - grand) ** 2).sum()
    residual = ((table - grand) ** 2).sum() - between - blocks
    df_between, df_residual = len(methods) - 1, (len(methods) - 1) * (len(seeds) - 1)
    f_value = (between / df_between) / (residual / df_residual) if residual > 0 else math.inf
    return Omnibus(methods, seeds, float(friedman.statistic), float(friedman.pvalue),
                   float(f_value), float(stats.f.sf(f_value, df_between, df_residual)))


def detectable_difference(sd_difference, seeds):
    """The smallest true mean difference a two-sided paired t-test at ALPHA over `seeds`
    seeds finds with probability POWER when the per-seed differences have this standard
    deviation (exact, through the noncentral t distribution); None below two seeds."""
    if seeds < 2 or not sd_difference > 0:
        return None
    df = seeds - 1
    critical = stats.t.ppf(1 - ALPHA / 2, df)

    def shortfall(effect):
        shift = effect / (sd_difference / math.sqrt(seeds))
        # P(T > c) + P(T < -c) under the shift; the lower tail as the upper tail of the
        # mirrored shift, which SciPy keeps finite where nct.cdf(-c) gives NaN (df = 1).
        return (stats.nct.sf(critical, df, shift) + stats.nct.sf(critical, df, -shift)) - POWER

    high = sd_difference
    while shortfall(high) < 0:
        high *= 2
    return float(optimize.brentq(shortfall, 0.0, high, xtol=1e-10 * sd_difference))


def pooled_sd(differences_by_method):
    """The pooled standard deviation of several methods' per-seed differences ({method:
    [differences]}), each method with its own mean: what one more comparison's spread is
    expected to be. None without two values in any method."""
    squares, df = 0.0, 0
    for values in differences_by_method.values():
        values = np.asarray(values, float)
        if values.size >= 2:
            squares += ((values - values.mean()) ** 2).sum()
            df += values.size - 1
    return math.sqrt(squares / df) if df else None
