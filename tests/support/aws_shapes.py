"""AWS requests checked against botocore's own service models (the shapes the SDK ships).

botocore's ParamValidator checks types, required members and minimums; `strict_errors` also holds every
string to its shape's pattern, maximum length and enum, and every integer to its maximum (what the
service itself enforces).
"""

from __future__ import annotations

import re

import botocore.session
from botocore.validate import ParamValidator

__all__ = ["assert_valid", "session", "strict_errors"]


def session():
    return botocore.session.get_session()


def _python_pattern(pattern: str) -> str:
    """AWS's Java-style Unicode classes (Tag keys and values use them) for ASCII values: \\p{L} letters,
    \\p{N} digits, \\p{Z} spaces."""
    return pattern.replace(r"\p{L}", "a-zA-Z").replace(r"\p{N}", "0-9").replace(r"\p{Z}", " ")


def strict_errors(shape, value, path="") -> list[str]:
    """Patterns, maximum lengths and sizes, enums and integer maximums, which ParamValidator does not check."""
    errors = []
    meta = shape.metadata
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value:
                errors += strict_errors(member, value[name], f"{path}.{name}")
    elif shape.type_name == "list":
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"{path}: more than {meta['max']} items")
        for i, item in enumerate(value):
            errors += strict_errors(shape.member, item, f"{path}[{i}]")
    elif shape.type_name == "map":
        for key, item in value.items():
            errors += strict_errors(shape.key, key, f"{path} key")
            errors += strict_errors(shape.value, item, f"{path}[{key}]")
    elif shape.type_name == "string":
        if "pattern" in meta and not re.fullmatch(_python_pattern(meta["pattern"]), value):
            errors.append(f"{path}: {value!r} does not match {meta['pattern']}")
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"{path}: longer than {meta['max']}")
        if getattr(shape, "enum", None) and value not in shape.enum:
            errors.append(f"{path}: {value!r} not in {shape.enum}")
    elif shape.type_name in ("integer", "long", "double", "float") and "max" in meta and value > meta["max"]:
        errors.append(f"{path}: above {meta['max']}")
    elif shape.type_name in ("double", "float") and "min" in meta and value < meta["min"]:
        errors.append(f"{path}: below {meta['min']}")
    return errors


def assert_valid(service: str, operation: str, request: dict) -> None:
    shape = session().get_service_model(service).operation_model(operation).input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    errors = strict_errors(shape, request)
    assert errors == [], "; ".join(errors)
