"""What the CloudFormation stacks are given (pure: no AWS, no disk).

    template_parameters(config)            the deploy stack's parameters for a DeployConfig
    template_configuration(parameters, tags)   a CodePipeline template configuration file's content
    stack_names(group)                     (bootstrap stack, deploy stack)
    product_template(project_yaml, seed)   deploy/project.yaml as the portfolio's product: SeedObject defaulted

Every setting the engine reads (deploy.config.ENV_FIELDS) is a parameter of deploy/template.yaml named
after its variable (GREENLIGHT_ENDPOINT_MEMORY_MB -> EndpointMemoryMb), except the few that name a
resource the stack creates itself (STACK_OWNED); tests/unit/test_template_config.py holds the template
to that, so the stack's handler reads exactly the greenlight.toml / GREENLIGHT_* the CLI reads.
What CloudFormation cannot derive from the group is derived here by deploy/names.py: GroupLowerCase
(SageMaker ARNs, the ECR repository) and, when the configuration leaves it unset, the batch job name
prefix (DERIVED: the template has no default for it). The `[stages]` sections do not fit one parameter
per setting (their names are the user's): they travel as one JSON object, parameter `Stages`, which the
handler reads as GREENLIGHT_STAGES (deploy/config.py `stages_json`; docs/decisions/0049). What the template
cannot read from that JSON or derive without a hash comes derived too (`stage_parameters`; docs/decisions/0053):
the stages gated by promotion, the stages with lambda, with batch and with endpoint enabled (the lists its
Fn::ForEach loops run over; EndpointStages: the drift monitor's reads, docs/decisions/0057) and, per such
stage, the names deploy/names.py gives its inference role, batch schedule and job prefix.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any

from deploy.config import ENV_FIELDS, DeployConfig, stages_json
from deploy.names import GroupNames

__all__ = ["DERIVED", "LAMBDA_PLATFORMS", "STACK_OWNED", "STAGES_MAX_LENGTH", "parameter_name", "product_template",
           "stack_names", "stage_parameters", "template_configuration", "template_parameters"]

# Variables the template sets from a resource it creates, not from a parameter.
STACK_OWNED = frozenset({"GREENLIGHT_STATE_TABLE", "GREENLIGHT_ENDPOINT_ROLE_ARN", "GREENLIGHT_LAMBDA_FUNCTION_NAME",
                         "GREENLIGHT_LAMBDA_ECR_REPOSITORY", "GREENLIGHT_BATCH_ROLE_ARN",
                         "GREENLIGHT_BATCH_DEAD_LETTER_ARN"})
# Variables whose parameter is always given: the configured value, else the name deploy/names.py derives.
DERIVED = {"GREENLIGHT_BATCH_JOB_NAME_PREFIX": lambda names: names.job_prefix}
LAMBDA_PLATFORMS = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}
# The `Stages` parameter's MaxLength: Lambda's environment variables share 4 KB (docs/aws-behaviour.md).
STAGES_MAX_LENGTH = 768


def parameter_name(variable: str) -> str:
    """GREENLIGHT_ENDPOINT_MEMORY_MB -> EndpointMemoryMb."""
    return "".join(part.capitalize() for part in variable.removeprefix("GREENLIGHT_").split("_"))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, float):
        return f"{value:g}" if value == int(value) or abs(value) >= 1e-4 else repr(value)
    if isinstance(value, tuple):  # a list setting (alarm names): comma-separated, as GREENLIGHT_* reads it
        return ",".join(_text(v) for v in value)
    return str(value)


def _value(config: DeployConfig, path: tuple[str, ...]) -> Any:
    node: Any = config
    for key in path:
        node = getattr(node, key) if hasattr(node, key) else getattr(node, f"{key}_")
    return node


# Settings that may name a local folder in greenlight.toml (local mode); on AWS only s3:// makes sense,
# and an empty parameter lets the stack default them to its artifact bucket's <group>/batch/ prefixes.
S3_OR_DEFAULT = frozenset({"GREENLIGHT_BATCH_INPUT", "GREENLIGHT_BATCH_OUTPUT"})


def template_parameters(config: DeployConfig) -> dict[str, str]:
    """The deploy stack's parameters carrying every setting of `config` (as the handler will read them).

    Raises:
        ConfigurationError: the stages do not fit the `Stages` parameter (STAGES_MAX_LENGTH), or a stage's key
            does not keep the group whole (the stack's policies name stage resources `<Group>-*`).
    """
    from greenlight.errors import ConfigurationError

    for stage in config.stage_list():
        if not stage.implicit and not stage.key.startswith(f"{config.group}-"):
            raise ConfigurationError(f"stage {stage.name}: its names ({stage.key}) cannot keep the group "
                                     f"{config.group} whole, so the deploy stack's policies cannot name them: the "
                                     "group and the stage name take at most 62 characters together")
    parameters = {"Stages": stages_json(config), **stage_parameters(config)}
    if len(parameters["Stages"]) > STAGES_MAX_LENGTH:
        raise ConfigurationError(f"[stages] take {len(parameters['Stages'])} characters as the deploy stack's Stages "
                                 f"parameter, more than its {STAGES_MAX_LENGTH} (Lambda's 4 KB of variables): "
                                 "fewer stages or shorter role ARNs")
    for variable, path in ENV_FIELDS.items():
        if variable in STACK_OWNED:
            continue
        value = _text(_value(config, path))
        if variable in S3_OR_DEFAULT and not value.startswith("s3://"):
            value = ""  # a local folder: the stack's own bucket prefix instead
        if variable in DERIVED and not value:
            value = DERIVED[variable](config.names)
        parameters[parameter_name(variable)] = value
    parameters["GroupLowerCase"] = GroupNames(config.group).arn_name
    return parameters


def stage_parameters(config: DeployConfig) -> dict[str, str]:
    """The parameters derived from the [stages] sections: PromotionStages, LambdaStages, BatchStages, EndpointStages
    (names, comma-separated) and StageNames, `|<stage>.<kind>=<name>|...` for the stages of the last two, which the
    template's loops look their names up in (Fn::Split; it cannot hash). All "" without [stages]. A stage with
    role_arn has its Lambda and schedule in that account (deploy/target-account.yaml, decisions 0056 and 0059): not
    in LambdaStages or BatchStages."""
    stages = [s for s in config.stage_list() if not s.implicit]
    names = []
    here = [s for s in stages if s.lambda_ and s.role_arn is None]
    for stage in stages:
        key = GroupNames(stage.key)
        if stage in here:
            names.append(f"{stage.name}.role={key.role('inference')}")
        if stage.batch and stage.role_arn is None:  # what the handler names them (greenlight/stage_composition.py)
            batch = config.batch.model_copy(update={"schedule_name": None, "job_name_prefix": None})
            named = batch.names_for(stage.key)
            names += [f"{stage.name}.schedule={named.schedule_name}", f"{stage.name}.prefix={named.job_name_prefix}"]
    return {"PromotionStages": ",".join(s.name for s in stages if s.gate == "promotion"),
            "LambdaStages": ",".join(s.name for s in here),
            # a stage with role_arn has its schedule in that account (target-account.yaml, decision 0059)
            "BatchStages": ",".join(s.name for s in stages if s.batch and s.role_arn is None),
            # in this account only: a stage with role_arn has its endpoint, and its log group, in another
            "EndpointStages": ",".join(s.name for s in stages if s.endpoint and s.role_arn is None),
            "StageNames": "".join(f"|{n}" for n in names) + ("|" if names else "")}


def template_configuration(parameters: Mapping[str, str], tags: Mapping[str, str] | None = None) -> str:
    """A CloudFormation template configuration file (what CodePipeline's TemplateConfiguration reads)."""
    return json.dumps({"Parameters": dict(sorted(parameters.items())), "Tags": dict(sorted((tags or {}).items()))},
                      indent=2) + "\n"


def stack_names(group: str) -> tuple[str, str]:
    """(the bootstrap stack: artifact bucket and pipeline role; the deploy stack) of `group`."""
    return GroupNames(group).stacks


_SEED_DEFAULT = '  SeedObject:\n    Type: String\n    Default: ""\n'


def product_template(project_yaml: str, seed_uri: str) -> str:
    """deploy/project.yaml with SeedObject's default set to `seed_uri` (SageMaker Projects pass only the
    project's name and id, so what a new project starts from has to be the template's default).

    Raises:
        ConfigurationError: the template has no `SeedObject` parameter defaulting to "" (an edited template).
    """
    from greenlight.errors import ConfigurationError

    if project_yaml.count(_SEED_DEFAULT) != 1 or '"' in seed_uri or not seed_uri.startswith("s3://"):
        raise ConfigurationError("deploy/project.yaml has no SeedObject parameter defaulting to \"\" (or the seed "
                                 f"{seed_uri!r} is not an s3:// URI): cannot make the product's template")
    return project_yaml.replace(_SEED_DEFAULT, _SEED_DEFAULT.replace('Default: ""', f'Default: "{seed_uri}"'))
