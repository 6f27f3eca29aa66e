"""A version's drift baseline (baseline.json, written by src/evaluate.py) and how live values fall in its bins.

    baseline = Baseline.parse(document, where="model version 3")
    column = baseline.column("bmi")
    counts, missing = column.count(values)      # live values over the baseline's bins (+ one "other" bin
                                                # for a categorical column's unseen values)

Values are compared as the model reads them, rounded to float32 (evaluate.py binned the training split
the same way), so a live value equal to a training value lands in the same bin. Pure Python.
"""

from __future__ import annotations

import bisect
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from greenlight.errors import DataError

__all__ = ["BASELINE_FORMAT", "Baseline", "ColumnBaseline", "float32"]

BASELINE_FORMAT = "greenlight-baseline/1"  # src/evaluate.py writes it
_F32 = struct.Struct("f")


def float32(value: float) -> float:
    """value rounded to the nearest float32 (beyond its range: an infinity of the same sign)."""
    try:
        return _F32.unpack(_F32.pack(value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


@dataclass(frozen=True)
class ColumnBaseline:
    """One column: numeric (bins between `edges`) or categorical (one bin per value in `values`)."""

    name: str
    kind: str
    rows: int
    missing_share: float
    mean: float
    std: float
    counts: tuple[int, ...]
    edges: tuple[float, ...] = ()
    values: tuple[float, ...] = ()

    @property
    def categorical(self) -> bool:
        return self.kind == "categorical"

    def labels(self) -> list[str]:
        """A readable name per bin of `count`'s result (the categorical "other" bin included)."""
        if self.categorical:
            return [f"{v:.6g}" for v in self.values] + ["other"]
        bounds = [-math.inf, *self.edges, math.inf]
        return [f"({lo:.4g}, {hi:.4g}]" for lo, hi in zip(bounds, bounds[1:], strict=False)]

    def baseline_counts(self) -> list[int]:
        """The baseline's counts over `count`'s bins (0 in the categorical "other" bin)."""
        return [*self.counts, 0] if self.categorical else list(self.counts)

    def count(self, values: Iterable[float | None]) -> tuple[list[int], int]:
        """(counts per bin, missing): live values over this baseline's bins; None and NaN are missing."""
        counts = [0] * (len(self.counts) + (1 if self.categorical else 0))
        missing = 0
        index = {v: i for i, v in enumerate(self.values)}
        other = len(self.values)
        for value in values:
            if value is None or value != value:
                missing += 1
                continue
            x = float32(value)
            if self.categorical:
                counts[index.get(x, other)] += 1
            else:
                counts[bisect.bisect_left(self.edges, x)] += 1
        return counts, missing

    @classmethod
    def parse(cls, doc: Any, where: str) -> ColumnBaseline:
        """Raises: DataError naming `where` and what is wrong."""
        try:
            kind = doc["kind"]
            counts = tuple(int(c) for c in doc["counts"])
            common = dict(name=str(doc["name"]), kind=kind, rows=int(doc["rows"]),
                          missing_share=float(doc["missing_share"]), mean=float(doc["mean"]), std=float(doc["std"]),
                          counts=counts)
            if kind == "categorical":
                column = cls(**common, values=tuple(float32(float(v)) for v in doc["values"]))
                bins = len(column.values)
            elif kind == "numeric":
                column = cls(**common, edges=tuple(float(e) for e in doc["edges"]))
                bins = len(column.edges) + 1
                if list(column.edges) != sorted(set(column.edges)):
                    raise ValueError("edges are not strictly increasing")
            else:
                raise ValueError(f"unknown kind {kind!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{where}: a baseline column is not readable ({type(exc).__name__}: {exc})") from None
        if len(counts) != bins or min(counts, default=0) < 0:
            raise DataError(f"{where}: baseline column {column.name!r} has {len(counts)} counts for {bins} bins")
        return column


@dataclass(frozen=True)
class Baseline:
    """A version's baseline: its features' columns and the predictions' column."""

    features: tuple[ColumnBaseline, ...]
    prediction: ColumnBaseline
    rows: int
    model_sha256: str | None
    source: str = ""

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.features)

    def column(self, name: str) -> ColumnBaseline:
        for column in self.features:
            if column.name == name:
                return column
        raise KeyError(name)

    @classmethod
    def parse(cls, doc: Any, where: str) -> Baseline:
        """The baseline from baseline.json's document. Raises: DataError naming `where`."""
        if not isinstance(doc, dict) or doc.get("format") != BASELINE_FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise DataError(f"{where}: not a {BASELINE_FORMAT} baseline (format {found!r})")
        try:
            features = tuple(ColumnBaseline.parse(f, where) for f in doc["features"])
            prediction = ColumnBaseline.parse(doc["prediction"], where)
            model = doc.get("model") or {}
            return cls(features, prediction, int(doc["rows"]), model.get("sha256"), str(doc.get("source", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{where}: the baseline lacks {exc}") from None
