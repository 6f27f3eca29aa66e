"""`greenlight batch run|jobs|scheduler`: SageMaker Batch Transform semantics on this machine."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import typer

from greenlight.cli.options import GROUP, JSON, workspace

__all__ = ["app"]

app = typer.Typer(
    help="Batch predictions with SageMaker Batch Transform's semantics, run on this machine: one-off jobs, "
         "their records, and the local schedule's foreground runner.",
    no_args_is_help=True,
)

# How a BatchConfig field is called on this command line (for error messages).
_FLAGS = {"input": "--input", "output": "--output", "max_payload_mb": "--max-payload-mb",
          "strategy": "--batch-strategy", "join_source": "--join-input"}


def _stop_on_sigterm() -> None:
    """SIGTERM (what process managers send) stops like Ctrl-C: the job is recorded Stopped, nothing written."""
    import signal
    import threading

    def stop(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)


def _jobs(ws):
    from deploy.batch.jobs import JobStore

    return JobStore(ws.home / "batch" / "jobs")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


class _Progress:
    """The job's progress: a rich bar on a terminal, plain lines (per file, per bad row) otherwise."""

    def __init__(self) -> None:
        self.live = sys.stderr.isatty()
        self.bar = self.task = None
        self.started_at = time.monotonic()
        self.record = None

    # JobObserver's methods
    def started(self, record, files) -> None:
        self.started_at, self.record = time.monotonic(), record
        typer.echo(f"batch job {record.job_id}: model {record.model_label}, {len(files)} file(s), "
                   f"{_size(record.bytes)}, {record.strategy}, {record.workers} worker(s)", err=True)
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                                TextColumn("{task.fields[rows]}"), TimeElapsedColumn(), transient=True,
                                console=_console(stderr=True))
            self.task = self.bar.add_task("transforming", total=max(record.bytes, 1), rows="")
            self.bar.start()

    def progress(self, done_bytes: int, rows: int, bad_rows: int) -> None:
        if self.bar is not None:
            rate = rows / max(time.monotonic() - self.started_at, 1e-9)
            bad = f", {bad_rows:,} bad" if bad_rows else ""
            self.bar.update(self.task, completed=done_bytes, rows=f"{rows:,} rows ({rate:,.0f}/s){bad}")

    def bad_row(self, bad) -> None:
        self._print(f"  skipped {bad.file} line {bad.line}: {bad.reason}")

    def file_done(self, relative: str, rows: int, bad_rows: int) -> None:
        if self.bar is None:
            skipped = f", {bad_rows:,} bad row(s) skipped" if bad_rows else ""
            typer.echo(f"  {relative}: {rows:,} rows{skipped}", err=True)

    def finished(self, record) -> None:
        self.record = record
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def _print(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(text, highlight=False, markup=False)
        else:
            typer.echo(text, err=True)


def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(highlight=False, stderr=stderr, width=None if stream.isatty() else 200)


def check_output_folder(destination: Path, label: str) -> None:
    """Refuse an --output that cannot take the results, before any work starts.

    Raises:
        UsageError: a file or a device (/dev/null) is where the folder would be.
        StorageError: the filesystem is read-only, full, or not writable by this user.
    """
    from greenlight.errors import StorageError, UsageError
    from greenlight.os_errors import storage_problem

    for candidate in (destination, *destination.parents):
        if candidate.exists():
            if not candidate.is_dir():
                kind = "a file" if candidate.is_file() else "a device or other special file"
                where = "" if candidate == destination else f"{candidate}, above it, "
                raise UsageError(f"--output {label}: {where or str(candidate) + ' '}is {kind}, not a folder: give a "
                                 "folder (it is created when missing)")
            break
    problem = storage_problem(destination)
    if problem is not None:
        raise StorageError(f"--output {label}: {problem}; nothing was run", path=str(destination))


@app.command("run")
def run(
    input: str = typer.Option(..., "--input", help="A folder (every file below it), one file, or an s3:// prefix of the local artifact store."),
    output: str = typer.Option(..., "--output", help="Folder for the results: <input file>.out per input file, sub-folders kept."),
    model_version: int | None = typer.Option(None, "--model-version", min=1, help="Version in --group. Default: the version the batch target is deployed on (its local schedule's, moved by approvals)."),
    group: str = GROUP,
    join_input: bool = typer.Option(False, "--join-input", help="DataProcessing JoinSource=Input: append each prediction to its input line."),
    max_payload_mb: int = typer.Option(6, "--max-payload-mb", help="MaxPayloadInMB, 0-100 (0 only with SingleRecord: no limit)."),
    batch_strategy: str = typer.Option("MultiRecord", "--batch-strategy", metavar="MultiRecord|SingleRecord", help="MultiRecord: as many whole lines as fit in --max-payload-mb per request; SingleRecord: one line per request."),
    max_bad_rows: int = typer.Option(0, "--max-bad-rows", min=0, help="Skip and report up to this many rows the model refuses (SageMaker itself fails the job on the first)."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Worker processes. Default: one per CPU this process may use."),
) -> None:
    """Run one batch job now, as a SageMaker Batch Transform job would, with the model's own serving code.

    Nothing is written to --output unless the whole job succeeds; a bad row stops the job naming the
    file, line and reason. The job's record is listed by `greenlight batch jobs`.
    """
    from deploy.batch.config import parse_batch_config
    from deploy.batch.jobs import JobStatus
    from deploy.batch.resolve import deployed_version, local_location, model_dir_for
    from deploy.batch.runner import JobSpec, run_job
    from greenlight.errors import NotFoundError
    from greenlight.monitor.local import enable_capture

    config = parse_batch_config(
        {"input": input, "output": output, "max_payload_mb": max_payload_mb, "strategy": batch_strategy,
         "join_source": "Input" if join_input else "None"},
        name=lambda field: _FLAGS.get(field, field))
    ws = workspace("local")
    folder, prefix = local_location(config.input, ws.store)
    if not folder.exists():
        raise NotFoundError(f"--input {config.input}: {folder} does not exist")
    destination, _ = local_location(config.output, ws.store)
    check_output_folder(destination, config.output)
    if model_version is None:
        schedule = ws.deploy_config(group=group).batch.schedule_name_for(group)
        model_version = deployed_version(ws.home, group, schedule)
        typer.echo(f"using {group} version {model_version}: the version the local batch schedule {schedule} runs "
                   "(deployed on approval)", err=True)
    model_dir = model_dir_for(ws.registry, ws.store, group, model_version, ws.home / "model-cache")
    spec = JobSpec(input=folder, input_prefix=prefix, input_label=config.input, output=destination,
                   output_label=config.output, model_group=group, model_version=model_version,
                   model_dir=model_dir, strategy=config.strategy, max_payload_mb=config.max_payload_mb,
                   join_input=config.join_input, max_bad_rows=max_bad_rows, workers=workers)
    enable_capture(ws.home, group)  # the workers' capture records, for `greenlight monitor`
    _stop_on_sigterm()
    progress = _Progress()
    try:
        record = run_job(spec, _jobs(ws), progress)
    except KeyboardInterrupt:
        job = progress.record.job_id if progress.record else "the batch job"
        typer.echo(f"greenlight: interrupted: {job} stopped; nothing was written to {destination}", err=True)
        raise typer.Exit(130) from None
    skipped = f" ({record.bad_rows:,} bad row(s) skipped)" if record.bad_rows else ""
    typer.echo(f"batch job {record.job_id} {record.status}: {record.rows:,} rows{skipped} from {record.files} "
               f"file(s) in {record.duration_seconds:.1f} s -> {destination}")
    if record.bad_rows:
        for bad in record.bad_row_lines[:20]:
            typer.echo(f"  skipped {bad['file']} line {bad['line']}: {bad['reason']}")
        if record.bad_rows > 20:
            typer.echo(f"  ... and {record.bad_rows - 20} more (greenlight batch jobs --json)")
    if record.status != JobStatus.COMPLETED.value:
        raise typer.Exit(1)


@app.command("jobs")
def jobs(as_json: bool = JSON) -> None:
    """Past local batch jobs, newest first: model version, rows, duration, status."""
    records = _jobs(workspace("local")).list()
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in records], indent=2))
        return
    console = _console()
    if not records:
        console.print("No batch jobs yet (greenlight batch run).")
        return
    from rich.table import Table

    table = Table(title="batch jobs (local)", show_edge=False, header_style="bold")
    for column in ("job id", "status", "model", "rows", "bad rows", "duration", "started", "output / reason"):
        table.add_column(column, no_wrap=column not in ("output / reason",),
                         justify="right" if column in ("rows", "bad rows", "duration") else "left")
    for r in records:
        duration = "" if r.duration_seconds is None else f"{r.duration_seconds:.1f} s"
        table.add_row(r.job_id, r.status, r.model_label, f"{r.rows:,}", f"{r.bad_rows:,}", duration, r.started,
                      r.failure_reason or r.output)
    console.print(table)


