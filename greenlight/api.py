"""Greenlight's Python API: the calls the CLI commands, the notebooks and `greenlight demo` share.

    import greenlight.api as gl
    ws = gl.workspace("local")                 # or gl.workspace("aws", region="eu-west-1")
    run = gl.train(ws)                         # the training pipeline (locally: this machine)
    gl.versions(ws)                            # the registry, newest first
    gl.approve(ws, run.version)                # approval -> every target deploys (locally at once)
    gl.status(ws)                              # per target: running and desired version, drift
    gl.reject(ws, run.version)                 # -> rolled back to the previous Approved version

Every function takes a `Workspace` (the composition root, greenlight.workspace) and returns plain data;
printing is the caller's business. Errors are GreenlightError subclasses, as everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenlight.errors import ConfigurationError, DataError
from greenlight.registry.model import ApprovalStatus, ModelVersion
from greenlight.workspace import Target, Workspace

__all__ = ["ApprovalResult", "TrainResult", "approve", "definition", "deliver_pending", "deploy", "reject",
           "show", "status", "train", "versions", "workspace"]


def workspace(target: Target | str = "local", region: str | None = None, home: Path | None = None) -> Workspace:
    """The composition root for `target` (region rule and errors as in greenlight.workspace)."""
    return Workspace.open(target, region=region, home=home)


# -- the training pipeline ------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainResult:
    execution_id: str
    status: str
    group: str | None
    version: int | None
    steps: tuple[dict[str, Any], ...]
    deliveries: tuple[dict[str, Any], ...] = ()


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
    """Run the training pipeline on this machine (local workspaces): the same definition SageMaker runs.

    `params` overrides pipeline parameters (e.g. {"NEstimators": "200"}); `on_step(step, seconds)` is
    called at each step's start (seconds None) and end. A version registered as Approved is deployed at
    once (its event is delivered). On AWS use `greenlight pipeline upsert` / `start` (CodeBuild does).

    Raises:
        ParameterError, DataError: bad parameters or data, before anything runs.
        ExecutionFailed: a step failed (the execution record says which and why).
    """
    if ws.target is not Target.LOCAL:
        raise ConfigurationError("train() runs the pipeline locally; on AWS run `greenlight pipeline upsert` "
                                 "and `greenlight pipeline start --wait` (or let CodePipeline do it)")
    from pipelines.config import PipelineConfig
    from pipelines.definition import build_definition, check_parameters, gc_paused
    from pipelines.local.executions import ExecutionStore
    from pipelines.local.runner import LocalRunner
    from pipelines.local.staging import check_input_uri, stage_data
    from pipelines.sessions import offline_session, quiet_sdk

    overrides = check_parameters(dict(params or {}))
    config = PipelineConfig.resolve(env={})
    if "InputDataUrl" in overrides:
        if data is not None:
            raise DataError("give either data or the InputDataUrl parameter, not both")
        check_input_uri(ws.store, overrides["InputDataUrl"])
    else:
        overrides["InputDataUrl"] = stage_data(ws.store, config, data)
    quiet_sdk(config.region)
    with gc_paused():
        built = json.loads(build_definition(config, offline_session(config, ws.store.put_bytes)))
    runner = LocalRunner(ws.store, ws.registry, ExecutionStore(ws.home / "executions"))
    if on_step is not None:
        runner.on_step = on_step
    record = runner.run(built, overrides, pipeline_name=config.pipeline_name)
    registered = record.registered or {}
    deliveries = tuple(deliver_pending(ws)) if registered else ()
    return TrainResult(record.execution_id, record.status, registered.get("group"), registered.get("version"),
                       tuple({"name": s.name, "type": s.type, "status": s.status, "outcome": s.outcome,
                              "failure_reason": s.failure_reason} for s in record.steps), deliveries)


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
    return ApprovalResult(after.group, after.version, before.status.value, after.status.value,
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


def status(ws: Workspace, group: str | None = None, config: Path | None = None) -> dict[str, Any]:
    """Per target: the running version, the desired one (newest Approved), drift, warnings, the last failure."""
    settings = ws.deploy_config(config, group=group)
    reconciler = ws.reconciler(settings)
    plan = reconciler.plan()
    observed, unobservable = reconciler.observe()
    saved = reconciler.status.load() or {}
    rows = []
    for step in plan.targets:
        detail = next((dict(o.detail) for o in observed if o.target == step.target), {})
        rows.append({"target": step.target, "kind": step.kind.value, "running": step.running,
                     "desired": step.desired, "drift": step.action.value in ("deploy", "stop"),
                     "pending_action": step.action.value, "reason": step.reason, "warning": step.warning,
                     "detail": detail})
    rows += [{"target": name, "error": why} for name, why in unobservable.items()]
    return {"group": settings.group, "desired": None if plan.desired is None else plan.desired.version,
            "approved": list(plan.approved), "targets": rows, "last_reconcile": saved.get("finished"),
            "last_failure": saved.get("last_failure")}
