"""Turn a VERSION argument (a version number in a group, or a model package ARN) into a ModelVersion."""

from __future__ import annotations

from greenlight.errors import NotFoundError
from greenlight.registry.model import (
    ModelVersion,
    missing_group_error,
    parse_version_ref,
)
from greenlight.registry.protocol import ModelRegistry

__all__ = ["resolve_version"]


def resolve_version(registry: ModelRegistry, ref: str, group: str) -> ModelVersion:
    """The version `ref` names: a number in `group`, or a full versioned model package ARN.

    SageMaker lower-cases the group name inside ARNs, so an ARN's group is matched against the
    registry's groups case-insensitively, and the ARN found must equal the one given.

    Raises:
        ParameterError: `ref` is neither a number nor a versioned model package ARN.
        NotFoundError: no such group or version, or the ARN belongs to another region or account.
    """
    arn_group, version = parse_version_ref(ref)
    if arn_group is None:
        return registry.get(group, version)
    groups = registry.list_groups()
    matches = [g for g in groups if g.lower() == arn_group.lower()]
    if not matches:
        raise missing_group_error(arn_group, groups)
    found = registry.get(matches[0], version)
    if found.arn.lower() != ref.strip().lower():
        raise NotFoundError(f"{ref.strip()} is not in this registry (version {version} of {matches[0]} "
                            f"here is {found.arn})")
    return found
