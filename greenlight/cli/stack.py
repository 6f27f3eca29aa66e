"""`greenlight stack project|package|deploy|delete`: the AWS infrastructure, with or without SageMaker Projects.

    stack project  the SageMaker Projects template: deploy/portfolio.yaml (a Service Catalog portfolio, the
                   Greenlight product visible in Studio, its launch role), with deploy/project.yaml as the
                   product and a zip of this checkout as the seed code new projects start from
    stack deploy   the bootstrap stack (deploy/project.yaml without its pipeline: the artifact bucket and
                   the SageMaker Pipeline role), the approval handler's zip (deploy/package.py) uploaded
                   there, then the deploy stack (deploy/template.yaml) configured from the same
                   greenlight.toml / GREENLIGHT_* variables the engine reads
    stack package  the handler's zip uploaded, and a CloudFormation template configuration file with the
                   deploy stack's parameters (what the CodePipeline's deploy actions read)
    stack delete   both stacks; --purge first empties the ECR repository and afterwards the artifact bucket,
                   which CloudFormation cannot delete while they hold anything

Stacks change through change sets (deploy/stack.py): each resource's progress is printed, an empty
change set is "no changes", a failure is the first failed event's reason.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import typer

from greenlight.cli.options import REGION, parse_pairs, workspace
from greenlight.errors import ConfigurationError

__all__ = ["app"]

app = typer.Typer(help="The AWS infrastructure (CloudFormation): the SageMaker Projects portfolio, or the bootstrap "
                       "and deploy stacks without SageMaker Projects.", no_args_is_help=True)

GROUP = typer.Option(None, "--group", "-g", help="Model package group (default: the configuration's, else "
                                                 "$SAGEMAKER_PROJECT_NAME-$SAGEMAKER_PROJECT_ID, else "
                                                 "greenlight-models).")
CONFIG = typer.Option(None, "--config", help="Deployment configuration TOML (default: $GREENLIGHT_CONFIG, "
                                             "./greenlight.toml, then $GREENLIGHT_HOME/greenlight.toml).")
STACK_NAME = typer.Option(None, "--stack-name", help="The deploy stack (default: greenlight-<group>; the bootstrap "
                                                     "stack is greenlight-<group>-bootstrap).")
TIMEOUT = typer.Option(3600.0, "--timeout", min=1.0, help="Stop waiting for a stack after this many seconds.")
POLL = typer.Option(5.0, "--poll-seconds", min=0.0, help="How often to read the stack's events.")
PYTHON, ARCHITECTURE = "3.12", "x86_64"  # the handler's runtime in deploy/template.yaml


def _settings(ws, config: Path | None, group: str | None):
    import os

    from deploy.names import project_group

    project = os.environ.get("SAGEMAKER_PROJECT_NAME"), os.environ.get("SAGEMAKER_PROJECT_ID")
    if group is None and all(project) and not os.environ.get("GREENLIGHT_GROUP"):
        group = project_group(*project)
    return ws.deploy_config(config, group=group)


def _package(ws, s3, bucket: str) -> str:
    from deploy.package import build_handler_package
    from deploy.stack_assets import upload_handler

    out = ws.home / "stack"
    package = build_handler_package(out, PYTHON, ARCHITECTURE, cache=out / "cache")
    key, uploaded = upload_handler(s3, bucket, package.path)
    typer.echo(f"handler package {package.path.name} ({package.bytes:,} bytes, {package.files} files) "
               f"{'uploaded to' if uploaded else 'already in'} s3://{bucket}/{key}")
    return key


def _base_tag(ws, stacks, stack_name: str, repository: str, architecture: str, given: str | None) -> str:
    """The inference Lambda's base image tag: --base-image-tag, else this code's base tag if the repository
    has it, else what the stack has now, else "" (no function yet)."""
    from deploy.image.base_tag import base_tag
    from deploy.stack_assets import image_exists
    from deploy.stack_parameters import LAMBDA_PLATFORMS

    if given is not None:
        return given
    tag = base_tag(Path(__file__).resolve().parents[2], LAMBDA_PLATFORMS[architecture])
    if image_exists(ws.client("ecr"), repository, tag):
        return tag
    current = stacks.parameters(stack_name).get("LambdaBaseImageTag", "")
    typer.echo(f"the base image {repository}:{tag} is not in ECR yet; "
               + (f"the inference Lambda stays on {current}" if current else "the inference Lambda is created once it is"))
    return current


def _deploy_parameters(settings, bucket: str, key: str, overrides: dict[str, str]) -> dict[str, str]:
    from deploy.stack_parameters import template_parameters

    return {**template_parameters(settings), "Group": settings.group, "HandlerS3Bucket": bucket,
            "HandlerS3Key": key, "ArtifactBucket": bucket, **overrides}


def _stacks(ws, poll: float, timeout: float):
    from deploy.stack import Stacks

    return Stacks(ws.client("cloudformation"), echo=typer.echo, poll=poll, timeout=timeout)


PORTFOLIO_STACK = "greenlight-portfolio"
TEMPLATE_PREFIX = "templates/"


@app.command()
def project(
    region: str = REGION,
    stack_name: str = typer.Option(PORTFOLIO_STACK, "--stack-name", help="The portfolio's stack."),
    studio_roles: str = typer.Option(None, "--studio-roles", metavar="IAM_PATTERN",
                                     help="Which SageMaker Studio execution roles may create projects from the template "
                                          "(an IAM_PATTERN ARN without account id; default: the stack's, at first "
                                          "arn:aws:iam:::role/service-role/AmazonSageMaker-ExecutionRole-*)."),
    timeout: float = TIMEOUT, poll_seconds: float = POLL,
) -> None:
    """Register the SageMaker Projects template: portfolio, product (deploy/project.yaml) and seed code."""
    from deploy.stack_assets import SEED_PREFIX, seed_archive, upload_file
    from deploy.stack_parameters import product_template

    ws = workspace("aws", region)
    stacks = _stacks(ws, poll_seconds, timeout)
    root = Path(__file__).resolve().parents[2]
    current = stacks.parameters(stack_name)
    base = {"StudioRolePattern": studio_roles or current.get("StudioRolePattern", ""),
            "TemplateUrl": current.get("TemplateUrl", ""), "TemplateVersion": current.get("TemplateVersion", "v1")}
    base = {k: v for k, v in base.items() if v}
    typer.echo(f"portfolio stack {stack_name} (assets bucket, launch role, portfolio) in {ws.region}")
    assets = stacks.deploy(stack_name, (root / "deploy" / "portfolio.yaml").read_text(encoding="utf-8"), base)
    bucket, s3 = assets.outputs["AssetsBucket"], ws.client("s3")
    seed = seed_archive(root, ws.home / "stack")
    seed_key = SEED_PREFIX + seed.name
    uploaded = upload_file(s3, bucket, seed_key, seed)
    typer.echo(f"seed code {seed.name} ({seed.stat().st_size:,} bytes) {'uploaded to' if uploaded else 'already in'} "
               f"s3://{bucket}/{seed_key}")
    product = product_template((root / "deploy" / "project.yaml").read_text(encoding="utf-8"),
                               f"s3://{bucket}/{seed_key}")
    version = hashlib.sha256(product.encode()).hexdigest()[:12]
    rendered = ws.home / "stack" / f"project-{version}.yaml"
    rendered.write_text(product, encoding="utf-8")
    template_key = f"{TEMPLATE_PREFIX}project-{version}.yaml"
    upload_file(s3, bucket, template_key, rendered)
    url = f"https://{bucket}.s3.{ws.region}.amazonaws.com/{template_key}"
    typer.echo(f"product template {url}")
    result = stacks.deploy(stack_name, (root / "deploy" / "portfolio.yaml").read_text(encoding="utf-8"),
                           {**base, "TemplateUrl": url, "TemplateVersion": version})
    _print_outputs(result.outputs)
    typer.echo("next: in SageMaker Studio, Deployments > Projects > Create project > Organization templates > "
               "Greenlight; or `aws sagemaker create-project --project-name NAME --service-catalog-provisioning-details "
               f"ProductId={result.outputs.get('ProductId')}` (a project's first pipeline run trains on the seed code)")


def _templates() -> tuple[str, str]:
    root = Path(__file__).resolve().parents[2] / "deploy"
    return (root / "project.yaml").read_text(encoding="utf-8"), (root / "template.yaml").read_text(encoding="utf-8")


@app.command()
def deploy(
    group: str = GROUP, region: str = REGION, config: Path = CONFIG, stack_name: str = STACK_NAME,
    base_image_tag: str = typer.Option(None, "--base-image-tag", help="Tag of the inference Lambda's base image in "
                                       "the stack's ECR repository (default: this code's base tag if it is there, "
                                       "else the stack's current one; empty: no inference Lambda yet)."),
    parameters: list[str] = typer.Option([], "--parameter", metavar="NAME=VALUE",
                                         help="Any other deploy stack parameter (repeatable), e.g. "
                                              "AlarmTopicArn=arn:aws:sns:..."),
    timeout: float = TIMEOUT, poll_seconds: float = POLL,
) -> None:
    """Create or update the bootstrap and deploy stacks, uploading the approval handler's package."""
    from deploy.stack_parameters import stack_names

    overrides = parse_pairs(parameters, "--parameter")
    ws = workspace("aws", region)
    settings = _settings(ws, config, group)
    bootstrap, default_name = stack_names(settings.group)
    stack_name = stack_name or default_name
    stacks = _stacks(ws, poll_seconds, timeout)
    project, template = _templates()
    typer.echo(f"bootstrap stack {bootstrap} (artifact bucket, SageMaker Pipeline role) in {ws.region}")
    boot = stacks.deploy(bootstrap, project, {"Group": settings.group, "GroupLowerCase": settings.names.arn_name,
                                              "CreatePipeline": "false"})
    bucket = boot.outputs["ArtifactBucket"]
    key = _package(ws, ws.client("s3"), bucket)
    values = _deploy_parameters(settings, bucket, key, overrides)
    values["LambdaBaseImageTag"] = _base_tag(ws, stacks, stack_name, settings.names.repository,
                                             values.get("LambdaArchitecture", "x86_64"), base_image_tag)
    typer.echo(f"deploy stack {stack_name} (approval handler, lease table, ECR repository, inference Lambda, roles)")
    result = stacks.deploy(stack_name, template, values)
    _print_outputs({**boot.outputs, **result.outputs})
    if not values["LambdaBaseImageTag"]:
        typer.echo(f"next: build the inference Lambda's base image into {result.outputs.get('RepositoryUri')} "
                   "(CodeBuild with deploy/lambda/buildspec.yml and GREENLIGHT_ECR_REPOSITORY="
                   f"{settings.names.repository}, or the docker commands in deploy/lambda/Dockerfile), then run "
                   "`greenlight stack deploy` again")
    typer.echo(f"train: greenlight pipeline upsert --role-arn {boot.outputs.get('SageMakerPipelineRoleArn')} "
               f"--bucket {bucket} --model-package-group {settings.group} && greenlight pipeline start --wait")


