"""The `greenlight` command: the composition root for the CLI.

Each command group lives in `greenlight/commands/<group>.py` as a Typer app and imports its
heavy dependencies (the SageMaker SDK, scikit-learn, boto3) inside the command, so `--help`
stays fast. Errors from the GreenlightError tree are printed as one line on stderr and turn
into the error's exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import os
import sys

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


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what Greenlight decides and calls."),
) -> None:
    level = logging.DEBUG if verbose else getattr(logging, os.environ.get("GREENLIGHT_LOG_LEVEL", "WARNING").upper(),
                                                  logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # Filter at the handler too: some SDK code sets its own loggers to DEBUG while it runs.
    # The SDK warns about what it does on purpose (popping job names ...): errors only, unless -v.
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)
        if not verbose:
            handler.addFilter(lambda r: r.levelno >= logging.ERROR or not r.name.startswith("sagemaker"))


def _register() -> None:
    from greenlight.commands import pipeline

    app.add_typer(pipeline.app, name="pipeline")

    from greenlight.commands import run

    app.command("run")(run.run)
    app.add_typer(run.executions_app, name="executions")
    from greenlight.commands import cost

    app.command("cost", help="Compare the monthly cost of each AWS serving option for a workload.")(cost.cost)

    from greenlight.commands import endpoint

    app.add_typer(endpoint.app, name="endpoint")
    app.command("invoke")(endpoint.invoke)

    from greenlight.commands import models

    app.add_typer(models.app, name="models")


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; GreenlightErrors become one line on stderr and a non-zero exit."""
    try:
        app(args=argv, standalone_mode=False)
    except GreenlightError as exc:
        typer.echo(f"greenlight: error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("greenlight: interrupted", err=True)
        return 130
    except typer.Exit as exc:  # raised by commands that end early on purpose
        return exc.exit_code
    except Exception as exc:
        # Usage errors come from click, or from the click that typer >= 0.29 vendors as
        # typer._click: both have .show() and .exit_code (2), and Abort for Ctrl-C at a prompt.
        if "click" in type(exc).__module__:
            if hasattr(exc, "show") and hasattr(exc, "exit_code"):
                exc.show()
                return exc.exit_code
            if type(exc).__name__ == "Abort":
                typer.echo("greenlight: aborted", err=True)
                return 1
        raise
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
