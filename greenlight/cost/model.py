"""Monthly cost of serving one workload on each AWS option: pure functions on frozen data.

A month is 30 days (720 hours). Each option's bill follows AWS's published pricing rules:

    lambda                requests x price per million + GB-seconds (duration rounded up to 1 ms)
    sagemaker-serverless  seconds of compute x price for the memory size + GB processed in and out
    sagemaker-endpoint    instances x 720 h x hourly price (always on) + GB processed in and out
    fargate               tasks x 720 h x (vCPU x vCPU-hour + GB x GB-hour), one-minute minimum per task
    batch-transform       jobs x (start-up + processing) instance-seconds x hourly price

Always-on options are sized for the load: a request keeps one vCPU busy for its duration, and an
instance or task is kept at or under TARGET_UTILISATION of its vCPUs on average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum

from greenlight.cost.prices import Arch, InstancePrice, Prices
from greenlight.errors import NotFoundError, ParameterError

__all__ = [
    "DAYS_PER_MONTH",
    "HOURS_PER_MONTH",
    "TARGET_UTILISATION",
    "LatencyClass",
    "Option",
    "OptionCost",
    "Workload",
    "estimate",
    "validate",
]

DAYS_PER_MONTH = 30
HOURS_PER_MONTH = 24 * DAYS_PER_MONTH
SECONDS_PER_DAY = 86_400
TARGET_UTILISATION = 0.5
KB_PER_GB = 1024 * 1024

# AWS quotas (not prices, so they live here): Lambda, SageMaker and Fargate developer guides.
LAMBDA_MEMORY_MB = (128, 10_240)
LAMBDA_PAYLOAD_KB = 6 * 1024          # synchronous invoke, request and response each
LAMBDA_TIMEOUT_MS = 900_000
LAMBDA_CONCURRENCY = 1_000            # default per-region quota, raisable
SERVERLESS_PAYLOAD_KB = 4 * 1024
SERVERLESS_TIMEOUT_MS = 60_000
SERVERLESS_CONCURRENCY = 200          # MaxConcurrency per endpoint
ENDPOINT_PAYLOAD_KB = 6 * 1024
ENDPOINT_TIMEOUT_MS = 60_000
TRANSFORM_PAYLOAD_KB = 100 * 1024     # MaxPayloadInMB
TRANSFORM_TIMEOUT_MS = 3_600_000      # InvocationsTimeoutInSeconds
FARGATE_MEMORY_GB = {                 # vCPU -> (min GB, max GB, step GB)
    0.25: (0.5, 2.0, None), 0.5: (1.0, 4.0, 1.0), 1.0: (2.0, 8.0, 1.0), 2.0: (4.0, 16.0, 1.0),
    4.0: (8.0, 30.0, 1.0), 8.0: (16.0, 60.0, 4.0), 16.0: (32.0, 120.0, 8.0),
}


class Option(str, Enum):
    LAMBDA = "lambda"
    SERVERLESS = "sagemaker-serverless"
    ENDPOINT = "sagemaker-endpoint"
    FARGATE = "fargate"
    TRANSFORM = "batch-transform"


class LatencyClass(str, Enum):
    WARM = "online, always warm"
    COLD_STARTS = "online, cold starts"
    OFFLINE = "offline, scheduled jobs"


@dataclass(frozen=True)
class Workload:
    """What is served (requests, their duration and size) and how each option is configured."""

    requests_per_day: float
    duration_ms: float = 200.0
    payload_kb: float = 1.0
    lambda_memory_mb: int = 512
    lambda_arch: Arch = Arch.X86
    serverless_memory_mb: int = 1024
    endpoint_instance: str = "ml.t2.medium"
    fargate_vcpu: float = 1.0
    fargate_memory_gb: float = 2.0
    transform_instance: str = "ml.m5.large"
    batch_jobs_per_day: int = 1
    free_tier: bool = False

    @property
    def requests_per_month(self) -> float:
        return self.requests_per_day * DAYS_PER_MONTH

    @property
    def busy_vcpus(self) -> float:
        """Average vCPUs kept busy: requests per second x seconds per request."""
        return self.requests_per_day / SECONDS_PER_DAY * self.duration_ms / 1000

    def with_requests(self, requests_per_day: float) -> Workload:
        return replace(self, requests_per_day=requests_per_day)


@dataclass(frozen=True)
class OptionCost:
    """One option's monthly bill for a workload, its parts, and the limits the workload breaks."""

    option: Option
    monthly_usd: float
    per_1000_usd: float
    latency: LatencyClass
    setup: str
    units: int
    breakdown: tuple[tuple[str, float], ...]
    limits_broken: tuple[str, ...]