@app.command()
def package(
    bucket: str = typer.Option(None, "--bucket", help="Artifact bucket to upload the handler to (default: "
                                                     "$ARTIFACT_BUCKET)."),
    output: Path = typer.Option(Path("stack-config.json"), "--output", "-o",
                                help="Where to write the template configuration (JSON)."),
    group: str = GROUP, region: str = REGION, config: Path = CONFIG, stack_name: str = STACK_NAME,
) -> None:
    """Upload the approval handler's package and write the deploy stack's template configuration."""
    import os

    from deploy.stack_parameters import stack_names, template_configuration

    bucket = bucket or os.environ.get("ARTIFACT_BUCKET")
    if not bucket:
        raise ConfigurationError("missing --bucket / ARTIFACT_BUCKET (where the handler's package goes)")
    ws = workspace("aws", region)
    settings = _settings(ws, config, group)
    stack_name = stack_name or stack_names(settings.group)[1]
    key = _package(ws, ws.client("s3"), bucket)
    values = _deploy_parameters(settings, bucket, key, {})
    values["LambdaBaseImageTag"] = _base_tag(ws, _stacks(ws, 5.0, 60.0), stack_name, settings.names.repository,
                                             values.get("LambdaArchitecture", "x86_64"), None)
    tags = {k: v for k, v in (("sagemaker:project-name", os.environ.get("SAGEMAKER_PROJECT_NAME")),
                              ("sagemaker:project-id", os.environ.get("SAGEMAKER_PROJECT_ID"))) if v}
    if tags:
        values.update(SageMakerProjectName=tags["sagemaker:project-name"],
                      SageMakerProjectId=tags.get("sagemaker:project-id", ""))
    output.write_text(template_configuration(values, tags), encoding="utf-8")
    typer.echo(f"wrote {output} (parameters of {stack_name})")


