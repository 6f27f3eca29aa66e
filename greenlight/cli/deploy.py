"""`greenlight deploy` (a plain reconcile) and `greenlight status` (each target's running and desired version).

Both build the deployment engine from the composition root for --target; approving or rejecting a
version (`greenlight models approve|reject`) runs the same engine through the approval handler.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from greenlight.cli.options import JSON, REGION, TARGET, echo_json, warn_unknown_group, workspace

__all__ = ["deploy", "print_deliveries", "print_report", "status"]

GROUP = typer.Option(None, "--group", "-g", help="Model package group (default: the configuration's, "
                                                 "greenlight-models unless set).")
CONFIG = typer.Option(None, "--config", help="Deployment configuration TOML (default: $GREENLIGHT_CONFIG, "
                                             "./greenlight.toml, then $GREENLIGHT_HOME/greenlight.toml).")


def _version(v: int | None) -> str:
    return "-" if v is None else f"v{v}"


def print_deliveries(results: list[dict[str, Any]]) -> None:
    """What the approval handler did with the delivered events, per target; exit 1 if a target failed."""
    if not results:
        return
    reconciled = [r for r in results if r["status"] == "reconciled"]
    typer.echo(f"Delivered {len(results)} state-change event{'s' * (len(results) != 1)} to the approval handler; "
               f"{len(reconciled)} reconciled.")
    changed = False
    for result in reconciled:
        report = result["report"]
        if any(r["action"] != "none" or not r["ok"] for r in report["results"]):
            changed = True
            print_report(report)
    if reconciled and not changed:
        typer.echo("  every target already ran the newest Approved version: nothing changed")
    if any(not r["ok"] for r in reconciled):
        raise typer.Exit(1)


def print_report(report: dict[str, Any]) -> None:
    """One line per target: what changed (or why nothing did), failures and warnings flagged."""
    for result in report["results"]:
        mark = "" if result["ok"] else "FAILED "
        name = f"{result['stage']} {result['target']}" if result.get("stage") else result["target"]
        typer.echo(f"  {name}: {mark}{result['message']}")
        if result.get("warning"):
            typer.echo(f"  {name}: warning: {result['warning']}")


def deploy(
    target: str = TARGET,
    region: str | None = REGION,
    group: str | None = GROUP,
    config: Path | None = CONFIG,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; change nothing."),
    as_json: bool = JSON,
) -> None:
    """Bring every target to the newest Approved version of the group: observe, plan, apply what differs.

    Approvals deploy by themselves; run this after missed events, or to see the plan (--dry-run).
    Exits 1 if any target failed (it keeps its previous version).
    """
    from greenlight.api import deploy as reconcile

    ws = workspace(target, region)
    warn_unknown_group(ws, group, config)
    report = reconcile(ws, group, dry_run, config)
    if as_json:
        echo_json(report)
    else:
        desired = _version(report["desired"])
        typer.echo(f"{report['group']}: newest Approved version {desired}"
                   + (" (dry run: nothing changed)" if dry_run else ""))
        print_report(report)
    if not report["ok"]:
        raise typer.Exit(1)


def status(
    target: str = TARGET,
    region: str | None = REGION,
    group: str | None = GROUP,
    config: Path | None = CONFIG,
    as_json: bool = JSON,
) -> None:
    """Per target: the running version, the desired version (newest Approved), drift, and the last failure."""
    from greenlight.api import status as read_status

    ws = workspace(target, region)
    warn_unknown_group(ws, group, config)
    doc = read_status(ws, group, config)
    rows = doc["targets"]
    if as_json:
        echo_json(doc)
        return
    typer.echo(f"{doc['group']}: newest Approved version {_version(doc['desired'])}; "
               f"Approved: {', '.join(f'v{v}' for v in doc['approved']) or 'none'}")
    staged = any("stage" in row for row in rows)
    for row in rows:
        if staged and row is next(r for r in rows if r.get("stage") == row.get("stage")):
            stage = next(s for s in doc["stages"] if s["stage"] == row["stage"])
            typer.echo(f"stage {stage['stage']} (gate {stage['gate']}): desired {_version(stage['desired'])}")
        if "error" in row:
            typer.echo(f"  {row['target']}: UNKNOWN ({row['error']})")
            continue
        drift = f"  DRIFT: {row['reason']}" if row["drift"] else ""
        typer.echo(f"  {row['target']}: runs {_version(row['running'])}, desired {_version(row['desired'])}{drift}")
        if row["warning"]:
            typer.echo(f"  {row['target']}: warning: {row['warning']}")
        if row.get("interrupted"):
            typer.echo(f"  {row['target']}: an interrupted deployment ({row['interrupted']}) is finished or undone "
                       "by the next reconcile")
        if row.get("in_progress"):
            typer.echo(f"  {row['target']}: in progress ({row['in_progress']}); the next reconcile continues it")
    if doc.get("history_error"):
        typer.echo(f"deployment history NOT written by the last reconcile: {doc['history_error']}")
    failure = doc["last_failure"]
    if failure:
        for name, message in failure["targets"].items():
            typer.echo(f"last failure ({failure['at']}, {failure['trigger']}): {name}: {message}")