@app.command("scheduler")
def scheduler(
    once: bool = typer.Option(False, "--once", help="Run what is due now, then exit."),
    poll_seconds: float = typer.Option(10.0, "--poll-seconds", min=0.1, help="How often to look for due runs."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Worker processes per job (default: one per CPU)."),
) -> None:
    """Run the local batch schedule's due jobs in the foreground, until Ctrl-C or SIGTERM.

    The schedule mirrors the AWS one (same cron()/rate() expression, time zone, state and target
    Input); each run gets a unique job id and its own output folder, <output>/<job id>/.
    """
    from deploy.batch.local_schedule import list_local_schedules
    from deploy.batch.scheduler import serve
    from greenlight.monitor.local import enable_capture

    _log_decisions()
    ws = workspace("local")
    enable_capture(ws.home, ws.deploy_config().group)  # the jobs' capture records, under the configured group
    if not list_local_schedules(ws.home):
        typer.echo(f"no local batch schedule under {ws.home / 'batch' / 'schedules'} yet (deploying to the "
                   "local batch target creates it)", err=True)
    _stop_on_sigterm()
    try:
        started = serve(ws.home, poll_seconds=poll_seconds, once=once, registry=ws.registry, store=ws.store,
                        cache_dir=ws.home / "model-cache", workers=workers)
    except KeyboardInterrupt:
        typer.echo("greenlight batch scheduler: stopped", err=True)
        return
    typer.echo(f"greenlight batch scheduler: {started} job(s) started", err=True)


def _log_decisions() -> None:
    """The scheduler says what it starts and why: deploy.batch logs at INFO (or lower with -v) on stderr."""
    level = min(logging.INFO, logging.getLogger().getEffectiveLevel())
    batch_logger = logging.getLogger("deploy.batch")
    for old in [h for h in batch_logger.handlers if getattr(h, "greenlight_batch", False)]:
        batch_logger.removeHandler(old)  # a second call in one process (tests) replaces, not doubles
    handler = logging.StreamHandler(sys.stderr)
    handler.greenlight_batch = True
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)
    batch_logger.addHandler(handler)
    batch_logger.setLevel(level)
    batch_logger.propagate = False
