"""IAM identity-policy evaluation for the permission tests: does a set of statements allow an action on a
resource, given the request's condition keys?

The rules of the IAM policy evaluation logic that identity policies within one account need: an explicit
Deny wins, else an Allow whose Action (or NotAction), Resource (or NotResource) and every Condition match
allows, else the request is implicitly denied. Actions match case-insensitively with `*` and `?`; ARNs
case-sensitively with `*` and `?` (a `*` spans `/` and `:`, as in IAM). Condition operators: the String*
and Arn* families (with IfExists), Bool, Null; the ForAnyValue/ForAllValues set forms are not needed. A
condition key the request does not carry fails its condition (so nothing is allowed by a condition the
test cannot prove).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Decision", "Statement", "allowed", "statements_of"]


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    condition: Mapping[str, Mapping[str, Any]]
    sid: str = ""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    by: str  # the Sid (or index) of the statement that decided, "" for an implicit deny


def _list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in (value if isinstance(value, list) else [value]))


def statements_of(document: Mapping[str, Any], where: str = "") -> list[Statement]:
    """The statements of a resolved policy document (no intrinsic functions left)."""
    found = []
    raw = document.get("Statement", [])
    for index, s in enumerate(raw if isinstance(raw, list) else [raw]):
        found.append(Statement(s.get("Effect", ""), _list(s.get("Action")), _list(s.get("NotAction")),
                               _list(s.get("Resource")), _list(s.get("NotResource")), s.get("Condition", {}),
                               f"{where}{s.get('Sid', index)}"))
    return found


def _glob(pattern: str, value: str, case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _action(patterns: Iterable[str], action: str) -> bool:
    return any(_glob(p, action, case=False) for p in patterns)


def _resource(patterns: Iterable[str], resource: str) -> bool:
    return any(_glob(p, resource, case=True) for p in patterns)


def _condition(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, Any]) -> bool:
    for operator, keys in condition.items():
        base = operator.removesuffix("IfExists")
        for key, expected in keys.items():
            if base == "Null":  # "true": the request carries no such key; "false": it does
                if (key not in context) != (str(expected).lower() == "true"):
                    return False
                continue
            if key not in context:
                if operator.endswith("IfExists"):
                    continue
                return False
            actual = [str(v) for v in (context[key] if isinstance(context[key], list) else [context[key]])]
            wanted = [str(v) for v in (expected if isinstance(expected, list) else [expected])]
            if base in ("StringEquals", "ArnEquals"):
                ok = any(a == w for a in actual for w in wanted)
            elif base == "StringEqualsIgnoreCase":
                ok = any(a.lower() == w.lower() for a in actual for w in wanted)
            elif base in ("StringLike", "ArnLike"):
                ok = any(fnmatch.fnmatchcase(a, w) for a in actual for w in wanted)
            elif base in ("StringNotEquals", "ArnNotEquals"):
                ok = all(a != w for a in actual for w in wanted)
            elif base in ("StringNotLike", "ArnNotLike"):
                ok = not any(fnmatch.fnmatchcase(a, w) for a in actual for w in wanted)
            elif base == "Bool":
                ok = any(a.lower() == w.lower() for a in actual for w in wanted)
            else:
                raise NotImplementedError(f"condition operator {operator} (tests/support/iam_eval.py)")
            if not ok:
                return False
    return True


def _matches(s: Statement, action: str, resource: str, context: Mapping[str, Any]) -> bool:
    if s.actions and not _action(s.actions, action):
        return False
    if s.not_actions and _action(s.not_actions, action):
        return False
    if s.resources and not _resource(s.resources, resource):
        return False
    if s.not_resources and _resource(s.not_resources, resource):
        return False
    return _condition(s.condition, context)


def allowed(statements: Iterable[Statement], action: str, resource: str,
            context: Mapping[str, Any] | None = None) -> Decision:
    """Whether `statements` allow `action` on `resource` (module docstring)."""
    context = context or {}
    allow = None
    for s in statements:
        if _matches(s, action, resource, context):
            if s.effect == "Deny":
                return Decision(False, s.sid)
            if s.effect == "Allow" and allow is None:
                allow = s.sid
    return Decision(allow is not None, allow or "")
