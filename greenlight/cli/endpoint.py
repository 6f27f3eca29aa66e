"""`greenlight endpoint serve` (the local serverless endpoint) and `greenlight invoke`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from deploy.endpoint.server import MAX_BODY_BYTES
from greenlight.cli.options import (PORT_RANGE, check_finite_positive, check_header_value, check_url,
                                    warn_unknown_group, workspace)
from greenlight.errors import UsageError
from greenlight.settings import DEFAULT_MODEL_PACKAGE_GROUP

__all__ = ["app", "invoke"]

logger = logging.getLogger(__name__)

app = typer.Typer(
    help="The local serverless endpoint: SageMaker's container protocol (GET /ping, POST /invocations) "
         "on this machine, with cold start, idle drop and hot swap of model versions.",
    no_args_is_help=True,
)


def _log_serving_decisions() -> None:
    """A server reports its loads, swaps and drops: deploy.endpoint logs at INFO (or lower with -v)."""
    level = min(logging.INFO, logging.getLogger().getEffectiveLevel())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)
    endpoint_logger = logging.getLogger("deploy.endpoint")
    endpoint_logger.addHandler(handler)
    endpoint_logger.setLevel(level)
    endpoint_logger.propagate = False  # the root handler filters below WARNING


def _stop_on_sigterm() -> None:
    """SIGTERM (what process managers send) stops the server like Ctrl-C does."""
    import signal
    import threading

    def stop(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)


@app.command("serve")
def serve(
    port: int = typer.Option(8080, "--port", **PORT_RANGE, help="TCP port, 0-65535 (0 picks a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; 0.0.0.0 exposes the endpoint."),
    model: Path | None = typer.Option(None, "--model", help="Serve this model directory or model.tar.gz "
                                         "instead of the version deployed for --group."),
    idle_seconds: float = typer.Option(300.0, "--idle-seconds", help="Drop the loaded model after this long "
                                       "without a request; the next request is a cold start."),
    group: str = typer.Option(DEFAULT_MODEL_PACKAGE_GROUP, "--group", help="Model package group whose deployed "
                              "version is served when no --model is given."),
    poll_seconds: float = typer.Option(1.0, "--poll-seconds", help="How often to look for a newly deployed "
                                       "version and for idleness."),
    max_body_bytes: int = typer.Option(MAX_BODY_BYTES, "--max-body-bytes", help="Refuse larger request "
                                       "bodies with 413 (SageMaker Serverless Inference's limit is 4 MB)."),
    replace: bool = typer.Option(False, "--replace", help="Take over the group's registration from a running "
                                 "`endpoint serve` (by default a second one for the same group is refused)."),
    stage: str | None = typer.Option(None, "--stage", help="Serve this stage's endpoint ([stages.<name>] in "
                                                           "greenlight.toml)."),
) -> None:
    """Serve a model over HTTP until interrupted.

    Without --model it serves the version deployed for --group (approving a version deploys it, see
    `greenlight models approve`), swaps to a newly deployed version without failing a request, and
    answers 503 while nothing is deployed. A deployment first loads the new version beside the serving
    one and smoke-tests it there; only a version that passed is ever served. One server per group:
    a second is refused (exit 2) unless --replace.
    """
    from deploy.endpoint.server import Endpoint
    from deploy.endpoint.slot import ModelSlot
    from deploy.endpoint.sources import FixedModelSource
    from deploy.endpoint.split import Split
    from deploy.endpoint.deployed import DeployedSource, register_serving, unregister_serving
    from greenlight.monitor.local import enable_capture
    from greenlight.api import runtime_identity, runtime_url_line

    check_finite_positive(idle_seconds=idle_seconds, poll_seconds=poll_seconds, max_body_bytes=max_body_bytes)
    _log_serving_decisions()
    ws = workspace("local")
    key = group
    if stage is not None:
        from greenlight.api import stage_key

        key = stage_key(ws, group, stage)  # the stage's deployment key: where its endpoint is recorded
    if model is None:
        warn_unknown_group(ws, group)
    runtime = runtime_identity(ws, group, stage=stage)
    group = key
    source = (FixedModelSource(model, ws.home / "endpoint-cache") if model is not None
              else DeployedSource(ws.home, group))
    slot = ModelSlot(source, idle_seconds=idle_seconds)
    try:
        endpoint = Endpoint(slot, host, port, poll_seconds=poll_seconds, max_body_bytes=max_body_bytes,
                            runtime=runtime, split=None if model is not None else Split(
                                ws.home, group, "endpoint", lambda source: ModelSlot(source, idle_seconds=idle_seconds)))
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    record = None
    if model is None:
        try:
            record = register_serving(ws.home, group, endpoint.url, replace=replace, token=endpoint.token)
        except BaseException:
            endpoint.close()
            raise
    logger.info("serving %r on %s (idle drop after %.0f s)", source, endpoint.url, idle_seconds)
    typer.echo(f"greenlight endpoint: serving {source!r} on {endpoint.url} (Ctrl-C to stop)", err=True)
    enable_capture(ws.home, group)  # the served predictions' capture records, for `greenlight monitor`
    typer.echo(f"greenlight endpoint: boto3's sagemaker-runtime client reaches it as EndpointName="
               f"{min(runtime.names)} with:", err=True)
    typer.echo(runtime_url_line(endpoint.url))  # stdout, so `export $(... | head -1)` style scripts can take it
    _stop_on_sigterm()
    try:
        endpoint.serve_forever()
    except KeyboardInterrupt:
        typer.echo("greenlight endpoint: stopped", err=True)
    finally:
        endpoint.close()
        if record is not None:
            unregister_serving(ws.home, group, record=record)


def _stage_url(stage: str) -> str:
    """The URL of the running `endpoint serve --stage` (else `lambda serve --stage`) of a stage.

    Raises:
        ParameterError: no such stage; ServingUnavailable: neither runs.
    """
    from deploy.endpoint.deployed import read_serving
    from greenlight.api import stage_key
    from greenlight.errors import ServingUnavailable

    ws = workspace("local")
    key = stage_key(ws, None, stage)
    for target in ("endpoint", "lambda"):
        serving = read_serving(ws.home, key, target)
        if serving is not None:
            return serving.url
    raise ServingUnavailable(f"nothing serves stage {stage} locally: start `greenlight endpoint serve --stage "
                             f"{stage}` (or `greenlight lambda serve --stage {stage}`)")


def invoke(
    endpoint: str = typer.Option("http://127.0.0.1:8080", "--endpoint", help="Base URL of the endpoint."),
    content_type: str = typer.Option("text/csv", "--content-type", help="Content-Type of the body."),
    accept: str | None = typer.Option(None, "--accept", help="Accept header (the endpoint's default: "
                                         "application/json)."),
    body: str | None = typer.Option(None, "--body", help="The payload as text, e.g. one CSV row."),
    file: Path | None = typer.Option(None, "--file", help="Read the payload from this file ('-' for stdin)."),
    stage: str | None = typer.Option(None, "--stage", help="Call the local endpoint (else Lambda) serving this "
                                                           "stage, instead of --endpoint."),
) -> None:
    """Send one request to an endpoint's /invocations and print the prediction."""
    from deploy.endpoint.client import invoke as post

    if stage is not None:
        endpoint = _stage_url(stage)
    check_url("--endpoint", endpoint)
    check_header_value("--content-type", content_type)
    check_header_value("--accept", accept)
    if (body is None) == (file is None):
        raise UsageError("pass exactly one of --body TEXT or --file F")
    if body is not None:
        payload = body.encode("utf-8")
    elif file is None:
        raise UsageError("pass exactly one of --body TEXT or --file F")
    elif str(file) == "-":
        payload = sys.stdin.buffer.read()
    else:
        try:
            payload = file.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from exc
    result = post(endpoint, payload, content_type, accept)
    logger.info("model version %s answered %s (%s)", result.model_version, result.status, result.content_type)
    text = result.body.decode("utf-8", errors="replace")
    typer.echo(text, nl=not text.endswith("\n"))