def validate(workload: Workload, prices: Prices) -> None:
    """Raises: ParameterError naming the limit; NotFoundError listing the known instance types."""
    w = workload
    for name, value in (("requests per day", w.requests_per_day), ("duration", w.duration_ms)):
        if not value > 0 or math.isinf(value):
            raise ParameterError(f"{name} must be a positive number (got {value:g})")
    if not w.payload_kb >= 0:
        raise ParameterError(f"payload must be 0 KB or more (got {w.payload_kb:g})")
    low, high = LAMBDA_MEMORY_MB
    if not low <= w.lambda_memory_mb <= high:
        raise ParameterError(f"Lambda memory {w.lambda_memory_mb} MB is outside Lambda's limits, "
                             f"{low:,}-{high:,} MB")
    sizes = sorted(prices.serverless.per_second_by_memory_mb)
    if w.serverless_memory_mb not in sizes:
        raise ParameterError(f"SageMaker Serverless memory {w.serverless_memory_mb} MB is not one of its "
                             f"sizes, {', '.join(str(s) for s in sizes)} MB (1-6 GB in 1 GB steps)")
    _instance(prices.endpoint.instances, w.endpoint_instance, "endpoint")
    _instance(prices.transform.instances, w.transform_instance, "transform")
    _check_fargate(w.fargate_vcpu, w.fargate_memory_gb)
    if w.batch_jobs_per_day < 1:
        raise ParameterError(f"batch jobs per day must be 1 or more (got {w.batch_jobs_per_day})")
    gap = SECONDS_PER_DAY / w.batch_jobs_per_day
    if gap <= prices.transform.startup_overhead_seconds:
        raise ParameterError(f"{w.batch_jobs_per_day} batch jobs a day leave {gap:g} s between jobs, no more "
                             f"than a job's {prices.transform.startup_overhead_seconds:g} s start-up")


def estimate(workload: Workload, prices: Prices) -> tuple[OptionCost, ...]:
    """Every option's monthly cost for the workload, in Option order. Raises: see `validate`."""
    validate(workload, prices)
    return (lambda_cost(workload, prices), serverless_cost(workload, prices),
            endpoint_cost(workload, prices), fargate_cost(workload, prices),
            transform_cost(workload, prices))


def lambda_cost(w: Workload, prices: Prices) -> OptionCost:
    p = prices.lambda_
    billed_s = math.ceil(w.duration_ms) / 1000
    gb_seconds = w.requests_per_month * billed_s * w.lambda_memory_mb / 1024
    free_requests, free_gb_s = (p.free_requests, p.free_gb_seconds) if w.free_tier else (0.0, 0.0)
    requests = max(0.0, w.requests_per_month - free_requests) / 1e6 * p.per_million_requests
    compute = max(0.0, gb_seconds - free_gb_s) * p.per_gb_second[w.lambda_arch]
    limits = _payload_and_timeout(w, LAMBDA_PAYLOAD_KB, LAMBDA_TIMEOUT_MS, "Lambda", "15-minute")
    if w.busy_vcpus > LAMBDA_CONCURRENCY:
        limits.append(f"concurrency {w.busy_vcpus:,.0f} over the default {LAMBDA_CONCURRENCY:,} per region")
    return _cost(w, Option.LAMBDA, LatencyClass.COLD_STARTS, f"{w.lambda_memory_mb} MB {w.lambda_arch.value}",
                 0, (("requests", requests), ("compute", compute)), limits)


def serverless_cost(w: Workload, prices: Prices) -> OptionCost:
    p = prices.serverless
    seconds = w.requests_per_month * math.ceil(w.duration_ms) / 1000
    free = p.free_inference_seconds if w.free_tier else 0.0
    compute = max(0.0, seconds - free) * p.per_second_by_memory_mb[w.serverless_memory_mb]
    data = _data_processed(w, p.data_processed_per_gb)
    limits = _payload_and_timeout(w, SERVERLESS_PAYLOAD_KB, SERVERLESS_TIMEOUT_MS, "serverless", "60 s")
    if w.busy_vcpus > SERVERLESS_CONCURRENCY:
        limits.append(f"concurrency {w.busy_vcpus:,.0f} over the {SERVERLESS_CONCURRENCY} maximum per endpoint")
    return _cost(w, Option.SERVERLESS, LatencyClass.COLD_STARTS, f"{w.serverless_memory_mb} MB", 0,
                 (("compute", compute), ("data", data)), limits)


