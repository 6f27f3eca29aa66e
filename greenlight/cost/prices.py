"""The price list the cost model works from: plain frozen data, read from JSON by `loader`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

__all__ = [
    "Arch",
    "EndpointPrices",
    "FargatePrices",
    "InstancePrice",
    "LambdaPrices",
    "Prices",
    "ServerlessPrices",
    "TransformPrices",
]


class Arch(str, Enum):
    """Lambda's two processor architectures."""

    X86 = "x86"
    ARM = "arm"


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class InstancePrice:
    """One SageMaker instance type: on-demand dollars per hour and its vCPUs."""

    hourly: float
    vcpus: float


@dataclass(frozen=True)
class LambdaPrices:
    per_million_requests: float
    per_gb_second: Mapping[Arch, float]
    free_requests: float
    free_gb_seconds: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_gb_second", _frozen(self.per_gb_second))


@dataclass(frozen=True)
class ServerlessPrices:
    per_second_by_memory_mb: Mapping[int, float]
    data_processed_per_gb: float
    free_inference_seconds: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_second_by_memory_mb", _frozen(self.per_second_by_memory_mb))


@dataclass(frozen=True)
class EndpointPrices:
    instances: Mapping[str, InstancePrice]
    data_processed_per_gb: float
    free_hours: float
    free_instances: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "instances", _frozen(self.instances))


@dataclass(frozen=True)
class FargatePrices:
    per_vcpu_hour: float
    per_gb_hour: float
    minimum_billed_seconds: float


@dataclass(frozen=True)
class TransformPrices:
    instances: Mapping[str, InstancePrice]
    startup_overhead_seconds: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "instances", _frozen(self.instances))


@dataclass(frozen=True)
class Prices:
    """Every price the model needs, for one region, with the date they were read."""

    region: str
    currency: str
    read_on: str
    lambda_: LambdaPrices
    serverless: ServerlessPrices
    endpoint: EndpointPrices
    fargate: FargatePrices
    transform: TransformPrices
