"""`greenlight history`: every target change of a group, newest first, or what each target served at an instant.

Here `--target` names a deploy target (endpoint, lambda, batch), as the history's own field does; where
the history lives (this machine or an AWS account) is `--mode local|aws`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from greenlight.cli.deploy import CONFIG, GROUP
from greenlight.cli.options import JSON, MODE, REGION, echo_json, warn_unknown_group, workspace

__all__ = ["history"]


def _version(v: int | None) -> str:
    return "nothing" if v is None else f"v{v}"


def _line(event: dict[str, Any]) -> str:
    where = event["target"] if event["stage"] == "default" else f"{event['stage']}/{event['target']}"
    cause = event["trigger"] + (f" {event['event_id']}" if event.get("event_id") else "")
    if event.get("approver"):
        cause += f" by {event['approver']}"
    outcome = "" if event["ok"] else f"  FAILED: {event['failure']}"
    smoke = f"; smoke {event['smoke']}" if event.get("smoke") else ""
    seconds = f"; {event['duration_seconds']:g} s" if event.get("duration_seconds") is not None else ""
    return (f"{event['at']}  {where}: {_version(event['from_version'])} -> {_version(event['to_version'])} "
            f"({cause}{smoke}{seconds}){outcome}")


def history(
    stage: str | None = typer.Option(None, "--stage", help="Only this stage ([stages.<name>]; 'default' without "
                                                           "stages)."),
    target: str | None = typer.Option(None, "--target", help="Only this deploy target: endpoint, lambda or batch."),
    since: str | None = typer.Option(None, "--since", metavar="WHEN", help="Only changes at or after WHEN: ISO 8601 "
                                     "(2026-12-01T14:00Z; no zone is UTC) or a time ago (90m, 2h, 7d)."),
    at: str | None = typer.Option(None, "--at", metavar="TIME", help="Instead: what each target served at TIME "
                                  "(same forms as --since), and the change that put it there."),
    mode: str = MODE,
    region: str | None = REGION,
    group: str | None = GROUP,
    config: Path | None = CONFIG,
    as_json: bool = JSON,
) -> None:
    """The deployment history: every change of every target (from -> to version, trigger, registry event,
    approver, smoke result, duration, failure), newest first; with --at, what served at that instant."""
    from greenlight.api import history as read_history
    from greenlight.errors import UsageError

    if at is not None and since is not None:
        raise UsageError("--at answers for one instant; it does not combine with --since")
    from datetime import UTC, datetime

    from deploy.engine.history import parse_when

    for flag, value in (("--since", since), ("--at", at)):  # before anything else is said about the workspace
        if value is not None:
            parse_when(value, flag, datetime.now(UTC))
    ws = workspace(mode, region)
    warn_unknown_group(ws, group, config)
    doc = read_history(ws, group, stage=stage, target=target, since=since, at=at, config=config)
    if as_json:
        echo_json(doc)
        return
    if at is not None:
        typer.echo(f"{doc['group']} at {doc['at']}:")
        for name, row in doc["targets"].items():
            cause = row["trigger"] + (f" {row['event_id']}" if row.get("event_id") else "")
            typer.echo(f"  {name}: {_version(row['version'])} (since {row['since']}, {cause})")
        if not doc["targets"]:
            typer.echo("  no target had been deployed by then")
        return
    typer.echo(f"{doc['group']}: {len(doc['events'])} change{'s' * (len(doc['events']) != 1)}, newest first")
    for event in doc["events"]:
        typer.echo(f"  {_line(event)}")
