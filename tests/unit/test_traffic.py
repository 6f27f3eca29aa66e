"""The traffic vocabulary of progressive delivery (deploy/engine/traffic.py) and its settings (deploy/config.py)."""

from __future__ import annotations

import doctest

import pytest

import deploy.engine.traffic as traffic
from deploy.engine.traffic import Shift, TrafficPolicy, VersionTraffic, breach


def test_doctests() -> None:
    result = doctest.testmod(traffic)
    assert result.attempted >= 6 and result.failed == 0


@pytest.mark.parametrize("step", [7.0, 10.0, 33.0, 50.0])
def test_linear_steps_climb_evenly_to_100(step: float) -> None:
    steps = TrafficPolicy(Shift.LINEAR, linear_step_percent=step).steps()
    assert steps[-1] == 100.0 and all(b > a for a, b in zip(steps, steps[1:], strict=False))
    assert all(b - a <= step + 1e-9 for a, b in zip((0.0, *steps), steps, strict=False))


def test_breach_waits_for_min_requests_unless_the_step_ended() -> None:
    policy = TrafficPolicy(min_requests=20)
    assert breach(policy, 2, VersionTraffic(19, 19)) is None
    assert breach(policy, 2, VersionTraffic(19, 19), step_ended=True) == "canary v2: 5xx 100% > 1% over 19 requests"
    assert breach(policy, 2, VersionTraffic(0, 0), step_ended=True) is None
    assert breach(policy, 2, VersionTraffic(100, 1)) is None  # exactly 1%: not above the threshold
