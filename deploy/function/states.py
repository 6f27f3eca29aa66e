"""A function version's State, waited for before the version is invoked or made live (Lambda function states).

    note = wait_active(client, invoker, function, "7", timeout=300, poll=5, sleep=time.sleep, clock=time.monotonic)

From AWS docs (Lambda function states): a version is Pending while Lambda creates its resources and
invocations fail until it is Active; a version not invoked for a long time becomes Inactive, its next
invoke fails and it goes Pending, then Active; Failed means it cannot start (StateReasonCode says why).
So: Pending is waited for; Inactive is woken by one invoke (a health request, expected to fail: warming),
then waited for like Pending; Failed, or no Active within `timeout`, fails the deployment in one line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from deploy.engine.deadline import hand_over_before_sleep
from deploy.function.events import function_url_event
from deploy.function.invoke import Invoker
from greenlight.aws_errors import aws_call
from greenlight.errors import DeploymentFailed, GreenlightError

__all__ = ["WARM_EVENT", "wait_active"]

log = logging.getLogger(__name__)

WARM_EVENT = function_url_event("GET", "/health", "", {}, b"", now=0.0, request_id="greenlight-warm")


def _reason(config: dict[str, Any]) -> str:
    return f"{config.get('StateReasonCode') or 'no reason code'}: {config.get('StateReason') or 'no reason given'}"


def wait_active(client: Any, invoker: Invoker, function: str, number: str, *, timeout: float, poll: float,
                sleep: Callable[[float], None], clock: Callable[[], float]) -> str | None:
    """Until version `number` is Active (module docstring); None if it was at once, else what it went through.

    Raises: DeploymentFailed (State Failed, or not Active within `timeout` seconds), AwsError.
    """
    start = clock()
    seen: list[str] = []
    woken = False
    while True:
        config = aws_call("GetFunctionConfiguration", client.get_function_configuration, FunctionName=function,
                          Qualifier=number)
        state = config.get("State") or "Active"
        if state == "Active":
            if not seen:
                return None
            log.info("%s: version %s is Active after %g s (was %s)", function, number, clock() - start, ", ".join(seen))
            return f"version {number} was {', then '.join(seen)}; Active after {clock() - start:g} s"
        if state not in seen:
            seen.append(state)
        if state == "Failed":
            raise DeploymentFailed(f"{function} version {number} cannot start: State Failed ({_reason(config)})")
        if state == "Inactive" and not woken:
            woken = True
            try:
                invoker.invoke(function, number, WARM_EVENT)
            except GreenlightError as exc:  # expected: the first invoke of an Inactive version fails
                log.info("%s: version %s is Inactive; its first invoke failed as expected (warming): %s",
                         function, number, exc)
            continue
        if clock() - start >= timeout:
            raise DeploymentFailed(f"{function} version {number} did not become Active within {timeout:g} s "
                                   f"(State {state}: {_reason(config)})")
        hand_over_before_sleep(f"{function} version {number} to become Active (State {state})", poll)
        sleep(poll)
