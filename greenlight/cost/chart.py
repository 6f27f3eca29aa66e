"""Draw monthly cost against requests per day for every option (matplotlib, imported by the caller lazily)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from greenlight.cost.decision import BreakEven, first_per_pair, monthly_by_option
from greenlight.cost.model import Option, Workload
from greenlight.cost.prices import Prices
from greenlight.errors import DataError

__all__ = ["COLOURS", "chart_range", "plot"]

log = logging.getLogger(__name__)

COLOURS = {
    Option.LAMBDA: "#e67e22",
    Option.SERVERLESS: "#2980b9",
    Option.ENDPOINT: "#c0392b",
    Option.FARGATE: "#27ae60",
    Option.TRANSFORM: "#8e44ad",
}
POINTS = 600


def chart_range(requests_per_day: float) -> tuple[float, float]:
    """From 10 to 100 million requests a day, widened to two decades either side of the load."""
    low = min(10.0, 10 ** math.floor(math.log10(requests_per_day) - 2))
    high = max(1e8, 10 ** math.ceil(math.log10(requests_per_day) + 2))
    return low, high


def plot(workload: Workload, prices: Prices, evens: tuple[BreakEven, ...], path: Path, subtitle: str) -> Path:
    """Write the chart as PNG to `path`. Raises: DataError if the file cannot be written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    low, high = chart_range(workload.requests_per_day)
    rates = [low * (high / low) ** (i / (POINTS - 1)) for i in range(POINTS)]
    series = [monthly_by_option(workload, prices, r) for r in rates]
    fig, ax = plt.subplots(figsize=(11, 6.5), dpi=110)
    for option in Option:
        ax.plot(rates, [s[option] for s in series], color=COLOURS[option], linewidth=2.2, label=option.value)
    here = monthly_by_option(workload, prices, workload.requests_per_day)
    ax.axvline(workload.requests_per_day, color="#333333", linestyle="--", linewidth=1.4)
    ax.text(workload.requests_per_day * 1.08, 0.98, f"your load\n{workload.requests_per_day:,.0f}/day",
            transform=ax.get_xaxis_transform(), va="top", fontsize=10, color="#333333")
    for option, cost in here.items():
        if not math.isnan(cost):
            ax.plot([workload.requests_per_day], [cost], "o", color=COLOURS[option], markersize=7, zorder=5)
    shown = sorted((be for be, _ in first_per_pair(evens) if low <= be.requests_per_day <= high),
                   key=lambda be: be.requests_per_day)
    legend_lines = []
    for number, be in enumerate(shown, start=1):
        at = monthly_by_option(workload, prices, be.requests_per_day)[be.cheaper_below]
        ax.plot([be.requests_per_day], [at], marker="X", color="black", markersize=9, zorder=6)
        ax.annotate(str(number), (be.requests_per_day, at), textcoords="offset points", xytext=(-4, 9),
                    fontsize=9, fontweight="bold")
        legend_lines.append(f"{number}: {_short(be.requests_per_day)}/day, {be.cheaper_above.value} "
                            f"becomes cheaper than {be.cheaper_below.value}")
    if legend_lines:
        ax.text(0.99, 0.02, "break-even (first crossing per pair)\n" + "\n".join(legend_lines),
                transform=ax.transAxes, ha="right", va="bottom", multialignment="left", fontsize=8.5,
                family="monospace",
                bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.92, "edgecolor": "#999999"})
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, high)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _short(v)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _dollars(v)))
    ax.set_xlabel("requests per day (log scale)")
    ax.set_ylabel("monthly cost, USD (log scale; 30-day month)")
    ax.set_title(f"Monthly cost by requests per day\n{subtitle}", fontsize=11)
    ax.grid(True, which="major", alpha=0.35)
    ax.plot([], [], marker="X", color="black", linestyle="none", label="break-even")
    ax.legend(loc="upper left", fontsize=9, framealpha=0.92)
    fig.tight_layout()
    path = Path(path)
    try:
        fig.savefig(path, format="png")
    except OSError as exc:
        raise DataError(f"cannot write chart {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
    log.info("wrote cost chart %s (%d break-evens marked)", path, len(shown))
    return path


def _dollars(value: float) -> str:
    if value >= 1:
        return f"${_short(value)}"
    return f"${value:.{max(0, math.ceil(-math.log10(value)))}f}" if value > 0 else "$0"


def _short(value: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"