def endpoint_cost(w: Workload, prices: Prices) -> OptionCost:
    p = prices.endpoint
    instance = p.instances[w.endpoint_instance]
    count = _units(w, instance.vcpus)
    hours: float = count * HOURS_PER_MONTH
    if w.free_tier and w.endpoint_instance in p.free_instances:
        hours = max(0.0, hours - p.free_hours)
    limits = _payload_and_timeout(w, ENDPOINT_PAYLOAD_KB, ENDPOINT_TIMEOUT_MS, "real-time endpoint", "60 s")
    return _cost(w, Option.ENDPOINT, LatencyClass.WARM, f"{count:,} x {w.endpoint_instance}", count,
                 (("instances", hours * instance.hourly), ("data", _data_processed(w, p.data_processed_per_gb))),
                 limits)


def fargate_cost(w: Workload, prices: Prices) -> OptionCost:
    p = prices.fargate
    tasks = _units(w, w.fargate_vcpu)
    billed_hours = max(HOURS_PER_MONTH * 3600, p.minimum_billed_seconds) / 3600
    hourly = w.fargate_vcpu * p.per_vcpu_hour + w.fargate_memory_gb * p.per_gb_hour
    setup = f"{tasks:,} x {w.fargate_vcpu:g} vCPU/{w.fargate_memory_gb:g} GB"
    return _cost(w, Option.FARGATE, LatencyClass.WARM, setup,
                 tasks, (("tasks", tasks * billed_hours * hourly),), [])


def transform_cost(w: Workload, prices: Prices) -> OptionCost:
    p = prices.transform
    instance = p.instances[w.transform_instance]
    work_s = w.requests_per_day / w.batch_jobs_per_day * w.duration_ms / 1000 / instance.vcpus
    window_s = SECONDS_PER_DAY / w.batch_jobs_per_day - p.startup_overhead_seconds
    count = max(1, math.ceil(work_s / window_s))  # enough instances to finish before the next job
    job_s = count * p.startup_overhead_seconds + work_s
    monthly = w.batch_jobs_per_day * DAYS_PER_MONTH * job_s / 3600 * instance.hourly
    limits = _payload_and_timeout(w, TRANSFORM_PAYLOAD_KB, TRANSFORM_TIMEOUT_MS, "transform", "1-hour")
    setup = f"{w.batch_jobs_per_day}/day on {count:,} x {w.transform_instance}"
    return _cost(w, Option.TRANSFORM, LatencyClass.OFFLINE, setup, count, (("jobs", monthly),), limits)


def _cost(w: Workload, option: Option, latency: LatencyClass, setup: str, units: int,
          breakdown: tuple[tuple[str, float], ...], limits: list[str]) -> OptionCost:
    monthly = sum(amount for _, amount in breakdown)
    return OptionCost(option=option, monthly_usd=monthly, per_1000_usd=monthly / (w.requests_per_month / 1000),
                      latency=latency, setup=setup, units=units, breakdown=breakdown, limits_broken=tuple(limits))


def _units(w: Workload, vcpus: float) -> int:
    """Instances or tasks needed to keep average utilisation at or under TARGET_UTILISATION."""
    return max(1, math.ceil(w.busy_vcpus / (vcpus * TARGET_UTILISATION) - 1e-9))


def _data_processed(w: Workload, per_gb: float) -> float:
    return w.requests_per_month * 2 * w.payload_kb / KB_PER_GB * per_gb


def _payload_and_timeout(w: Workload, payload_kb: float, timeout_ms: float, name: str, timeout: str) -> list[str]:
    limits = []
    if w.payload_kb > payload_kb:
        limits.append(f"payload {w.payload_kb:,.0f} KB over the {name} limit of {payload_kb / 1024:g} MB")
    if w.duration_ms > timeout_ms:
        limits.append(f"duration {w.duration_ms / 1000:,.3g} s over the {name} timeout of {timeout}")
    return limits


def _instance(instances, name: str, role: str) -> InstancePrice:
    if name not in instances:
        raise NotFoundError(f"unknown {role} instance type {name!r}; known: {', '.join(sorted(instances))}")
    return instances[name]


def _check_fargate(vcpu: float, memory_gb: float) -> None:
    if vcpu not in FARGATE_MEMORY_GB:
        raise ParameterError(f"Fargate vCPU {vcpu:g} is not one of Fargate's sizes, "
                             f"{', '.join(f'{v:g}' for v in FARGATE_MEMORY_GB)}")
    low, high, step = FARGATE_MEMORY_GB[vcpu]
    if step is None:  # the smallest size takes three memory sizes, not a range
        fits, sizes = memory_gb in (0.5, 1.0, 2.0), "0.5, 1 or 2 GB"
    else:
        fits = low <= memory_gb <= high and (memory_gb - low) % step == 0
        sizes = f"{low:g}-{high:g} GB in {step:g} GB steps"
    if not fits:
        raise ParameterError(f"Fargate memory {memory_gb:g} GB is outside Fargate's limits for "
                             f"{vcpu:g} vCPU: {sizes}")
