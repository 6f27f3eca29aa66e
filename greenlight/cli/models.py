"""`greenlight models list|show|approve|reject`: the model registry from the command line; `greenlight promote`.

`--target local` (the default) is the SQLite registry under GREENLIGHT_HOME, `--target aws` the
SageMaker Model Registry in the region of the AWS region rule (greenlight.workspace).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from greenlight.cli.options import GROUP, JSON, REGION, TARGET, echo_json, workspace
from greenlight.registry.model import ApprovalStatus
from greenlight.workspace import Target

if TYPE_CHECKING:
    from greenlight.workspace import Workspace

__all__ = ["app", "promote"]

app = typer.Typer(
    help="List, show, approve and reject model versions in the model registry.",
    no_args_is_help=True,
)

_VERSION = typer.Argument(..., metavar="VERSION", help="A version number in --group, or a model package ARN.")
_DESCRIPTION = typer.Option(None, "--description", "-d", help="Why; stored as the ApprovalDescription.")


def _console():
    from rich.console import Console

    return Console(highlight=False)


@app.command("list")
def list_versions(
    group: str = GROUP,
    status: str | None = typer.Option(None, "--status", "-s", metavar="PendingManualApproval|Approved|Rejected",
                                      help="Only versions with this approval status."),
    target: str = TARGET,
    region: str | None = REGION,
    as_json: bool = JSON,
) -> None:
    """List the versions of a model package group, newest first."""
    from greenlight.registry.model import parse_approval_status

    wanted = parse_approval_status(status) if status is not None else None
    versions = workspace(target, region).registry.list_versions(group, wanted)
    if as_json:
        echo_json([v.to_dict() for v in versions])
        return
    console = _console()
    if not versions:
        console.print(f"No versions in {group}" + (f" with status {wanted.value}." if wanted else "."))
        return
    from rich.table import Table

    table = Table(title=f"{group} ({target})")
    for column in ("Version", "Status", "Created (UTC)"):
        table.add_column(column, no_wrap=True)
    table.add_column("Approval description", overflow="fold")
    for v in versions:
        table.add_row(str(v.version), v.status.value, v.created.strftime("%Y-%m-%d %H:%M:%S"),
                      v.approval_description or "")
    console.print(table)


@app.command()
def show(version: str = _VERSION, group: str = GROUP, target: str = TARGET, region: str | None = REGION,
         as_json: bool = JSON) -> None:
    """Every field of one version, and its metric values when the evaluation file is at hand."""
    from greenlight.registry import resolve_version
    from greenlight.registry.metrics import metric_values

    ws = workspace(target, region)
    found = resolve_version(ws.registry, version, group)
    metrics = metric_values(found, ws.store.get_bytes if ws.target is Target.LOCAL else None)
    if as_json:
        echo_json({**found.to_dict(), "metric_values": metrics})
        return
    from rich.table import Table

    console = _console()
    table = Table(title=f"{found.group} version {found.version} ({target})", show_header=False)
    table.add_column("Field", style="bold")
    table.add_column("Value", overflow="fold")
    data = found.to_dict()
    for key in ("group", "version", "arn", "status", "approval_description", "description", "image",
                "model_data_url", "content_types", "response_types", "created", "modified"):
        value = data[key]
        table.add_row(key, ", ".join(value) if isinstance(value, list) else "" if value is None else str(value))
    table.add_row("customer_metadata", "\n".join(f"{k}={v}" for k, v in sorted(found.customer_metadata.items())))
    table.add_row("model_metrics", "\n".join(f"{m['source']}: {m['uri']}" for m in metrics) or "")
    console.print(table)
    for m in metrics:
        if m["values"] is None:
            console.print(f"{m['source']} ({m['uri']}): {m['note']}")
            continue
        values = Table(title=f"{m['source']} ({m['uri']})")
        values.add_column("Metric")
        values.add_column("Value", justify="right")
        for name, value in m["values"].items():
            values.add_row(name, f"{value:.6g}" if isinstance(value, float) else str(value))
        console.print(values)


@app.command()
def approve(version: str = _VERSION, description: str | None = _DESCRIPTION, group: str = GROUP,
            target: str = TARGET, region: str | None = REGION) -> None:
    """Approve a version: records the status change and its state-change event."""
    _set_status(workspace(target, region), version, ApprovalStatus.APPROVED, description, group)


@app.command()
def reject(version: str = _VERSION, description: str | None = _DESCRIPTION, group: str = GROUP,
           target: str = TARGET, region: str | None = REGION,
           stage: str | None = typer.Option(None, "--stage", help="Reject it in this stage only (StageStatus="
                                                                  "Rejected): that stage rolls back, others keep "
                                                                  "serving.")) -> None:
    """Reject a version: records the status change and its state-change event (every stage drops it), or
    with --stage its ModelLifeCycle in that stage only."""
    if stage is None:
        _set_status(workspace(target, region), version, ApprovalStatus.REJECTED, description, group)
        return
    from greenlight import api

    _print_lifecycle(api.reject_in_stage(workspace(target, region), version, stage, description, group), stage)


def promote(version: str = _VERSION,
            stage: str = typer.Option(..., "--stage", help="The stage (gate = \"promotion\") to promote it to."),
            description: str | None = typer.Option(None, "--description", "-d", help="Why; stored as the "
                                                                                      "StageDescription."),
            group: str = GROUP, target: str = TARGET, region: str | None = REGION) -> None:
    """Promote an Approved version that passed the previous stage: ModelLifeCycle Stage=NAME,
    StageStatus=Approved; that stage deploys it. Refused (exit 2) otherwise."""
    from greenlight import api

    _print_lifecycle(api.promote(workspace(target, region), version, stage, description, group), stage)


def _print_lifecycle(result, stage: str) -> None:
    from greenlight.cli.deploy import print_deliveries

    if not result.changed:
        typer.echo(f"Version {result.version} of {result.group} was already {result.after} in {stage}; "
                   "nothing changed.")
    else:
        typer.echo(f"{result.after} version {result.version} of {result.group} in stage {stage} (was "
                   f"{result.before}): {result.arn}")
    print_deliveries(list(result.deliveries))


def _set_status(ws: Workspace, ref: str, status: ApprovalStatus, description: str | None, group: str) -> None:
    from greenlight import api
    from greenlight.cli.deploy import print_deliveries

    change = api.approve if status is ApprovalStatus.APPROVED else api.reject
    result = change(ws, ref, group, description)
    if not result.changed:
        typer.echo(f"Version {result.version} of {result.group} was already {status.value}; nothing changed.")
    else:
        typer.echo(f"{status.value} version {result.version} of {result.group} (was {result.before}): {result.arn}")
    print_deliveries(list(result.deliveries), ws)
