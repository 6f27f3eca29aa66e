"""Pure evaluation of pipeline-definition expressions, parameters and conditions.

Supported, as SageMaker documents them: `{"Get": "Parameters.X"}`, `{"Get": "Execution.X"}`,
`{"Get": "Steps.S.<property path>"}`, `{"Std:Join": {"On", "Values"}}` and
`{"Std:JsonGet": {"PropertyFile": {"Get": "Steps.S.PropertyFiles.P"}, "Path": "a.b[0].c"}}`.
Anything else shaped like an expression is refused by `check_expressions` before a run starts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from greenlight.errors import DefinitionError, ParameterError

__all__ = ["EXPRESSION_KEYS", "Context", "check_expressions", "coerce_parameters", "evaluate",
           "evaluate_condition", "lookup_path", "step_refs"]

EXPRESSION_KEYS = {"Get", "Std:Join", "Std:JsonGet"}
CONDITIONS = {"Equals", "GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo", "In", "Not", "Or"}
_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[(?:'([^']*)'|\"([^\"]*)\"|(\d+))\]")
_CASTS: dict[str, Callable[[str], Any]] = {"String": str, "Integer": int, "Float": float,
                                           "Boolean": lambda v: {"true": True, "false": False}[str(v).lower()]}


class Context:
    """What expressions read: parameter values, execution variables, step properties, files."""

    def __init__(self, parameters: Mapping[str, Any], execution: Mapping[str, Any],
                 properties: Mapping[str, Any], read_property_file: Callable[[str, str], Any]):
        self.parameters = parameters
        self.execution = execution
        self.properties = properties  # step name -> properties dict
        self.read_property_file = read_property_file  # (step, property file name) -> parsed JSON


def coerce_parameters(declared: list[dict], overrides: Mapping[str, str]) -> dict[str, Any]:
    """Defaults overridden by `overrides`, each cast to its declared type.

    Raises:
        ParameterError: an unknown name, a value of the wrong type, or a parameter with no value.
    """
    by_name = {p["Name"]: p for p in declared}
    unknown = sorted(set(overrides) - set(by_name))
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        raise ParameterError(f"unknown pipeline parameter{'s' if len(unknown) > 1 else ''} {names}; "
                             f"known: {', '.join(by_name)}")
    values: dict[str, Any] = {}
    for name, spec in by_name.items():
        kind = spec.get("Type", "String")
        raw = overrides.get(name, spec.get("DefaultValue"))
        if raw is None:
            raise ParameterError(f"pipeline parameter {name} has no default; pass --param {name}=VALUE")
        try:
            values[name] = _CASTS[kind](raw)
        except (ValueError, KeyError):
            raise ParameterError(f"parameter {name} is {kind}, but {raw!r} is not") from None
    return values


def lookup_path(node: Any, path: str) -> Any:
    """Follow `A.B['name'][0].C` through dicts and lists; a string index on a list of dicts picks
    the item whose `*Name` field (OutputName, ChannelName ...) equals it."""
    for match in _TOKEN.finditer(path):
        attr, key1, key2, index = match.groups()
        key = attr if attr is not None else (key1 if key1 is not None else key2)
        if index is not None:
            node = node[int(index)]
        elif isinstance(node, list):
            hits = [item for item in node if isinstance(item, dict)
                    and any(k.endswith("Name") and v == key for k, v in item.items())]
            if not hits:
                raise KeyError(key)
            node = hits[0]
        else:
            node = node[key]
    return node


def _get(reference: str, ctx: Context) -> Any:
    root, _, rest = reference.partition(".")
    try:
        if root == "Parameters":
            return ctx.parameters[rest]
        if root == "Execution":
            return ctx.execution[rest]
        if root == "Steps":
            step, _, path = rest.partition(".")
            return lookup_path(ctx.properties[step], path)
    except (KeyError, IndexError, TypeError):
        raise DefinitionError(f"cannot resolve {{'Get': {reference!r}}}: no such value") from None
    raise DefinitionError(f"unsupported reference {reference!r}")


def _json_get(spec: dict, ctx: Context) -> Any:
    ref = spec["PropertyFile"]["Get"]  # Steps.<step>.PropertyFiles.<name>
    parts = ref.split(".")
    document = ctx.read_property_file(parts[1], parts[3])
    try:
        return lookup_path(document, spec["Path"])
    except (KeyError, IndexError, TypeError):
        raise DefinitionError(
            f"JsonGet: {spec['Path']!r} not found in property file {parts[3]} of step {parts[1]}") from None


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def evaluate(node: Any, ctx: Context) -> Any:
    """Resolve every expression inside `node` (a JSON fragment) to plain values."""
    if isinstance(node, dict):
        if set(node) == {"Get"}:
            return _get(node["Get"], ctx)
        if set(node) == {"Std:Join"}:
            spec = node["Std:Join"]
            return spec["On"].join(_text(evaluate(v, ctx)) for v in spec["Values"])
        if set(node) == {"Std:JsonGet"}:
            return _json_get(node["Std:JsonGet"], ctx)
        return {k: evaluate(v, ctx) for k, v in node.items()}
    if isinstance(node, list):
        return [evaluate(v, ctx) for v in node]
    return node


def evaluate_condition(condition: dict, ctx: Context) -> bool:
    """A condition as SageMaker writes it: {"Type": ..., "LeftValue": ..., "RightValue": ...}."""
    kind = condition["Type"]
    args = condition
    if kind == "Not":
        return not evaluate_condition(args["Expression"], ctx)
    if kind == "Or":
        return any(evaluate_condition(c, ctx) for c in args["Conditions"])
    if kind == "In":
        return evaluate(args["QueryValue"], ctx) in evaluate(args["Values"], ctx)
    left, right = evaluate(args["LeftValue"], ctx), evaluate(args["RightValue"], ctx)
    if kind != "Equals":
        left, right = float(left), float(right)
    return {"Equals": left == right, "GreaterThan": left > right, "GreaterThanOrEqualTo": left >= right,
            "LessThan": left < right, "LessThanOrEqualTo": left <= right}[kind]


def _walk(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def step_refs(node: Any) -> set[str]:
    """Names of the steps a fragment reads from (its data dependencies)."""
    refs = set()
    for d in _walk(node):
        get = d.get("Get")
        if isinstance(get, str) and get.startswith("Steps."):
            refs.add(get.split(".")[1])
    return refs


def check_expressions(node: Any, where: str, parameters: set[str], steps: set[str]) -> None:
    """Refuse unknown expression functions and references to unknown parameters or steps."""
    for d in _walk(node):
        odd = [k for k in d if k.startswith(("Std:", "Fn:")) and k not in EXPRESSION_KEYS]
        if odd:
            raise DefinitionError(f"{where}: unsupported expression {odd[0]!r}")
        get = d.get("Get")
        if isinstance(get, str):
            root, _, rest = get.partition(".")
            name = rest.split(".")[0]
            if root == "Parameters" and name not in parameters:
                raise DefinitionError(f"{where}: reference to unknown parameter {name!r}")
            if root == "Steps" and name not in steps:
                raise DefinitionError(f"{where}: reference to unknown step {name!r}")
            if root not in {"Parameters", "Steps", "Execution"}:
                raise DefinitionError(f"{where}: unsupported reference {get!r}")
        if "Type" in d and ({"LeftValue", "Expression", "QueryValue"} & set(d) or
                            (d.get("Type") == "Or" and "Conditions" in d)):
            if d["Type"] not in CONDITIONS:
                raise DefinitionError(f"{where}: unsupported condition type {d['Type']!r}")
