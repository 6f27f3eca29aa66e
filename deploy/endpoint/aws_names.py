"""Deterministic SageMaker names for the endpoint target's models and endpoint configs (pure).

    <group>-v<version>-m<hash8>   the Model of a version: hash of group, model package ARN, role
    <group>-v<version>-c<hash8>   its endpoint config: hash of the model name and the ServerlessConfig

The same version and settings always give the same names, so a replayed deployment describes and
finds what exists instead of creating a duplicate, and a change of memory, concurrency or role gives
new names (a new config to update to). deploy/names.py fits them into SageMaker's rule (at most 63
characters of [a-zA-Z0-9-]): the digest shortens to 4 hex digits before a long group is cut (the hash
still covers all of it), and both forms are recognised.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from deploy.names import SAGEMAKER, parse_versioned, versioned, versioned_prefix

if TYPE_CHECKING:
    from deploy.config import EndpointConfig

__all__ = ["MAX_NAME", "config_name", "model_name", "name_prefix", "parse_name", "serverless_config"]

MAX_NAME = SAGEMAKER.max_length


def serverless_config(config: EndpointConfig) -> dict[str, int]:
    """The ServerlessConfig of an endpoint config for these settings."""
    settings = {"MemorySizeInMB": config.memory_mb, "MaxConcurrency": config.max_concurrency}
    if config.provisioned_concurrency is not None:
        settings["ProvisionedConcurrency"] = config.provisioned_concurrency
    return settings


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:8]


def model_name(group: str, version: int, package_arn: str, role_arn: str) -> str:
    """The Model of `version` (from its versioned model package ARN, run with `role_arn`)."""
    return versioned(group, version, "m", _digest(group, package_arn, role_arn))


def config_name(group: str, version: int, model: str, config: EndpointConfig) -> str:
    """The endpoint config serving `model` with the configured ServerlessConfig."""
    return versioned(group, version, "c", _digest(group, model, serverless_config(config)))


def name_prefix(group: str) -> str:
    """A prefix every name of `group` starts with (for NameContains)."""
    return versioned_prefix(group)


def parse_name(group: str, name: str, kind: str | None = None) -> tuple[int, str] | None:
    """(version, kind 'm' or 'c') if `name` is one of `group`'s names (of `kind`, when given), else None."""
    parsed = parse_versioned(group, name, kind)
    return parsed if parsed is None or parsed[1] in ("m", "c") else None
