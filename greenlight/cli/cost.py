"""`greenlight cost`: compare the monthly cost of serving a workload on each AWS option."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

import typer

from greenlight.cost.decision import break_evens, recommend
from greenlight.cost.model import OptionCost, Workload, estimate
from greenlight.cost.prices import Arch
from greenlight.cost.decision import BreakEven, Recommendation, first_per_pair
from greenlight.errors import ParameterError

__all__ = ["TYPICAL_DURATION_MS", "cost"]

log = logging.getLogger(__name__)

TYPICAL_DURATION_MS = 200.0
DEFAULT_BENCH_RESULTS = Path("benchmarks") / "results.json"


_REQUESTS = typer.Option(..., "--requests-per-day", help="Requests a day (a month is 30 days).")
_DURATION = typer.Option("200", "--duration-ms",
                         help="Milliseconds per request, or 'measured' for the serving p50 of the latest `make bench` "
                              "(default model; 'measured:SIZE' or 'measured:MODEL_DIR' for the size nearest yours).")
_PAYLOAD = typer.Option(1.0, "--payload-kb", help="KB in and KB out per request (each).")
_LAMBDA_MEMORY = typer.Option(512, "--lambda-memory-mb", help="Lambda memory, 128-10,240 MB.")
_LAMBDA_ARCH = typer.Option(Arch.X86.value, "--lambda-arch", help="Lambda architecture: x86 or arm.")
_SERVERLESS_MEMORY = typer.Option(1024, "--serverless-memory-mb",
                                  help="SageMaker Serverless memory, 1024-6144 MB in 1 GB steps.")
_ENDPOINT = typer.Option("ml.t2.medium", "--endpoint-instance", help="Instance type of the real-time endpoint.")
_FARGATE_VCPU = typer.Option(1.0, "--fargate-vcpu", help="vCPU per Fargate task.")
_FARGATE_MEMORY = typer.Option(2.0, "--fargate-memory-gb", help="GB of memory per Fargate task.")
_TRANSFORM = typer.Option("ml.m5.large", "--transform-instance", help="Instance type of the Batch Transform jobs.")
_JOBS = typer.Option(1, "--batch-jobs-per-day", help="Batch Transform jobs a day.")
_FREE_TIER = typer.Option(False, "--free-tier/--no-free-tier", help="Subtract AWS's free tiers (off by default).")
_OFFLINE = typer.Option(False, "--offline",
                        help="Predictions may wait for a scheduled job: let Batch Transform be recommended.")
_PRICES = typer.Option(None, "--prices", help="Price list JSON (default: the bundled us-east-1 prices).")
_BENCH = typer.Option(DEFAULT_BENCH_RESULTS, "--bench-results",
                      help="`make bench` results, read by --duration-ms measured.")
_JSON = typer.Option(False, "--json", help="Print a JSON list, one object per option.")
_PLOT = typer.Option(None, "--plot", help="Write the cost chart to this PNG file.")


def cost(
    requests_per_day: float = _REQUESTS,
    duration_ms: str = _DURATION,
    payload_kb: float = _PAYLOAD,
    lambda_memory_mb: int = _LAMBDA_MEMORY,
    lambda_arch: Arch = _LAMBDA_ARCH,
    serverless_memory_mb: int = _SERVERLESS_MEMORY,
    endpoint_instance: str = _ENDPOINT,
    fargate_vcpu: float = _FARGATE_VCPU,
    fargate_memory_gb: float = _FARGATE_MEMORY,
    transform_instance: str = _TRANSFORM,
    batch_jobs_per_day: int = _JOBS,
    free_tier: bool = _FREE_TIER,
    offline: bool = _OFFLINE,
    prices_file: Path | None = _PRICES,
    bench_results: Path = _BENCH,
    as_json: bool = _JSON,
    plot: Path | None = _PLOT,
) -> None:
    """Compare Lambda, SageMaker Serverless, a SageMaker endpoint, Fargate and Batch Transform."""
    from greenlight.cost.loader import load_prices, measured_p50

    prices = load_prices(prices_file)
    text = duration_ms.strip()
    word, _, size = text.partition(":")
    figure = measured_p50(bench_results, size.strip() or None) if word.strip().lower() == "measured" else None
    measured = figure.model if figure else ""  # which model size the measured figure is for
    duration = figure.ms if figure else _milliseconds(duration_ms)
    workload = Workload(
        requests_per_day=requests_per_day, duration_ms=duration, payload_kb=payload_kb,
        lambda_memory_mb=lambda_memory_mb, lambda_arch=Arch(lambda_arch), serverless_memory_mb=serverless_memory_mb,
        endpoint_instance=endpoint_instance, fargate_vcpu=fargate_vcpu, fargate_memory_gb=fargate_memory_gb,
        transform_instance=transform_instance, batch_jobs_per_day=batch_jobs_per_day, free_tier=free_tier)
    costs = estimate(workload, prices)
    typical = estimate(replace(workload, duration_ms=TYPICAL_DURATION_MS), prices) if measured else None
    evens = break_evens(workload, prices)
    choice = recommend(costs, evens, requests_per_day, offline_ok=offline)
    if plot is not None:
        from greenlight.cost.chart import plot as draw

        draw(workload, prices, evens, plot, _subtitle(workload, prices, measured))
    if as_json:
        rows = _as_json(workload, costs, typical, evens, choice)
        for row in rows if measured else ():
            row["duration_measured_on"] = measured
        typer.echo(json.dumps(rows, indent=2))
    else:
        _print_report(workload, prices, costs, typical, evens, choice, measured)
    if plot is not None and not as_json:
        typer.echo(f"\nChart written to {plot}")


def _milliseconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ParameterError(f"--duration-ms must be a number of milliseconds or 'measured' (got {text!r})") from None


def _as_json(workload: Workload, costs: tuple[OptionCost, ...], typical: tuple[OptionCost, ...] | None,
             evens: tuple[BreakEven, ...], choice: Recommendation) -> list[dict]:
    rows = []
    for i, c in enumerate(costs):
        row = {
            "option": c.option.value,
            "monthly_usd": c.monthly_usd,
            "per_1000_requests_usd": c.per_1000_usd,
            "latency_class": c.latency.value,
            "setup": c.setup,
            "units": c.units,
            "breakdown_usd": dict(c.breakdown),
            "limits_broken": list(c.limits_broken),
            "requests_per_day": workload.requests_per_day,
            "duration_ms": workload.duration_ms,
            "recommended": c.option is choice.option,
            "break_even": [{"requests_per_day": be.requests_per_day,
                            "other": (be.cheaper_above if be.cheaper_below is c.option else be.cheaper_below).value,
                            "cheaper_below": be.cheaper_below.value, "cheaper_above": be.cheaper_above.value}
                           for be in evens if c.option in (be.cheaper_below, be.cheaper_above)],
        }
        if c.option is choice.option:
            row["reason"] = choice.reason
        if typical is not None:
            row["typical_duration_ms"] = TYPICAL_DURATION_MS
            row["typical_monthly_usd"] = typical[i].monthly_usd
        rows.append(row)
    return rows


def _print_report(workload: Workload, prices, costs, typical, evens, choice: Recommendation, measured: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 200, highlight=False)
    w = workload
    console.print(f"Monthly cost of {w.requests_per_day:,.0f} requests a day ({w.requests_per_month:,.0f} a month), "
                  f"{w.payload_kb:g} KB in and out; {prices.region} on-demand prices read {prices.read_on}; "
                  f"free tiers {'on' if w.free_tier else 'off'}.")
    table = Table(show_edge=False, header_style="bold")
    table.add_column("option", no_wrap=True)
    table.add_column("setup", no_wrap=True)
    label = f"{w.duration_ms:.3g} ms measured" if measured else f"{w.duration_ms:,g} ms"
    table.add_column(f"monthly @ {label}", justify="right", no_wrap=True)
    if typical is not None:
        table.add_column(f"monthly @ {TYPICAL_DURATION_MS:g} ms typical", justify="right", no_wrap=True)
    table.add_column("per 1,000 req", justify="right", no_wrap=True)
    table.add_column("latency", no_wrap=True)
    table.add_column("limits broken")
    for i, c in enumerate(costs):
        cells = [c.option.value + (" *" if c.option is choice.option else ""), c.setup, _usd(c.monthly_usd)]
        if typical is not None:
            cells.append(_usd(typical[i].monthly_usd))
        cells += [f"${c.per_1000_usd:.4f}", c.latency.value, "; ".join(c.limits_broken) or "-"]
        table.add_row(*cells)
    console.print(table)
    if measured:
        console.print(f"Measured duration: the serving path's p50 {measured}.")
    console.print(f"\nRecommended (*): {choice.option.value}. Why: {choice.reason}.")
    pairs = first_per_pair(evens)
    if pairs:
        console.print("\nBreak-even request rates (first crossing of each pair; always-on options step up an "
                      "instance at a time, so a pair may cross again):")
        for be, more in sorted(pairs, key=lambda p: p[0].requests_per_day):
            again = f" (and {more} more crossing{'s' if more > 1 else ''} above)" if more else ""
            console.print(f"  {be.requests_per_day:>14,.0f} a day: {be.cheaper_above.value} becomes cheaper "
                          f"than {be.cheaper_below.value}{again}")
    else:
        console.print("\nNo break-even between 1 and 1,000,000,000 requests a day: the order never changes.")


def _subtitle(workload: Workload, prices, measured: str) -> str:
    source = "measured p50 of the serving path" if measured else "per request"
    return (f"{workload.duration_ms:.3g} ms {source}, {workload.payload_kb:g} KB in/out, "
            f"{prices.region} prices read {prices.read_on}")


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"
