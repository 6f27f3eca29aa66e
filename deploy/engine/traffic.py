"""Progressive delivery's shared vocabulary (issue 22): how traffic moves to a new version, and when it breaches.

Pure: no boto3, no disk. Both modes and both online targets read the same `TrafficPolicy` (built from the
`traffic`, `canary_percent`, ... fields of `[endpoint]` and `[lambda]` in greenlight.toml) and judge a
version's live traffic (`VersionTraffic`, counted by the local servers or read from CloudWatch) with the same
`breach`:

    all-at-once   the new version takes 100% at once (today's behaviour, the default)
    canary        canary_percent for step_wait_seconds, then 100%
    linear        linear_step_percent more every step_wait_seconds until 100%

After the last step (100%) the previous version stays ready for bake_seconds while the new one is still
judged; only then is the rollout complete. A breach at any step rolls back to the previous version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Shift", "TrafficPolicy", "VersionTraffic", "breach"]


class Shift(StrEnum):
    ALL_AT_ONCE = "all-at-once"
    CANARY = "canary"
    LINEAR = "linear"


@dataclass(frozen=True)
class TrafficPolicy:
    """How one target moves traffic to a new version and the rules that roll it back."""

    traffic: Shift = Shift.ALL_AT_ONCE
    canary_percent: float = 10.0
    linear_step_percent: float = 10.0
    step_wait_seconds: float = 60.0
    bake_seconds: float = 300.0
    max_5xx_percent: float = 1.0  # the new version's 5xx share of its requests over a step, in percent
    max_p99_ms: float | None = None  # the new version's p99 latency over a step; None: not judged
    min_requests: int = 20  # a share is judged once the new version has answered this many in the step
    alarms: tuple[str, ...] = field(default=())  # AWS: CloudWatch alarms that also roll back while in ALARM

    @property
    def progressive(self) -> bool:
        return self.traffic is not Shift.ALL_AT_ONCE

    def steps(self) -> tuple[float, ...]:
        """The new version's weight (percent) at each step, ending at 100.

        >>> TrafficPolicy(Shift.CANARY, canary_percent=20).steps()
        (20.0, 100.0)
        >>> TrafficPolicy(Shift.LINEAR, linear_step_percent=30).steps()
        (30.0, 60.0, 90.0, 100.0)
        >>> TrafficPolicy().steps()
        (100.0,)
        """
        if self.traffic is Shift.CANARY:
            return (float(self.canary_percent), 100.0)
        if self.traffic is Shift.LINEAR:
            count = math.ceil(100.0 / self.linear_step_percent)
            return tuple(float(min(100.0, round(self.linear_step_percent * (i + 1), 6))) for i in range(count))
        return (100.0,)


@dataclass(frozen=True)
class VersionTraffic:
    """What one version answered over a window: requests, server errors (5xx) and the p99 latency."""

    requests: int = 0
    errors_5xx: int = 0
    p99_ms: float | None = None

    @property
    def error_percent(self) -> float:
        return 100.0 * self.errors_5xx / self.requests if self.requests else 0.0


def breach(policy: TrafficPolicy, version: int, seen: VersionTraffic, *, step_ended: bool = False,
           label: str = "canary") -> str | None:
    """The rollback reason when `seen` (version `version`'s traffic in the current step) breaks a rule, else None.

    A share or a percentile over a handful of requests is noise, so the rules are judged once the version has
    answered `min_requests` in the step, or at the step's end with whatever it answered (never over 0).

    >>> breach(TrafficPolicy(), 2, VersionTraffic(40, 12))
    'canary v2: 5xx 30% > 1% over 40 requests'
    >>> breach(TrafficPolicy(), 2, VersionTraffic(5, 1)) is None
    True
    >>> breach(TrafficPolicy(max_p99_ms=50), 2, VersionTraffic(30, 0, 81.0), label="linear 40%")
    'linear 40% v2: p99 81 ms > 50 ms over 30 requests'
    """
    if seen.requests == 0 or (seen.requests < policy.min_requests and not step_ended):
        return None
    if seen.error_percent > policy.max_5xx_percent:
        return (f"{label} v{version}: 5xx {seen.error_percent:.0f}% > {policy.max_5xx_percent:g}% over "
                f"{seen.requests} requests")
    if policy.max_p99_ms is not None and seen.p99_ms is not None and seen.p99_ms > policy.max_p99_ms:
        return (f"{label} v{version}: p99 {seen.p99_ms:.0f} ms > {policy.max_p99_ms:g} ms over "
                f"{seen.requests} requests")
    return None
