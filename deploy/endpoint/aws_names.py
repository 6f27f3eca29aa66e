"""Deterministic SageMaker names for the endpoint target's models and endpoint configs (pure).

    <group>-v<version>-m<hash8>   the Model of a version: hash of group, model package ARN, role
    <group>-v<version>-c<hash8>   its endpoint config: hash of the model name and the ServerlessConfig

The same version and settings always give the same names, so a replayed deployment describes and
finds what exists instead of creating a duplicate, and a change of memory, concurrency or role gives
new names (a new config to update to). Names fit SageMaker's rule, at most 63 characters of
[a-zA-Z0-9-]: a long group is cut (the hash still covers all of it).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deploy.config import EndpointConfig

__all__ = ["MAX_NAME", "config_name", "model_name", "name_prefix", "parse_name", "serverless_config"]

MAX_NAME = 63
_NAME = re.compile(r"^(?P<head>[a-zA-Z0-9-]+)-v(?P<version>\d+)-(?P<kind>[mc])(?P<digest>[0-9a-f]{8})$")


def serverless_config(config: EndpointConfig) -> dict[str, int]:
    """The ServerlessConfig of an endpoint config for these settings."""
    settings = {"MemorySizeInMB": config.memory_mb, "MaxConcurrency": config.max_concurrency}
    if config.provisioned_concurrency is not None:
        settings["ProvisionedConcurrency"] = config.provisioned_concurrency
    return settings


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:8]


def _head(group: str, suffix: str) -> str:
    return group[:MAX_NAME - len(suffix)].rstrip("-")


def _name(group: str, version: int, kind: str, digest: str) -> str:
    suffix = f"-v{version}-{kind}{digest}"
    return _head(group, suffix) + suffix


def model_name(group: str, version: int, package_arn: str, role_arn: str) -> str:
    """The Model of `version` (from its versioned model package ARN, run with `role_arn`)."""
    return _name(group, version, "m", _digest(group, package_arn, role_arn))


def config_name(group: str, version: int, model: str, config: EndpointConfig) -> str:
    """The endpoint config serving `model` with the configured ServerlessConfig."""
    return _name(group, version, "c", _digest(group, model, serverless_config(config)))


def name_prefix(group: str) -> str:
    """A prefix every name of `group` starts with (for NameContains): the group cut to 39 characters,
    which every cut in _head keeps while versions have fewer than 13 digits."""
    return group[:39].rstrip("-")


def parse_name(group: str, name: str, kind: str | None = None) -> tuple[int, str] | None:
    """(version, kind 'm' or 'c') if `name` is one of `group`'s names (of `kind`, when given), else None."""
    match = _NAME.match(name)
    if match is None or (kind is not None and match["kind"] != kind):
        return None
    suffix = f"-v{match['version']}-{match['kind']}{match['digest']}"
    if match["head"] != _head(group, suffix):
        return None
    return int(match["version"]), match["kind"]
