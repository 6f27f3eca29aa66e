"""`greenlight deploy` (a plain reconcile) and `greenlight status` (each target's running and desired version).

Both build the deployment engine from the composition root for --target; approving or rejecting a
version (`greenlight models approve|reject`) runs the same engine through the approval handler.

Progressive delivery (issue 22): locally nothing else moves a rollout on, so a command whose reconcile left one
in progress (`models approve`, `deploy`) keeps reconciling until it completes or rolls back, one line on stderr
per step (greenlight.api.follow_rollouts); Ctrl-C stops following and `greenlight deploy` takes it up again. On
AWS the deploy stack's resync schedule moves it. `greenlight deploy --abort` rolls a rollout in progress back.
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


def follow(ws, report: dict[str, Any], group: str | None = None, config: Path | None = None) -> dict[str, Any]:
    """Locally, a report that left a rollout in progress: follow it to its end (module docstring); the last report."""
    from greenlight.api import follow_rollouts, rollouts_in_progress
    from greenlight.workspace import Target

    if ws.target is not Target.LOCAL or not rollouts_in_progress(report):
        return report
    typer.echo("following the rollout until it completes or rolls back (Ctrl-C stops following; "
               "`greenlight deploy` continues it, `greenlight deploy --abort` rolls it back)", err=True)
    return follow_rollouts(ws, group, config, progress=lambda line: typer.echo(f"  {line}", err=True))


def print_deliveries(results: list[dict[str, Any]], ws=None) -> None:
    """What the approval handler did with the delivered events, per target; exit 1 if a target failed. With `ws`
    (local), a rollout the last one left in progress is followed to its end and its outcome printed."""
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
    if ws is not None and reconciled:
        last = reconciled[-1]["report"]
        final = follow(ws, last, last.get("group"))
        if final is not last:
            typer.echo("Rollout ended:")
            print_report(final)
            reconciled[-1] = {**reconciled[-1], "ok": final["ok"]}
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
    abort: bool = typer.Option(False, "--abort", help="Roll back a progressive rollout in progress (the previous "
                                                      "version takes every request again; the aborted version is "
                                                      "not retried until approved again)."),
    as_json: bool = JSON,
) -> None:
    """Bring every target to the newest Approved version of the group: observe, plan, apply what differs.

    Approvals deploy by themselves; run this after missed events, or to see the plan (--dry-run).
    Exits 1 if any target failed (it keeps its previous version).
    """
    from greenlight.api import abort as roll_back
    from greenlight.api import deploy as reconcile
    from greenlight.errors import UsageError

    if abort and dry_run:
        raise UsageError("--abort and --dry-run do not go together: --abort changes what serves")
    ws = workspace(target, region)
    warn_unknown_group(ws, group, config)
    if abort:
        report = roll_back(ws, group, config)
        if as_json:
            echo_json(report)
        elif not report["results"]:
            typer.echo(f"{report['group']}: no rollout in progress; nothing to abort")
        else:
            for result in report["results"]:  # the deployment failed (and is in last_failure); the abort did not
                typer.echo(f"  {result['target']}: {result['message']}")
        if any(r.get("rolled_back") is None for r in report["results"]):
            raise typer.Exit(1)  # a target whose rollout could not be rolled back
        return
    report = reconcile(ws, group, dry_run, config)
    if not dry_run:
        report = follow(ws, report, group, config)
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
        rollout = row.get("rollout")
        if rollout:
            weights = ", ".join(f"{v} {p:g}%" for v, p in rollout["weights"].items())
            counts = "; ".join(f"{v}: {c.get('requests', 0)} requests, {c.get('errors_5xx', 0)} 5xx, p99 "
                               f"{'-' if c.get('p99_ms') is None else format(c['p99_ms'], '.0f') + ' ms'}"
                               for v, c in (rollout.get("counts") or {}).items())
            typer.echo(f"  {row['target']}: rollout {rollout['traffic']} {rollout['phase']}, step "
                       f"{rollout['step'] + 1}/{len(rollout['steps'])}: {weights}" + (f" ({counts})" if counts else ""))
        elif row.get("in_progress"):
            typer.echo(f"  {row['target']}: in progress ({row['in_progress']}); the next reconcile continues it")
        if row.get("rolled_back"):
            held = row["rolled_back"]
            typer.echo(f"  {row['target']}: rolled back v{held['version']} at {held['at']}: {held['reason']} "
                       "(not retried until approved again)")
    if doc.get("history_error"):
        typer.echo(f"deployment history NOT written by the last reconcile: {doc['history_error']}")
    failure = doc["last_failure"]
    if failure:
        for name, message in failure["targets"].items():
            typer.echo(f"last failure ({failure['at']}, {failure['trigger']}): {name}: {message}")
