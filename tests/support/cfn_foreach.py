"""The `AWS::LanguageExtensions` transform's `Fn::ForEach`, expanded as CloudFormation documents it: the one
expansion moto's CloudFormation (tests/support/moto_cloudformation.py), tests/support/cfn_eval.py and, through it,
tests/support/cfn_permissions.py share.

    expanded = expand(load(TEMPLATE), {"LambdaStages": "staging,production", ...})

What the CloudFormation Template Reference says ("Fn::ForEach", and its "Examples of Fn::ForEach in the Resources
section"), and what this does:

- `"Fn::ForEach::<LoopName>": [Identifier, Collection, {OutputKey: OutputValue, ...}]` in the Conditions, Outputs
  and Resources sections, including inside a resource's properties (any mapping below those sections); loops may
  nest (an inner loop is expanded after the outer identifier was replaced, so it may use it).
- The collection is a list of strings or a `Ref` to a CommaDelimitedList parameter. A CommaDelimitedList whose
  value is "" is the list [""] (what `Fn::Length` returns 1 for), so a loop over it runs once with "": templates
  must make that iteration harmless (deploy/template.yaml's loops carry a Condition that is false when the list
  is empty).
- In the output keys (and in every key below them) `${Identifier}` and `&{Identifier}` are replaced by the item,
  `&{}` with the item's non-alphanumeric characters left out (for logical ids). In the values, `{"Ref":
  Identifier}` becomes the item and `${Identifier}` is replaced inside `Fn::Sub` strings; a `Fn::Sub` left with no
  variable is its string, so `!Sub "Name${Identifier}"` can name a sibling in `Ref`, `Fn::GetAtt` or a
  `Fn::Split` delimiter. Plain strings elsewhere, condition names in `Fn::If` and `&{}` in values are left as
  they are: that is where AWS's own linter (cfn-lint's transform) replaces, narrower than the reference's "all
  instances ... in the OutputKey and OutputValue", and AWS users report `&{}` working in keys only
  (aws-cloudformation/cloudformation-coverage-roadmap#2150). A template that relied on more would fail here.
- Each output key must contain `${Identifier}` or `&{Identifier}`; the keys a loop makes must not collide with
  each other or with the keys beside the loop (both are template errors CloudFormation reports: TransformError).
- The transform is needed: a template with `Fn::ForEach` and without `Transform: AWS::LanguageExtensions` is
  refused. After expansion the template no longer names the transform (what CloudFormation processes).

Anything else (`Fn::Length`, `Fn::ToJsonString`, `DeletionPolicy` intrinsics) is not expanded here; the
templates do not use them in a loop.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["PREFIX", "TransformError", "expand", "uses_foreach"]

PREFIX = "Fn::ForEach::"
TRANSFORM = "AWS::LanguageExtensions"
SECTIONS = ("Conditions", "Outputs", "Resources")


class TransformError(ValueError):
    """A template the transform refuses (CloudFormation: 'Transform AWS::LanguageExtensions failed with: ...')."""


def uses_foreach(node: Any) -> bool:
    """True when `node` has an `Fn::ForEach::` key anywhere."""
    if isinstance(node, dict):
        return any(str(k).startswith(PREFIX) or uses_foreach(v) for k, v in node.items())
    if isinstance(node, list):
        return any(uses_foreach(v) for v in node)
    return False


def _transforms(template: Mapping[str, Any]) -> list[str]:
    value = template.get("Transform") or []
    return [value] if isinstance(value, str) else list(value)


def expand(template: Mapping[str, Any], parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`template` with every Fn::ForEach expanded for `parameters` (strings, or lists for CommaDelimitedList ones;
    the template's defaults for the others); a template without Fn::ForEach comes back as it is (a copy).

    Raises:
        TransformError: a loop the transform refuses (module docstring), or Fn::ForEach without the transform.
    """
    result = copy.deepcopy(dict(template))
    if not uses_foreach({s: result.get(s) for s in SECTIONS}):
        return result
    if TRANSFORM not in _transforms(result):
        raise TransformError(f"Fn::ForEach needs `Transform: {TRANSFORM}`")
    lists = {name: _list_value(name, spec, (parameters or {}).get(name))
             for name, spec in (result.get("Parameters") or {}).items() if spec.get("Type") == "CommaDelimitedList"}
    for section in SECTIONS:
        if isinstance(result.get(section), dict):
            result[section] = _expand_node(result[section], lists)
    others = [t for t in _transforms(result) if t != TRANSFORM]
    if others:
        result["Transform"] = others if len(others) > 1 else others[0]
    else:
        result.pop("Transform", None)
    return result


