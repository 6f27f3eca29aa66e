"""`greenlight pipeline definition|upsert|start`: the training pipeline on AWS, or its JSON."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from greenlight.cli.options import REGION, parse_pairs, workspace

app = typer.Typer(help="Build the SageMaker Pipeline definition, upsert it and start it on AWS.",
                  no_args_is_help=True)
log = logging.getLogger(__name__)

# The region an offline definition is built for when no flag, variable or profile names one: it
# only picks the ECR account of the image URIs, so `pipeline definition` works on a bare machine.
OFFLINE_DEFAULT_REGION = "us-east-1"

_PIPELINE_NAME = typer.Option(None, "--pipeline-name", help="Default: $SAGEMAKER_PROJECT_NAME-$SAGEMAKER_PROJECT_ID, else greenlight-training.")
_GROUP = typer.Option(None, "--model-package-group", help="Model package group to register into (same default rule as --pipeline-name, else greenlight-models).")
_ROLE = typer.Option(None, "--role-arn", help="IAM role the pipeline runs as. Default: $SAGEMAKER_PIPELINE_ROLE_ARN.")
_BUCKET = typer.Option(None, "--bucket", help="S3 bucket for code, data and artifacts. Default: $ARTIFACT_BUCKET.")
_PREFIX = typer.Option(None, "--prefix", help="S3 key prefix and job name prefix. Default: the project name-id, else greenlight.")
_TAGS = typer.Option([], "--tag", metavar="KEY=VALUE", help="Tag for the pipeline (repeatable). SageMaker Projects' sagemaker:project-name/-id tags are added from the environment.")


def _config(require_aws: bool, **flags):
    from pipelines.config import PipelineConfig

    tags = parse_pairs(flags.pop("tags"), "--tag")
    return PipelineConfig.resolve(require_aws=require_aws, tags=tags, **flags)


def _offline_region(flag: str | None) -> str:
    """The AWS region rule, falling back (said on stderr) to OFFLINE_DEFAULT_REGION."""
    from greenlight.errors import ConfigurationError
    from greenlight.workspace import Workspace

    try:
        return Workspace.open("aws", region=flag).region
    except ConfigurationError:
        typer.echo(f"building for {OFFLINE_DEFAULT_REGION} (no --region, AWS_REGION or profile region); the "
                   "region only chooses the image URIs' ECR registry", err=True)
        return OFFLINE_DEFAULT_REGION


@app.command()
def definition(
    output: Path = typer.Option(None, "--output", "-o", help="Write the JSON here instead of stdout."),
    pipeline_name: str = _PIPELINE_NAME, model_package_group: str = _GROUP, role_arn: str = _ROLE,
    bucket: str = _BUCKET, region: str = REGION, prefix: str = _PREFIX, tags: list[str] = _TAGS,
) -> None:
    """Print the pipeline definition JSON, built offline: no AWS credentials, no network.

    Two runs with the same code and flags print byte-identical JSON. Role and bucket default to
    placeholders when neither flags nor SageMaker Projects variables give them; the region follows
    the AWS region rule, else us-east-1 (said on stderr).
    """
    from pipelines.definition import build_definition, gc_paused
    from pipelines.sessions import offline_session, quiet_sdk

    config = _config(False, pipeline_name=pipeline_name, model_package_group=model_package_group,
                     role_arn=role_arn, bucket=bucket, region=_offline_region(region), prefix=prefix, tags=tags)
    quiet_sdk(config.region)
    with gc_paused():
        text = build_definition(config, offline_session(config))
    if output:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output} ({len(text)} bytes)", err=True)
    else:
        sys.stdout.write(text)


@app.command()
def upsert(
    pipeline_name: str = _PIPELINE_NAME, model_package_group: str = _GROUP, role_arn: str = _ROLE,
    bucket: str = _BUCKET, region: str = REGION, prefix: str = _PREFIX, tags: list[str] = _TAGS,
) -> None:
    """Create or update the pipeline on SageMaker.

    Builds the same definition as `pipeline definition`, with the code uploaded to the bucket, and
    puts the bundled diabetes data at the InputDataUrl default so a plain `start` has data.
    """
    from greenlight import api

    config, arn, created = api.upsert_pipeline(
        workspace("aws", region), pipeline_name=pipeline_name, model_package_group=model_package_group,
        role_arn=role_arn, bucket=bucket, prefix=prefix, tags=parse_pairs(tags, "--tag"))
    typer.echo(f"{'created' if created else 'updated'} pipeline {config.pipeline_name}: {arn}")


@app.command()
def start(
    wait: bool = typer.Option(False, "--wait", help="Follow the execution: print each step's status changes, end with its status and failure reason; exit 1 if it did not succeed."),
    params: list[str] = typer.Option([], "--param", metavar="NAME=VALUE", help="Override a pipeline parameter (repeatable), e.g. --param NEstimators=200."),
    poll_seconds: float = typer.Option(30.0, "--poll-seconds", min=0.0, help="How often --wait polls SageMaker."),
    timeout: float = typer.Option(4 * 3600.0, "--timeout", min=1.0,
                                  help="With --wait, stop waiting after this many seconds (the execution goes on) "
                                       "and exit 1."),
    pipeline_name: str = _PIPELINE_NAME, region: str = REGION,
) -> None:
    """Start an execution of the pipeline on SageMaker (run `upsert` first)."""
    from pipelines.aws import start_execution, wait_for_execution
    from pipelines.config import PipelineConfig
    from pipelines.parameters import check_parameters

    overrides = check_parameters(parse_pairs(params, "--param"))
    ws = workspace("aws", region)
    config = PipelineConfig.resolve(pipeline_name=pipeline_name, region=ws.region)
    sagemaker = ws.client("sagemaker")
    arn = start_execution(sagemaker, name=config.pipeline_name, parameters=overrides)
    typer.echo(f"started {arn}")
    if not wait:
        return

    def show(step: dict) -> None:
        reason = f" ({step['FailureReason']})" if step.get("FailureReason") else ""
        typer.echo(f"  {step.get('StepName', '?'):<12} {step.get('StepStatus', '?')}{reason}")

    result = wait_for_execution(sagemaker, arn, poll_seconds=poll_seconds, timeout_seconds=timeout, on_step=show)
    typer.echo(f"execution {result.status}")
