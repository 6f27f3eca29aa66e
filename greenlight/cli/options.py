"""Options and small helpers shared by several commands (one definition, one help text), and the checks of
flag values that click's types do not make (URLs, header values, finite numbers, a known group)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from greenlight.errors import ParameterError, UsageError
from greenlight.settings import DEFAULT_MODEL_PACKAGE_GROUP, check_home
from greenlight.workspace import Target

__all__ = ["GROUP", "JSON", "MODE", "PORT_RANGE", "REGION", "TARGET", "check_finite_positive", "check_header_value",
           "check_url", "echo_json", "local_homes", "parse_pairs", "warn_unknown_group", "workspace"]

PORT_RANGE = {"min": 0, "max": 65535}  # typer.Option(..., **PORT_RANGE): a TCP port, 0 picks a free one
_local_homes: list[Path] = []  # the local homes this command opened (main() warns when their disk is full)


def _target(value: str | Target) -> Target:
    try:
        return Target(str(value).lower())
    except ValueError:
        raise ParameterError(f"unknown --target {value!r} (expected one of: "
                             f"{', '.join(t.value for t in Target)})") from None


TARGET = typer.Option("local", "--target", "-t", metavar="local|aws", callback=_target,
                      help="local: the embedded stand-ins under GREENLIGHT_HOME; aws: the AWS account of your "
                           "credentials.")
def _mode(value: str | Target) -> Target:
    try:
        return Target(str(value).lower())
    except ValueError:
        raise ParameterError(f"unknown --mode {value!r} (expected one of: "
                             f"{', '.join(t.value for t in Target)})") from None


MODE = typer.Option("local", "--mode", "-m", metavar="local|aws", callback=_mode,
                    help="What --target means elsewhere, for commands whose --target names a deploy target: "
                         "local (GREENLIGHT_HOME) or aws (the account of your credentials).")
REGION = typer.Option(None, "--region", help="AWS region for --target aws. Default: $AWS_REGION, "
                                             "$AWS_DEFAULT_REGION, then your AWS profile's region.")
GROUP = typer.Option(DEFAULT_MODEL_PACKAGE_GROUP, "--group", "-g", help="Model package group.")
JSON = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")


def workspace(target: Target | str, region: str | None = None):
    """The composition root's workspace for a command's --target and --region.

    Raises:
        ConfigurationError: GREENLIGHT_HOME is a file (or lies below one).
    """
    from greenlight.workspace import Workspace

    ws = Workspace.open(target, region=region)
    check_home(ws.home)
    if ws.target is Target.LOCAL and ws.home not in _local_homes:
        _local_homes.append(ws.home)
    return ws


def local_homes(reset: bool = False) -> list[Path]:
    """The GREENLIGHT_HOMEs of the local workspaces opened since the last reset."""
    homes = list(_local_homes)
    if reset:
        _local_homes.clear()
    return homes


def check_finite_positive(**values: float) -> None:
    """Raises: UsageError naming every flag (given as its_name=value) that is not a finite number above 0."""
    bad = [f"--{name.replace('_', '-')} {value}" for name, value in values.items()
           if not (math.isfinite(value) and value > 0)]
    if bad:
        raise UsageError(f"{', '.join(bad)}: must be positive (a finite number above 0)")


def check_url(flag: str, url: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """url if it is an absolute URL of one of `schemes` with a host and a valid port.

    Raises:
        UsageError: naming the flag, the URL and what is wrong with it.
    """
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"{flag} {url!r} is not a URL: {exc}") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise UsageError(f"{flag} {url!r} is not a URL: expected {' or '.join(schemes)}://HOST[:PORT][/PATH], "
                         "e.g. http://127.0.0.1:8080")
    if port == 0:
        raise UsageError(f"{flag} {url!r}: port 0 cannot be connected to")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url) or not url.isascii():
        raise UsageError(f"{flag} {url!r}: a URL holds no spaces, control characters or non-ASCII characters "
                         "(percent-encode them; an international host name in its xn-- form)")
    return url


def check_header_value(flag: str, value: str | None) -> str | None:
    """value if it can be sent as one HTTP header value. Raises: UsageError naming the flag."""
    if value is not None and (any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value)
                              or not value.isascii()):
        raise UsageError(f"{flag} {value!r}: a header value holds no line breaks or control characters "
                         "and is ASCII")
    return value


def warn_unknown_group(ws, group: str | None, config: Path | None = None) -> None:
    """On stderr, one line when `group` (None: the configuration's) is not a model package group of ws's
    registry: a typo would otherwise serve nothing or deploy nothing without a word."""
    from greenlight.api import group_warning

    warning = group_warning(ws, group, config)
    if warning:
        typer.echo(f"greenlight: warning: {warning}", err=True)


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