def _list_value(name: str, spec: Mapping[str, Any], given: Any) -> list[str]:
    value = given if given is not None else spec.get("Default")
    if value is None:
        raise TransformError(f"Fn::ForEach: parameter {name} has no value and no default")
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value).split(",")  # "" -> [""], as CloudFormation's CommaDelimitedList


def _expand_node(node: Any, lists: Mapping[str, list[str]]) -> Any:
    if isinstance(node, list):
        return [_expand_node(v, lists) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    made: list[tuple[str, Any]] = []
    for key, value in node.items():
        if str(key).startswith(PREFIX):
            made.extend(_loop(str(key), value, lists))
        else:
            out[key] = _expand_node(value, lists)
    for key, value in made:
        if key in out:
            raise TransformError(f"Fn::ForEach makes the key {key!r}, which is already there")
        out[key] = value
    return out


def _loop(name: str, value: Any, lists: Mapping[str, list[str]]) -> list[tuple[str, Any]]:
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and isinstance(value[2], dict)):
        raise TransformError(f"{name}: expected [Identifier, Collection, {{OutputKey: OutputValue}}]")
    identifier, collection, fragment = value
    items = _collection(name, collection, lists)
    made: list[tuple[str, Any]] = []
    for key in fragment:
        if not key.startswith(PREFIX) and f"${{{identifier}}}" not in key and f"&{{{identifier}}}" not in key:
            raise TransformError(f"{name}: the output key {key!r} contains neither ${{{identifier}}} nor "
                                 f"&{{{identifier}}}")
    for item in items:  # the identifier replaced first, then the loops inside expanded (nested loops)
        made.extend(_expand_node(_substitute(fragment, identifier, item), lists).items())
    keys = [k for k, _ in made]
    if len(set(keys)) != len(keys):
        raise TransformError(f"{name}: its collection makes the same key twice ({sorted(keys)})")
    return made


def _collection(name: str, collection: Any, lists: Mapping[str, list[str]]) -> list[str]:
    if isinstance(collection, list) and all(isinstance(v, str) for v in collection):
        return collection
    if isinstance(collection, dict) and set(collection) == {"Ref"} and collection["Ref"] in lists:
        return lists[collection["Ref"]]
    raise TransformError(f"{name}: the collection must be a list of strings or a Ref to a CommaDelimitedList "
                         f"parameter, not {collection!r}")


def _replace(text: str, identifier: str, item: str) -> str:
    return text.replace(f"${{{identifier}}}", item).replace(f"&{{{identifier}}}", re.sub(r"[^A-Za-z0-9]", "", item))


_VARIABLE = re.compile(r"\$\{[^!}][^}]*\}")  # a Fn::Sub variable (${!Literal} is not one)


def _sub(text: str, identifier: str, item: str) -> str:
    return text.replace(f"${{{identifier}}}", item)


def _substitute(node: Any, identifier: str, item: str) -> Any:
    if isinstance(node, list):
        return [_substitute(v, identifier, item) for v in node]
    if not isinstance(node, dict):
        return node  # plain strings are left as they are (module docstring)
    if node == {"Ref": identifier}:
        return item
    if set(node) == {"Fn::Sub"}:
        value = node["Fn::Sub"]
        if isinstance(value, str):
            text, variables = _sub(value, identifier, item), None
        else:
            text, variables = _sub(value[0], identifier, item), _substitute(value[1:], identifier, item)
        if not _VARIABLE.search(text):
            return text
        return {"Fn::Sub": text if variables is None else [text, *variables]}
    return {_replace(str(k), identifier, item): _substitute(v, identifier, item) for k, v in node.items()}
