"""The cost model: which AWS option serves a workload for the least money, and why.

`prices` (the price list as frozen data) and `model` (each option's monthly bill) and `decision`
(break-even rates, recommendation) are pure; `loader` reads the price JSON and the benchmark
figures; `chart` draws the comparison with matplotlib (imported only when a chart is asked for).
"""

from greenlight.cost.decision import BreakEven, Recommendation, break_evens, recommend
from greenlight.cost.model import (
    DAYS_PER_MONTH,
    HOURS_PER_MONTH,
    LatencyClass,
    Option,
    OptionCost,
    Workload,
    estimate,
    validate,
)
from greenlight.cost.prices import Arch, Prices

__all__ = [
    "DAYS_PER_MONTH",
    "DEFAULT_PRICES",
    "HOURS_PER_MONTH",
    "Arch",
    "BreakEven",
    "LatencyClass",
    "Option",
    "OptionCost",
    "Prices",
    "Recommendation",
    "Workload",
    "break_evens",
    "estimate",
    "load_prices",
    "measured_p50_ms",
    "recommend",
    "validate",
]


_LOADER_NAMES = {"DEFAULT_PRICES", "load_prices", "measured_p50_ms"}


def __getattr__(name: str):
    """The loader (pydantic, ~0.25 s to import) loads on first use, not with every CLI command."""
    if name in _LOADER_NAMES:
        from greenlight.cost import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
