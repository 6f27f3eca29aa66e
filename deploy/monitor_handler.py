"""The scheduled drift monitor: what `greenlight monitor --target aws` does, as a Lambda run by a schedule.

EventBridge Scheduler invokes `deploy.monitor_handler.lambda_handler` (the deploy stack's MonitorSchedule,
daily by default) in the approval handler's package: boto3 from the runtime and our pure-Python
greenlight.monitor, no numpy, pandas, scipy or matplotlib. Each run reads the last GREENLIGHT_MONITOR_WINDOW
of capture records from the serving targets' CloudWatch Logs, compares the newest model version's traffic
with its baseline (the registry's DriftCheckBaselines link, read from S3), and publishes to CloudWatch, in
namespace GREENLIGHT_MONITOR_NAMESPACE (default Greenlight/Drift): `CapturedRows` and `DriftDetected`
per group, `PSI` and `Drift` per feature (Feature = its name, or "prediction"). The stack's DriftAlarm
fires on DriftDetected.

Settings (environment, set by the stack): GREENLIGHT_GROUP, GREENLIGHT_ENDPOINT_NAME (default: the group),
GREENLIGHT_MONITOR_LAMBDA_LOG_GROUP (default /greenlight/<group>/inference, the stack's), GREENLIGHT_BATCH_
JOB_NAME_PREFIX (default: the group), GREENLIGHT_MONITOR_WINDOW (24h) and the thresholds of
greenlight.monitor.settings. A window with no capture records publishes CapturedRows 0 and returns
"no-capture"; a version without a baseline, or an AWS failure, raises (the invocation fails: Lambda's
Errors metric and the schedule's retry policy see it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from greenlight.monitor import settings
from greenlight.monitor.aws import NAMESPACE, log_sources, publish_metrics, read_cloudwatch, s3_reader
from greenlight.monitor.compare import Thresholds
from greenlight.monitor.records import parse_duration
from greenlight.monitor.registry_baselines import RegistryBaselines
from greenlight.monitor.service import monitor
from greenlight.settings import DEFAULT_MODEL_PACKAGE_GROUP

__all__ = ["MonitorSettings", "lambda_handler", "run"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonitorSettings:
    group: str
    endpoint_name: str
    function_log_group: str
    job_prefix: str
    window: str
    namespace: str
    thresholds: Thresholds

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MonitorSettings:
        """Raises: ConfigurationError (a bad threshold), ParameterError (a bad window), naming the variable."""
        group = environ.get("GREENLIGHT_GROUP") or DEFAULT_MODEL_PACKAGE_GROUP
        window = environ.get(settings.ENV["window"]) or settings.DEFAULT_WINDOW
        parse_duration(window)
        return cls(group=group,
                   endpoint_name=environ.get("GREENLIGHT_ENDPOINT_NAME") or group,
                   function_log_group=(environ.get("GREENLIGHT_MONITOR_LAMBDA_LOG_GROUP")
                                       or f"/greenlight/{group}/inference"),
                   job_prefix=environ.get("GREENLIGHT_BATCH_JOB_NAME_PREFIX") or group,
                   window=window,
                   namespace=environ.get("GREENLIGHT_MONITOR_NAMESPACE") or NAMESPACE,
                   thresholds=settings.thresholds(environ))


def run(config: MonitorSettings, *, logs, cloudwatch, s3, registry, now: datetime | None = None) -> dict[str, Any]:
    """One monitor run with injected clients; returns what it found (and published)."""
    until = now or datetime.now(UTC)
    since = until - parse_duration(config.window)
    sources = log_sources(config.group, config.endpoint_name, config.function_log_group, config.job_prefix)
    records = [r for r in read_cloudwatch(logs, sources, since, until) if since <= r.time <= until]
    if not records:
        publish_metrics(cloudwatch, config.namespace, config.group, None, 0)
        log.warning("no capture records of %s since %s in %s: nothing to compare", config.group, since.isoformat(),
                    ", ".join(s.log_group for s in sources))
        return {"status": "no-capture", "group": config.group, "since": since.isoformat(), "rows": 0}
    result = monitor(config.group, records, RegistryBaselines(registry, config.group, s3_reader(s3)),
                     config.thresholds, since=since, until=until)
    newest = result.reported[0]
    sent = publish_metrics(cloudwatch, config.namespace, config.group, result, newest.rows)
    for column in (*newest.features, *((newest.prediction,) if newest.prediction else ())):
        log.info("%s v%d %s: %s (%s)", config.group, newest.version, column.name, "DRIFT" if column.drift else "ok",
                 column.reason)
    log.info("published %d metrics to %s: %s v%d %s", sent, config.namespace, config.group, newest.version,
             "drifts" if newest.drift else "does not drift")
    return {"status": "drift" if result.drift else "ok", "group": config.group, "since": since.isoformat(),
            "other_versions": list(result.other_versions), **newest.to_json()}


_runtime: dict[str, Any] = {}


def _cold_start() -> dict[str, Any]:
    """The Lambda's composition, once per execution environment (as deploy.handler's)."""
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    from greenlight.workspace import Workspace

    logger = Logger(service="greenlight-drift-monitor")
    copy_config_to_registered_loggers(source_logger=logger, include={"deploy", "greenlight"})
    workspace = Workspace.open("aws")
    return {"logger": logger, "workspace": workspace, "settings": MonitorSettings.from_env(os.environ)}


def lambda_handler(event: dict, context) -> dict[str, Any]:
    """The Lambda entry point (EventBridge Scheduler's invocation; the event's content is not used)."""
    if not _runtime:
        _runtime.update(_cold_start())
    ws = _runtime["workspace"]
    return run(_runtime["settings"], logs=ws.client("logs"), cloudwatch=ws.client("cloudwatch"), s3=ws.client("s3"),
               registry=ws.registry)
