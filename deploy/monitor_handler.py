"""The scheduled drift monitor: what `greenlight monitor --target aws` does, as a Lambda run by a schedule.

EventBridge Scheduler invokes `deploy.monitor_handler.lambda_handler` (the deploy stack's MonitorSchedule,
daily by default) in the approval handler's package: boto3 from the runtime and our pure-Python
greenlight.monitor, no numpy, pandas, scipy or matplotlib. Each run reads the last GREENLIGHT_MONITOR_WINDOW
of capture records from the serving targets' CloudWatch Logs, compares the newest model version's traffic
with its baseline (the registry's DriftCheckBaselines link, read from S3), and publishes to CloudWatch, in
namespace GREENLIGHT_MONITOR_NAMESPACE (default Greenlight/Drift): `CapturedRows` and `DriftDetected`
per group, `PSI` and `Drift` per feature (Feature = its name, or "prediction"). The stack's DriftAlarm
fires on DriftDetected.

With [stages] (GREENLIGHT_STAGES, the stack's `Stages`, read as the approval handler reads it), each stage is
monitored on its own: its enabled targets' log groups (deploy/capture_sources.py, names through
deploy/names.py), its newest version, and the same metrics with a `Stage` dimension after `Group`; then the
group's `CapturedRows` (every stage's rows) and `DriftDetected` (1 when any stage drifted), dimension Group
alone, so DriftAlarm fires on any stage's drift. A stage in another account (`role_arn`) is read there through
its read-only capture reader (deploy/target-account.yaml's `<key>-capture-reader`, created with MonitorRoleArn =
this stack's MonitorRoleArn output; its ARN derives from role_arn's account, deploy/capture_sources.py): AssumeRole
denied (a target stack deployed without MonitorRoleArn) marks the stage `not-read` with one warning naming the
stage, the role and the fix, and the run goes on (docs/decisions/0060). One stage's failure does not stop
the others: they publish, then the run raises the first failure.

Settings (environment, set by the stack): GREENLIGHT_GROUP, GREENLIGHT_ENDPOINT_NAME (default: the group),
GREENLIGHT_MONITOR_LAMBDA_LOG_GROUP (default /greenlight/<group>/inference, the stack's), GREENLIGHT_BATCH_
JOB_NAME_PREFIX (default: derived from the group), GREENLIGHT_STAGES and GREENLIGHT_{ENDPOINT,LAMBDA,BATCH}_
ENABLED (a stage's targets default to the sections'), GREENLIGHT_MONITOR_WINDOW (24h) and the thresholds of
greenlight.monitor.settings. A window with no capture records publishes CapturedRows 0 and returns
"no-capture"; a version without a baseline, or an AWS failure, raises (the invocation fails: Lambda's
Errors metric and the schedule's retry policy see it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from deploy.capture_sources import CapturePlan, stage_plan
from deploy.config import load_config
from greenlight.errors import AwsError, GreenlightError
from greenlight.monitor import settings
from greenlight.monitor.aws import (NAMESPACE, group_metric_data, publish_metrics, put_metrics, read_cloudwatch,
                                    s3_reader)
from greenlight.monitor.compare import Thresholds
from greenlight.monitor.records import parse_duration
from greenlight.monitor.registry_baselines import RegistryBaselines
from greenlight.monitor.service import BaselineSource, monitor

__all__ = ["MonitorSettings", "lambda_handler", "run"]

log = logging.getLogger(__name__)

# AssumeRole's answer when the role does not exist or does not trust the caller (IAM says the same for both)
DENIED = ("AccessDenied", "AccessDeniedException")


@dataclass(frozen=True)
class MonitorSettings:
    group: str
    plans: tuple[CapturePlan, ...]  # one per stage; without [stages] the implicit stage's (stage None)
    window: str
    namespace: str
    thresholds: Thresholds

    @property
    def staged(self) -> bool:
        return any(plan.stage is not None for plan in self.plans)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MonitorSettings:
        """Raises: ConfigurationError (a bad threshold or stage), ParameterError (a bad window), naming the
        variable."""
        window = environ.get(settings.ENV["window"]) or settings.DEFAULT_WINDOW
        parse_duration(window)
        config = load_config(environ=environ)
        lambda_logs = environ.get("GREENLIGHT_MONITOR_LAMBDA_LOG_GROUP") or None
        return cls(group=config.group,
                   plans=tuple(stage_plan(config, stage, lambda_logs) for stage in config.stage_list()),
                   window=window,
                   namespace=environ.get("GREENLIGHT_MONITOR_NAMESPACE") or NAMESPACE,
                   thresholds=settings.thresholds(environ))


# (role ARN, stage) -> a CloudWatch Logs client acting as that role (Workspace.assumed(...)("logs") on AWS)
Assume = Callable[[str, str], Any]


def run(config: MonitorSettings, *, logs, cloudwatch, s3, registry, assume: Assume | None = None,
        now: datetime | None = None) -> dict[str, Any]:
    """One monitor run with injected clients; returns what it found (and published): without [stages] the
    implicit stage's result, else {"status", "group", "since", "rows", "stages": [each stage's result]}.
    `assume` reads a stage in another account (its plan's reader_arn); None: such a stage is not read."""
    until = now or datetime.now(UTC)
    since = until - parse_duration(config.window)
    baselines = RegistryBaselines(registry, config.group, s3_reader(s3))
    if not config.staged:
        return _run_stage(config, config.plans[0], logs, cloudwatch, baselines, since, until)
    results: list[dict[str, Any]] = []
    failures: list[GreenlightError] = []
    for plan in config.plans:
        try:
            stage_logs, reason = (logs, "") if plan.reader_arn is None else _reader(plan, assume)
            if stage_logs is None:
                log.warning("%s", reason)
                results.append({"stage": plan.stage, "status": "not-read", "reason": reason})
                continue
            results.append(_run_stage(config, plan, stage_logs, cloudwatch, baselines, since, until))
        except GreenlightError as exc:  # the other stages still publish; the run fails after them
            log.error("stage %s of %s: %s", plan.stage, config.group, exc)
            failures.append(exc)
            results.append({"stage": plan.stage, "status": "failed", "error": str(exc)})
    compared = [r for r in results if r["status"] in ("ok", "drift")]
    drift = any(r["status"] == "drift" for r in compared) if compared else None
    rows = sum(int(r.get("rows", 0)) for r in results)
    put_metrics(cloudwatch, config.namespace, group_metric_data(config.group, rows, drift))
    log.info("%s: %s over %d stage(s) compared, %d row(s)", config.group,
             "drift" if drift else "no drift" if compared else "nothing compared", len(compared), rows)
    if failures:
        raise failures[0]
    return {"status": "drift" if drift else "ok" if compared else "no-capture", "group": config.group,
            "since": since.isoformat(), "rows": rows, "stages": results}


def _reader(plan: CapturePlan, assume: Assume | None) -> tuple[Any, str]:
    """A logs client in the stage's account as its capture reader, or None and the one line that says why not.

    Raises: AwsError other than AssumeRole's AccessDenied (the run fails, as for any AWS failure)."""
    reader = str(plan.reader_arn)
    account = reader.split(":")[4]
    if assume is not None:
        try:
            return assume(reader, str(plan.stage)), ""
        except AwsError as exc:
            if exc.code not in DENIED:
                raise
    return None, (f"stage {plan.stage} is not read: the drift monitor may not assume {reader} in account {account}; "
                  "fix: deploy deploy/target-account.yaml there with MonitorRoleArn=<the deploy stack's MonitorRoleArn "
                  "output> (docs/decisions/0060)")


def _run_stage(config: MonitorSettings, plan: CapturePlan, logs, cloudwatch, baselines: BaselineSource,
               since: datetime, until: datetime) -> dict[str, Any]:
    """One stage's run (the implicit stage's is the whole run without [stages]): read, compare, publish."""
    for note in plan.not_read:
        log.warning("%s", note)
    named = {} if plan.stage is None else {"stage": plan.stage}
    what = config.group if plan.stage is None else f"{config.group} stage {plan.stage}"
    records = [r for r in read_cloudwatch(logs, plan.sources, since, until) if since <= r.time <= until]
    if not records:
        publish_metrics(cloudwatch, config.namespace, config.group, None, 0, plan.stage)
        log.warning("no capture records of %s since %s in %s: nothing to compare", what, since.isoformat(),
                    plan.log_groups)
        return {**named, "status": "no-capture", "group": config.group, "since": since.isoformat(), "rows": 0}
    result = monitor(config.group, records, baselines, config.thresholds, since=since, until=until,
                     stage=plan.stage)
    newest = result.reported[0]
    sent = publish_metrics(cloudwatch, config.namespace, config.group, result, newest.rows, plan.stage)
    for column in (*newest.features, *((newest.prediction,) if newest.prediction else ())):
        log.info("%s v%d %s: %s (%s)", what, newest.version, column.name, "DRIFT" if column.drift else "ok",
                 column.reason)
    log.info("published %d metrics to %s: %s v%d %s", sent, config.namespace, what, newest.version,
             "drifts" if newest.drift else "does not drift")
    return {**named, "status": "drift" if result.drift else "ok", "group": config.group, "since": since.isoformat(),
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
               registry=ws.registry, assume=lambda role_arn, stage: ws.assumed(role_arn, stage)("logs"))
