"""The training pipeline's parameters in one table: type, default, and the values each one accepts.

`check_parameters(overrides)` checks names, types (the local runner's casting rules) and ranges before
anything runs: `greenlight run` and `api.train` (and the local runner again, in LocalRunner.check),
`greenlight pipeline start` and training on AWS. Building a definition (`pipeline definition|upsert`)
checks the defaults. So `NEstimators=0` or `ModelApprovalStatus=Foo` is one line before Preprocess,
not scikit-learn's text after it, and a bad group name is found before training, not at Register.

The ranges are Greenlight's, chosen to refuse what cannot train or cannot serve: NEstimators at most
5,000 trees (a bigger forest trains for a long time and outgrows a Lambda's memory; 100 is the default),
MaxDepth None or 1-1,000, RandomState a numpy seed (0 to 2**32 - 1), NJobs -1 or 1-1,024.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from greenlight.errors import ParameterError
from greenlight.registry.model import ApprovalStatus, valid_group_name

__all__ = ["MAX_TREES", "PARAMETERS", "PARAMETER_DEFAULTS", "Parameter", "check_parameters", "check_ranges"]

MAX_TREES = 5_000
MAX_SEED = 2**32 - 1
_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9]+\.[a-z0-9]+")
_NONE = {"none", "null", ""}
_STATUSES = tuple(s.value for s in ApprovalStatus)


@dataclass(frozen=True)
class Parameter:
    """One pipeline parameter: its SageMaker type, default (None: from the config at build time), and range."""

    kind: str  # String | Integer | Float
    default: object
    accepts: str  # the values it takes, as the error message says them
    check: Callable[[Any], bool]


def _int_text(text: str) -> int | None:
    return int(text) if re.fullmatch(r"[+-]?\d+", text.strip()) else None


def _max_depth(value: str) -> bool:
    text = value.strip().lower()
    depth = _int_text(text)
    return text in _NONE or (depth is not None and 1 <= depth <= 1000)


def _max_features(value: str) -> bool:
    text = value.strip().lower()
    if text in _NONE | {"all", "sqrt", "log2"}:
        return True
    whole = _int_text(text)
    if whole is not None:
        return whole >= 1
    try:
        fraction = float(text)
    except ValueError:
        return False
    return 0.0 < fraction <= 1.0


_INSTANCE = Parameter("String", "ml.m5.large", "a SageMaker instance type such as ml.m5.large",
                      lambda v: _INSTANCE_TYPE.fullmatch(v) is not None)

PARAMETERS: dict[str, Parameter] = {
    "InputDataUrl": Parameter("String", None, "an s3://bucket/key URI", lambda v: v.startswith("s3://") and len(v) > 5),
    "TargetColumn": Parameter("String", "target", "a column name", lambda v: bool(v.strip())),
    "ProcessingInstanceType": _INSTANCE,
    "TrainingInstanceType": _INSTANCE,
    "NEstimators": Parameter("Integer", 100, f"1 to {MAX_TREES:,} trees", lambda v: 1 <= v <= MAX_TREES),
    "MaxDepth": Parameter("String", "None", "None or a depth from 1 to 1,000", _max_depth),
    "MinSamplesLeaf": Parameter("Integer", 1, "1 or more", lambda v: v >= 1),
    "MaxFeatures": Parameter("String", "1.0", "sqrt, log2, None, a whole number of features (1 or more) or a "
                                              "fraction above 0 and at most 1.0", _max_features),
    "RandomState": Parameter("Integer", 0, f"a seed from 0 to {MAX_SEED:,}", lambda v: 0 <= v <= MAX_SEED),
    "NJobs": Parameter("Integer", -1, "-1 (every CPU) or 1 to 1,024", lambda v: v == -1 or 1 <= v <= 1024),
    "RmseThreshold": Parameter("Float", 65.0, "a number above 0", lambda v: v > 0),
    "ModelApprovalStatus": Parameter("String", ApprovalStatus.PENDING.value, ", ".join(_STATUSES),
                                     lambda v: v in _STATUSES),
    "ModelPackageGroupName": Parameter("String", None, "1-63 letters, digits and hyphens, starting with a letter "
                                                       "or digit (SageMaker's rule)", valid_group_name),
}
# name -> (type, default): what the definition declares (pipelines.definition)
PARAMETER_DEFAULTS: dict[str, tuple[str, object]] = {name: (p.kind, p.default) for name, p in PARAMETERS.items()}


def check_ranges(values: Mapping[str, Any]) -> None:
    """Raises: ParameterError naming the first value of a known parameter outside its range, and the range."""
    for name, value in values.items():
        parameter = PARAMETERS.get(name)
        if parameter is not None and not parameter.check(value):
            raise ParameterError(f"parameter {name}={value} is out of range: it takes {parameter.accepts}")


def check_parameters(overrides: dict[str, str]) -> dict[str, str]:
    """`--param` overrides checked for names, types (the local runner's rules) and ranges; returned as given.

    Raises:
        ParameterError: an unknown name, a value that does not parse as its type, or one out of range.
    """
    from pipelines.local.expressions import coerce_parameters

    # Defaults that come from the config at build time do not matter for this check.
    declared = [{"Name": name, "Type": p.kind, "DefaultValue": "" if p.default is None else p.default}
                for name, p in PARAMETERS.items()]
    values = coerce_parameters(declared, overrides)
    check_ranges({name: values[name] for name in overrides})
    return overrides
