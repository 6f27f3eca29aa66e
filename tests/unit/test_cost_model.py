"""The cost model against bills recomputed by hand from the bundled price file (never from the model's output)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import pytest

from greenlight.cost.decision import break_evens, recommend
from greenlight.cost.loader import DEFAULT_PRICES, load_prices, measured_p50_ms
from greenlight.cost.model import LatencyClass, Option, Workload, estimate
from greenlight.cost.prices import Arch
from greenlight.errors import DataError, NotFoundError, ParameterError, UsageError

RAW = json.loads(DEFAULT_PRICES.read_text(encoding="utf-8"))
GB_IN_KB = 1024 * 1024


@pytest.fixture(scope="module")
def prices():
    return load_prices()


def by_option(workload, prices):
    return {c.option: c for c in estimate(workload, prices)}


# --- the price file -------------------------------------------------------------------------------

def test_price_file_records_region_date_and_sources():
    assert RAW["region"] == "us-east-1"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", RAW["read_on"])
    for service in ("lambda", "sagemaker_serverless", "sagemaker_endpoint", "fargate", "batch_transform"):
        assert RAW[service]["sources"], service
        assert all(url.startswith("https://") for url in RAW[service]["sources"])


def test_price_file_holds_aws_published_us_east_1_prices():
    assert RAW["lambda"]["per_million_requests"] == 0.20
    assert RAW["lambda"]["per_gb_second"] == {"x86": 0.0000166667, "arm": 0.0000133334}
    assert RAW["sagemaker_serverless"]["per_second_by_memory_mb"]["1024"] == 0.00002
    assert RAW["sagemaker_serverless"]["data_processed_per_gb"] == 0.016
    assert RAW["sagemaker_endpoint"]["instances"]["ml.t2.medium"]["hourly"] == 0.056
    assert (RAW["fargate"]["per_vcpu_hour"], RAW["fargate"]["per_gb_hour"]) == (0.04048, 0.004445)


# --- Lambda ---------------------------------------------------------------------------------------

def test_lambda_published_example_one_million_requests_200ms_1024mb_arm_costs_2_87(prices):
    # GIVEN 1,000,000 requests a month (30 days) of 200 ms at 1,024 MB on Arm
    workload = Workload(requests_per_day=1_000_000 / 30, duration_ms=200, lambda_memory_mb=1024,
                        lambda_arch=Arch.ARM)
    # WHEN the model prices it
    cost = by_option(workload, prices)[Option.LAMBDA]
    # THEN it matches the hand computation: $0.20 of requests + 200,000 GB-s x $0.0000133334
    requests = 1_000_000 / 1e6 * RAW["lambda"]["per_million_requests"]
    compute = 1_000_000 * 0.200 * 1.0 * RAW["lambda"]["per_gb_second"]["arm"]
    assert dict(cost.breakdown) == pytest.approx({"requests": requests, "compute": compute})
    assert (round(requests, 2), round(compute, 2), round(cost.monthly_usd, 2)) == (0.20, 2.67, 2.87)
    assert cost.per_1000_usd == pytest.approx(cost.monthly_usd / 1000)


def test_intro_figures_10000_a_day_on_lambda_against_an_always_on_t2_medium(prices):
    # The intro's "about $0.57 vs about $40": 512 MB x86 at 200 ms; $0.56 in a 30-day month,
    # $0.57 in AWS calculator's 730-hour month.
    costs = by_option(Workload(requests_per_day=10_000), prices)
    by_hand = 300_000 * 0.2 / 1e6 + 300_000 * 0.2 * 0.5 * 0.0000166667
    assert costs[Option.LAMBDA].monthly_usd == pytest.approx(by_hand)
    assert round(by_hand, 2) == 0.56 and round(by_hand * 730 / 720, 2) == 0.57
    data = 300_000 * 2 * 1 / GB_IN_KB * 0.016
    assert costs[Option.ENDPOINT].monthly_usd == pytest.approx(0.056 * 720 + data)
    assert round(costs[Option.ENDPOINT].monthly_usd) == 40


def test_lambda_bills_duration_rounded_up_to_the_millisecond(prices):
    fast = by_option(Workload(requests_per_day=10_000, duration_ms=0.3), prices)[Option.LAMBDA]
    one_ms = by_option(Workload(requests_per_day=10_000, duration_ms=1.0), prices)[Option.LAMBDA]
    assert fast.monthly_usd == one_ms.monthly_usd
    assert dict(one_ms.breakdown)["compute"] == pytest.approx(300_000 * 0.001 * 0.5 * 0.0000166667)


def test_lambda_free_tier_is_off_by_default_and_covers_small_loads_when_on(prices):
    workload = Workload(requests_per_day=1_000_000 / 30, lambda_memory_mb=1024, lambda_arch=Arch.ARM)
    assert by_option(workload, prices)[Option.LAMBDA].monthly_usd > 2.8
    assert by_option(replace(workload, free_tier=True), prices)[Option.LAMBDA].monthly_usd == pytest.approx(0)
    # 2M requests of 200 ms at 2 GB: 1M requests and 800,000 - 400,000 GB-s left to pay
    bigger = Workload(requests_per_day=2_000_000 / 30, lambda_memory_mb=2048, free_tier=True)
    expected = 1_000_000 / 1e6 * 0.20 + (2_000_000 * 0.2 * 2 - 400_000) * 0.0000166667
    assert by_option(bigger, prices)[Option.LAMBDA].monthly_usd == pytest.approx(expected)


# --- SageMaker ------------------------------------------------------------------------------------

def test_serverless_bills_seconds_at_the_memory_price_plus_data_in_and_out(prices):
    workload = Workload(requests_per_day=10_000, serverless_memory_mb=2048, payload_kb=4)
    cost = by_option(workload, prices)[Option.SERVERLESS]
    compute = 300_000 * 0.2 * RAW["sagemaker_serverless"]["per_second_by_memory_mb"]["2048"]
    data = 300_000 * 2 * 4 / GB_IN_KB * 0.016
    assert dict(cost.breakdown) == pytest.approx({"compute": compute, "data": data})
    assert cost.latency is LatencyClass.COLD_STARTS


def test_endpoint_is_always_on_and_adds_instances_as_load_grows(prices):
    # ml.t2.medium has 2 vCPUs, kept at 50% on average: 1 busy vCPU = 432,000 requests/day of 200 ms
    at_capacity = by_option(Workload(requests_per_day=432_000), prices)[Option.ENDPOINT]
    over = by_option(Workload(requests_per_day=433_000), prices)[Option.ENDPOINT]
    tiny = by_option(Workload(requests_per_day=1), prices)[Option.ENDPOINT]
    assert (tiny.units, at_capacity.units, over.units) == (1, 1, 2)
    assert dict(over.breakdown)["instances"] == pytest.approx(2 * 720 * 0.056)
    assert dict(tiny.breakdown)["instances"] == pytest.approx(720 * 0.056)


# --- Fargate and Batch Transform -----------------------------------------------------------------

def test_fargate_bills_vcpu_and_memory_hours_all_month(prices):
    cost = by_option(Workload(requests_per_day=10_000, fargate_vcpu=0.5, fargate_memory_gb=1), prices)[Option.FARGATE]
    assert cost.monthly_usd == pytest.approx(720 * (0.5 * 0.04048 + 1 * 0.004445))
    assert cost.latency is LatencyClass.WARM


def test_batch_transform_bills_start_up_and_processing_per_job(prices):
    # 10,000 requests of 200 ms over the 2 vCPUs of ml.m5.large = 1,000 s, plus 300 s start-up, daily
    cost = by_option(Workload(requests_per_day=10_000), prices)[Option.TRANSFORM]
    assert cost.monthly_usd == pytest.approx(30 * (300 + 1_000) / 3600 * 0.115)
    four_jobs = by_option(Workload(requests_per_day=10_000, batch_jobs_per_day=4), prices)[Option.TRANSFORM]
    assert four_jobs.monthly_usd == pytest.approx(4 * 30 * (300 + 250) / 3600 * 0.115)
    assert cost.latency is LatencyClass.OFFLINE


def test_batch_transform_splits_a_job_that_would_overrun_the_day(prices):
    # 2,000,000 requests x 0.2 s / 2 vCPU = 200,000 s of work; a day leaves 86,100 s: 3 instances
    cost = by_option(Workload(requests_per_day=2_000_000), prices)[Option.TRANSFORM]
    assert cost.units == 3
    assert cost.monthly_usd == pytest.approx(30 * (3 * 300 + 200_000) / 3600 * 0.115)


# --- limits and bad input -------------------------------------------------------------------------

def test_limits_broken_name_the_limit(prices):
    costs = by_option(Workload(requests_per_day=100, payload_kb=5 * 1024, duration_ms=61_000), prices)
    serverless = " ".join(costs[Option.SERVERLESS].limits_broken)
    assert "4 MB" in serverless and "60 s" in serverless
    assert any("60 s" in limit for limit in costs[Option.ENDPOINT].limits_broken)
    assert costs[Option.LAMBDA].limits_broken == ()  # 5 MB < 6 MB, 61 s < 15 min
    assert costs[Option.FARGATE].limits_broken == ()


@pytest.mark.parametrize("changes, words", [
    ({"requests_per_day": 0}, "requests per day must be a positive"),
    ({"requests_per_day": -5}, "requests per day must be a positive"),
    ({"duration_ms": 0}, "duration must be a positive"),
    ({"payload_kb": -1}, "payload"),
    ({"lambda_memory_mb": 64}, "128-10,240 MB"),
    ({"lambda_memory_mb": 10_241}, "128-10,240 MB"),
    ({"serverless_memory_mb": 1536}, "1024, 2048, 3072, 4096, 5120, 6144 MB"),
    ({"serverless_memory_mb": 8192}, "1-6 GB"),
    ({"fargate_vcpu": 3}, "0.25, 0.5, 1, 2, 4, 8, 16"),
    ({"fargate_vcpu": 1, "fargate_memory_gb": 16}, "2-8 GB"),
    ({"fargate_vcpu": 0.25, "fargate_memory_gb": 1.5}, "0.5, 1 or 2 GB"),
    ({"batch_jobs_per_day": 0}, "batch jobs per day"),
    ({"batch_jobs_per_day": 300}, "start-up"),
])
def test_bad_input_is_a_usage_error_naming_the_limit(prices, changes, words):
    with pytest.raises(ParameterError, match=re.escape(words)) as caught:
        estimate(replace(Workload(requests_per_day=1000), **changes), prices)
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 2


@pytest.mark.parametrize("field", ["endpoint_instance", "transform_instance"])
def test_unknown_instance_type_lists_the_known_ones(prices, field):
    with pytest.raises(NotFoundError) as caught:
        estimate(replace(Workload(requests_per_day=1000), **{field: "ml.z9.huge"}), prices)
    message = str(caught.value)
    assert "ml.z9.huge" in message and "ml.m5.large" in message and "ml.c5.xlarge" in message


# --- break-even and recommendation ----------------------------------------------------------------

def test_break_even_fargate_against_endpoint_is_where_fargate_needs_a_second_task(prices):
    # 1 vCPU at 50% = 0.5 busy vCPU = 216,000 requests/day of 200 ms; a second task costs more than a t2.medium
    evens = break_evens(Workload(requests_per_day=10_000), prices)
    pair = [be for be in evens if {be.cheaper_below, be.cheaper_above} == {Option.FARGATE, Option.ENDPOINT}]
    assert pair[0].cheaper_below is Option.FARGATE and pair[0].cheaper_above is Option.ENDPOINT
    assert pair[0].requests_per_day == pytest.approx(216_000, rel=1e-4)


def test_break_even_lambda_against_endpoint_solved_by_hand_for_a_1ms_model(prices):
    workload = Workload(requests_per_day=10_000, duration_ms=1)
    per_request_lambda = 0.20 / 1e6 + 0.001 * 0.5 * 0.0000166667
    per_request_data = 2 * 1 / GB_IN_KB * 0.016
    by_hand = 0.056 * 720 / (30 * (per_request_lambda - per_request_data))
    evens = break_evens(workload, prices)
    pair = [be for be in evens if {be.cheaper_below, be.cheaper_above} == {Option.LAMBDA, Option.ENDPOINT}]
    assert len(pair) == 1 and pair[0].cheaper_below is Option.LAMBDA
    assert pair[0].requests_per_day == pytest.approx(by_hand, rel=1e-6)


def test_recommendation_is_the_cheapest_online_option_that_fits(prices):
    workload = Workload(requests_per_day=10_000)
    costs = estimate(workload, prices)
    choice = recommend(costs, break_evens(workload, prices), 10_000)
    assert choice.option is Option.LAMBDA
    assert "$0.56" in choice.reason and "sagemaker-serverless" in choice.reason


def test_recommendation_skips_options_whose_limits_break_and_offers_batch_only_when_offline(prices):
    workload = Workload(requests_per_day=10_000, duration_ms=1, payload_kb=5 * 1024)
    costs = estimate(workload, prices)
    evens = break_evens(workload, prices)
    online = recommend(costs, evens, 10_000)
    assert online.option is Option.LAMBDA  # serverless would be cheaper but breaks the 4 MB limit
    offline = recommend(costs, evens, 10_000, offline_ok=True)
    cheapest = min((c for c in costs if not c.limits_broken), key=lambda c: c.monthly_usd)
    assert offline.option is cheapest.option


def test_recommendation_when_every_option_breaks_a_limit(prices):
    # Fargate has no payload or duration limit of its own, so break it by hand to get the corner case
    costs = estimate(Workload(requests_per_day=100, duration_ms=5_000_000, payload_kb=200 * 1024), prices)
    assert all(c.limits_broken for c in costs if c.option is not Option.FARGATE)
    costs = tuple(replace(c, limits_broken=("made up",)) if c.option is Option.FARGATE else c for c in costs)
    choice = recommend(costs, (), 100)
    assert "every option breaks a limit" in choice.reason
    assert choice.option is Option.FARGATE  # one limit broken, the others break two


# --- loader ---------------------------------------------------------------------------------------

def test_a_price_file_with_a_negative_price_is_rejected_with_its_field(tmp_path):
    bad = json.loads(json.dumps(RAW))
    bad["fargate"]["per_vcpu_hour"] = -1
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(DataError, match="fargate.per_vcpu_hour"):
        load_prices(path)


def test_a_missing_or_broken_price_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        load_prices(tmp_path / "absent.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(DataError, match="not valid JSON"):
        load_prices(tmp_path / "broken.json")


def test_measured_p50_is_read_in_microseconds_and_returned_in_ms(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"serving": {"greenlight_p50_us": 850.0, "measured_at": "x"}}))
    assert measured_p50_ms(path) == pytest.approx(0.85)
    path.write_text(json.dumps({"local_run": {}}))
    with pytest.raises(DataError, match="make bench"):
        measured_p50_ms(path)
    with pytest.raises(DataError, match="make bench"):
        measured_p50_ms(tmp_path / "absent.json")


def test_estimate_is_deterministic_and_all_costs_finite(prices):
    first = estimate(Workload(requests_per_day=12_345), prices)
    assert first == estimate(Workload(requests_per_day=12_345), prices)
    assert all(math.isfinite(c.monthly_usd) and c.monthly_usd > 0 for c in first)
