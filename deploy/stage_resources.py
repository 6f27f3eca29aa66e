"""Before a stage deploys on AWS: does the deploy stack provide its Lambda and batch schedule? (issue 21)

A stage's inference Lambda is a function the deploy stack creates (with its role, `live` alias, Function URL
and log group), and the handler may manage only what the stack's policies name; a stage's batch schedule is
created by the engine (deploy/batch/aws_target.py), under statements the stack writes for it. A stage
configured with `lambda = true` (or `batch = true`) while the stack has nothing for it would otherwise fail
in the middle of a reconcile, at its first call on a function that is not there or a schedule it may not
read. The composition root (greenlight/stage_composition.py) asks first, with one read call per such target and
before any change, and refuses in one line naming the stage, the target and the fix.

    require_stage_lambda(lambda_client, stage, function)    GetFunction: missing or denied -> refused
    require_account_lambda(lambda_client, ecr_client, ...)   the same in another account (deploy/target-account.yaml,
                                                            decision 0056): refused naming that template; when its
                                                            stack has the repository but no function yet, the base
                                                            image is copied there first and the refusal names its tag
    require_stage_batch(scheduler_client, stage, schedule)  GetSchedule: denied -> refused (missing: the
                                                            engine creates it on the first deployment)
    require_account_batch(scheduler, iam, stage, batch)      the same in another account (target-account.yaml with
                                                            Batch=true, decision 0059): GetSchedule denied or its
                                                            scheduler role missing -> refused naming that template
                                                            and its parameters; then the stage's batch settings
                                                            must be that stack's (its role, a queue there, own data)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deploy.names import GroupNames
from greenlight.aws_errors import aws_call
from greenlight.errors import AwsError, ConfigurationError, NotFoundError

__all__ = ["require_account_batch", "require_account_lambda", "require_stage_batch", "require_stage_lambda"]

_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "403"})  # moto answers a denied JSON call with 403


def _denied(exc: AwsError) -> bool:
    return exc.code in _DENIED or "not authorized to perform" in str(exc)


def _fix(stage: str, target: str) -> str:
    return (f"run `greenlight stack deploy` with [stages.{stage}] {target} = true in greenlight.toml (the deploy "
            f"stack provides a stage's {target} only for the stages it is deployed with), or set {target} = false "
            f"in [stages.{stage}]")


def require_stage_lambda(lambda_client: Any, stage: str, function: str) -> None:
    """Refuse a stage whose Lambda the deploy stack did not create (or does not let this role manage).

    Raises:
        ConfigurationError: GetFunction says there is no such function, or refuses this role.
        AwsError: any other failure.
    """
    missing = NotFoundError(function)
    try:
        aws_call("GetFunction", lambda_client.get_function, FunctionName=function, on_missing=lambda: missing)
    except NotFoundError:
        raise ConfigurationError(f"stage {stage}: lambda is enabled but its function {function} does not exist: "
                                 + _fix(stage, "lambda")) from None
    except AwsError as exc:
        if not _denied(exc):
            raise
        raise ConfigurationError(f"stage {stage}: lambda is enabled but this role may not manage its function "
                                 f"{function}: " + _fix(stage, "lambda")) from None


def _account(role_arn: str) -> str:
    parts = role_arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else "the stage's account"


def require_account_lambda(lambda_client: Any, ecr_client: Any, stage: str, function: str, repository: str,
                           base_tag: str, role_arn: str, copy_base: Callable[[], None]) -> None:
    """Refuse a stage in another account whose Lambda its deploy/target-account.yaml stack did not create.

    Read calls only, through the stage's role, unless that stack has the stage's repository but no function yet
    (deployed with Lambda=true and no LambdaBaseImageTag): then `copy_base` copies the base image into the
    repository, so that the refusal can name the tag to deploy the stack with.

    Raises:
        ConfigurationError: no such function there, or the stage's role may not manage it.
        AwsError, ImageError: any other failure (of the reads, or of the copy).
    """
    account = _account(role_arn)
    template = f"deploy/target-account.yaml (StageKey={function}) in account {account}"
    missing = NotFoundError(function)
    try:
        aws_call("GetFunction", lambda_client.get_function, FunctionName=function, on_missing=lambda: missing)
        return
    except NotFoundError:  # is the stack there with the repository only (its first step)?
        try:
            aws_call("DescribeRepositories", ecr_client.describe_repositories, repositoryNames=[repository],
                     on_missing=lambda: missing)
            has_repository = True
        except NotFoundError:
            has_repository = False
        except AwsError as exc:
            if not _denied(exc):
                raise
            has_repository = False
    except AwsError as exc:  # denied: the stack was deployed without Lambda=true (its role has no Lambda statement)
        if not _denied(exc):
            raise
        has_repository = False
    if not has_repository:
        raise ConfigurationError(
            f"stage {stage}: lambda is enabled but account {account} has no function {function} its role may "
            f"manage: deploy {template} with Lambda=true, then again with LambdaBaseImageTag={base_tag} (the "
            f"handler copies the base image into {repository} in between), or set lambda = false in "
            f"[stages.{stage}]")
    copy_base()
    raise ConfigurationError(
        f"stage {stage}: lambda is enabled but account {account} has no function {function} yet: its base image is "
        f"now in the repository {repository} there; deploy {template} with Lambda=true and "
        f"LambdaBaseImageTag={base_tag}, or set lambda = false in [stages.{stage}]")


def require_stage_batch(scheduler_client: Any, stage: str, schedule: str) -> None:
    """Refuse a stage whose batch schedule this role may not manage (the deploy stack's policies do not name it).

    Raises:
        ConfigurationError: GetSchedule refuses this role.
        AwsError: any other failure than a missing schedule.
    """
    try:
        aws_call("GetSchedule", scheduler_client.get_schedule, Name=schedule,
                 on_missing=lambda: NotFoundError(schedule))
    except NotFoundError:
        return  # not created yet: the engine creates it on the stage's first deployment
    except AwsError as exc:
        if not _denied(exc):
            raise
        raise ConfigurationError(f"stage {stage}: batch is enabled but this role may not manage its schedule "
                                 f"{schedule}: " + _fix(stage, "batch")) from None


def _arn_account(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    return parts[4] if len(parts) > 4 and parts[4] else None


def require_account_batch(scheduler_client: Any, iam_client: Any, stage: Any, batch: Any) -> None:
    """Refuse a stage in another account whose batch schedule its deploy/target-account.yaml stack does not provide.

    `stage` is a deploy.config.Stage with role_arn; `batch` its BatchConfig with the names filled in (names_for).
    Read calls only, through the stage's role: GetSchedule (denied: the stack has no Batch statements) and GetRole
    on the stack's scheduler role `<key>-scheduler` (missing or denied: no Batch=true); then the stage's settings
    must be that stack's: batch_role_arn that role, batch_dead_letter_arn a queue of that account, batch_input and
    batch_output the stage's own s3:// prefixes (the group's are the registry account's).

    Raises:
        ConfigurationError: the stack does not provide the schedule, or the stage's batch settings are not its.
        AwsError: any other failure.
    """
    account = _account(stage.role_arn)
    scheduler_role = GroupNames(stage.key).role("scheduler")
    fix = (f"deploy deploy/target-account.yaml (StageKey={stage.key}) in account {account} with Batch=true "
           f"BatchJobNamePrefix={batch.job_name_prefix} BatchInput=<s3:// prefix> BatchOutput=<s3:// prefix>, "
           f"then set [stages.{stage.name}] batch_role_arn, batch_dead_letter_arn, batch_input and batch_output "
           f"to its SchedulerRoleArn, BatchDeadLetterQueueArn, BatchInput and BatchOutput, or set batch = false in "
           f"[stages.{stage.name}]")
    refused = ConfigurationError(f"stage {stage.name}: batch is enabled but account {account} has no schedule "
                                 f"{batch.schedule_name} its role may manage: {fix}")
    try:
        aws_call("GetSchedule", scheduler_client.get_schedule, Name=batch.schedule_name,
                 on_missing=lambda: NotFoundError(batch.schedule_name))
    except NotFoundError:
        pass  # not created yet: the engine creates it on the stage's first deployment
    except AwsError as exc:  # denied: the stack was deployed without Batch=true (its role has no scheduler statement)
        if not _denied(exc):
            raise
        raise refused from None
    try:
        found = aws_call("GetRole", iam_client.get_role, RoleName=scheduler_role,
                         on_missing=lambda: NotFoundError(scheduler_role))["Role"]["Arn"]
    except NotFoundError:
        raise refused from None
    except AwsError as exc:
        if not _denied(exc):
            raise
        raise refused from None
    own = dict(stage.batch_overrides)  # the group's [batch] input and output are the registry account's
    wrong = [f"batch_role_arn = {found!r} (SchedulerRoleArn)"] if batch.role_arn != found else []
    if _arn_account(batch.dead_letter_arn) != account:
        wrong.append("batch_dead_letter_arn (BatchDeadLetterQueueArn)")
    wrong += [f"{name} ({parameter})" for name, field_name, parameter in (
        ("batch_input", "input", "BatchInput"), ("batch_output", "output", "BatchOutput"))
        if not own.get(field_name, "").startswith("s3://")]
    if wrong:
        raise ConfigurationError(f"stage {stage.name}: batch is enabled in account {account} but its batch settings "
                                 f"are not that account's: set [stages.{stage.name}] " + ", ".join(wrong)
                                 + f" from its deploy/target-account.yaml stack (StageKey={stage.key}), or set "
                                 f"batch = false in [stages.{stage.name}]")
