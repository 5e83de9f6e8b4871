"""Column drift between a reference frame (what a model trained on) and a current one (what it scores now).

Each column gets a test and two effect sizes, and a verdict that needs both (Evidently's presets, PSI rules
of thumb):

- numeric: KS test, Wasserstein distance in reference standard deviations, PSI over ten reference-quantile
  bins plus a missing-value bin;
- categorical (strings with few distinct values, booleans): chi-squared test, Jensen-Shannon distance
  (base 2, 0..1), PSI over the reference's categories plus "(other)" and "(missing)".

A column *warns* when its PSI reaches ``psi_warn`` (0.1) or its distance reaches ``distance_warn`` (0.1),
and *blocks* when its PSI reaches ``psi_block`` (0.25); either needs the test's p-value under ``alpha``
too. On large frames every p-value is tiny and the effect sizes decide (a re-export of the same
distributions does not warn because its PSI is near 0); on small ones the test keeps noise from warning (a
PSI of 0.18 is what two samples of 100 from the *same* distribution show on ten bins).

Speed: PSI and missing rates use every row; KS and Wasserstein use a random sample of at most
``sample_rows`` (200k) per side, whose sampling error (about 0.003 in KS) is far below any threshold. One
million rows by 30 columns take about 3 s on two cores (``benchmarks/monitoring.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

OK, WARN, BLOCK, SKIPPED = "ok", "warn", "block", "skipped"
_RANK = {OK: 0, SKIPPED: 0, WARN: 1, BLOCK: 2}
_EPS = 1e-4  # floor of a bin share in PSI: an empty bin must not make it infinite
OTHER, MISSING = "(other)", "(missing)"


@dataclass(frozen=True)
class DriftThresholds:
    """When a column counts as moved. Defaults: PSI 0.1 warn / 0.25 block, distances 0.1, alpha 0.01."""

    psi_warn: float = 0.1
    psi_block: float = 0.25
    distance_warn: float = 0.1  # Wasserstein in reference SDs (numeric), Jensen-Shannon (categorical)
    alpha: float = 0.01
    dataset_share: float = 0.5  # the dataset drifted when this share of judged columns warn or block
    min_rows: int = 30
    max_categories: int = 30  # a string column with more distinct values is free text or an id: skipped
    quantile_bins: int = 10
    sample_rows: int = 200_000

    def __post_init__(self):
        if not 0 < self.psi_warn <= self.psi_block:
            raise ValueError(f"need 0 < psi_warn <= psi_block, got {self.psi_warn} and {self.psi_block}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha}")

    @classmethod
    def from_env(cls, environ=None) -> DriftThresholds:
        """HOLOCRM_DRIFT_PSI_WARN, HOLOCRM_DRIFT_PSI_BLOCK, HOLOCRM_DRIFT_DISTANCE_WARN, HOLOCRM_DRIFT_ALPHA."""
        import os

        env = os.environ if environ is None else environ
        names = {"psi_warn": "PSI_WARN", "psi_block": "PSI_BLOCK", "distance_warn": "DISTANCE_WARN"}
        names["alpha"] = "ALPHA"
        values = {}
        for attr, suffix in names.items():
            raw = env.get(f"HOLOCRM_DRIFT_{suffix}")
            if raw:
                try:
                    values[attr] = float(raw)
                except ValueError:
                    raise ValueError(f"HOLOCRM_DRIFT_{suffix}={raw!r} is not a number") from None
        return cls(**values)


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str  # numeric | categorical | embedding | schema
    severity: str  # ok | warn | block | skipped
    words: str  # what moved and by how much, for a person
    psi: float | None = None
    distance: float | None = None
    distance_name: str = ""
    statistic: float | None = None  # KS D, chi-squared, or domain-classifier AUC
    p_value: float | None = None
    reference_rows: int = 0
    current_rows: int = 0

    @property
    def moved(self) -> bool:
        return self.severity in (WARN, BLOCK)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    """Every judged column of one comparison; ``severity`` is the worst column's."""

    name: str
    columns: tuple[ColumnDrift, ...]
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)

    @property
    def judged(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.severity != SKIPPED]

    @property
    def moved(self) -> list[ColumnDrift]:
        return sorted((c for c in self.columns if c.moved), key=lambda c: (-_RANK[c.severity], c.column))

    @property
    def blocked(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.severity == BLOCK]

    @property
    def warned(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.severity == WARN]

    @property
    def severity(self) -> str:
        worst = max((_RANK[c.severity] for c in self.columns), default=0)
        return {0: OK, 1: WARN, 2: BLOCK}[worst]

    @property
    def blocking(self) -> bool:
        return self.severity == BLOCK

    @property
    def drifted_share(self) -> float:
        judged = self.judged
        return len([c for c in judged if c.moved]) / len(judged) if judged else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.judged) and self.drifted_share >= self.thresholds.dataset_share

    def summary(self) -> str:
        """One line: the verdict and the columns that moved."""
        judged = len(self.judged)
        if not judged:
            rows = max((c.current_rows for c in self.columns), default=0)
            return f"{self.name}: nothing to judge ({len(self.columns)} columns, {rows} rows now)"
        if not self.moved:
            return f"{self.name}: no drift in {judged} columns"
        parts = []
        for level, cols in ((BLOCK, self.blocked), (WARN, self.warned)):
            if cols:
                parts.append(f"{level} on {', '.join(c.column for c in cols)}")
        whole = "; the dataset as a whole drifted" if self.dataset_drift else ""
        return f"{self.name}: {'; '.join(parts)} ({len(self.moved)} of {judged} columns moved{whole})"

    def lines(self, include_ok: bool = False) -> list[str]:
        """The summary, then one line in words per moved column (and skipped ones with ``include_ok``)."""
        rows = [self.summary()]
        for c in self.moved:
            rows.append(f"  [{c.severity}] {c.words}")
        if include_ok:
            rows += [f"  [{c.severity}] {c.words}" for c in self.columns if not c.moved]
        return rows

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "severity": self.severity,
            "summary": self.summary(),
            "drifted_share": round(self.drifted_share, 4),
            "dataset_drift": self.dataset_drift,
            "columns": [c.as_dict() for c in self.columns],
            "thresholds": asdict(self.thresholds),
        }


