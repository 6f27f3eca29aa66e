"""Pure evaluation of pipeline-definition expressions, parameters and conditions.

Supported, as SageMaker documents them: `{"Get": "Parameters.X"}`, `{"Get": "Execution.X"}`,
`{"Get": "Steps.S.<property path>"}`, `{"Std:Join": {"On", "Values"}}` and
`{"Std:JsonGet": {"PropertyFile": {"Get": "Steps.S.PropertyFiles.P"}, "Path": "a.b[0].c"}}`.
Anything else shaped like an expression is refused by `check_expressions` before a run starts.

Value semantics: SageMaker documents the JSON shapes, not the comparison rules. `Equals` refuses
two kinds of value (string, boolean, number), as the SDK's own local executor
(`sagemaker.local.pipeline`) fails the step, except that 1 equals 1.0 (JSON does not tell them
apart); `In` matches values of the query's kind only; the orderings take numbers only (a string
ordering is refused, not guessed); `Std:Join` renders booleans as `true`/`false` and numbers as
Python prints them (100, 65.0, -1).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from greenlight.errors import DefinitionError, ParameterError

__all__ = ["CONDITIONS", "EXECUTION_VARIABLES", "EXPRESSION_KEYS", "Context", "check_expressions",
           "coerce_parameters", "evaluate", "evaluate_condition", "lookup_path", "step_refs"]

EXPRESSION_KEYS = {"Get", "Std:Join", "Std:JsonGet"}
_ORDERINGS = {"GreaterThan": operator.gt, "GreaterThanOrEqualTo": operator.ge,
              "LessThan": operator.lt, "LessThanOrEqualTo": operator.le}
CONDITIONS = {"Equals", *_ORDERINGS, "In", "Not", "Or"}
# What the local runner puts in Context.execution (pipelines/local/runner.py).
EXECUTION_VARIABLES = {"PipelineExecutionId", "PipelineExecutionArn", "PipelineName", "StartDateTime",
                       "CurrentDateTime"}
_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[(?:'([^']*)'|\"([^\"]*)\"|(\d+))\]")
_PROPERTY_FILE = re.compile(r"Steps\.[^.]+\.PropertyFiles\.[^.]+")
_CONDITION_KEYS = {"Not": {"Expression"}, "Or": {"Conditions"}, "In": {"QueryValue", "Values"}}
_INTEGER = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _is_number(raw: Any) -> bool:
    return isinstance(raw, (int, float)) and not isinstance(raw, bool)


def _integer(raw: Any) -> int:
    if not (isinstance(raw, int) and _is_number(raw) or isinstance(raw, str) and _INTEGER.fullmatch(raw)):
        raise ValueError(raw)
    return int(raw)


def _float(raw: Any) -> float:
    if not (_is_number(raw) or isinstance(raw, str) and _FLOAT.fullmatch(raw)) or not math.isfinite(float(raw)):
        raise ValueError(raw)
    return float(raw)


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    return {"true": True, "false": False}[str(raw).lower()]


_CASTS: dict[str, Callable[[Any], Any]] = {"String": str, "Integer": _integer, "Float": _float, "Boolean": _boolean}


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

    Integers are written as digits with an optional sign; floats as decimal or exponent notation
    and finite; booleans as true/false in any case.

    Raises:
        ParameterError: an unknown name, a value of the wrong type, or a parameter with no value.
        DefinitionError: a declared parameter type other than String, Integer, Float, Boolean.
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
        if kind not in _CASTS:
            raise DefinitionError(f"pipeline parameter {name} has unsupported type {kind!r} "
                                  f"(supported: {', '.join(_CASTS)})")
        raw = overrides.get(name, spec.get("DefaultValue"))
        if raw is None:
            raise ParameterError(f"pipeline parameter {name} has no default; pass --param {name}=VALUE")
        try:
            values[name] = _CASTS[kind](raw)
        except (ValueError, KeyError):
            raise ParameterError(f"parameter {name} is {kind}, but {raw!r} is not") from None
    return values


def _path_tokens(path: str) -> Iterator[tuple[str | None, int | None]]:
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None:
            raise DefinitionError(f"cannot parse path {path!r} at character {position + 1}")
        attr, key1, key2, index = match.groups()
        key = attr if attr is not None else (key1 if key1 is not None else key2)
        yield key, (int(index) if index is not None else None)
        position = match.end()


def lookup_path(node: Any, path: str) -> Any:
    """Follow `A.B['name'][0].C` through dicts and lists; a string index on a list of dicts picks
    the item whose `*Name` field (OutputName, ChannelName ...) equals it.

    Raises:
        DefinitionError: the path is not of that syntax.
        KeyError, IndexError, TypeError: the path is well formed but leads nowhere in `node`.
    """
    for key, index in list(_path_tokens(path)):
        if index is not None:
            if not isinstance(node, list):
                raise TypeError(f"[{index}] indexes a {type(node).__name__}, not a list")
            node = node[index]
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
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise DefinitionError(f"Std:Join cannot render {value!r} ({type(value).__name__}) as text")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "number" if _is_number(value) else "string" if isinstance(value, str) else type(value).__name__


def _same(a: Any, b: Any) -> bool:
    return _kind(a) == _kind(b) and a == b


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
    """A condition as SageMaker writes it: {"Type": ..., "LeftValue": ..., "RightValue": ...}.

    Raises:
        DefinitionError: an unknown condition type, `Equals` on two kinds of value, an ordering
            comparison on anything but numbers, or `In` over something that is not a list.
    """
    kind = condition["Type"]
    if kind == "Not":
        return not evaluate_condition(condition["Expression"], ctx)
    if kind == "Or":
        return any(evaluate_condition(c, ctx) for c in condition["Conditions"])
    if kind == "In":
        query, values = evaluate(condition["QueryValue"], ctx), evaluate(condition["Values"], ctx)
        if not isinstance(values, list):
            raise DefinitionError(f"In: Values must be a list, got {values!r}")
        return any(_same(query, v) for v in values)
    if kind != "Equals" and kind not in _ORDERINGS:
        raise DefinitionError(f"unsupported condition type {kind!r}")
    left, right = evaluate(condition["LeftValue"], ctx), evaluate(condition["RightValue"], ctx)
    shown = f"{left!r} ({_kind(left)}) and {right!r} ({_kind(right)})"
    if kind == "Equals":
        if _kind(left) != _kind(right):
            raise DefinitionError(f"Equals cannot compare values of different types: {shown}")
        return left == right
    if _kind(left) != "number" or _kind(right) != "number":
        raise DefinitionError(f"{kind} compares numbers, got {shown}")
    return _ORDERINGS[kind](left, right)


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


def _check_path(path: str, where: str) -> None:
    try:
        list(_path_tokens(path))
    except DefinitionError as exc:
        raise DefinitionError(f"{where}: {exc}") from None


def _check_get(get: Any, where: str, parameters: set[str], steps: set[str]) -> None:
    if not isinstance(get, str):
        raise DefinitionError(f"{where}: Get takes a reference string, not {get!r}")
    root, _, rest = get.partition(".")
    if root == "Parameters":
        if rest not in parameters:
            raise DefinitionError(f"{where}: reference to unknown parameter {rest!r}")
    elif root == "Execution":
        if rest not in EXECUTION_VARIABLES:
            raise DefinitionError(f"{where}: unsupported execution variable {rest!r} "
                                  f"(supported: {', '.join(sorted(EXECUTION_VARIABLES))})")
    elif root == "Steps":
        name, _, path = rest.partition(".")
        if name not in steps:
            raise DefinitionError(f"{where}: reference to unknown step {name!r}")
        _check_path(path, where)
    else:
        raise DefinitionError(f"{where}: unsupported reference {get!r}")


def _check_functions(d: dict, where: str) -> None:
    if "Std:Join" in d:
        spec = d["Std:Join"]
        if not (isinstance(spec, dict) and isinstance(spec.get("On"), str) and isinstance(spec.get("Values"), list)):
            raise DefinitionError(f"{where}: Std:Join takes a string On and a list of Values, not {spec!r}")
    if "Std:JsonGet" in d:
        spec = d["Std:JsonGet"]
        ref = spec.get("PropertyFile") if isinstance(spec, dict) else None
        if not (isinstance(ref, dict) and set(ref) == {"Get"} and isinstance(ref["Get"], str)
                and _PROPERTY_FILE.fullmatch(ref["Get"]) and isinstance(spec.get("Path"), str)):
            raise DefinitionError(f"{where}: Std:JsonGet is supported with a PropertyFile "
                                  f"{{'Get': 'Steps.<step>.PropertyFiles.<name>'}} and a Path, not {spec!r}")
        _check_path(spec["Path"], where)


def _check_condition(d: dict, where: str) -> None:
    kind = d["Type"]
    if kind not in CONDITIONS:
        raise DefinitionError(f"{where}: unsupported condition type {kind!r}")
    missing = sorted(_CONDITION_KEYS.get(kind, {"LeftValue", "RightValue"}) - set(d))
    if missing:
        raise DefinitionError(f"{where}: {kind} condition lacks {', '.join(missing)}")


def check_expressions(node: Any, where: str, parameters: set[str], steps: set[str]) -> None:
    """Refuse what `evaluate` and `evaluate_condition` cannot honour, before anything runs.

    Raises:
        DefinitionError: an unknown expression function or condition type, a malformed Std:Join,
            Std:JsonGet, condition or path, or a reference to an unknown parameter, step or
            execution variable.
    """
    for d in _walk(node):
        odd = [k for k in d if k.startswith(("Std:", "Fn:")) and k not in EXPRESSION_KEYS]
        if odd:
            raise DefinitionError(f"{where}: unsupported expression {odd[0]!r}")
        _check_functions(d, where)
        if "Get" in d:
            _check_get(d["Get"], where, parameters, steps)
        if "Type" in d and {"LeftValue", "Expression", "QueryValue", "Conditions"} & set(d):
            _check_condition(d, where)
