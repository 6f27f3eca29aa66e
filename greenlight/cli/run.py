"""`greenlight run` and `greenlight executions`: the training pipeline run locally, and its records."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from greenlight.cli.options import JSON, parse_pairs, workspace
from greenlight.errors import DataError

executions_app = typer.Typer(help="Past local pipeline executions and their steps.", no_args_is_help=True)


def _executions(ws):
    from pipelines.local.executions import ExecutionStore

    return ExecutionStore(ws.home / "executions")


class _Progress:
    """Each step's start, duration and outcome: a live table on a TTY, plain lines otherwise."""

    def __init__(self) -> None:
        self.live = None
        self.rows: dict[str, tuple[str, str, str]] = {}
        if sys.stdout.isatty():
            from rich.live import Live

            self.live = Live(self._table(), refresh_per_second=4, transient=False)

    def _table(self):
        from rich.table import Table

        table = Table(title="greenlight run", show_lines=False)
        for col in ("step", "status", "duration"):
            table.add_column(col)
        for name, row in self.rows.items():
            table.add_row(name, *row[:2])
        return table

    def __enter__(self):
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live:
            self.live.__exit__(*exc)

    def __call__(self, step, seconds) -> None:
        from pipelines.local.executions import ExecutionStatus

        duration = "" if seconds is None else f"{seconds:.1f}s"
        status = step.status if seconds is not None else ExecutionStatus.EXECUTING.value
        extra = f" -> {step.outcome}" if step.outcome and step.type == "Condition" else ""
        self.rows[step.name] = (status + extra, duration, step.type)
        if self.live:
            self.live.update(self._table())
        elif seconds is None:
            typer.echo(f"  {step.name:<12} {step.type:<13} started")
        else:
            typer.echo(f"  {step.name:<12} {step.type:<13} {status}{extra} in {duration}")


def run(
    data: Path = typer.Option(None, "--data", help="A CSV file with a header, or a directory of them. Default: scikit-learn's bundled diabetes data."),
    target_column: str = typer.Option(None, "--target-column", help="Name of the target column (default: target)."),
    params: list[str] = typer.Option([], "--param", metavar="NAME=VALUE", help="Override a pipeline parameter (repeatable), e.g. --param NEstimators=200 --param RmseThreshold=60."),
) -> None:
    """Run the training pipeline locally: the same definition `pipeline definition` prints,
    executed on this machine with no AWS account and no Docker. Artifacts, execution records and
    the model registry live under GREENLIGHT_HOME (default ./.greenlight)."""
    from greenlight import api
    from greenlight.cli.deploy import print_deliveries
    from pipelines.parameters import check_parameters

    overrides = parse_pairs(params, "--param")
    if target_column:
        overrides["TargetColumn"] = target_column
    check_parameters(overrides)  # before anything is printed or built (api.train checks again)
    if data is not None and "InputDataUrl" in overrides:
        raise DataError("give either --data or --param InputDataUrl=..., not both")
    ws = workspace("local")
    typer.echo(f"building the pipeline definition (home: {ws.home})")
    with _Progress() as progress:
        result = api.train(ws, data, overrides, on_step=progress)
    typer.echo(f"execution {result.execution_id} {result.status}")
    if result.version is not None:
        typer.echo(f"registered {result.group} version {result.version} as {result.registered_as} ({result.arn})")
        print_deliveries(list(result.deliveries))  # registered as Approved (ModelApprovalStatus=Approved) deploys


@executions_app.command("list")
def list_executions(as_json: bool = JSON) -> None:
    """Local executions, newest first."""
    from dataclasses import asdict

    records = _executions(workspace("local")).list()
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in records], indent=2))
        return
    if not records:
        typer.echo("no local executions yet (greenlight run)")
    for r in records:
        registered = f" registered v{r.registered['version']}" if r.registered else ""
        typer.echo(f"{r.execution_id}  {r.status:<9} {r.start}{registered}"
                   + (f"  {r.failure_reason.splitlines()[0]}" if r.failure_reason else ""))


@executions_app.command("show")
def show_execution(execution_id: str = typer.Argument(..., help="An id from `greenlight executions list`."),
                   as_json: bool = JSON) -> None:
    """One execution: parameters and each step's status, times, failure reason and log path."""
    from dataclasses import asdict

    r = _executions(workspace("local")).load(execution_id)
    if as_json:
        typer.echo(json.dumps(asdict(r), indent=2))
        return
    typer.echo(f"execution {r.execution_id} of {r.pipeline_name}: {r.status} ({r.start} -> {r.end or '...'})")
    if r.failure_reason:
        typer.echo(f"failure: {r.failure_reason}")
    typer.echo("parameters: " + ", ".join(f"{k}={v}" for k, v in r.parameters.items()))
    for s in r.steps:
        typer.echo(f"  {s.name:<12} {s.type:<13} {s.status:<9} {s.start} -> {s.end or '...'}"
                   + (f"  [{s.outcome}]" if s.outcome else ""))
        if s.failure_reason:
            typer.echo(f"      reason: {s.failure_reason.splitlines()[0]}")
        if s.log_path and Path(s.log_path).exists():
            typer.echo(f"      log: {s.log_path}")
    if r.registered:
        typer.echo(f"registered: {r.registered['group']} version {r.registered['version']} ({r.registered['status']})")
