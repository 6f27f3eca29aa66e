"""The CloudFormation templates as data: loading (cfn-lint's decoder: intrinsics as Fn::/Ref dicts) and
walking their IAM policies, for the template tests. A static walk sees a template's Fn::ForEach loops expanded
for two stages with lambda and batch (`staged`, STAGED_ENV), so every per-stage resource is checked too."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "template.yaml"
PROJECT = ROOT / "deploy" / "project.yaml"
PORTFOLIO = ROOT / "deploy" / "portfolio.yaml"
TARGET_ACCOUNT = ROOT / "deploy" / "target-account.yaml"  # a stage's roles in another account (issue 21)
TEMPLATES = {"template.yaml": TEMPLATE, "project.yaml": PROJECT, "portfolio.yaml": PORTFOLIO,
             "target-account.yaml": TARGET_ACCOUNT}
NO_VALUE = {"Ref": "AWS::NoValue"}
# [stages] whose every per-stage resource the deploy stack creates (issue 21): both with lambda and batch
STAGED_ENV = {"GREENLIGHT_STAGES": "staging,production", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
              "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion", "GREENLIGHT_STAGES_STAGING_LAMBDA": "true",
              "GREENLIGHT_STAGES_PRODUCTION_LAMBDA": "true", "GREENLIGHT_STAGES_STAGING_BATCH": "true",
              "GREENLIGHT_STAGES_PRODUCTION_BATCH": "true"}


def stage_example(group: str = "greenlight-models") -> dict[str, str]:
    """The stage parameters `greenlight stack deploy` derives for STAGED_ENV (deploy/stack_parameters.py)."""
    from deploy.config import load_config
    from deploy.stack_parameters import stage_parameters

    return stage_parameters(load_config(environ=STAGED_ENV, group=group))


def staged(template: dict[str, Any]) -> dict[str, Any]:
    """`template` with its Fn::ForEach loops expanded for STAGED_ENV's stages (unchanged without loops)."""
    from tests.support.cfn_foreach import expand, uses_foreach

    return expand(template, stage_example()) if uses_foreach(template) else template


def load(path: Path) -> dict[str, Any]:
    """The template as plain dicts and lists (cfn-lint's decoder, which knows the short-form tags)."""
    from cfnlint.decode import decode

    template, problems = decode(str(path))
    assert not problems, f"{path.name} does not parse: {problems}"
    return _plain(template)


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return copy.copy(node) if not isinstance(node, str) else str(node)


def branches(node: Any) -> Iterator[Any]:
    """Every value `node` can take: both sides of each Fn::If (AWS::NoValue dropped), lists flattened."""
    if isinstance(node, dict) and "Fn::If" in node:
        for side in node["Fn::If"][1:]:
            if side != NO_VALUE:
                yield from branches(side)
    elif isinstance(node, list):
        for item in node:
            yield from branches(item)
    else:
        yield node


@dataclass(frozen=True)
class Statement:
    """One IAM statement of an identity policy, with where it is."""

    where: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[Any, ...]
    condition: dict[str, Any]


def identity_statements(template: dict[str, Any]) -> Iterator[Statement]:
    """Every statement of every identity policy (roles' inline policies, AWS::IAM::Policy/ManagedPolicy). A
    managed policy attached to no role, user or group grants nothing: it is a permissions boundary (a cap,
    deploy/project.yaml's DeployStackBoundary), and tests/unit/test_templates_permissions.py checks it."""
    for name, resource in staged(template).get("Resources", {}).items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] == "AWS::IAM::RolePolicy":  # one more inline policy of the role it names
            documents = [(name, props["PolicyDocument"])]
        elif resource["Type"] == "AWS::IAM::Role":
            documents = [(f"{name}/{p.get('PolicyName')}", p["PolicyDocument"]) for p in branches(props.get("Policies", []))]
        elif resource["Type"] == "AWS::IAM::ManagedPolicy" and not any(props.get(k) for k in ("Roles", "Users",
                                                                                              "Groups")):
            continue
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [(name, props["PolicyDocument"])]
        for where, document in documents:
            for i, statement in enumerate(branches(document["Statement"])):
                actions = statement.get("Action", [])
                yield Statement(f"{where} statement {statement.get('Sid', i)}", statement.get("Effect", ""),
                                tuple(actions if isinstance(actions, list) else [actions]),
                                tuple(branches(statement.get("Resource", []))), statement.get("Condition", {}))
