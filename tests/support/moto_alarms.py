"""CloudWatch alarm evaluation, which moto lacks: moto stores alarms and metric data but never moves an alarm's
state. `evaluate_alarms` does what CloudWatch does for a simple threshold alarm, through the public API:
the alarm's statistic over its last EvaluationPeriods x Period (GetMetricStatistics on its namespace,
metric and dimensions), compared with its threshold, then SetAlarmState; no data follows TreatMissingData
(notBreaching: OK). Enough to show that an alarm of the template watches what Greenlight publishes.
Metric-math alarms (the progressive-delivery alarms: a 5xx share, a p99 in ms) are left as they are; a test
sets their state with SetAlarmState.
"""

from __future__ import annotations

import operator
from datetime import datetime, timedelta

__all__ = ["evaluate_alarms"]

_COMPARE = {"GreaterThanOrEqualToThreshold": operator.ge, "GreaterThanThreshold": operator.gt,
            "LessThanThreshold": operator.lt, "LessThanOrEqualToThreshold": operator.le}


def evaluate_alarms(cloudwatch, now: datetime) -> dict[str, str]:
    """Set every metric alarm's state from its data; returns {alarm name: state}."""
    states = {}
    for alarm in cloudwatch.describe_alarms()["MetricAlarms"]:
        if alarm.get("Metrics"):
            continue
        span = timedelta(seconds=alarm["Period"] * alarm["EvaluationPeriods"])
        points = cloudwatch.get_metric_statistics(
            Namespace=alarm["Namespace"], MetricName=alarm["MetricName"], Dimensions=alarm.get("Dimensions", []),
            StartTime=now - span, EndTime=now + timedelta(minutes=1), Period=alarm["Period"],
            Statistics=[alarm["Statistic"]])["Datapoints"]
        if points:
            worst = max(p[alarm["Statistic"]] for p in points)
            breaching = _COMPARE[alarm["ComparisonOperator"]](worst, alarm["Threshold"])
            reason = f"{alarm['Statistic']} {worst} against threshold {alarm['Threshold']}"
        else:
            breaching = alarm.get("TreatMissingData") == "breaching"
            reason = "no data"
        state = "ALARM" if breaching else "OK"
        cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason)
        states[alarm["AlarmName"]] = state
    return states
