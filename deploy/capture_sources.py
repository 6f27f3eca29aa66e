"""Where each stage's serving targets write their capture records on AWS (pure: no AWS, no disk).

    plans = capture_plans(config)               # every stage of the configuration, in order
    plans = capture_plans(config, "staging")    # that stage only (ParameterError naming the stages if unknown)
    plan.sources                                # greenlight.monitor.aws LogSources, each naming its stage
    plan.role_arn                               # not None: read them through this role (another account)
    plan.reader_arn                             # with role_arn: the scheduled monitor's read-only role there
    plan.not_read                               # enabled targets no source reads, each with why (one line)

The names are the engine's (greenlight/stage_composition.py builds a stage's targets from its key) through the one name
function, deploy/names.py. Without [stages], one plan for the implicit stage with today's three sources
(endpoint, Lambda, batch, enabled or not: a log group nothing wrote to contributes nothing). With [stages],
each stage's enabled targets: its endpoint `/aws/sagemaker/Endpoints/<key>` (GroupNames(key).endpoint), its
Lambda's `/greenlight/<group>/<stage>/inference` (the stack's StageLambdas, GroupNames.inference_log_group)
and its jobs' streams `<job prefix>-` in `/aws/sagemaker/TransformJobs` (the stage's prefix, as the handler
names its schedule's jobs). A stage in another account (`role_arn`) has its endpoint there and, with `lambda`, its
Lambda (deploy/target-account.yaml with Lambda=true, docs/decisions/0056): both log groups are read in that
account, by the CLI through that role (DeployRole's ReadCapture and ReadLambdaCapture) and by the scheduled
monitor through `reader_arn`, the stack's read-only `<key>-capture-reader` (MonitorRoleArn set) in the same
account. Its batch jobs (target-account.yaml with Batch=true, docs/decisions/0059) log to that account's shared
`/aws/sagemaker/TransformJobs`, which CloudWatch Logs grants only whole (FilterLogEvents takes no stream
prefix in IAM), so no role there may read it and it is named in `not_read`. docs/decisions/0057, 0060.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy.config import DeployConfig, Stage
from deploy.names import GroupNames
from greenlight.monitor.aws import LogSource, batch_source, endpoint_source, lambda_source

__all__ = ["CAPTURE_READER", "CapturePlan", "capture_plans", "reader_arn", "stage_plan"]

# the role deploy/target-account.yaml creates for the scheduled monitor: <key>-capture-reader (GroupNames.role)
CAPTURE_READER = "capture-reader"


@dataclass(frozen=True)
class CapturePlan:
    """One stage's capture: where to read it, through which role, and what is not read and why."""

    stage: str | None  # None: the implicit stage (no [stages])
    sources: tuple[LogSource, ...]
    role_arn: str | None = None
    not_read: tuple[str, ...] = ()
    reader_arn: str | None = None  # with role_arn: the scheduled monitor's read-only role there (reader_arn())

    @property
    def log_groups(self) -> str:
        return ", ".join(s.log_group for s in self.sources) or "no log group"


def stage_plan(config: DeployConfig, stage: Stage, function_log_group: str | None = None) -> CapturePlan:
    """The capture plan of one stage (module docstring); `function_log_group` overrides the implicit stage's
    Lambda log group (the scheduled monitor's GREENLIGHT_MONITOR_LAMBDA_LOG_GROUP)."""
    names = GroupNames(config.group)
    if stage.implicit:
        return CapturePlan(None, (endpoint_source(config.endpoint_name),
                                  lambda_source(function_log_group or names.inference_log_group()),
                                  batch_source(_job_prefix(config, stage))))
    key = GroupNames(stage.key)
    sources = [endpoint_source(key.endpoint, stage.name)] if stage.endpoint else []
    not_read: list[str] = []
    if stage.lambda_:  # here, or in the role's account (target-account.yaml names it the same way, 0056)
        sources.append(lambda_source(names.inference_log_group(stage.name), stage.name))
    if stage.role_arn is None:
        if stage.batch:
            sources.append(batch_source(_job_prefix(config, stage), stage.name))
        return CapturePlan(stage.name, tuple(sources))
    if stage.batch:
        not_read.append(f"stage {stage.name}'s batch is not read: its jobs log to /aws/sagemaker/TransformJobs "
                        "in the stage's account, which IAM grants only whole (every job there), so no Greenlight "
                        "role there may read it (docs/decisions/0059)")
    return CapturePlan(stage.name, tuple(sources), stage.role_arn, tuple(not_read),
                       reader_arn(stage.role_arn, stage.key))


def reader_arn(role_arn: str, key: str) -> str:
    """The ARN of the read-only capture role deploy/target-account.yaml creates beside the stage's deploy role
    `role_arn` (same partition and account; `<key>-capture-reader`, no path, as the stack names it)."""
    partition, account = role_arn.split(":")[1], role_arn.split(":")[4]
    return f"arn:{partition}:iam::{account}:role/{GroupNames(key).role(CAPTURE_READER)}"


def capture_plans(config: DeployConfig, stage: str | None = None) -> list[CapturePlan]:
    """Every stage's capture plan in stage order, or only `stage`'s.

    Raises:
        ParameterError: `stage` is not a stage of the configuration (naming those there are).
    """
    stages = config.stage_list() if stage is None else [config.stage(stage)]
    return [stage_plan(config, s) for s in stages]


def _job_prefix(config: DeployConfig, stage: Stage) -> str:
    """The TransformJobName prefix the handler gives the stage's jobs (greenlight/stage_composition.py: the group's
    configured prefix for the implicit stage, the name derived from the key for a stage)."""
    batch = config.batch if stage.implicit else config.batch.model_copy(update={"job_name_prefix": None})
    return str(batch.names_for(stage.key).job_name_prefix)