@app.command()
def delete(
    group: str = GROUP, region: str = REGION, config: Path = CONFIG, stack_name: str = STACK_NAME,
    purge: bool = typer.Option(False, "--purge", help="Also delete the ECR repository's images and the artifact "
                                                      "bucket with everything in it (CloudFormation keeps both)."),
    timeout: float = TIMEOUT, poll_seconds: float = POLL,
) -> None:
    """Delete the deploy stack, then the bootstrap stack (--purge: images and the artifact bucket too)."""
    from deploy.stack_assets import empty_bucket, empty_repository
    from deploy.stack_parameters import stack_names

    ws = workspace("aws", region)
    settings = _settings(ws, config, group)
    bootstrap, default_name = stack_names(settings.group)
    stack_name = stack_name or default_name
    stacks = _stacks(ws, poll_seconds, timeout)
    deployed = stacks.outputs(stack_name)
    if purge and deployed.get("RepositoryName"):
        count = empty_repository(ws.client("ecr"), deployed["RepositoryName"])
        typer.echo(f"deleted {count} image(s) from ECR repository {deployed['RepositoryName']}")
    removed = stacks.delete(stack_name)
    bucket = stacks.outputs(bootstrap).get("ArtifactBucket")
    removed = stacks.delete(bootstrap) or removed
    if bucket and purge:
        count = empty_bucket(ws.client("s3"), bucket)
        typer.echo(f"deleted the artifact bucket {bucket} and its {count} object version(s)")
    elif bucket:
        typer.echo(f"kept the artifact bucket {bucket} (CloudFormation retains it; --purge deletes it)")
    if not removed:
        typer.echo(f"nothing to delete: no stack {stack_name} or {bootstrap} in {ws.region}")
    typer.echo("SageMaker endpoints, models and endpoint configs the engine created are not part of the stacks; "
               "`when_nothing_approved = \"stop\"` with every version rejected removes the endpoint")


def _print_outputs(outputs: dict[str, Any]) -> None:
    for key in sorted(outputs):
        typer.echo(f"  {key:<28} {outputs[key]}")
