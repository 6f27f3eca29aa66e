"""Greenlight's Python API: the calls the CLI commands, the notebooks and `greenlight demo` share.

    import greenlight.api as gl
    ws = gl.workspace("local")                 # or gl.workspace("aws", region="eu-west-1")
    run = gl.train(ws)                         # the training pipeline (locally: this machine)
    gl.versions(ws)                            # the registry, newest first
    gl.approve(ws, run.version)                # approval -> every target deploys (locally at once)
    gl.status(ws)                              # per target: running and desired version, drift
    gl.reject(ws, run.version)                 # -> rolled back to the previous Approved version
    gl.promote(ws, 3, "production")            # with [stages]: v3, running in staging, to production
    gl.monitor(ws, since="2h")                 # live traffic against the version's training baseline

Every function takes a `Workspace` (the composition root, greenlight.workspace) and returns plain data;
printing is the caller's business. Errors are GreenlightError subclasses, as everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenlight.errors import DataError, ParameterError, PromotionRefused
from greenlight.registry.model import ApprovalStatus, ModelVersion
from greenlight.settings import check_home
from greenlight.workspace import Target, Workspace

__all__ = ["ApprovalResult", "CostResult", "DriftCheck", "Prediction", "PromotionRefused", "Serving", "TrainResult",
           "approve", "cost", "definition", "deliver_pending", "deploy", "group_warning", "history", "monitor",
           "predict", "promote", "reject", "reject_in_stage", "runtime_identity", "runtime_url_line",
           "serve_endpoint", "serve_lambda", "show", "stage_key", "status", "train", "upsert_pipeline", "versions",
           "wait_until_deployed", "workspace"]


def workspace(target: Target | str = "local", region: str | None = None, home: Path | None = None) -> Workspace:
    """The composition root for `target` (region rule and errors as in greenlight.workspace).

    Raises:
        ConfigurationError: also when the home is a file (settings.check_home).
    """
    ws = Workspace.open(target, region=region, home=home)
    check_home(ws.home)
    return ws


def group_warning(ws: Workspace, group: str | None, config: Path | None = None) -> str | None:
    """"no such model package group ...; known: ..." when `group` (None: the configuration's) is not in ws's
    registry, else None. A typo in a group name otherwise serves 503 forever or deploys nothing, quietly.
    A registry that cannot be asked gives no warning (logged): the command itself will say why.

    Raises:
        ConfigurationError: the deployment configuration is bad, or the name breaks SageMaker's rule.
    """
    import logging

    from greenlight.errors import GreenlightError

    group = ws.deploy_config(config, group=group).group
    try:
        known = ws.registry.list_groups()
    except GreenlightError as exc:
        logging.getLogger(__name__).info("cannot list the model package groups to check %r: %s", group, exc)
        return None
    if group in known:
        return None
    return (f"no such model package group {group!r}; known: {', '.join(known) or 'none yet'} (nothing is served "
            "or deployed for it until a version is registered there)")


def _check_port(port: int) -> int:
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ParameterError(f"port {port!r} is not a TCP port (0-65535; 0 picks a free one)")
    return port


# -- the training pipeline ------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainResult:
    execution_id: str
    status: str
    group: str | None
    version: int | None
    steps: tuple[dict[str, Any], ...]
    deliveries: tuple[dict[str, Any], ...] = ()
    arn: str | None = None  # the registered model package version
    registered_as: str | None = None  # its approval status at registration


def definition(region: str = "us-east-1", **flags: Any) -> dict[str, Any]:
    """The pipeline definition, built offline (no credentials, no network), as a dict."""
    from pipelines.config import PipelineConfig
    from pipelines.definition import build_definition, gc_paused
    from pipelines.sessions import offline_session, quiet_sdk

    config = PipelineConfig.resolve(region=region, **flags)
    quiet_sdk(config.region)
    with gc_paused():
        return json.loads(build_definition(config, offline_session(config)))


def train(ws: Workspace, data: Path | None = None, params: Mapping[str, str] | None = None,
          on_step: Callable | None = None) -> TrainResult:
    """Run the training pipeline: on this machine for a local workspace, on SageMaker for an aws one.

    `params` overrides pipeline parameters (e.g. {"NEstimators": "200"}). Locally `on_step(step,
    seconds)` is called at each step's start (seconds None) and end, and a version registered as
    Approved is deployed at once (its event is delivered). On AWS the pipeline is upserted (role and
    bucket from SAGEMAKER_PIPELINE_ROLE_ARN and ARTIFACT_BUCKET, as in CodeBuild), started, and waited
    for (`on_step(step_dict)` at each step status change; at most 4 hours); `data` must then be None
    (the bundled data set is uploaded, or pass InputDataUrl=s3://... in params).

    Raises:
        ParameterError, DataError, ConfigurationError: bad parameters, data or settings, before anything runs.
        ExecutionFailed: a step failed (the execution record says which and why).
    """
    if ws.target is Target.AWS:
        return _train_on_aws(ws, data, params, on_step)
    from pipelines.config import PipelineConfig
    from pipelines.definition import build_definition, gc_paused
    from pipelines.local.executions import ExecutionStore
    from pipelines.local.runner import LocalRunner
    from pipelines.local.staging import check_input_uri, stage_data
    from pipelines.parameters import check_parameters
    from pipelines.sessions import offline_session, quiet_sdk

    overrides = check_parameters(dict(params or {}))
    config = PipelineConfig.resolve(env={})
    if "InputDataUrl" in overrides:
        if data is not None:
            raise DataError("give either data or the InputDataUrl parameter, not both")
        check_input_uri(ws.store, overrides["InputDataUrl"])
    else:
        overrides["InputDataUrl"] = stage_data(ws.store, config, data)
    runner = LocalRunner(ws.store, ws.registry, ExecutionStore(ws.home / "executions"))
    runner.prepare()  # the job processes' imports run on another CPU while the definition is built
    if on_step is not None:
        runner.on_step = on_step
    try:
        quiet_sdk(config.region)
        with gc_paused():
            built = json.loads(build_definition(config, offline_session(config, ws.store.put_bytes)))
        record = runner.run(built, overrides, pipeline_name=config.pipeline_name)
    finally:
        runner.close()
    registered = record.registered or {}
    deliveries = tuple(deliver_pending(ws)) if registered else ()
    return TrainResult(record.execution_id, record.status, registered.get("group"), registered.get("version"),
                       tuple({"name": s.name, "type": s.type, "status": s.status, "outcome": s.outcome,
                              "failure_reason": s.failure_reason} for s in record.steps), deliveries,
                       registered.get("arn"), registered.get("status"))


def upsert_pipeline(ws: Workspace, **flags: Any):
    """Create or update the pipeline on SageMaker; returns (config, arn, created).

    Builds the same definition as `definition()`, with the code uploaded to the bucket, and puts the
    bundled diabetes data at the InputDataUrl default so a plain start has data. `flags` are
    PipelineConfig.resolve's (pipeline_name, model_package_group, role_arn, bucket, prefix, tags).
    """
    from greenlight.aws_errors import aws_call, aws_errors
    from greenlight.data import default_dataset_csv
    from greenlight.store import split_s3_uri
    from pipelines.aws import upsert_pipeline as upsert
    from pipelines.config import PipelineConfig
    from pipelines.definition import build_definition, gc_paused
    from pipelines.sessions import aws_session, quiet_sdk

    config = PipelineConfig.resolve(require_aws=True, region=ws.region, **flags)
    quiet_sdk(config.region)
    data_bucket, data_key = split_s3_uri(config.default_input_uri)
    aws_call("PutObject", ws.client("s3").put_object, Bucket=data_bucket, Key=data_key, Body=default_dataset_csv())
    with gc_paused(), aws_errors(f"uploading the pipeline's code to s3://{config.bucket}"):
        text = build_definition(config, aws_session(config, ws.session))  # the SDK uploads code to S3
    arn, created = upsert(ws.client("sagemaker"), name=config.pipeline_name, definition=text,
                          role_arn=config.role_arn, tags=config.tag_list())
    return config, arn, created


def _train_on_aws(ws: Workspace, data: Path | None, params: Mapping[str, str] | None,
                  on_step: Callable | None) -> TrainResult:
    from pipelines.aws import start_execution, wait_for_execution
    from pipelines.parameters import check_parameters

    if data is not None:
        raise DataError("on AWS the data must already be in S3: pass params={'InputDataUrl': 's3://...'}")
    overrides = check_parameters(dict(params or {}))
    config, _, _ = upsert_pipeline(ws)
    sagemaker = ws.client("sagemaker")
    arn = start_execution(sagemaker, name=config.pipeline_name, parameters=overrides)
    result = wait_for_execution(sagemaker, arn, poll_seconds=30.0, timeout_seconds=4 * 3600.0,
                                on_step=on_step or (lambda step: None))
    newest = ws.registry.list_versions(config.model_package_group)
    return TrainResult(arn.rsplit("/", 1)[-1], result.status, config.model_package_group,
                       newest[0].version if newest else None,
                       tuple({"name": s.get("StepName"), "status": s.get("StepStatus"),
                              "failure_reason": s.get("FailureReason")} for s in result.steps), (),
                       newest[0].arn if newest else None, newest[0].status.value if newest else None)


# -- the registry -------------------------------------------------------------------------------

def _group(ws: Workspace, group: str | None) -> str:
    return group or ws.deploy_config().group


def versions(ws: Workspace, group: str | None = None, status: ApprovalStatus | str | None = None
             ) -> list[ModelVersion]:
    """The group's versions, newest first (optionally of one approval status)."""
    return ws.registry.list_versions(_group(ws, group), ApprovalStatus(status) if status else None)


def show(ws: Workspace, version: int | str, group: str | None = None) -> dict[str, Any]:
    """One version's fields, with its metric values when the metrics files are at hand (locally)."""
    from greenlight.registry import resolve_version
    from greenlight.registry.metrics import metric_values

    found = resolve_version(ws.registry, str(version), _group(ws, group))
    read = ws.store.get_bytes if ws.target is Target.LOCAL else None
    return {**found.to_dict(), "metric_values": metric_values(found, read)}


# -- approval and deployment --------------------------------------------------------------------

@dataclass(frozen=True)
class ApprovalResult:
    group: str
    version: int
    arn: str
    before: str
    after: str
    changed: bool
    deliveries: tuple[dict[str, Any], ...]  # locally: the approval handler's result per delivered event

    @property
    def ok(self) -> bool:
        return all(d.get("ok", True) for d in self.deliveries)

    @property
    def results(self) -> list[dict[str, Any]]:
        """Per target (across the delivered events): what the handler did, last result per target."""
        last: dict[str, dict[str, Any]] = {}
        for delivery in self.deliveries:
            for result in (delivery.get("report") or {}).get("results", []):
                if result["action"] != "none" or result["target"] not in last:
                    last[result["target"]] = result
        return list(last.values())


def _set_status(ws: Workspace, version: int | str, status: ApprovalStatus, description: str | None,
                group: str | None) -> ApprovalResult:
    from greenlight.registry import resolve_version

    before = resolve_version(ws.registry, str(version), _group(ws, group))
    after = ws.registry.update_status(before.group, before.version, status, description)
    deliveries = tuple(deliver_pending(ws)) if ws.target is Target.LOCAL else ()
    return ApprovalResult(after.group, after.version, after.arn, before.status.value, after.status.value,
                          before.status is not status, deliveries)


def approve(ws: Workspace, version: int | str, group: str | None = None,
            description: str | None = None) -> ApprovalResult:
    """Approve a version. Locally its event is delivered to the approval handler at once, which deploys
    every target; on AWS SageMaker emits the event and the deployed handler does the same."""
    return _set_status(ws, version, ApprovalStatus.APPROVED, description, group)


def reject(ws: Workspace, version: int | str, group: str | None = None,
           description: str | None = None) -> ApprovalResult:
    """Reject a version; if it was the newest Approved one, every target rolls back to the previous one."""
    return _set_status(ws, version, ApprovalStatus.REJECTED, description, group)


def promote(ws: Workspace, version: int | str, stage: str, description: str | None = None,
            group: str | None = None, config: Path | None = None) -> ApprovalResult:
    """Promote an Approved version to a `gate = "promotion"` stage: sets its ModelLifeCycle (Stage=stage,
    StageStatus=Approved); locally the event is delivered at once and the stage deploys it.

    Raises:
        PromotionRefused (exit 2): not Approved, or it has not passed the previous stage (running there on
            every target, so smoke-tested, for soak_minutes); ParameterError: no such stage.
    """
    from datetime import UTC, datetime

    from deploy.engine.stages import why_not_promotable
    from greenlight.registry import resolve_version
    from greenlight.registry.model import ModelLifeCycle

    settings = ws.deploy_config(config, group=group)
    target_stage = settings.stage(stage)
    found = resolve_version(ws.registry, str(version), settings.group)
    if target_stage.index == 0:
        raise PromotionRefused(f"stage {stage} is the first stage: it deploys on approval (greenlight models "
                               f"approve {found.version})")
    previous = settings.stage_list()[target_stage.index - 1]
    before = ws.stage_reconciler(settings, previous)
    _, observed, unobservable = before.survey()
    saved = before.status.load() or {}
    why = why_not_promotable(found, target_stage, previous, observed, unobservable, saved.get("since") or {},
                             datetime.now(UTC))
    if why is not None:
        raise PromotionRefused(f"cannot promote to {stage}: {why}")
    return _set_lifecycle(ws, found, ModelLifeCycle(stage, "Approved", description), config)


def reject_in_stage(ws: Workspace, version: int | str, stage: str, description: str | None = None,
                    group: str | None = None, config: Path | None = None) -> ApprovalResult:
    """StageStatus=Rejected for that stage only: it rolls back to its newest other eligible version (or its
    when_nothing_approved policy); the other stages keep what they serve.

    Raises:
        ParameterError: no such stage; NotFoundError: no such version.
    """
    from greenlight.registry import resolve_version
    from greenlight.registry.model import ModelLifeCycle

    settings = ws.deploy_config(config, group=group)
    settings.stage(stage)
    found = resolve_version(ws.registry, str(version), settings.group)
    return _set_lifecycle(ws, found, ModelLifeCycle(stage, "Rejected", description), config)


def _set_lifecycle(ws: Workspace, found: ModelVersion, lifecycle, config: Path | None) -> ApprovalResult:
    before = found.stage_status(lifecycle.stage)
    after = ws.registry.update_lifecycle(found.group, found.version, lifecycle)
    deliveries = tuple(deliver_pending(ws, config)) if ws.target is Target.LOCAL else ()
    return ApprovalResult(after.group, after.version, after.arn, "none" if before is None else before.value,
                          lifecycle.stage_status, before is None or before.value != lifecycle.stage_status,
                          deliveries)


def deliver_pending(ws: Workspace, config: Path | None = None) -> list[dict[str, Any]]:
    """Locally, hand the outbox's undelivered state-change events to the approval handler (oldest first),
    each with the reconciler of its group; returns the handler's result per event."""
    from deploy.handler import deliver_outbox

    default = ws.deploy_config(config)
    engines: dict[str | None, Any] = {}

    def reconciler_for(group: str | None):
        if group not in engines:
            engines[group] = ws.reconciler(default if group in (None, default.group)
                                           else ws.deploy_config(config, group=group))
        return engines[group]

    return deliver_outbox(ws.local_registry, reconciler_for)


def deploy(ws: Workspace, group: str | None = None, dry_run: bool = False, config: Path | None = None
           ) -> dict[str, Any]:
    """A plain reconcile (what approvals trigger): the report, as a dict. Locally, undelivered events
    are delivered first."""
    settings = ws.deploy_config(config, group=group)
    if ws.target is Target.LOCAL and not dry_run:
        deliver_pending(ws, config)
    return ws.reconciler(settings).reconcile(dry_run=dry_run, trigger="greenlight deploy").to_dict()


def rollouts_in_progress(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The results of a report (a dict) that are a rollout between two steps (issue 22)."""
    return [r for r in report.get("results", []) if r.get("in_progress") and r.get("rollout")]


def follow_rollouts(ws: Workspace, group: str | None = None, config: Path | None = None, *,
                    progress: Callable[[str], None] = lambda line: None,
                    sleep: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Locally, a rollout advances when something reconciles (there is no resync schedule): reconcile again every
    fraction of the shortest step until no rollout is in progress, saying each step (`progress`); the last report.
    Ctrl-C stops following (between reconciles the rollout stays where it is; `greenlight deploy` takes it up)."""
    import time

    settings = ws.deploy_config(config, group=group)
    policies = [p for p in (settings.endpoint.traffic_policy, settings.lambda_.traffic_policy) if p.progressive]
    shortest = min([p.step_wait_seconds for p in policies] + [p.bake_seconds for p in policies] + [5.0])
    pause = max(0.05, min(0.25, shortest / 5))  # a breach is judged at the next reconcile: keep it close
    reconciler = ws.reconciler(settings)
    said: dict[str, str] = {}
    while True:
        report = reconciler.reconcile(trigger="greenlight: following a rollout").to_dict()
        rolling = rollouts_in_progress(report)
        for result in report["results"]:
            line = result["message"]
            name = f"{result['stage']} {result['target']}" if result.get("stage") else result["target"]
            if (result in rolling or result.get("rolled_back") or result.get("action") == "deploy") \
                    and said.get(name) != line.split(";")[0]:
                said[name] = line.split(";")[0]
                progress(f"{name}: {line}")
        if not rolling:
            return report
        (sleep or time.sleep)(pause)


def abort(ws: Workspace, group: str | None = None, config: Path | None = None) -> dict[str, Any]:
    """`greenlight deploy --abort`: roll back every rollout in progress of the group (each stage's); the report."""
    settings = ws.deploy_config(config, group=group)
    return ws.reconciler(settings).abort().to_dict()


def status(ws: Workspace, group: str | None = None, config: Path | None = None) -> dict[str, Any]:
    """Per target: the running version, the desired one (newest Approved), drift, warnings, the last failure;
    `stages`: per stage {"stage", "gate", "desired", "targets"} (issue 21). Without [stages] the top level is
    as before and `stages` holds the implicit stage; with them `targets` lists every stage's (with "stage")."""
    settings = ws.deploy_config(config, group=group)
    stages = [(stage, _stage_status(ws.stage_reconciler(settings, stage))) for stage in settings.stage_list()]
    first = stages[0][1]
    listed = [{"stage": stage.name, "gate": stage.gate, "desired": doc["desired"], "targets": doc["targets"],
               "last_reconcile": doc["last_reconcile"], "last_failure": doc["last_failure"]} for stage, doc in stages]
    if not settings.stages:
        return {"group": settings.group, **first, "stages": listed}
    return {"group": settings.group, "desired": first["desired"],
            "approved": sorted(v.version for v in _versions_or_none(ws, settings.group)
                               if v.status is ApprovalStatus.APPROVED),
            "targets": [{**row, "stage": stage.name} for stage, doc in stages for row in doc["targets"]],
            "last_reconcile": max((d["last_reconcile"] for _, d in stages if d["last_reconcile"]), default=None),
            "last_failure": next((d["last_failure"] for _, d in stages if d["last_failure"]), None),
            "history_error": next((d["history_error"] for _, d in stages if d["history_error"]), None),
            "stages": listed}


def _versions_or_none(ws: Workspace, group: str) -> list[ModelVersion]:
    from greenlight.errors import NotFoundError

    try:
        return ws.registry.list_versions(group)
    except NotFoundError:
        return []


def _stage_status(reconciler) -> dict[str, Any]:
    """One stage's (or the implicit stage's) status: desired, approved, target rows, last reconcile and failure."""
    plan, observed, unobservable = reconciler.survey()  # each target observed once
    saved = reconciler.status.load() or {}
    rows = []
    for step in plan.targets:
        detail = next((dict(o.detail) for o in observed if o.target == step.target), {})
        left = reconciler.status.load_intent(step.target) or {}  # handed over at a long wait, or left by a dead one
        waiting = f"{left.get('summary')}, waiting for {left['waiting']}" if left.get("waiting") else None
        rollout = None
        if isinstance(left.get("rollout"), dict):  # a rollout in progress (issue 22): the record, the counts last read
            last: dict[str, Any] = next((r for r in saved.get("results") or [] if r.get("target") == step.target), {})
            counted = (last.get("rollout") or {}) if (last.get("rollout") or {}).get("version") == left["version"] \
                else {}
            rollout = {**left["rollout"], "counts": counted.get("counts", {})}
        held = (saved.get("rolled_back") or {}).get(step.target)
        rows.append({"target": step.target, "kind": step.kind.value, "running": step.running,
                     "desired": step.desired, "drift": step.action.value in ("deploy", "stop"),
                     "pending_action": step.action.value, "reason": step.reason, "warning": step.warning,
                     "interrupted": None if left.get("waiting") else left.get("summary"),
                     "in_progress": waiting, "rollout": rollout,
                     "rolled_back": held if held and held.get("version") == step.desired else None,
                     "detail": detail})
    rows += [{"target": name, "error": why} for name, why in unobservable.items()]
    return {"desired": None if plan.desired is None else plan.desired.version,
            "approved": list(plan.approved), "targets": rows, "last_reconcile": saved.get("finished"),
            "last_failure": saved.get("last_failure"), "history_error": saved.get("history_error")}


def history(ws: Workspace, group: str | None = None, *, stage: str | None = None, target: str | None = None,
            since: str | None = None, at: str | None = None, config: Path | None = None) -> dict[str, Any]:
    """The deployment history of the group, newest first: every target change with its trigger, event id,
    approver, smoke result, duration and failure. `since` and `at` take ISO 8601 ('2026-12-01T14:00Z') or a
    time ago ('2h'); with `at`, instead: what each target served at that instant, and the change that put it there.

    Raises:
        ParameterError: a time that is not one.
    """
    from datetime import UTC, datetime

    from deploy.engine.history import HistoryQuery, parse_when, served_at

    settings = ws.deploy_config(config, group=group)
    now = datetime.now(UTC)
    store = ws.history(settings)
    if at is not None:
        instant = parse_when(at, "--at", now)
        events = store.read(HistoryQuery(stage=stage, target=target, until=instant))
        return {"group": settings.group, "at": instant, "targets": served_at(events, instant)}
    query = HistoryQuery(stage=stage, target=target, since=None if since is None else parse_when(since, "--since", now))
    return {"group": settings.group, "events": [e.to_dict() for e in store.read(query)]}


# -- cost -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CostResult:
    rows: tuple[dict[str, Any], ...]  # one per option: option, monthly_usd, per_1000_requests_usd, latency, ...
    recommended: str
    reason: str
    break_evens: tuple[dict[str, Any], ...]
    chart: Path | None


def cost(requests_per_day: float, duration_ms: float = 200.0, *, offline: bool = False,
         prices: Path | None = None, chart: Path | None = None, **workload: Any) -> CostResult:
    """The monthly bill of each AWS serving option for a workload, the recommendation and break-evens.

    `workload` takes the other Workload fields (payload_kb, lambda_memory_mb, serverless_memory_mb,
    endpoint_instance, ...); `chart` writes the comparison as a PNG there.

    Raises:
        ParameterError / NotFoundError: a value outside an option's limits, an unknown instance type.
    """
    from greenlight.cost.decision import break_evens, recommend
    from greenlight.cost.loader import load_prices
    from greenlight.cost.model import Workload, estimate

    price_list = load_prices(prices)
    load = Workload(requests_per_day=requests_per_day, duration_ms=duration_ms, **workload)
    costs = estimate(load, price_list)
    evens = break_evens(load, price_list)
    choice = recommend(costs, evens, requests_per_day, offline_ok=offline)
    written = None
    if chart is not None:
        from greenlight.cost.chart import plot

        written = plot(load, price_list, evens, Path(chart),
                       f"{duration_ms:g} ms per request, {price_list.region} prices read {price_list.read_on}")
    rows = tuple({"option": c.option.value, "monthly_usd": c.monthly_usd, "per_1000_requests_usd": c.per_1000_usd,
                  "latency": c.latency.value, "setup": c.setup, "limits_broken": list(c.limits_broken)}
                 for c in costs)
    return CostResult(rows, choice.option.value, choice.reason,
                      tuple({"requests_per_day": b.requests_per_day, "cheaper_below": b.cheaper_below.value,
                             "cheaper_above": b.cheaper_above.value} for b in evens), written)


# -- serving and predictions ------------------------------------------------------------------------

@dataclass(frozen=True)
class Prediction:
    values: tuple[float, ...]
    version: str | None  # the model version that answered (`<group>/<n>`)
    target: str


class Serving:
    """A local endpoint or Lambda front running in this process (for notebooks); close() stops it."""

    def __init__(self, server, url: str, close: Callable[[], None]):
        self.server, self.url, self._close = server, url, close

    def close(self) -> None:
        self._close()

    def __enter__(self) -> Serving:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stage_key(ws: Workspace, group: str | None = None, stage: str | None = None, config: Path | None = None) -> str:
    """Where a stage's local targets live (deploy/names.py `GroupNames.stage`): the group without a stage.

    Raises:
        ParameterError: no such stage.
    """
    settings = ws.deploy_config(config, group=group)
    return settings.group if stage is None else settings.stage(stage).key


def runtime_identity(ws: Workspace, group: str | None = None, config: Path | None = None,
                     stage: str | None = None):
    """What the local endpoint's InvokeEndpoint answers to: the endpoint name the engine derives for the group
    (`endpoint.name` when configured; a stage's: from its key), in the local registry's account and region."""
    from deploy.endpoint.runtime_api import RuntimeIdentity
    from deploy.names import GroupNames

    settings = ws.deploy_config(config, group=_group(ws, group))
    name = settings.endpoint_name if stage is None else GroupNames(settings.stage(stage).key).endpoint
    registry = ws.local_registry
    return RuntimeIdentity(frozenset({name}), registry.account, registry.region)


def runtime_url_line(url: str) -> str:
    """The line to export so boto3's `sagemaker-runtime` client calls the local endpoint."""
    return f"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME={url}"


def serve_endpoint(ws: Workspace, group: str | None = None, port: int = 0, stage: str | None = None) -> Serving:
    """Serve the group's (a stage's) deployed version on a local endpoint in a background thread (local only),
    registered so deployments smoke-test through it, as `greenlight endpoint serve` does in its own process. Its
    predictions are captured under GREENLIGHT_HOME/capture/<group>/ (a stage's: <group>-<stage>) for `monitor`
    (unless GREENLIGHT_CAPTURE is set: that is a process-wide setting)."""
    from deploy.endpoint.server import Endpoint
    from deploy.endpoint.slot import ModelSlot
    from deploy.endpoint.split import Split
    from deploy.endpoint.deployed import DeployedSource, register_serving, unregister_serving
    from greenlight.monitor.local import enable_capture

    key = stage_key(ws, group, stage)  # the group itself without a stage
    enable_capture(ws.home, key)  # this process's predictions are captured for `monitor` (greenlight.monitor.local)
    endpoint = Endpoint(ModelSlot(DeployedSource(ws.home, key)), "127.0.0.1", _check_port(port),
                        poll_seconds=0.2, runtime=runtime_identity(ws, group, stage=stage),
                        split=Split(ws.home, key, "endpoint", ModelSlot)).start()
    register_serving(ws.home, key, endpoint.url, token=endpoint.token)

    def close() -> None:
        unregister_serving(ws.home, key)
        endpoint.close()

    return Serving(endpoint, endpoint.url, close)


def serve_lambda(ws: Workspace, group: str | None = None, port: int = 0, stage: str | None = None) -> Serving:
    """Serve the group's (a stage's) local Lambda (its Function URL on the alias) in a background thread."""
    from deploy.endpoint.deployed import register_serving, unregister_serving
    from deploy.function.front import FunctionFront
    from deploy.function.state import TARGET
    from deploy.names import GroupNames
    from greenlight.monitor.local import enable_capture

    config = ws.deploy_config(group=group)
    key = stage_key(ws, group, stage)
    enable_capture(ws.home, key)  # as serve_endpoint
    front = FunctionFront(ws.home, key, config.lambda_.function_name or GroupNames(key).function,
                          config.lambda_.alias, "127.0.0.1", _check_port(port)).start()
    register_serving(ws.home, key, front.url, TARGET)

    def close() -> None:
        unregister_serving(ws.home, key, TARGET)
        front.close()

    return Serving(front, front.url, close)


def predict(ws: Workspace, rows: list[list[float]] | str, target: str = "endpoint", group: str | None = None,
            stage: str | None = None) -> Prediction:
    """Predictions for `rows` (lists of numbers, or CSV text) from the deployed endpoint or Lambda.

    Locally through the running `endpoint serve` / `lambda serve` (or serve_endpoint/serve_lambda); on AWS
    through sagemaker-runtime InvokeEndpoint, or Lambda Invoke of the `live` alias with a Function URL event.

    Raises:
        ServingUnavailable: nothing serves the target locally; DataError: the rows were refused (4xx).
    """
    from greenlight.errors import ServingUnavailable

    body = rows if isinstance(rows, str) else "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows)
    config = ws.deploy_config(group=group)
    if target not in ("endpoint", "lambda"):
        raise DataError(f"unknown target {target!r}: predictions come from 'endpoint' or 'lambda'")
    if ws.target is Target.AWS:
        if stage is not None:
            from deploy.names import GroupNames

            key = config.stage(stage).key
            config = config.model_copy(update={
                "endpoint": config.endpoint.model_copy(update={"name": GroupNames(key).endpoint}),
                "lambda_": config.lambda_.model_copy(update={"function_name": GroupNames(key).function})})
        return _predict_on_aws(ws, config, body, target)
    from deploy.endpoint.client import invoke
    from deploy.endpoint.deployed import read_serving

    key = stage_key(ws, group, stage)
    serving = read_serving(ws.home, key, target)
    if serving is None:
        command = "endpoint serve" if target == "endpoint" else "lambda serve"
        command += f" --stage {stage}" if stage else ""
        raise ServingUnavailable(f"no local {target} is running for {key}: start `greenlight {command}` "
                                 f"(or api.serve_{target}(ws))")
    answer = invoke(serving.url, body.encode(), "text/csv", "application/json")
    return Prediction(tuple(json.loads(answer.body)["predictions"]), answer.model_version, target)


def _predict_on_aws(ws: Workspace, config, body: str, target: str) -> Prediction:
    from greenlight.aws_errors import aws_call

    if target == "endpoint":
        answer = aws_call("InvokeEndpoint", ws.client("sagemaker-runtime").invoke_endpoint,
                          EndpointName=config.endpoint_name, Body=body.encode(), ContentType="text/csv",
                          Accept="application/json")
        return Prediction(tuple(json.loads(answer["Body"].read())["predictions"]), None, target)
    from deploy.function.events import function_url_event, http_response

    event = function_url_event("POST", "/invocations", "", {"content-type": "text/csv"}, body.encode())
    answer = aws_call("Invoke", ws.client("lambda").invoke, FunctionName=config.function_name,
                      Qualifier=config.lambda_.alias, Payload=json.dumps(event).encode())
    status, headers, content = http_response(json.loads(answer["Payload"].read()))
    if status != 200:
        raise DataError(f"the function answered {status}: {content[:300]!r}")
    return Prediction(tuple(json.loads(content)["predictions"]), headers.get("x-greenlight-model-version"), target)


def wait_until_deployed(ws: Workspace, version: int | None, group: str | None = None, timeout: float = 900.0,
                        poll: float = 10.0, stage: str | None = None) -> dict[str, Any]:
    """Poll status() until every target (of `stage`, else of every stage) runs `version` (None: runs nothing);
    returns the last status.

    Locally approvals deploy before they return, so this returns at once; on AWS the approval handler
    deploys asynchronously after SageMaker's event.

    Raises:
        WaitTimeout: naming the targets still elsewhere after `timeout` seconds.
    """
    import time

    from greenlight.errors import WaitTimeout

    deadline = time.monotonic() + timeout
    while True:
        current = status(ws, group)
        rows = current["targets"] if stage is None else \
            [t for s in current["stages"] if s["stage"] == stage for t in s["targets"]]
        behind = [f"{t['target']} runs {t.get('running')}" for t in rows if t.get("running") != version]
        if not behind:
            return current
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"after {timeout:g} s not every target runs v{version}: {', '.join(behind)}")
        time.sleep(poll)


# -- drift monitoring -------------------------------------------------------------------------------

@dataclass(frozen=True)
class DriftCheck:
    result: Any  # greenlight.monitor.service.MonitorResult: per version compared, each feature's verdict
    report: Path | None  # index.html of the report, when one was asked for
    notes: tuple[str, ...] = ()  # what was not read and why (a stage's target in another account), one line each

    @property
    def drift(self) -> bool:
        return self.result.drift

    @property
    def exit_code(self) -> int:
        """What `greenlight monitor` exits with: 3 when drift was found, else 0."""
        return 3 if self.result.drift else 0

    def to_json(self, all_versions: bool = False) -> Any:
        """`greenlight monitor --json`: {"version", "rows", "features": [{"name", "psi", "drift"}], "prediction"},
        or a list of those (newest version first) with all_versions."""
        return self.result.to_json(all_versions)


def monitor(ws: Workspace, since: str = "24h", group: str | None = None, *, targets: list[str] | None = None,
            stage: str | None = None, all_versions: bool = False, report: Path | None = None,
            psi: float | None = None, p_value: float | None = None, min_rows: int | None = None) -> DriftCheck:
    """Compare the traffic captured in the last `since` (a duration: 30m, 2h, 7d) with the training baseline of
    the model version that served it: every feature and the predictions, by PSI and a two-sample test.

    Reads every stage's capture, or only `stage`'s (a [stages.<name>] of greenlight.toml; ParameterError if
    unknown): locally the capture files (GREENLIGHT_HOME/capture/<group>/; a stage's: <group>-<stage>/), on AWS
    the CloudWatch Logs of the stages' enabled serving targets (deploy/capture_sources.py; a stage in another
    account through its role_arn). Records are attributed to the stage whose target wrote them and grouped by
    model version; `targets` keeps only some serving targets (endpoint, lambda, batch). Only the newest version
    seen in the window is compared unless `all_versions`. `report` writes PNGs and an HTML page there.
    Thresholds: the arguments, else GREENLIGHT_MONITOR_* (greenlight.monitor.settings), else PSI 0.2, p 0.01,
    100 rows.

    Raises:
        ParameterError: a bad `since`, target or stage. NotFoundError: no capture in the window, or no baseline
        for the version that served it. ConfigurationError: a bad threshold.
    """
    import itertools
    import os
    from datetime import UTC, datetime

    from greenlight.errors import ParameterError
    from greenlight.monitor import settings
    from greenlight.monitor.local import TARGETS, capture_dir, read_local
    from greenlight.monitor.records import parse_duration
    from greenlight.monitor.registry_baselines import RegistryBaselines
    from greenlight.monitor.service import monitor as compare

    window = parse_duration(since)
    unknown = sorted(set(targets or ()) - set(TARGETS))
    if unknown:
        raise ParameterError(f"unknown serving target(s) {', '.join(unknown)} (expected: {', '.join(TARGETS)})")
    limits = settings.thresholds(os.environ, psi=psi, p_value=p_value, min_rows=min_rows)
    config = ws.deploy_config(group=group)
    until = datetime.now(UTC)
    start = until - window
    read: Callable[[str], bytes]
    notes: tuple[str, ...] = ()
    stages = config.stage_list() if stage is None else [config.stage(stage)]
    if ws.target is Target.LOCAL:  # each stage's targets serve under its key: its own capture directory
        records = itertools.chain.from_iterable(
            read_local(ws.home, s.key, start, targets, None if s.implicit else s.name) for s in stages)
        read = ws.store.get_bytes
        where = f" in {', '.join(str(capture_dir(ws.home, s.key)) for s in stages)}"
    else:
        from deploy.capture_sources import capture_plans
        from greenlight.monitor.aws import read_cloudwatch, s3_reader

        plans = capture_plans(config, stage)
        notes = tuple(note for plan in plans for note in plan.not_read)  # the CLI prints them, one line each
        def logs(plan):  # a stage in another account: its logs are there, read through its role
            return (ws.client if plan.role_arn is None else ws.assumed(plan.role_arn, str(plan.stage)))("logs")

        records = itertools.chain.from_iterable(
            read_cloudwatch(logs(plan), plan.sources, start, until, targets) for plan in plans)
        read = s3_reader(ws.client("s3"))
        where = f" in CloudWatch Logs ({', '.join(plan.log_groups for plan in plans)})"
    chosen = None if stage is None or stages[0].implicit else stage
    result = compare(config.group, records, RegistryBaselines(ws.registry, config.group, read), limits, since=start,
                     until=until, targets=targets, stage=chosen, all_versions=all_versions, where=where)
    written = None
    if report is not None:
        from greenlight.monitor.report import write_report

        written = write_report(result, Path(report))
    return DriftCheck(result, written, notes)
