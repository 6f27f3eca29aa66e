"""`greenlight cost` end to end through the CLI: JSON fields, the table, errors and exit codes, the chart."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import pytest

from greenlight.cli import main
from greenlight.cost.loader import DEFAULT_PRICES

ROOT = Path(__file__).resolve().parents[2]
GREENLIGHT = ROOT / ".venv" / "bin" / "greenlight"
OPTIONS = ["lambda", "sagemaker-serverless", "sagemaker-endpoint", "fargate", "batch-transform"]


def run_json(capsys, *args: str) -> list[dict]:
    code = main(["cost", "--json", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def run_error(capsys, *args: str) -> str:
    code = main(["cost", *args])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.startswith("greenlight: error: ") and err.count("\n") == 1
    return err


def test_json_is_one_object_per_option_with_the_documented_fields(capsys):
    rows = run_json(capsys, "--requests-per-day", "10000")
    assert [r["option"] for r in rows] == OPTIONS
    for row in rows:
        assert {"option", "monthly_usd", "per_1000_requests_usd", "latency_class", "limits_broken",
                "recommended", "break_even"} <= set(row)
    cost = {r["option"]: r["monthly_usd"] for r in rows}
    # 300,000 requests x (0.20/M + 0.2 s x 0.5 GB x $0.0000166667); 720 h x $0.056 + 0.57 GB x $0.016
    assert cost["lambda"] == pytest.approx(0.06 + 300_000 * 0.1 * 0.0000166667)
    assert cost["sagemaker-endpoint"] == pytest.approx(40.32 + 300_000 * 2 / 1024**2 * 0.016)
    assert [r["option"] for r in rows if r["recommended"]] == ["lambda"]


def test_workload_flags_reach_the_model(capsys):
    rows = run_json(capsys, "--requests-per-day", str(1_000_000 / 30), "--duration-ms", "200",
                    "--lambda-memory-mb", "1024", "--lambda-arch", "arm", "--serverless-memory-mb", "2048",
                    "--endpoint-instance", "ml.m5.large", "--fargate-vcpu", "0.5", "--fargate-memory-gb", "1",
                    "--transform-instance", "ml.c5.xlarge", "--batch-jobs-per-day", "2", "--payload-kb", "2")
    row = {r["option"]: r for r in rows}
    assert round(row["lambda"]["monthly_usd"], 2) == 2.87
    assert row["sagemaker-serverless"]["breakdown_usd"]["compute"] == pytest.approx(1_000_000 * 0.2 * 0.00004)
    assert row["sagemaker-endpoint"]["setup"] == "1 x ml.m5.large"
    assert row["fargate"]["monthly_usd"] == pytest.approx(720 * (0.5 * 0.04048 + 0.004445))
    assert row["batch-transform"]["setup"] == "2/day on 1 x ml.c5.xlarge"


def test_free_tier_is_off_unless_asked_for(capsys):
    args = ("--requests-per-day", str(1_000_000 / 30), "--lambda-memory-mb", "1024", "--lambda-arch", "arm")
    paid = {r["option"]: r["monthly_usd"] for r in run_json(capsys, *args)}
    free = {r["option"]: r["monthly_usd"] for r in run_json(capsys, *args, "--free-tier")}
    assert paid["lambda"] > 2.8 and free["lambda"] == pytest.approx(0, abs=1e-9)


def test_prices_file_overrides_the_bundled_one(capsys, tmp_path):
    raw = json.loads(DEFAULT_PRICES.read_text(encoding="utf-8"))
    raw["region"] = "eu-west-1-discounted"
    raw["lambda"]["per_million_requests"] = 0.10
    raw["lambda"]["per_gb_second"]["x86"] = raw["lambda"]["per_gb_second"]["x86"] / 2
    (tmp_path / "prices.json").write_text(json.dumps(raw))
    base = {r["option"]: r["monthly_usd"] for r in run_json(capsys, "--requests-per-day", "10000")}
    half = {r["option"]: r["monthly_usd"] for r in run_json(
        capsys, "--requests-per-day", "10000", "--prices", str(tmp_path / "prices.json"))}
    assert half["lambda"] == pytest.approx(base["lambda"] / 2)
    assert half["fargate"] == base["fargate"]


def test_measured_duration_reads_the_serving_p50_and_keeps_the_typical_200ms_alongside(capsys, tmp_path,
                                                                                        monkeypatch):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "results.json").write_text(
        json.dumps({"serving": {"greenlight_p50_us": 1500.0}, "local_run": {"seconds": 3}}))
    monkeypatch.chdir(tmp_path)
    rows = run_json(capsys, "--requests-per-day", "10000", "--duration-ms", "measured")
    lam = rows[0]
    assert lam["duration_ms"] == pytest.approx(1.5) and lam["typical_duration_ms"] == 200
    # 1.5 ms is billed as 2 ms on Lambda
    assert lam["monthly_usd"] == pytest.approx(0.06 + 300_000 * 0.002 * 0.5 * 0.0000166667)
    assert lam["typical_monthly_usd"] == pytest.approx(0.06 + 300_000 * 0.2 * 0.5 * 0.0000166667)
    code = main(["cost", "--requests-per-day", "10000", "--duration-ms", "measured"])
    out = capsys.readouterr().out
    assert code == 0 and "1.5 ms measured" in out and "200 ms typical" in out


def test_measured_duration_without_benchmark_results_tells_the_user_to_run_make_bench(capsys, tmp_path,
                                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "make bench" in run_error(capsys, "--requests-per-day", "10", "--duration-ms", "measured")
    (tmp_path / "r.json").write_text(json.dumps({"serving": {"other": 1}}))
    err = run_error(capsys, "--requests-per-day", "10", "--duration-ms", "measured", "--bench-results",
                    str(tmp_path / "r.json"))
    assert "serving.greenlight_p50_us" in err and "make bench" in err


@pytest.mark.parametrize("args, words", [
    (["--requests-per-day", "0"], "requests per day must be a positive number"),
    (["--requests-per-day", "-3"], "requests per day must be a positive number"),
    (["--requests-per-day", "10", "--duration-ms", "fast"], "--duration-ms"),
    (["--requests-per-day", "10", "--lambda-memory-mb", "64"], "128-10,240 MB"),
    (["--requests-per-day", "10", "--serverless-memory-mb", "512"], "1-6 GB"),
    (["--requests-per-day", "10", "--endpoint-instance", "ml.p9.giant"], "known: ml.c5.large"),
    (["--requests-per-day", "10", "--transform-instance", "ml.t2.medium"], "known: ml.c5.large"),
    (["--requests-per-day", "10", "--fargate-vcpu", "2", "--fargate-memory-gb", "2"], "4-16 GB"),
    (["--requests-per-day", "10", "--prices", "/no/such/prices.json"], "cannot read price file"),
])
def test_bad_input_exits_2_with_one_line_naming_the_limit(capsys, args, words):
    assert words in run_error(capsys, *args)


def test_plot_writes_a_png(capsys, tmp_path):
    path = tmp_path / "cost.png"
    code = main(["cost", "--requests-per-day", "10000", "--plot", str(path)])
    out = capsys.readouterr().out
    assert code == 0 and f"Chart written to {path}" in out
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert width >= 800 and height >= 500


def test_installed_command_prints_table_recommendation_and_break_evens(tmp_path):
    result = subprocess.run([str(GREENLIGHT), "cost", "--requests-per-day", "10000"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    for option in OPTIONS:
        assert option in result.stdout
    assert "Recommended (*): lambda" in result.stdout
    assert "Break-even request rates" in result.stdout
    assert "$0.56" in result.stdout and "$40.33" in result.stdout


def test_installed_command_exit_code_on_bad_input(tmp_path):
    result = subprocess.run([str(GREENLIGHT), "cost", "--requests-per-day", "10", "--lambda-memory-mb", "20000"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == ("greenlight: error: Lambda memory 20000 MB is outside Lambda's limits, "
                                     "128-10,240 MB")
