"""`greenlight models list|show|approve|reject`: the model registry from the command line.

The composition root for the registry: `--target local` (the default) opens the SQLite registry
under GREENLIGHT_HOME, `--target aws` builds a boto3 SageMaker client for AWS_REGION. Heavy imports
stay inside the functions so `greenlight --help` stays fast.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import typer

from greenlight.errors import ConfigurationError, ParameterError
from greenlight.settings import DEFAULT_MODEL_PACKAGE_GROUP

if TYPE_CHECKING:
    from greenlight.registry import ModelRegistry, ModelVersion

__all__ = ["app"]

app = typer.Typer(
    help="List, show, approve and reject model versions in the model registry.",
    no_args_is_help=True,
)

TARGETS = ("local", "aws")

_GROUP = typer.Option(DEFAULT_MODEL_PACKAGE_GROUP, "--group", "-g", help="Model package group.")
_TARGET = typer.Option("local", "--target", "-t", metavar="local|aws",
                       help="local: the SQLite registry under GREENLIGHT_HOME; aws: the SageMaker Model Registry.")
_JSON = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")
_VERSION = typer.Argument(..., metavar="VERSION", help="A version number in --group, or a model package ARN.")
_DESCRIPTION = typer.Option(None, "--description", "-d", help="Why; stored as the ApprovalDescription.")


def _registry(target: str) -> ModelRegistry:
    """The registry --target names; the only place the CLI builds a registry or an AWS client."""
    if target == "local":
        from greenlight.registry import LocalModelRegistry
        from greenlight.settings import home

        return LocalModelRegistry(home())
    if target == "aws":
        import boto3

        from greenlight.registry import SageMakerModelRegistry

        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not region:
            raise ConfigurationError("--target aws needs a region: set AWS_REGION or AWS_DEFAULT_REGION")
        return SageMakerModelRegistry(boto3.client("sagemaker", region_name=region))
    raise ParameterError(f"unknown --target {target!r} (expected one of: {', '.join(TARGETS)})")


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


def _console():
    from rich.console import Console

    return Console(highlight=False)


@app.command("list")
def list_versions(
    group: str = _GROUP,
    status: str | None = typer.Option(None, "--status", "-s", metavar="PendingManualApproval|Approved|Rejected",
                                      help="Only versions with this approval status."),
    target: str = _TARGET,
    as_json: bool = _JSON,
) -> None:
    """List the versions of a model package group, newest first."""
    from greenlight.registry.model import parse_approval_status

    wanted = parse_approval_status(status) if status is not None else None
    versions = _registry(target).list_versions(group, wanted)
    if as_json:
        _echo_json([v.to_dict() for v in versions])
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
def show(version: str = _VERSION, group: str = _GROUP, target: str = _TARGET, as_json: bool = _JSON) -> None:
    """Every field of one version, and its metric values when the evaluation file is at hand."""
    from greenlight.registry import resolve_version

    found = resolve_version(_registry(target), version, group)
    metrics = _metric_values(found, target)
    if as_json:
        _echo_json({**found.to_dict(), "metric_values": metrics})
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
def approve(version: str = _VERSION, description: str | None = _DESCRIPTION, group: str = _GROUP,
            target: str = _TARGET) -> None:
    """Approve a version: records the status change and its state-change event."""
    _set_status(version, "Approved", description, group, target)


@app.command()
def reject(version: str = _VERSION, description: str | None = _DESCRIPTION, group: str = _GROUP,
           target: str = _TARGET) -> None:
    """Reject a version: records the status change and its state-change event."""
    _set_status(version, "Rejected", description, group, target)


def _set_status(ref: str, status_value: str, description: str | None, group: str, target: str) -> None:
    from greenlight.registry import ApprovalStatus, resolve_version

    status = ApprovalStatus(status_value)
    registry = _registry(target)
    before = resolve_version(registry, ref, group)
    after = registry.update_status(before.group, before.version, status, description)
    if before.status is status:
        typer.echo(f"Version {after.version} of {after.group} was already {status.value}; nothing changed.")
    else:
        typer.echo(f"{status.value} version {after.version} of {after.group} "
                   f"(was {before.status.value}): {after.arn}")
        if target == "local":
            typer.echo("Recorded a 'SageMaker Model Package State Change' event in the local outbox, "
                       "in the same transaction as the status change.")


def _metric_values(version: ModelVersion, target: str) -> list[dict[str, Any]]:
    """Each metrics file the version's ModelMetrics names, with its values read from local storage."""
    from greenlight.errors import GreenlightError
    from greenlight.settings import home
    from greenlight.store import LocalArtifactStore

    store = LocalArtifactStore(home() / "s3")
    found = []
    for source, uri in _metric_sources(version.model_metrics):
        entry: dict[str, Any] = {"source": source, "uri": uri, "values": None, "note": None}
        if target != "local":
            entry["note"] = "metric values are read from local storage only (--target local)"
        else:
            try:
                entry["values"] = flatten_numbers(json.loads(store.get_bytes(uri)))
            except GreenlightError as exc:
                entry["note"] = f"evaluation file not available locally: {exc}"
            except (ValueError, UnicodeDecodeError) as exc:
                entry["note"] = f"evaluation file is not JSON: {exc}"
        found.append(entry)
    return found


def _metric_sources(model_metrics: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """('ModelQuality.Statistics', 's3://...') for every MetricsSource in a ModelMetrics structure."""
    sources = []
    for key, value in sorted(model_metrics.items()):
        if isinstance(value, dict):
            path = f"{prefix}{key}"
            if isinstance(value.get("S3Uri"), str):
                sources.append((path, value["S3Uri"]))
            else:
                sources.extend(_metric_sources(value, path + "."))
    return sources


def flatten_numbers(data: Any, prefix: str = "") -> dict[str, float | int]:
    """{'regression_metrics.mse.value': 0.12, ...}: every number in a JSON document, by dotted path."""
    if isinstance(data, bool):
        return {}
    if isinstance(data, (int, float)):
        return {prefix or "value": data}
    out: dict[str, float | int] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten_numbers(value, f"{prefix}{key}."))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.update(flatten_numbers(value, f"{prefix}{i}."))
    return {k.rstrip("."): v for k, v in out.items()}
