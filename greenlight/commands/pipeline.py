"""`greenlight pipeline definition|upsert|start`: the training pipeline on AWS, or its JSON."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import typer

from greenlight.errors import UsageError

app = typer.Typer(help="Build the SageMaker Pipeline definition, upsert it and start it on AWS.",
                  no_args_is_help=True)
log = logging.getLogger(__name__)

_PIPELINE_NAME = typer.Option(None, "--pipeline-name", help="Default: $SAGEMAKER_PROJECT_NAME-$SAGEMAKER_PROJECT_ID, else greenlight-training.")
_GROUP = typer.Option(None, "--model-package-group", help="Model package group to register into (same default rule as --pipeline-name, else greenlight-models).")
_ROLE = typer.Option(None, "--role-arn", help="IAM role the pipeline runs as. Default: $SAGEMAKER_PIPELINE_ROLE_ARN.")
_BUCKET = typer.Option(None, "--bucket", help="S3 bucket for code, data and artifacts. Default: $ARTIFACT_BUCKET.")
_REGION = typer.Option(None, "--region", help="AWS region. Default: $AWS_REGION, else us-east-1.")
_PREFIX = typer.Option(None, "--prefix", help="S3 key prefix and job name prefix. Default: the project name-id, else greenlight.")
_TAGS = typer.Option([], "--tag", metavar="KEY=VALUE", help="Tag for the pipeline (repeatable). SageMaker Projects' sagemaker:project-name/-id tags are added from the environment.")


def parse_pairs(pairs: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} {pair!r} is not KEY=VALUE")
        out[key] = value
    return out


def check_parameters(overrides: dict[str, str]) -> dict[str, str]:
    """Check names and types against the pipeline's parameters, with the runner's own rules.

    Raises:
        ParameterError: an unknown name or a value that does not parse as the parameter's type.
    """
    from pipelines.definition import PARAMETER_DEFAULTS
    from pipelines.local.expressions import coerce_parameters

    # Defaults that come from the config at build time do not matter for this check.
    declared = [{"Name": name, "Type": kind, "DefaultValue": "" if default is None else default}
                for name, (kind, default) in PARAMETER_DEFAULTS.items()]
    coerce_parameters(declared, overrides)
    return overrides


def _config(require_aws: bool, **flags):
    from pipelines.config import PipelineConfig

    tags = parse_pairs(flags.pop("tags"), "--tag")
    return PipelineConfig.resolve(require_aws=require_aws, tags=tags, **flags)


def _quiet_sdk(region: str) -> None:
    """Prepare the SDK's environment and keep its warnings off the terminal.

    Its log records are filtered by the level of the CLI's log handler (greenlight.cli), which
    also holds against SDK functions that set their own loggers to DEBUG while they run.
    """
    from pipelines.sessions import prepare_environment

    prepare_environment(region)  # the SDK needs a region at import time
    warnings.filterwarnings("ignore", module=r"sagemaker(\..*)?")
    warnings.filterwarnings("ignore", message="Running within a PipelineSession")


@app.command()
def definition(
    output: Path = typer.Option(None, "--output", "-o", help="Write the JSON here instead of stdout."),
    pipeline_name: str = _PIPELINE_NAME, model_package_group: str = _GROUP, role_arn: str = _ROLE,
    bucket: str = _BUCKET, region: str = _REGION, prefix: str = _PREFIX, tags: list[str] = _TAGS,
) -> None:
    """Print the pipeline definition JSON, built offline: no AWS credentials, no network.

    Two runs with the same code and flags print byte-identical JSON. Role and bucket default to
    placeholders when neither flags nor SageMaker Projects variables give them.
    """
    from pipelines.definition import build_definition, gc_paused
    from pipelines.sessions import offline_session

    config = _config(False, pipeline_name=pipeline_name, model_package_group=model_package_group,
                     role_arn=role_arn, bucket=bucket, region=region, prefix=prefix, tags=tags)
    _quiet_sdk(config.region)
    with gc_paused():
        text = build_definition(config, offline_session(config))
    if output:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output} ({len(text)} bytes)", err=True)
    else:
        sys.stdout.write(text)


def _aws_clients(region: str):
    import boto3

    session = boto3.Session(region_name=region)
    return session, session.client("sagemaker"), session.client("s3")


@app.command()
def upsert(
    pipeline_name: str = _PIPELINE_NAME, model_package_group: str = _GROUP, role_arn: str = _ROLE,
    bucket: str = _BUCKET, region: str = _REGION, prefix: str = _PREFIX, tags: list[str] = _TAGS,
) -> None:
    """Create or update the pipeline on SageMaker.

    Builds the same definition as `pipeline definition`, with the code uploaded to the bucket, and
    puts the bundled diabetes data at the InputDataUrl default so a plain `start` has data.
    """
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError

    from greenlight.data import default_dataset_csv
    from greenlight.errors import AwsError
    from greenlight.store import split_s3_uri
    from pipelines.aws import call, upsert_pipeline
    from pipelines.definition import build_definition, gc_paused
    from pipelines.sessions import aws_session

    config = _config(True, pipeline_name=pipeline_name, model_package_group=model_package_group,
                     role_arn=role_arn, bucket=bucket, region=region, prefix=prefix, tags=tags)
    _quiet_sdk(config.region)
    boto_session, sagemaker, s3 = _aws_clients(config.region)
    data_bucket, data_key = split_s3_uri(config.default_input_uri)
    call("PutObject", s3.put_object, Bucket=data_bucket, Key=data_key, Body=default_dataset_csv())
    with gc_paused():
        try:
            text = build_definition(config, aws_session(config, boto_session))
        except (BotoCoreError, Boto3Error) as exc:  # the SDK's code uploads to S3
            raise AwsError(f"uploading the pipeline's code to s3://{config.bucket} failed: {exc}") from exc
    arn, created = upsert_pipeline(sagemaker, name=config.pipeline_name, definition=text,
                                   role_arn=config.role_arn, tags=config.tag_list())
    typer.echo(f"{'created' if created else 'updated'} pipeline {config.pipeline_name}: {arn}")


@app.command()
def start(
    wait: bool = typer.Option(False, "--wait", help="Follow the execution: print each step's status changes, end with its status and failure reason; exit 1 if it did not succeed."),
    params: list[str] = typer.Option([], "--param", metavar="NAME=VALUE", help="Override a pipeline parameter (repeatable), e.g. --param NEstimators=200."),
    poll_seconds: float = typer.Option(30.0, "--poll-seconds", min=0.0, help="How often --wait polls SageMaker."),
    pipeline_name: str = _PIPELINE_NAME, region: str = _REGION,
) -> None:
    """Start an execution of the pipeline on SageMaker (run `upsert` first)."""
    from pipelines.aws import start_execution, wait_for_execution
    from pipelines.config import PipelineConfig

    overrides = check_parameters(parse_pairs(params, "--param"))
    config = PipelineConfig.resolve(pipeline_name=pipeline_name, region=region)
    _, sagemaker, _ = _aws_clients(config.region)
    arn = start_execution(sagemaker, name=config.pipeline_name, parameters=overrides)
    typer.echo(f"started {arn}")
    if not wait:
        return

    def show(step: dict) -> None:
        reason = f" ({step['FailureReason']})" if step.get("FailureReason") else ""
        typer.echo(f"  {step.get('StepName', '?'):<12} {step.get('StepStatus', '?')}{reason}")

    result = wait_for_execution(sagemaker, arn, poll_seconds=poll_seconds, on_step=show)
    typer.echo(f"execution {result.status}")
