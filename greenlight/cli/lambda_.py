"""`greenlight lambda serve`: the local inference Lambda (a Function URL on the alias, Lambda's Invoke API)."""

from __future__ import annotations

import logging
import signal
import sys
import threading

import typer

from greenlight.cli.options import PORT_RANGE, check_finite_positive, warn_unknown_group, workspace
from greenlight.errors import UsageError

__all__ = ["app"]

logger = logging.getLogger(__name__)

app = typer.Typer(
    help="The local inference Lambda: the real handler (src/lambda_function.py) of each deployed function "
         "version, behind a Function URL on the `live` alias, with function versions and the alias mirrored "
         "in GREENLIGHT_HOME (approving a model version publishes, smoke-tests and moves the alias).",
    no_args_is_help=True,
)


def _log_serving_decisions() -> None:
    """The front reports loads, alias moves seen and idle drops at INFO (or lower with -v)."""
    level = min(logging.INFO, logging.getLogger().getEffectiveLevel())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)
    for name in ("deploy.function", "deploy.endpoint.slot"):
        serving_logger = logging.getLogger(name)
        serving_logger.addHandler(handler)
        serving_logger.setLevel(level)
        serving_logger.propagate = False  # the root handler filters below WARNING


@app.command("serve")
def serve(
    port: int = typer.Option(9000, "--port", **PORT_RANGE, help="TCP port, 0-65535 (0 picks a free one). 9000, "
                                                                "as Lambda's runtime interface emulator."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; 0.0.0.0 exposes the function."),
    group: str | None = typer.Option(None, "--group", "-g", help="Model package group whose function is served "
                                                                 "(default: the deployment configuration's)."),
    idle_seconds: float = typer.Option(300.0, "--idle-seconds", help="Drop a version's handler and model after "
                                       "this long without a request; the next request is a cold start."),
    poll_seconds: float = typer.Option(1.0, "--poll-seconds", help="How often to drop idle versions."),
    replace: bool = typer.Option(False, "--replace", help="Take over the group's registration from a running "
                                 "`lambda serve` (by default a second one for the same group is refused)."),
    stage: str | None = typer.Option(None, "--stage", help="Serve this stage's function ([stages.<name>] in "
                                                           "greenlight.toml)."),
) -> None:
    """Serve the group's function until interrupted: its Function URL on the alias, and Lambda's Invoke API.

    Every request to any path except the Invoke API becomes a payload-2.0 event for the version the alias
    points at (POST / or /invocations predicts, GET /health describes the model), so `greenlight invoke
    --endpoint http://127.0.0.1:9000` calls it. POST /2015-03-31/functions/<function>/invocations?Qualifier=N
    invokes version N with an event (the deployer's smoke test, before it moves the alias). Answers 503 while
    nothing is deployed and 429 while the function is stopped (throttled); a deployment moves the alias
    without failing a request in flight. One server per group: a second is refused (exit 2) unless --replace.
    """
    from deploy.endpoint.deployed import register_serving, unregister_serving
    from deploy.function.front import FunctionFront
    from deploy.function.state import TARGET
    from greenlight.monitor.local import enable_capture

    check_finite_positive(idle_seconds=idle_seconds, poll_seconds=poll_seconds)
    ws = workspace("local")
    from deploy.names import GroupNames
    from greenlight.api import stage_key

    config = ws.deploy_config(group=group)
    key = stage_key(ws, group, stage)  # the group itself without --stage
    warn_unknown_group(ws, config.group)
    function = config.lambda_.function_name or GroupNames(key).function
    _log_serving_decisions()
    try:
        front = FunctionFront(ws.home, key, function, config.lambda_.alias, host, port,
                              idle_seconds=idle_seconds, poll_seconds=poll_seconds)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    try:
        record = register_serving(ws.home, key, front.url, TARGET, replace=replace)
    except BaseException:
        front.close()
        raise
    typer.echo(f"greenlight lambda: serving {function}:{config.lambda_.alias} (group {config.group}"
               f"{f', stage {stage}' if stage else ''}) "
               f"on {front.url} (Ctrl-C to stop)", err=True)
    enable_capture(ws.home, key)  # the served predictions' capture records, for `greenlight monitor`

    def stop(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)  # what process managers send: stop like Ctrl-C
    try:
        front.serve_forever()
    except KeyboardInterrupt:
        typer.echo("greenlight lambda: stopped", err=True)
    finally:
        front.close()
        unregister_serving(ws.home, key, TARGET, record)
