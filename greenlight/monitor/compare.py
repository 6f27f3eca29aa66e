"""Live rows against a version's baseline: each feature and the predictions, by PSI and a two-sample test.

    result = compare_version(3, baseline, records, Thresholds())
    result.drift                 # any feature, or the predictions, drifted
    result.to_json()             # {"version": 3, "rows": n, "features": [{"name", "psi", "drift"}, ...],
                                 #  "prediction": {...}}

A column drifts when it has at least `min_rows` live values, its PSI is at least `psi`, and the two-sample
test (Kolmogorov-Smirnov at the bin edges for a numeric column, chi-square over the values for a categorical
one) rejects "same distribution" at `p_value`. Both must agree: the test alone flags differences too small
to matter once thousands of rows arrive, and PSI alone flags noise in small samples
(docs/decisions/0001-drift-measures.md). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from greenlight.monitor import stats
from greenlight.monitor.baseline import Baseline, ColumnBaseline
from greenlight.monitor.records import CaptureRecord

__all__ = ["ColumnDrift", "Thresholds", "VersionDrift", "compare_column", "compare_version"]


@dataclass(frozen=True)
class Thresholds:
    """When a column counts as drifting (settings: greenlight/monitor/settings.py)."""

    psi: float = 0.2  # the usual "act" level; 0.1 is "watch"
    p_value: float = 0.01
    min_rows: int = 100


@dataclass(frozen=True)
class ColumnDrift:
    """One column compared: its PSI, the test's statistic and p-value, the verdict, and the counts behind them."""

    name: str
    kind: str
    test: str  # "ks" or "chi-square"
    psi: float
    statistic: float
    p_value: float
    drift: bool
    rows: int  # live values that were not missing
    missing: int
    baseline_rows: int
    labels: tuple[str, ...]
    baseline_counts: tuple[int, ...]
    live_counts: tuple[int, ...]
    baseline_mean: float
    live_mean: float | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The --json entry: exactly name, psi and drift."""
        return {"name": self.name, "psi": round(self.psi, 6), "drift": self.drift}

    def detail(self) -> dict[str, Any]:
        """Everything, for the report's report.json."""
        return {"name": self.name, "kind": self.kind, "test": self.test, "psi": self.psi, "statistic": self.statistic,
                "p_value": self.p_value, "drift": self.drift, "rows": self.rows, "missing": self.missing,
                "baseline_rows": self.baseline_rows, "bins": list(self.labels),
                "baseline_counts": list(self.baseline_counts), "live_counts": list(self.live_counts),
                "baseline_mean": self.baseline_mean, "live_mean": self.live_mean, "reason": self.reason}


@dataclass(frozen=True)
class VersionDrift:
    """One model version's traffic in the window against its baseline."""

    version: int
    rows: int  # captured input rows compared
    records: int
    targets: tuple[str, ...]
    first: datetime | None
    last: datetime | None
    features: tuple[ColumnDrift, ...]
    prediction: ColumnDrift | None
    notes: tuple[str, ...] = field(default=())
    stages: tuple[str, ...] = field(default=())  # the stages whose traffic this is (none without [stages])

    @property
    def drift(self) -> bool:
        return any(f.drift for f in self.features) or bool(self.prediction and self.prediction.drift)

    @property
    def drifting(self) -> list[ColumnDrift]:
        return [c for c in (*self.features, self.prediction) if c is not None and c.drift]

    def to_json(self) -> dict[str, Any]:
        """`greenlight monitor --json`'s document for this version (README, "Drift monitoring")."""
        prediction = None
        if self.prediction is not None:
            p = self.prediction
            prediction = {"psi": round(p.psi, 6), "drift": p.drift, "test": p.test, "p_value": p.p_value,
                          "rows": p.rows, "baseline_mean": p.baseline_mean, "live_mean": p.live_mean}
        doc = {"version": self.version, "rows": self.rows, "features": [f.to_json() for f in self.features],
               "prediction": prediction}
        return {**doc, "stages": list(self.stages)} if self.stages else doc


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None and v == v]
    return sum(present) / len(present) if present else None


def compare_column(baseline: ColumnBaseline, values: Sequence[float | None], thresholds: Thresholds) -> ColumnDrift:
    """One column's live values against its baseline."""
    live, missing = baseline.count(values)
    base = baseline.baseline_counts()
    rows = sum(live)
    test = "chi-square" if baseline.categorical else "ks"
    if rows == 0:
        psi_value, statistic, p_value = 0.0, 0.0, 1.0
    else:
        psi_value = stats.psi(base, live)
        if baseline.categorical:
            statistic, _, p_value = stats.chi_square(base, live)
        else:
            statistic, p_value = stats.ks_binned(base, live)
    enough = rows >= thresholds.min_rows
    drift = enough and psi_value >= thresholds.psi and p_value < thresholds.p_value
    if not enough:
        reason = f"{rows} live values, fewer than the {thresholds.min_rows} a verdict needs"
    elif drift:
        reason = f"PSI {psi_value:.3f} >= {thresholds.psi:g} and {test} p = {p_value:.2g} < {thresholds.p_value:g}"
    elif psi_value >= thresholds.psi:
        reason = f"PSI {psi_value:.3f} >= {thresholds.psi:g}, but {test} p = {p_value:.2g} is not below " \
                 f"{thresholds.p_value:g}"
    else:
        reason = f"PSI {psi_value:.3f} < {thresholds.psi:g}"
    return ColumnDrift(baseline.name, baseline.kind, test, psi_value, statistic, p_value, drift, rows, missing,
                       sum(base), tuple(baseline.labels()), tuple(base), tuple(live), baseline.mean, _mean(values),
                       reason)


def compare_version(version: int, baseline: Baseline, records: Iterable[CaptureRecord],
                    thresholds: Thresholds) -> VersionDrift:
    """Every feature (matched by name with the records' `features`) and the predictions of the version's
    successful records against its baseline."""
    columns: dict[str, list[float | None]] = {name: [] for name in baseline.feature_names}
    predictions: list[float] = []
    count, targets, times, notes = 0, set(), [], []
    unmatched: set[str] = set()
    stages: set[str] = set()
    for record in records:
        count += 1
        targets.add(record.target)
        if record.stage:
            stages.add(record.stage)
        times.append(record.time)
        if not record.ok:
            continue
        position = {name: i for i, name in enumerate(record.features)}
        unmatched.update(set(baseline.feature_names) - set(position))
        for name, values in columns.items():
            i = position.get(name)
            if i is not None:
                values.extend(row[i] if i < len(row) else None for row in record.inputs)
        if len(record.predictions) == len(record.inputs):
            predictions.extend(record.predictions)
    if unmatched:
        notes.append(f"some records lack feature(s) {', '.join(sorted(unmatched))} of the baseline")
    features = tuple(compare_column(baseline.column(name), values, thresholds) for name, values in columns.items())
    prediction = compare_column(baseline.prediction, predictions, thresholds) if predictions else None
    rows = max((len(v) for v in columns.values()), default=0)
    return VersionDrift(version, rows, count, tuple(sorted(targets)), min(times, default=None),
                        max(times, default=None), features, prediction, tuple(notes), tuple(sorted(stages)))
