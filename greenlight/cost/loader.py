"""Read the files the cost model needs: the price list (JSON, validated) and the serving benchmark's p50."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    ValidationError,
)

from greenlight.cost.prices import (
    Arch,
    EndpointPrices,
    FargatePrices,
    InstancePrice,
    LambdaPrices,
    Prices,
    ServerlessPrices,
    TransformPrices,
)
from greenlight.errors import DataError

__all__ = ["DEFAULT_PRICES", "load_prices", "measured_p50_ms"]

log = logging.getLogger(__name__)

DEFAULT_PRICES = Path(__file__).resolve().parent.parent / "data" / "prices-us-east-1.json"
BENCH_KEY = ("serving", "greenlight_p50_us")

class _Schema(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Instance(_Schema):
    hourly: NonNegativeFloat
    vcpus: PositiveFloat


class _LambdaFree(_Schema):
    requests: NonNegativeFloat
    gb_seconds: NonNegativeFloat


class _Lambda(_Schema):
    per_million_requests: NonNegativeFloat
    per_gb_second: dict[Arch, NonNegativeFloat]
    free_tier: _LambdaFree = _LambdaFree(requests=0, gb_seconds=0)


class _ServerlessFree(_Schema):
    inference_seconds: NonNegativeFloat


class _Serverless(_Schema):
    per_second_by_memory_mb: dict[int, NonNegativeFloat] = Field(min_length=1)
    data_processed_per_gb: NonNegativeFloat
    free_tier: _ServerlessFree = _ServerlessFree(inference_seconds=0)


class _EndpointFree(_Schema):
    hours: NonNegativeFloat
    instances: list[str] = []


class _Endpoint(_Schema):
    instances: dict[str, _Instance] = Field(min_length=1)
    data_processed_per_gb: NonNegativeFloat
    free_tier: _EndpointFree = _EndpointFree(hours=0)


class _Fargate(_Schema):
    per_vcpu_hour: NonNegativeFloat
    per_gb_hour: NonNegativeFloat
    minimum_billed_seconds: NonNegativeFloat


class _Transform(_Schema):
    instances: dict[str, _Instance] = Field(min_length=1)
    startup_overhead_seconds: NonNegativeFloat


class _PriceFile(_Schema):
    region: str
    currency: str = "USD"
    read_on: str
    lambda_: _Lambda = Field(alias="lambda")
    sagemaker_serverless: _Serverless
    sagemaker_endpoint: _Endpoint
    fargate: _Fargate
    batch_transform: _Transform


def load_prices(path: Path | None = None) -> Prices:
    """The price list at `path` (default: the bundled us-east-1 file). Raises: DataError."""
    path = Path(path) if path is not None else DEFAULT_PRICES
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read price file {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"price file {path} is not valid JSON: {exc}") from exc
    try:
        doc = _PriceFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise DataError(f"price file {path}: {where}: {first['msg']}") from exc
    missing = [a.value for a in Arch if a not in doc.lambda_.per_gb_second]
    if missing:
        raise DataError(f"price file {path}: lambda.per_gb_second lacks {', '.join(missing)}")
    log.debug("read %s prices of %s from %s", doc.region, doc.read_on, path)
    return _to_prices(doc)


def measured_p50_ms(results: Path) -> float:
    """The serving path's warm single-row p50 from `make bench`'s results file, in ms. Raises: DataError."""
    hint = "run `make bench` (or pass --bench-results FILE)"
    try:
        figures = json.loads(Path(results).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"no benchmark results at {results}; {hint}") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read benchmark results {results}: {exc}; {hint}") from exc
    value = figures.get(BENCH_KEY[0], {}) if isinstance(figures, dict) else {}
    value = value.get(BENCH_KEY[1]) if isinstance(value, dict) else None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise DataError(f"{results} has no {'.'.join(BENCH_KEY)} figure; {hint}")
    return float(value) / 1000


def _to_prices(doc: _PriceFile) -> Prices:
    def instances(table: dict[str, _Instance]) -> dict[str, InstancePrice]:
        return {name: InstancePrice(hourly=i.hourly, vcpus=i.vcpus) for name, i in table.items()}

    lam, srv, ep = doc.lambda_, doc.sagemaker_serverless, doc.sagemaker_endpoint
    return Prices(
        region=doc.region,
        currency=doc.currency,
        read_on=doc.read_on,
        lambda_=LambdaPrices(per_million_requests=lam.per_million_requests, per_gb_second=dict(lam.per_gb_second),
                             free_requests=lam.free_tier.requests, free_gb_seconds=lam.free_tier.gb_seconds),
        serverless=ServerlessPrices(per_second_by_memory_mb=dict(srv.per_second_by_memory_mb),
                                    data_processed_per_gb=srv.data_processed_per_gb,
                                    free_inference_seconds=srv.free_tier.inference_seconds),
        endpoint=EndpointPrices(instances=instances(ep.instances), data_processed_per_gb=ep.data_processed_per_gb,
                                free_hours=ep.free_tier.hours, free_instances=tuple(ep.free_tier.instances)),
        fargate=FargatePrices(per_vcpu_hour=doc.fargate.per_vcpu_hour, per_gb_hour=doc.fargate.per_gb_hour,
                              minimum_billed_seconds=doc.fargate.minimum_billed_seconds),
        transform=TransformPrices(instances=instances(doc.batch_transform.instances),
                                  startup_overhead_seconds=doc.batch_transform.startup_overhead_seconds),
    )
