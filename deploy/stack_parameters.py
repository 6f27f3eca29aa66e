"""What the CloudFormation stacks are given (pure: no AWS, no disk).

    template_parameters(config)            the deploy stack's parameters for a DeployConfig
    template_configuration(parameters, tags)   a CodePipeline template configuration file's content
    stack_names(group)                     (bootstrap stack, deploy stack)

Every setting the engine reads (deploy.config.ENV_FIELDS) is a parameter of deploy/template.yaml named
after its variable (GREENLIGHT_ENDPOINT_MEMORY_MB -> EndpointMemoryMb), except the few that name a
resource the stack creates itself (STACK_OWNED); tests/unit/test_template_config.py holds the template
to that, so the stack's handler reads exactly the greenlight.toml / GREENLIGHT_* the CLI reads.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any

from deploy.config import ENV_FIELDS, DeployConfig

__all__ = ["LAMBDA_PLATFORMS", "STACK_OWNED", "parameter_name", "stack_names", "template_configuration",
           "template_parameters"]

# Variables the template sets from a resource it creates, not from a parameter.
STACK_OWNED = frozenset({"GREENLIGHT_STATE_TABLE", "GREENLIGHT_ENDPOINT_ROLE_ARN", "GREENLIGHT_LAMBDA_FUNCTION_NAME",
                         "GREENLIGHT_LAMBDA_ECR_REPOSITORY", "GREENLIGHT_BATCH_ROLE_ARN",
                         "GREENLIGHT_BATCH_DEAD_LETTER_ARN"})
LAMBDA_PLATFORMS = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}


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
    return str(value)


def _value(config: DeployConfig, path: tuple[str, ...]) -> Any:
    node: Any = config
    for key in path:
        node = getattr(node, key) if hasattr(node, key) else getattr(node, f"{key}_")
    return node


def template_parameters(config: DeployConfig) -> dict[str, str]:
    """The deploy stack's parameters carrying every setting of `config` (as the handler will read them)."""
    return {parameter_name(variable): _text(_value(config, path)) for variable, path in ENV_FIELDS.items()
            if variable not in STACK_OWNED}


def template_configuration(parameters: Mapping[str, str], tags: Mapping[str, str] | None = None) -> str:
    """A CloudFormation template configuration file (what CodePipeline's TemplateConfiguration reads)."""
    return json.dumps({"Parameters": dict(sorted(parameters.items())), "Tags": dict(sorted((tags or {}).items()))},
                      indent=2) + "\n"


def stack_names(group: str) -> tuple[str, str]:
    """(the bootstrap stack: artifact bucket and pipeline role; the deploy stack) of `group`."""
    return f"greenlight-{group}-bootstrap", f"greenlight-{group}"
