"""Break-even request rates between options, and which option to recommend: pure functions."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from itertools import combinations

from greenlight.cost.model import LatencyClass, Option, OptionCost, Workload, estimate
from greenlight.cost.prices import Prices

__all__ = [
    "RATE_RANGE",
    "BreakEven",
    "Recommendation",
    "break_evens",
    "first_per_pair",
    "monthly_by_option",
    "recommend",
]

log = logging.getLogger(__name__)

RATE_RANGE = (1.0, 1e9)   # requests per day searched for break-evens
POINTS_PER_DECADE = 40


@dataclass(frozen=True)
class BreakEven:
    """At `requests_per_day` the cheaper of two options changes from `cheaper_below` to `cheaper_above`."""

    requests_per_day: float
    cheaper_below: Option
    cheaper_above: Option


@dataclass(frozen=True)
class Recommendation:
    option: Option
    reason: str


def monthly_by_option(workload: Workload, prices: Prices, requests_per_day: float) -> dict[Option, float]:
    """Each option's monthly cost at another request rate; NaN where the option breaks a limit."""
    return {c.option: math.nan if c.limits_broken else c.monthly_usd
            for c in estimate(workload.with_requests(requests_per_day), prices)}


def break_evens(workload: Workload, prices: Prices, rate_range: tuple[float, float] = RATE_RANGE
                ) -> tuple[BreakEven, ...]:
    """Every rate in `rate_range` where two options' monthly costs cross, sorted by rate.

    Costs are scanned on a log grid, then each change of sign is narrowed down by bisection; a
    cost that steps up (one more instance) can cross at the step itself, so two always-on options
    may cross several times. Rates where either option breaks a limit are left out.
    """
    low, high = rate_range
    steps = max(2, int(math.log10(high / low) * POINTS_PER_DECADE))
    grid = [low * (high / low) ** (i / steps) for i in range(steps + 1)]
    costs = [monthly_by_option(workload, prices, r) for r in grid]
    found = []
    for a, b in combinations(list(Option), 2):
        last_sign, last_rate = 0, low
        for rate, cost in zip(grid, costs, strict=True):
            sign = _sign(cost[a] - cost[b])
            if math.isnan(cost[a] - cost[b]):
                last_sign = 0  # no break-even across a stretch where an option is over its limits
            if sign and last_sign and sign != last_sign:
                crossing = _bisect(workload, prices, a, b, last_rate, rate, last_sign)
                below, above = (b, a) if last_sign > 0 else (a, b)
                found.append(BreakEven(crossing, below, above))
            if sign:
                last_sign, last_rate = sign, rate
    return tuple(sorted(found, key=lambda be: be.requests_per_day))


def recommend(costs: tuple[OptionCost, ...], evens: tuple[BreakEven, ...], requests_per_day: float,
              offline_ok: bool = False) -> Recommendation:
    """The cheapest option that fits every limit (and serves online, unless offline_ok), with why."""
    fits = [c for c in costs if not c.limits_broken]
    eligible = [c for c in fits if offline_ok or c.latency is not LatencyClass.OFFLINE]
    if not eligible:
        best = min(costs, key=lambda c: (len(c.limits_broken), c.monthly_usd))
        reason = (f"every option breaks a limit for this workload; {best.option.value} breaks the fewest "
                  f"({'; '.join(best.limits_broken)}) at ${best.monthly_usd:,.2f} a month")
        log.info("recommending %s because %s", best.option.value, reason)
        return Recommendation(best.option, reason)
    ranked = sorted(eligible, key=lambda c: c.monthly_usd)
    best = ranked[0]
    scope = "option that fits every limit" if offline_ok else "option that serves requests online and fits every limit"
    reason = f"{best.option.value} is the cheapest {scope}: ${best.monthly_usd:,.2f} a month"
    if len(ranked) > 1:
        reason += f", against ${ranked[1].monthly_usd:,.2f} for {ranked[1].option.value}, the next cheapest"
    rivals = {c.option for c in eligible}
    ahead = [be for be in evens if be.requests_per_day > requests_per_day and be.cheaper_below is best.option
             and be.cheaper_above in rivals]
    if ahead:
        reason += (f"; it stays cheaper than {ahead[0].cheaper_above.value} up to "
                   f"{_rate(ahead[0].requests_per_day)} requests a day")
    elif len(ranked) > 1:
        reason += f"; none of the others overtakes it below {_rate(RATE_RANGE[1])} requests a day"
    offline = [c for c in fits if c.latency is LatencyClass.OFFLINE and c.monthly_usd < best.monthly_usd]
    if offline and not offline_ok:
        reason += (f". If predictions can wait for a scheduled job, {offline[0].option.value} costs "
                   f"${offline[0].monthly_usd:,.2f} (--offline)")
    log.info("recommending %s because %s", best.option.value, reason)
    return Recommendation(best.option, reason)


def _bisect(workload: Workload, prices: Prices, a: Option, b: Option, low: float, high: float,
            low_sign: int) -> float:
    for _ in range(60):
        mid = math.sqrt(low * high)
        cost = monthly_by_option(workload, prices, mid)
        if _sign(cost[a] - cost[b]) == low_sign:
            low = mid
        else:
            high = mid
        if high / low < 1 + 1e-9:
            break
    return math.sqrt(low * high)


def first_per_pair(evens: tuple[BreakEven, ...]) -> tuple[tuple[BreakEven, int], ...]:
    """The lowest break-even of each pair of options, with how many more that pair has."""
    seen: dict[frozenset, list[BreakEven]] = {}
    for be in evens:
        seen.setdefault(frozenset((be.cheaper_below, be.cheaper_above)), []).append(be)
    return tuple((group[0], len(group) - 1) for group in seen.values())


def _sign(x: float) -> int:
    """-1, 0 or 1; 0 also when either cost is NaN (an option over its limits)."""
    if math.isnan(x) or abs(x) < 1e-12:
        return 0
    return 1 if x > 0 else -1


def _rate(value: float) -> str:
    return f"{value:,.0f}"
