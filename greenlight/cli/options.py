"""Options and small helpers shared by several commands (one definition, one help text)."""

from __future__ import annotations

import json
from typing import Any

import typer

from greenlight.errors import ParameterError, UsageError
from greenlight.settings import DEFAULT_MODEL_PACKAGE_GROUP
from greenlight.workspace import Target

__all__ = ["GROUP", "JSON", "REGION", "TARGET", "echo_json", "parse_pairs", "workspace"]



def _target(value: str | Target) -> Target:
    try:
        return Target(str(value).lower())
    except ValueError:
        raise ParameterError(f"unknown --target {value!r} (expected one of: "
                             f"{', '.join(t.value for t in Target)})") from None


TARGET = typer.Option("local", "--target", "-t", metavar="local|aws", callback=_target,
                      help="local: the embedded stand-ins under GREENLIGHT_HOME; aws: the AWS account of your "
                           "credentials.")
REGION = typer.Option(None, "--region", help="AWS region for --target aws. Default: $AWS_REGION, "
                                             "$AWS_DEFAULT_REGION, then your AWS profile's region.")
GROUP = typer.Option(DEFAULT_MODEL_PACKAGE_GROUP, "--group", "-g", help="Model package group.")
JSON = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")


def workspace(target: Target | str, region: str | None = None):
    """The composition root's workspace for a command's --target and --region."""
    from greenlight.workspace import Workspace

    return Workspace.open(target, region=region)


def parse_pairs(pairs: list[str], what: str) -> dict[str, str]:
    """{'K': 'V'} from ['K=V', ...]. Raises: UsageError naming the flag and the bad pair."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} {pair!r} is not KEY=VALUE")
        out[key] = value
    return out


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
