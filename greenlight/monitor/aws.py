"""The monitor on AWS: capture records from CloudWatch Logs, baselines from S3, verdicts to CloudWatch metrics.

    sources = log_sources(group, endpoint_name)          # where each target's container writes its stdout
    records = read_cloudwatch(logs, sources, since, until)
    read = s3_reader(s3)                                 # s3:// URI -> bytes, for RegistryBaselines
    publish_metrics(cloudwatch, NAMESPACE, group, result, rows)            # stage=...: with a Stage dimension

Log groups (what AWS ships a container's stdout to): the endpoint's `/aws/sagemaker/Endpoints/<endpoint>`,
Batch Transform's `/aws/sagemaker/TransformJobs` (streams `<job name>/<instance>`, so the group's jobs are
the streams starting with `<job prefix>-`), and the inference Lambda's own group, which the deploy stack
names `/greenlight/<group>/inference`. With [stages] each stage's targets have their own (a stage's endpoint is
named from its key, its Lambda logs to `/greenlight/<group>/<stage>/inference`, its jobs use its job prefix):
deploy/capture_sources.py derives them through deploy/names.py, and each source names its stage, which the
records read from it are attributed to. FilterLogEvents with the filter pattern `"greenlight_capture"` reads
them page by page; a log group that does not exist yet (nothing served there) contributes nothing.
Clients are injected; every call goes through greenlight.aws_errors.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from greenlight.aws_errors import aws_call
from greenlight.errors import NotFoundError, ParameterError
from greenlight.monitor.records import CAPTURE_KEY, CaptureRecord, parse_record
from greenlight.monitor.service import MonitorResult

__all__ = ["FILTER_PATTERN", "NAMESPACE", "LogSource", "batch_source", "endpoint_source", "lambda_source",
           "group_metric_data", "log_sources", "metric_data", "publish_metrics", "put_metrics", "read_cloudwatch",
           "s3_reader"]

log = logging.getLogger(__name__)

FILTER_PATTERN = f'"{CAPTURE_KEY}"'
ENDPOINT_LOGS = "/aws/sagemaker/Endpoints/"  # + the endpoint's name
TRANSFORM_LOGS = "/aws/sagemaker/TransformJobs"  # streams <job name>/<instance>
NAMESPACE = "Greenlight/Drift"
# Records carry the time of their request and reach the log a moment later; read this much around the window.
SLACK = timedelta(minutes=5)
MAX_PAGES = 10_000
METRICS_PER_CALL = 1000  # PutMetricData's limit


@dataclass(frozen=True)
class LogSource:
    """Where one serving target writes its capture records; `stage` is whose they are (None: no [stages])."""

    log_group: str
    target: str
    stream_prefix: str | None = None
    stage: str | None = None


def endpoint_source(endpoint_name: str, stage: str | None = None) -> LogSource:
    return LogSource(f"{ENDPOINT_LOGS}{endpoint_name}", "endpoint", stage=stage)


def lambda_source(log_group: str, stage: str | None = None) -> LogSource:
    return LogSource(log_group, "lambda", stage=stage)


def batch_source(job_prefix: str, stage: str | None = None) -> LogSource:
    return LogSource(TRANSFORM_LOGS, "batch", f"{job_prefix}-", stage)


def log_sources(group: str, endpoint_name: str, function_log_group: str | None = None,
                job_prefix: str | None = None, stage: str | None = None) -> list[LogSource]:
    """The log groups (and stream prefixes) each serving target of the group (or of one stage, whose names the
    caller derives: deploy/capture_sources.py) writes capture records to."""
    return [endpoint_source(endpoint_name, stage),
            lambda_source(function_log_group or f"/greenlight/{group}/inference", stage),
            batch_source(job_prefix or group, stage)]


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
                                on_missing=functools.partial(NotFoundError, source.log_group))
            except NotFoundError:
                log.info("no log group %s: the %s has written nothing yet", source.log_group, source.target)
                break
            for event in page.get("events", []):
                # the prefix again here: moto (the tests' AWS) ignores logStreamNamePrefix
                if source.stream_prefix and not str(event.get("logStreamName", "")).startswith(source.stream_prefix):
                    continue
                record = parse_record(str(event.get("message", "")), source.target, source.stage)
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


def metric_data(group: str, result: MonitorResult | None, rows: int, stage: str | None = None) -> list[dict]:
    """The metrics of one monitor run: CapturedRows and DriftDetected per group; PSI and Drift per column of the
    newest version compared (Feature = the feature's name, or "prediction"). A stage's carry a Stage dimension
    after Group; without [stages] (stage None) the dimensions are Group (and Feature) only."""
    groups = [{"Name": "Group", "Value": group}, *([{"Name": "Stage", "Value": stage}] if stage else [])]
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


def group_metric_data(group: str, rows: int, drift: bool | None) -> list[dict]:
    """With [stages], the group's own CapturedRows (every stage's rows) and DriftDetected (1 when any stage
    drifted; none when no stage was compared), dimension Group alone: what the stack's DriftAlarm watches."""
    groups = [{"Name": "Group", "Value": group}]
    data = [{"MetricName": "CapturedRows", "Dimensions": groups, "Value": float(rows), "Unit": "Count"}]
    if drift is not None:
        data.append({"MetricName": "DriftDetected", "Dimensions": groups, "Value": 1.0 if drift else 0.0,
                     "Unit": "None"})
    return data


def put_metrics(cloudwatch, namespace: str, data: list[dict]) -> int:
    """PutMetricData for `data`, METRICS_PER_CALL at a time; returns how many metrics were sent."""
    for start in range(0, len(data), METRICS_PER_CALL):
        aws_call("PutMetricData", cloudwatch.put_metric_data, Namespace=namespace,
                 MetricData=data[start:start + METRICS_PER_CALL])
    return len(data)


def publish_metrics(cloudwatch, namespace: str, group: str, result: MonitorResult | None, rows: int,
                    stage: str | None = None) -> int:
    """PutMetricData for metric_data(...); returns how many metrics were sent."""
    return put_metrics(cloudwatch, namespace, metric_data(group, result, rows, stage))
