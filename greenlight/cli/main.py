"""The `greenlight` Typer app and its error edge.

Each command group lives in `greenlight/cli/<group>.py` and imports its heavy dependencies (the
SageMaker SDK, scikit-learn, boto3) inside the command, so `--help` stays fast. What a command
needs comes from the composition root (`greenlight.workspace.Workspace`).

The error edge (`main`): a GreenlightError prints `greenlight: error: <message>` as one line and
exits with its `exit_code`; a usage error (bad flag or value) prints one line and exits 2; the disk's
refusals (an OSError with ENOSPC, EROFS, EACCES ...) print one line naming the condition and the path
("no space left on /mnt while writing ...", greenlight.os_errors) and exit 1; Ctrl-C exits 130;
anything else is a bug: one line naming the exception and the file its traceback was written to
(under GREENLIGHT_HOME/logs, else the temp dir), exit 1. `--debug` prints tracebacks instead.

A command that succeeds while a local GREENLIGHT_HOME it used is full or read-only ends with one
warning line saying so (reads work there; anything that writes will fail).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

import typer

from greenlight.errors import GreenlightError

__all__ = ["app", "main", "run"]

app = typer.Typer(
    name="greenlight",
    help=(
        "Greenlight: train a scikit-learn Random Forest with a SageMaker Pipeline and keep "
        "serverless targets in step with the approved model version. Local mode (the default) "
        "runs everything on this machine without AWS or Docker; --target aws acts on AWS."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what Greenlight decides and calls."),
    debug: bool = typer.Option(False, "--debug", help="Print the full traceback of any failure."),
) -> None:
    _state["debug"] = debug
    level = logging.DEBUG if verbose else getattr(logging, os.environ.get("GREENLIGHT_LOG_LEVEL", "WARNING").upper(),
                                                  logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # Filter at the handler too: some SDK code sets its own loggers to DEBUG while it runs.
    # The SDK warns about what it does on purpose (popping job names ...): errors only, unless -v.
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)
        if not verbose:
            handler.addFilter(lambda r: r.levelno >= logging.ERROR or not r.name.startswith("sagemaker"))


def _demo(
    home: Path = typer.Option(Path(".greenlight-demo"), "--home", help="The demo's own GREENLIGHT_HOME: a new or "
                              "empty directory, or one an earlier demo created (emptied first). Any other non-empty "
                              "directory is refused."),
) -> None:
    """The whole lifecycle on this machine, narrated: train v1, approve (endpoint, Lambda and batch schedule on
    v1), predictions, retrain v2, approve, reject v2 (everything rolled back to v1), the cost comparison; then
    stop everything it started. Exits 1 naming the step that misbehaved. `make demo` runs this."""
    from greenlight.demo import run_demo

    run_demo(home, echo=lambda text: typer.echo(text))


def _register() -> None:
    from greenlight.cli import batch, cost, deploy, endpoint, history, lambda_, models, monitor, pipeline, stack
    # not `from greenlight.cli import run`: the package's `run` is main.run (the console script), not the module
    from greenlight.cli.run import executions_app, run as run_command

    app.add_typer(pipeline.app, name="pipeline")
    app.command("run")(run_command)
    app.add_typer(executions_app, name="executions")
    app.command("cost", help="Compare the monthly cost of each AWS serving option for a workload.")(cost.cost)
    app.add_typer(endpoint.app, name="endpoint")
    app.command("invoke")(endpoint.invoke)
    app.add_typer(lambda_.app, name="lambda")
    app.add_typer(models.app, name="models")
    app.command("promote")(models.promote)
    app.command("deploy")(deploy.deploy)
    app.command("status")(deploy.status)
    app.command("history")(history.history)
    app.add_typer(stack.app, name="stack")
    app.add_typer(batch.app, name="batch")
    app.command("demo")(_demo)
    app.command("monitor")(monitor.monitor)


_register()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _crash_report(exc: BaseException) -> Path | None:
    """Write exc's traceback under GREENLIGHT_HOME/logs (else the temp dir); its path, or None."""
    import tempfile

    from greenlight.settings import home

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = "".join(traceback.format_exception(exc))
    for folder in (home() / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"greenlight-crash-{stamp}-{os.getpid()}.txt"
            path.write_text(f"greenlight {' '.join(sys.argv[1:])}\n\n{text}", encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def _usage_error(exc: Exception) -> int | None:
    """Click's usage errors (typer vendors click as typer._click) as one line; None if exc is not one."""
    if "click" not in type(exc).__module__:
        return None
    if type(exc).__name__ == "Abort":
        typer.echo("greenlight: aborted", err=True)
        return 1
    if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
        return None
    ctx = getattr(exc, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    typer.echo(f"greenlight: error: {_one_line(exc.format_message())}{where}", err=True)
    return exc.exit_code


def _storage_warning() -> None:
    """One warning line when a local home this command used is full or read-only (module docstring)."""
    from greenlight.cli.options import local_homes
    from greenlight.os_errors import storage_problem

    for home in local_homes(reset=True):
        problem = storage_problem(home)
        if problem is not None:
            typer.echo(f"greenlight: warning: {problem} (GREENLIGHT_HOME {home}): reads work, anything that writes "
                       "there will fail", err=True)
            return


def _os_error(exc: OSError) -> int | None:
    """The disk's refusal as one line (exit 1); None if exc is another OSError (a bug)."""
    from greenlight.os_errors import storage_error

    translated = storage_error(exc)
    if translated is None:
        return None
    if _state["debug"]:
        traceback.print_exception(exc)
    typer.echo(f"greenlight: error: {translated}", err=True)
    return translated.exit_code


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure becomes one line on stderr and a non-zero exit (module docstring)."""
    from greenlight.cli.options import local_homes

    _state["debug"] = False
    local_homes(reset=True)
    try:
        returned = app(args=argv, prog_name="greenlight", standalone_mode=False)
        if isinstance(returned, int) and returned:  # typer.Exit(code) inside a command
            return returned
    except GreenlightError as exc:
        if _state["debug"]:
            traceback.print_exception(exc)
        typer.echo(f"greenlight: error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("greenlight: interrupted", err=True)
        return 130
    except typer.Exit as exc:  # raised by commands that end early on purpose
        return exc.exit_code
    except Exception as exc:
        code = _os_error(exc) if isinstance(exc, OSError) else _usage_error(exc)
        if code is not None:
            return code
        summary = f"{type(exc).__name__}: {_one_line(str(exc))}" if str(exc) else type(exc).__name__
        if _state["debug"]:
            traceback.print_exception(exc)
            typer.echo(f"greenlight: internal error: {summary}", err=True)
            return 1
        path = _crash_report(exc)
        where = f"traceback in {path}" if path else "the traceback could not be written"
        typer.echo(f"greenlight: internal error (a bug in Greenlight): {summary}; {where}; "
                   "rerun with --debug to print it", err=True)
        return 1
    _storage_warning()
    return 0


def run() -> None:
    """Console-script entry point: main(), then exit without tearing the interpreter down.

    After a pipeline command the process holds the SageMaker SDK's ~2,000 modules; Python's own
    teardown of them took about 2 s here. Exit handlers still run (logging, temporary directories)
    and the streams are flushed, then the process leaves with main()'s code.
    """
    import atexit

    code = main()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
