"""moto's CloudWatch, extended in the test process for what progressive delivery reads (issue 22).

moto 5.2's GetMetricData answers Sum, Average, Minimum, Maximum and SampleCount; a percentile statistic (`p99`,
which Greenlight reads for a Lambda version's Duration) comes back as no value. `install()` (before the moto
server starts; tests/contract/conftest.py calls it) computes `pNN` over the period's single values by the nearest
rank (CloudWatch's own estimate is not documented to the digit; the tests put values whose p99 is unambiguous).

moto 5.2's GetMetricStatistics also answers for every metric whose dimensions *include* the requested ones, where
CloudWatch answers for the metric with exactly those dimensions (a metric is its namespace, name and full set of
dimensions; moto's own GetMetricData compares the full set). So a drift metric with dimensions Group and Stage
would count for an alarm on Group alone. `install()` makes GetMetricStatistics compare the full set too.
"""

from __future__ import annotations

import functools
import math
import threading

__all__ = ["install", "percentile"]

_installed = threading.Lock()
_done: list[bool] = []


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank p-th percentile of `values` (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100.0 * len(ordered)) - 1)]


def install() -> None:
    """Wrap moto's Statistics (idempotent)."""
    with _installed:
        if _done:
            return
        from moto.cloudwatch.models import Statistics

        original = Statistics.get_statistics_for_type

        @functools.wraps(original)
        def get_statistics_for_type(self, stat: str):
            if stat.startswith("p") and stat[1:].replace(".", "", 1).isdigit():
                return percentile([float(v) for v in self.metric_single_values_list], float(stat[1:]))
            return original(self, stat)

        Statistics.get_statistics_for_type = get_statistics_for_type
        _exact_dimensions()
        _done.append(True)


_statistics = threading.local()


def _exact_dimensions() -> None:
    """GetMetricStatistics on the metric with exactly the requested dimensions (module docstring)."""
    from moto.cloudwatch.models import CloudWatchBackend, MetricDatumBase

    original_filter, original_statistics = MetricDatumBase.filter, CloudWatchBackend.get_metric_statistics

    @functools.wraps(original_filter)
    def filter(self, namespace, name, dimensions, *args, **kwargs):
        if getattr(_statistics, "exact", False) and dimensions and \
                sorted((d["Name"], d.get("Value")) for d in dimensions) != \
                sorted((d.name, d.value) for d in self.dimensions):
            return False
        return original_filter(self, namespace, name, dimensions, *args, **kwargs)

    @functools.wraps(original_statistics)
    def get_metric_statistics(self, *args, **kwargs):
        _statistics.exact = True
        try:
            return original_statistics(self, *args, **kwargs)
        finally:
            _statistics.exact = False

    MetricDatumBase.filter = filter
    CloudWatchBackend.get_metric_statistics = get_metric_statistics
