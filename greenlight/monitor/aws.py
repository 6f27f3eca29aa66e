"""The monitor on AWS: capture records from CloudWatch Logs, baselines from S3, verdicts to CloudWatch metrics.

    sources = log_sources(group, endpoint_name)          # where each target's container writes its stdout
    records = read_cloudwatch(logs, sources, since, until)
    read = s3_reader(s3)                                 # s3:// URI -> bytes, for RegistryBaselines
    publish_metrics(cloudwatch, NAMESPACE, group, result, rows)

Log groups (what AWS ships a container's stdout to): the endpoint's `/aws/sagemaker/Endpoints/<endpoint>`,
Batch Transform's `/aws/sagemaker/TransformJobs` (streams `<job name>/<instance>`, so the group's jobs are
the streams starting with `<job prefix>-`), and the inference Lambda's own group, which the deploy stack
names `/greenlight/<group>/inference`. FilterLogEvents with the filter pattern `"greenlight_capture"` reads
them page by page; a log group that does not exist yet (nothing served there) contributes nothing.
Clients are injected; every call goes through greenlight.aws_errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from greenlight.aws_errors import aws_call
from greenlight.errors import NotFoundError, ParameterError
from greenlight.monitor.records import CAPTURE_KEY, CaptureRecord, parse_record
from greenlight.monitor.service import MonitorResult

__all__ = ["FILTER_PATTERN", "NAMESPACE", "LogSource", "log_sources", "metric_data", "publish_metrics",
           "read_cloudwatch", "s3_reader"]

log = logging.getLogger(__name__)

FILTER_PATTERN = f'"{CAPTURE_KEY}"'
NAMESPACE = "Greenlight/Drift"
# Records carry the time of their request and reach the log a moment later; read this much around the window.
SLACK = timedelta(minutes=5)
MAX_PAGES = 10_000
METRICS_PER_CALL = 1000  # PutMetricData's limit


@dataclass(frozen=True)
class LogSource:
    log_group: str
    target: str
    stream_prefix: str | None = None


def log_sources(group: str, endpoint_name: str, function_log_group: str | None = None,
                job_prefix: str | None = None) -> list[LogSource]:
    """The log groups (and stream prefixes) each serving target of the group writes capture records to."""
    return [LogSource(f"/aws/sagemaker/Endpoints/{endpoint_name}", "endpoint"),
            LogSource(function_log_group or f"/greenlight/{group}/inference", "lambda"),
            LogSource("/aws/sagemaker/TransformJobs", "batch", f"{job_prefix or group}-")]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def read_cloudwatch(logs, sources: Iterable[LogSource], since: datetime, until: datetime,
                    targets: Iterable[str] | None = None) -> Iterator[CaptureRecord]:
    """The capture records the sources' log events hold between since and until (with SLACK around them)."""
    wanted = set(targets) if targets else None
    for source in sources:
        if wanted is not None and source.target not in wanted:
            continue
        request = {"logGroupName": source.log_group, "filterPattern": FILTER_PATTERN,
                   "startTime": _ms(since - SLACK), "endTime": _ms(until + SLACK)}
        if source.stream_prefix:
            request["logStreamNamePrefix"] = source.stream_prefix
        found = 0
        for _ in range(MAX_PAGES):
            try:
                page = aws_call("FilterLogEvents", logs.filter_log_events, **request,
                                on_missing=lambda group=source.log_group: NotFoundError(group))
            except NotFoundError:
                log.info("no log group %s: the %s has written nothing yet", source.log_group, source.target)
                break
            for event in page.get("events", []):
                # the prefix again here: moto (the tests' AWS) ignores logStreamNamePrefix
                if source.stream_prefix and not str(event.get("logStreamName", "")).startswith(source.stream_prefix):
                    continue
                record = parse_record(str(event.get("message", "")), source.target)
                if record is not None:
                    found += 1
                    yield record
            token = page.get("nextToken")
            if not token:
                break
            request["nextToken"] = token
        log.info("%d capture record(s) in %s", found, source.log_group)


def s3_reader(s3) -> Callable[[str], bytes]:
    """An s3:// URI -> its bytes (GetObject). Raises: ParameterError (not s3://), NotFoundError, AwsError."""
    def read(uri: str) -> bytes:
        if not uri.startswith("s3://") or "/" not in uri[5:]:
            raise ParameterError(f"not an s3:// object URI: {uri!r}")
        bucket, key = uri[5:].split("/", 1)
        answer = aws_call("GetObject", s3.get_object, Bucket=bucket, Key=key,
                          on_missing=lambda: NotFoundError(f"no object at {uri}"))
        return answer["Body"].read()

    return read


def metric_data(group: str, result: MonitorResult | None, rows: int) -> list[dict]:
    """The metrics of one monitor run: CapturedRows and DriftDetected per group; PSI and Drift per column of the
    newest version compared (Feature = the feature's name, or "prediction")."""
    groups = [{"Name": "Group", "Value": group}]
    data = [{"MetricName": "CapturedRows", "Dimensions": groups, "Value": float(rows), "Unit": "Count"}]
    if result is None or not result.reported:
        return data
    newest = result.reported[0]
    for column in (*newest.features, *((newest.prediction,) if newest.prediction else ())):
        dims = [*groups, {"Name": "Feature", "Value": column.name}]
        data.append({"MetricName": "PSI", "Dimensions": dims, "Value": float(column.psi), "Unit": "None"})
        data.append({"MetricName": "Drift", "Dimensions": dims, "Value": 1.0 if column.drift else 0.0,
                     "Unit": "None"})
    data.append({"MetricName": "DriftDetected", "Dimensions": groups, "Value": 1.0 if newest.drift else 0.0,
                 "Unit": "None"})
    return data


def publish_metrics(cloudwatch, namespace: str, group: str, result: MonitorResult | None, rows: int) -> int:
    """PutMetricData for metric_data(...); returns how many metrics were sent."""
    data = metric_data(group, result, rows)
    for start in range(0, len(data), METRICS_PER_CALL):
        aws_call("PutMetricData", cloudwatch.put_metric_data, Namespace=namespace,
                 MetricData=data[start:start + METRICS_PER_CALL])
    return len(data)
