"""The monitor's settings: drift thresholds and the default window, from the environment or flags.

    GREENLIGHT_MONITOR_PSI            PSI at or above which a column may drift (default 0.2)
    GREENLIGHT_MONITOR_P_VALUE        the two-sample test's level: p below it rejects "no change" (default 0.01)
    GREENLIGHT_MONITOR_MIN_ROWS       live values a column needs before any verdict (default 100)
    GREENLIGHT_MONITOR_WINDOW         how far back the scheduled monitor reads (default 24h; the CLI's --since)

Read by the composition roots (the CLI, the scheduled monitor's handler), which pass the mapping in. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping

from greenlight.errors import ConfigurationError
from greenlight.monitor.compare import Thresholds

__all__ = ["DEFAULT_WINDOW", "ENV", "thresholds"]

DEFAULT_WINDOW = "24h"
ENV = {"psi": "GREENLIGHT_MONITOR_PSI", "p_value": "GREENLIGHT_MONITOR_P_VALUE",
       "min_rows": "GREENLIGHT_MONITOR_MIN_ROWS", "window": "GREENLIGHT_MONITOR_WINDOW"}
_LIMITS = {"psi": (float, 0.0, 10.0, "a number above 0 and at most 10"),
           "p_value": (float, 0.0, 1.0, "a number above 0 and at most 1"),
           "min_rows": (int, 0, 10_000_000, "a whole number from 1 to 10,000,000")}


def thresholds(environ: Mapping[str, str], **flags: float | int | None) -> Thresholds:
    """Thresholds from flags (when not None), else the environment, else the defaults.

    Raises:
        ConfigurationError: a value that is not a number within its limits, naming where it came from.
    """
    values = {}
    for name, (kind, low, high, rule) in _LIMITS.items():
        raw, where = flags.get(name), f"--{name.replace('_', '-')}"
        if raw is None:
            raw, where = environ.get(ENV[name]), ENV[name]
        if raw in (None, ""):
            continue
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            value = None
        if value is None or not low < value <= high:
            raise ConfigurationError(f"{where}={raw!r} must be {rule}")
        values[name] = value
    return Thresholds(**values)
