"""Read the files the cost model needs: the price list (JSON, validated) and the serving benchmark's p50s."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
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

__all__ = ["DEFAULT_PRICES", "MeasuredP50", "load_prices", "measured_p50", "measured_p50_ms"]

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


@dataclass(frozen=True)
class MeasuredP50:
    """A warm single-row p50 of the serving path from `make bench`, and which model size it was measured on."""

    ms: float
    model: str


def measured_p50(results: Path, model: str | None = None) -> MeasuredP50:
    """The serving path's warm single-row p50 for a model size, from `make bench`'s results file.

    The benchmark measures several model sizes (`serving.models`). model: a measured size's name
    (e.g. "50k"); or a model directory (or its metadata.json), for the measured size nearest to
    that forest (its trees, nodes and depth, compared on a log scale); None: the default model.
    Results of earlier benchmark versions hold one figure, for the default model.
    Raises: DataError (no results, no such size, an unreadable model).
    """
    hint = "run `make bench` (or pass --bench-results FILE)"
    try:
        figures = json.loads(Path(results).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"no benchmark results at {results}; {hint}") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read benchmark results {results}: {exc}; {hint}") from exc
    serving = figures.get(BENCH_KEY[0], {}) if isinstance(figures, dict) else {}
    serving = serving if isinstance(serving, dict) else {}
    sizes = {key: m for key, m in (serving.get("models") or {}).items()
             if isinstance(m, dict) and _positive(m.get(BENCH_KEY[1]))}
    if not sizes:  # an earlier benchmark: one figure, the default model's
        if model is None and _positive(serving.get(BENCH_KEY[1])):
            return MeasuredP50(float(serving[BENCH_KEY[1]]) / 1000, "the default model")
        raise DataError(f"{results} has no {'.'.join(BENCH_KEY)} figure"
                        + (" per model size" if model is not None else "") + f"; {hint}")
    if model is None:
        key, why = ("default" if "default" in sizes else next(iter(sizes))), "the default model; other sizes: "
        why += ", ".join(f"{k} {sizes[k][BENCH_KEY[1]] / 1000:.3g} ms" for k in sizes if k != key)
    elif model in sizes:
        key, why = model, "as asked"
    else:
        key, why = _nearest(sizes, _forest_of(Path(model), sizes))
    m = sizes[key]
    return MeasuredP50(float(m[BENCH_KEY[1]]) / 1000, f"measured on {key}: {_describe(m)} ({why})")


def measured_p50_ms(results: Path, model: str | None = None) -> float:
    """`measured_p50(results, model).ms`. Raises: DataError."""
    return measured_p50(results, model).ms


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _describe(m: dict) -> str:
    title = f"{m['title']}, " if m.get("title") else ""
    return f"{title}{m.get('trees', '?')} trees, {m.get('nodes', 0):,} nodes, depth {m.get('max_depth', '?')}"


def _forest_of(path: Path, sizes: dict) -> dict:
    """The forest summary (trees, nodes, max_depth) of a model directory or metadata.json. Raises: DataError."""
    meta = path / "metadata.json" if path.is_dir() else path
    try:
        forest = json.loads(meta.read_text(encoding="utf-8"))["forest"]
        summary = {k: int(forest[k]) for k in ("trees", "nodes", "max_depth")}
    except FileNotFoundError:
        raise DataError(f"{path} is neither a measured model size ({', '.join(sizes)}) nor a model directory "
                        "(with metadata.json)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"cannot read the forest's size from {meta}: {exc}") from exc
    return summary


def _nearest(sizes: dict, forest: dict) -> tuple[str, str]:
    """The measured size whose trees, nodes and depth are nearest the forest's (sum of |log ratio|)."""
    def distance(m: dict) -> float:
        keys = ("trees", "nodes", "max_depth")
        return sum(abs(math.log(max(1, forest[k]) / max(1, int(m.get(k) or 1)))) for k in keys)

    key = min(sizes, key=lambda k: distance(sizes[k]))
    return key, (f"the measured size nearest yours: {forest['trees']} trees, {forest['nodes']:,} nodes, "
                 f"depth {forest['max_depth']}")


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
