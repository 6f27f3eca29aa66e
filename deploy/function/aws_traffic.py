"""The Lambda target's traffic on AWS (issue 22): the `live` alias's weights, a version's metrics, the alarms.

    routing(version, percent)     UpdateAlias's RoutingConfig: the new version's weight (0-1, one extra version)
    AliasTraffic.weights()        {function version: percent} the alias routes now (GetAlias)
    AliasTraffic.shift(...)       the alias on `previous` with `percent` to `new` (UpdateAlias; idempotent)
    AliasTraffic.traffic(...)     what one function version answered through the alias over a window: CloudWatch
                                  GetMetricData of AWS/Lambda Invocations, Errors (Sum) and Duration (p99) with the
                                  dimensions FunctionName, Resource (<function>:<alias>) and ExecutedVersion
    AliasTraffic.alarming(names)  the named alarms in ALARM, with CloudWatch's reason (DescribeAlarms)

Lambda's `Errors` counts invocations that failed in the function (an exception, a timeout, running out of
memory), not HTTP statuses: the inference function answers a bad request with a 4xx body and no function error,
and fails (Errors) only where the model could not answer, which a Function URL client sees as a 5xx (502). So
`Errors` is read as the version's `errors_5xx`; a 4xx the function itself returns counts as a success, as it
does on the endpoint. Throttles are not Errors either (neither version answered: not the new version's fault).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from deploy.engine.traffic import VersionTraffic
from greenlight.aws_errors import aws_call
from greenlight.errors import ConfigurationError, DeploymentFailed

__all__ = ["PERIOD", "AliasTraffic", "routing"]

log = logging.getLogger(__name__)

PERIOD = 60  # CloudWatch's resolution for Lambda's metrics (seconds); a window is read in whole periods


def routing(version: str, percent: float) -> dict[str, Any]:
    """RoutingConfig sending `percent` (0 < percent < 100) of the alias's invocations to function version `version`.

    Raises:
        DeploymentFailed: a percent Lambda cannot weigh (its weights are 0.0-1.0 and 100% is the alias itself).
    """
    if not 0 < percent < 100:
        raise DeploymentFailed(f"a weighted alias routes between 0% and 100% to its extra version, not {percent:g}%")
    return {"AdditionalVersionWeights": {str(version): round(percent / 100.0, 4)}}


class AliasTraffic:
    """The alias `alias` of `function`: its weights, and its versions' metrics and alarms (module docstring)."""

    def __init__(self, lambda_client: Any, cloudwatch: Any, function: str, alias: str, *,
                 clock: Callable[[], float] = time.time):
        self.client, self.cloudwatch, self.function, self.alias, self._clock = (lambda_client, cloudwatch, function,
                                                                               alias, clock)

    def weights(self) -> dict[str, float]:
        """{function version: percent} of the alias's invocations (the primary version first)."""
        alias = aws_call("GetAlias", self.client.get_alias, FunctionName=self.function, Name=self.alias)
        extra = {str(k): 100.0 * float(v)
                 for k, v in ((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}).items()}
        return {str(alias["FunctionVersion"]): 100.0 - sum(extra.values()), **extra}

    def shift(self, new: str, previous: str, percent: float, description: str) -> str:
        """The alias on `previous`, `percent` of its invocations to `new`; '' when it was so already."""
        config = routing(new, percent)
        current = self.weights()
        if current.get(previous) is not None and abs(current.get(new, 0.0) - percent) < 0.01 and len(current) == 2:
            return ""
        aws_call("UpdateAlias", self.client.update_alias, FunctionName=self.function, Name=self.alias,
                 FunctionVersion=previous, RoutingConfig=config, Description=description)
        log.info("%s: alias %s: version %s %g%%, version %s %g%%", self.function, self.alias, new, percent, previous,
                 100 - percent)
        return f"alias {self.alias}: version {new} {percent:g}%, version {previous} {100 - percent:g}%"

    def traffic(self, version: str, since: float, until: float | None = None) -> VersionTraffic:
        """What function version `version` answered through the alias from `since` to `until` (epoch seconds;
        default now), in whole CloudWatch periods. Raises: AwsError."""
        end = until if until is not None else self._clock()
        start = math.floor(since / PERIOD) * PERIOD
        periods = max(1, math.ceil((end - start) / PERIOD))
        span = periods * PERIOD
        dimensions = [{"Name": "FunctionName", "Value": self.function},
                      {"Name": "Resource", "Value": f"{self.function}:{self.alias}"},
                      {"Name": "ExecutedVersion", "Value": str(version)}]
        queries = [{"Id": key, "ReturnData": True,
                    "MetricStat": {"Metric": {"Namespace": "AWS/Lambda", "MetricName": metric,
                                              "Dimensions": dimensions}, "Period": span, "Stat": stat}}
                   for key, metric, stat in (("requests", "Invocations", "Sum"), ("errors", "Errors", "Sum"),
                                             ("p99", "Duration", "p99"))]
        answer = aws_call("GetMetricData", self.cloudwatch.get_metric_data, MetricDataQueries=queries,
                          StartTime=datetime.fromtimestamp(start, UTC),
                          EndTime=datetime.fromtimestamp(start + span, UTC))
        values = {r["Id"]: r.get("Values") or [] for r in answer.get("MetricDataResults", [])}
        requests, errors = int(sum(values.get("requests", []))), int(sum(values.get("errors", [])))
        p99 = max(values["p99"]) if values.get("p99") else None
        return VersionTraffic(requests, errors, p99)

    def alarming(self, names: Sequence[str]) -> list[str]:
        """'<name> (<reason>)' for each named alarm in ALARM.

        Raises:
            ConfigurationError: a named alarm does not exist (the rollout could not be judged by it).
        """
        if not names:
            return []
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(names), 100):  # DescribeAlarms takes at most 100 names
            answer = aws_call("DescribeAlarms", self.cloudwatch.describe_alarms,
                              AlarmNames=list(names[start:start + 100]), AlarmTypes=["MetricAlarm", "CompositeAlarm"])
            for alarm in [*answer.get("MetricAlarms", []), *answer.get("CompositeAlarms", [])]:
                found[alarm["AlarmName"]] = alarm
        missing = [n for n in names if n not in found]
        if missing:
            raise ConfigurationError(f"lambda alarms: no CloudWatch alarm named {', '.join(missing)}")
        return [f"{n} ({found[n].get('StateReason') or 'no reason given'})" for n in names
                if found[n]["StateValue"] == "ALARM"]