# -- helpers ------------------------------------------------------------------------------------------------
def psi(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    """Population stability index: sum (cur - ref) * ln(cur / ref), shares floored at 1e-4."""
    r = np.maximum(np.asarray(reference_shares, dtype=np.float64), _EPS)
    c = np.maximum(np.asarray(current_shares, dtype=np.float64), _EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def _fmt(x: float) -> str:
    if x != x:
        return "nan"
    ax = abs(x)
    if ax >= 1e6:
        return f"{x / 1e6:.2f}M"
    if ax >= 1e4:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


def _verdict(psi_value: float, distance: float, p_value: float, t: DriftThresholds) -> str:
    if not p_value < t.alpha:
        return OK
    if psi_value >= t.psi_block:
        return BLOCK
    if psi_value >= t.psi_warn or distance >= t.distance_warn:
        return WARN
    return OK


def _because(severity: str, psi_value: float, distance: float, dname: str, t: DriftThresholds) -> str:
    if severity == BLOCK:
        return f"block: PSI {psi_value:.2f} >= {t.psi_block}"
    if severity == WARN:
        if psi_value >= t.psi_warn:
            return f"warn: PSI {psi_value:.2f} >= {t.psi_warn}"
        return f"warn: {dname} {distance:.2f} >= {t.distance_warn}"
    return "stable"


def _sample(values: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
    if len(values) <= rows:
        return values
    return values[rng.integers(0, len(values), rows)]


def _merged_tests(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> tuple[float, float, float, float]:
    """KS statistic and p-value, Mann-Whitney p-value and Wasserstein distance of two sorted samples, from
    one merge.

    The two empirical CDFs are walked together over the merged values (a stable sort of two sorted runs
    is a linear merge): KS is their largest gap at the end of each run of equal values, Wasserstein the area
    between them, Mann-Whitney the reference's rank sum (ties at their mean rank, the variance corrected
    for them). KS alone has little power against a change of scale on a few dozen skewed values (doubled
    deal values on 45 deals: p 0.03); the rank test sees it (p < 0.001)."""
    from scipy import stats

    n, m = len(ref_sorted), len(cur_sorted)
    total = n + m
    merged = np.concatenate([ref_sorted, cur_sorted])
    order = np.argsort(merged, kind="stable")
    values = merged[order]
    from_ref = order < n
    gap = np.cumsum(from_ref) / n - np.cumsum(~from_ref) / m
    last_of_value = np.r_[values[1:] != values[:-1], True]
    d = float(np.max(np.abs(gap[last_of_value])))
    wasserstein = float(np.sum(np.abs(gap[:-1]) * np.diff(values)))
    if n * m <= 10_000:
        p_ks = float(stats.ks_2samp(ref_sorted, cur_sorted, method="exact").pvalue)
    else:  # the limiting Kolmogorov distribution: scipy's exact one costs ~80 ms a column at this size
        p_ks = float(stats.kstwobign.sf(d * np.sqrt(n * m / total)))
    ends = np.flatnonzero(last_of_value)
    starts = np.r_[0, ends[:-1] + 1]
    mean_rank = (starts + ends) / 2 + 1
    group = np.repeat(np.arange(len(ends)), ends - starts + 1)
    u = float(mean_rank[group[from_ref]].sum()) - n * (n + 1) / 2
    ties = (ends - starts + 1).astype(np.float64)
    variance = n * m / 12 * ((total + 1) - float(np.sum(ties**3 - ties)) / (total * (total - 1)))
    p_mw = float(2 * stats.norm.sf(abs(u - n * m / 2) / np.sqrt(variance))) if variance > 0 else 1.0
    return d, p_ks, p_mw, wasserstein


def _binned_p_value(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    from scipy import stats

    keep = (ref_counts + cur_counts) > 0
    if keep.sum() < 2:
        return 1.0
    return float(stats.chi2_contingency(np.vstack([ref_counts[keep], cur_counts[keep]]), correction=False)[1])


# -- numeric ------------------------------------------------------------------------------------------------
def numeric_drift(
    name: str,
    reference: pl.Series,
    current: pl.Series,
    thresholds: DriftThresholds | None = None,
    seed: int = 0,
) -> ColumnDrift:
    """KS, Wasserstein (in reference SDs) and PSI over reference deciles + a missing bin."""
    t = thresholds or DriftThresholds()
    ref_all = reference.cast(pl.Float64, strict=False)
    cur_all = current.cast(pl.Float64, strict=False)
    ref = ref_all.drop_nulls().drop_nans().to_numpy()
    cur = cur_all.drop_nulls().drop_nans().to_numpy()
    n_ref, n_cur = len(reference), len(current)
    if len(ref) < t.min_rows or len(cur) < t.min_rows:
        return ColumnDrift(
            name,
            "numeric",
            SKIPPED,
            f"{name}: too few values to judge ({len(ref)} in the reference, {len(cur)} now; need {t.min_rows})",
            reference_rows=n_ref,
            current_rows=n_cur,
        )
    rng = np.random.default_rng(seed)
    rs = np.sort(_sample(ref, t.sample_rows, rng))
    cs = np.sort(_sample(cur, t.sample_rows, rng))
    # decile edges from the (sorted) sample: exact enough for bins, and no second pass over every row
    edges = np.unique(rs[(np.linspace(0, 1, t.quantile_bins + 1)[1:-1] * (len(rs) - 1)).astype(int)])
    bins = len(edges) + 1
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=bins).astype(np.float64)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=bins).astype(np.float64)
    ref_missing, cur_missing = n_ref - len(ref), n_cur - len(cur)
    ref_shares = np.append(ref_counts, ref_missing) / max(n_ref, 1)
    cur_shares = np.append(cur_counts, cur_missing) / max(n_cur, 1)
    psi_value = psi(ref_shares, cur_shares)

    d, p_ks, p_rank, wd = _merged_tests(rs, cs)
    # Three tests (the shape, the location, and a chi-squared over the PSI bins that also sees values
    # going missing), Bonferroni-combined so a column still fires by chance at most ``alpha`` of the time.
    p_bins = _binned_p_value(np.append(ref_counts, ref_missing), np.append(cur_counts, cur_missing))
    p_value = min(1.0, 3 * min(p_ks, p_rank, p_bins))
    sd = float(np.std(rs))
    spread = sd if sd > 0 else (abs(float(np.mean(rs))) or 1.0)
    distance = wd / spread
    severity = _verdict(psi_value, distance, p_value, t)
    mean_r, mean_c = float(np.mean(ref)), float(np.mean(cur))
    # a relative change of a mean near zero says nothing
    change = f" ({(mean_c - mean_r) / abs(mean_r):+.0%})" if abs(mean_r) >= 0.25 * spread else ""
    words = (
        f"{name}: mean {_fmt(mean_r)} -> {_fmt(mean_c)}{change}, median {_fmt(float(np.median(rs)))} -> "
        f"{_fmt(float(np.median(cs)))}"
    )
    if abs(cur_missing / max(n_cur, 1) - ref_missing / max(n_ref, 1)) >= 0.01:
        words += f", missing {ref_missing / max(n_ref, 1):.0%} -> {cur_missing / max(n_cur, 1):.0%}"
    words += (
        f"; PSI {psi_value:.2f}, Wasserstein {distance:.2f} reference SDs, KS {d:.2f} "
        f"({_because(severity, psi_value, distance, 'Wasserstein', t)})"
    )
    return ColumnDrift(
        name, "numeric", severity, words, psi_value, distance, "wasserstein_sd", d, p_value, n_ref, n_cur
    )


# -- categorical --------------------------------------------------------------------------------------------
def _counts(series: pl.Series) -> dict[str, int]:
    """Count per value as text (nulls as "(missing)"), counted on the column as it is: a categorical is
    counted by code, not turned into a million strings first."""
    counts = series.rename("value").value_counts(name="n")
    keys = counts["value"].cast(pl.String).fill_null(MISSING).to_list()
    found: dict[str, int] = {}
    for key, n in zip(keys, counts["n"].to_list(), strict=True):
        found[key] = found.get(key, 0) + n
    return found


def _shares(found: dict[str, int], categories: list[str]) -> np.ndarray:
    rest = dict(found)
    known = [rest.pop(c, 0) for c in categories]
    known.append(sum(rest.values()))  # every value the reference did not have
    return np.asarray(known, dtype=np.float64)


def categorical_drift(
    name: str,
    reference: pl.Series,
    current: pl.Series,
    thresholds: DriftThresholds | None = None,
) -> ColumnDrift:
    """Chi-squared test, Jensen-Shannon distance and PSI over the reference's categories."""
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    t = thresholds or DriftThresholds()
    n_ref, n_cur = len(reference), len(current)
    if n_ref < t.min_rows or n_cur < t.min_rows:
        return ColumnDrift(
            name,
            "categorical",
            SKIPPED,
            f"{name}: too few rows to judge ({n_ref} in the reference, {n_cur} now; need {t.min_rows})",
            reference_rows=n_ref,
            current_rows=n_cur,
        )
    ref_found = _counts(reference)
    categories = sorted(ref_found, key=lambda k: (-ref_found[k], k))[: t.max_categories]
    r = _shares(ref_found, categories)
    c = _shares(_counts(current), categories)
    labels = [*categories, OTHER]
    keep = (r + c) > 0
    r, c, labels = r[keep], c[keep], [lab for lab, k in zip(labels, keep, strict=True) if k]
    rs, cs = r / r.sum(), c / c.sum()
    psi_value = psi(rs, cs)
    distance = float(jensenshannon(rs, cs, base=2)) if len(r) > 1 else 0.0
    if len(r) > 1:
        chi2, p_value, _, _ = stats.chi2_contingency(np.vstack([r, c]), correction=False)
    else:
        chi2, p_value = 0.0, 1.0
    severity = _verdict(psi_value, distance, float(p_value), t)
    moved = np.argsort(-np.abs(cs - rs))[:3]
    changes = ", ".join(
        f"{labels[i]!s} {rs[i]:.0%} -> {cs[i]:.0%}" for i in moved if abs(cs[i] - rs[i]) >= 0.005
    )
    words = (
        f"{name}: {changes or 'shares unchanged'}; PSI {psi_value:.2f}, Jensen-Shannon {distance:.2f} "
        f"({_because(severity, psi_value, distance, 'Jensen-Shannon', t)})"
    )
    return ColumnDrift(
        name,
        "categorical",
        severity,
        words,
        psi_value,
        distance,
        "jensen_shannon",
        float(chi2),
        float(p_value),
        n_ref,
        n_cur,
    )


# -- frames ------------------------------------------------------------------------------------------------
def _kind(name: str, reference: pl.Series, t: DriftThresholds) -> tuple[str, str]:
    """(kind, why skipped) of a column: numeric, categorical or skipped with the reason."""
    dtype = reference.dtype
    if name == "id" or name.endswith("_id") or name.endswith("_ids"):
        return SKIPPED, "an identifier"
    if dtype.is_numeric():
        return "numeric", ""
    if dtype == pl.Boolean:
        return "categorical", ""
    if dtype.is_temporal():
        return SKIPPED, "a time stamp (moves with the calendar)"
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        distinct = reference.n_unique()
        if distinct <= t.max_categories:
            return "categorical", ""
        return SKIPPED, f"free text or an identifier ({distinct} distinct values)"
    return SKIPPED, f"of type {dtype}"


def frame_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    name: str = "drift",
    columns: list[str] | None = None,
    exclude: tuple[str, ...] = (),
    thresholds: DriftThresholds | None = None,
) -> DriftReport:
    """Drift of every monitorable column shared by the two frames (or of ``columns``).

    A column of the reference missing now (or new now) is reported as a ``schema`` warn: the model would
    see it as missing.
    """
    t = thresholds or DriftThresholds()
    if columns is not None:
        unknown = [c for c in columns if c not in reference.columns]
        if unknown:
            raise ValueError(f"{name}: columns {unknown} are not in the reference ({reference.columns})")
    wanted = [c for c in (columns or reference.columns) if c not in exclude]
    results = []
    for column in wanted:
        if column not in current.columns:
            results.append(
                ColumnDrift(column, "schema", WARN, f"{column}: in the reference, missing now", None, None)
            )
            continue
        kind, why = _kind(column, reference[column], t)
        if kind == SKIPPED:
            results.append(ColumnDrift(column, kind, SKIPPED, f"{column}: not judged, {why}"))
        elif kind == "numeric":
            results.append(numeric_drift(column, reference[column], current[column], t))
        else:
            results.append(categorical_drift(column, reference[column], current[column], t))
    if columns is None:
        for column in current.columns:
            if column not in reference.columns and column not in exclude:
                results.append(
                    ColumnDrift(column, "schema", WARN, f"{column}: new, absent from the reference")
                )
    return DriftReport(name, tuple(results), t)
