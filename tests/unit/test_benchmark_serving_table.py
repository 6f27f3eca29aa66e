"""The serving benchmark's table: recorded figures re-render to BENCHMARKS.md, and each verdict follows its target."""

from __future__ import annotations

import copy

import pytest

from benchmarks import serving
from benchmarks.report import MARKDOWN, latest


@pytest.fixture
def figures() -> dict:
    recorded = latest("serving")
    assert recorded is not None, "benchmarks/results.json has no serving run"
    return copy.deepcopy(recorded)


def test_recorded_figures_render_the_committed_table(figures):
    # GIVEN the figures of the last recorded serving run, at every model size the issue asks for (the
    # 40,000 x 12 uniform forest since the 30x target)
    assert set(figures["models"]) >= {"default", "50k", "wide"}
    if figures["targets"].get("single_speedup", 10) >= 30:
        assert "40k" in figures["models"] and set(figures["parse"]) == {"repr", "%.8g"}
    # WHEN the table is rendered from them
    markdown, checks = serving.table(figures)
    # THEN BENCHMARKS.md shows exactly that table, and the stored verdicts are the recomputed ones
    assert markdown.strip() in MARKDOWN.read_text(encoding="utf-8")
    assert checks == figures["pass"]
    assert {f"{name}[{key}]" for name in serving.PER_MODEL_CHECKS for key in figures["models"]} <= set(checks)


@pytest.mark.parametrize(("field", "failing", "passing", "check"), [
    ("single_row_speedup", 29.9, 30.0, "single_row"),
    ("batch_ratio", 1.49, 1.5, "batch"),
    ("cold_start_fraction", 0.34, 1 / 3, "cold_start"),
    ("parity_batch_differing", 1, 0, "parity"),
    ("parity_single_differing", 2, 0, "parity"),
])
def test_each_per_model_verdict_follows_its_target(figures, field, failing, passing, check):
    figures["targets"] = serving.TARGETS  # the current targets (issue 24), whatever the recorded run had
    for key in figures["models"]:
        m = figures["models"][key]
        m[field] = failing
        markdown, checks = serving.table(figures)
        assert not checks[f"{check}[{key}]"] and "**FAIL**" in markdown
        m[field] = passing
        assert serving.table(figures)[1][f"{check}[{key}]"]


def test_memory_verdict_is_the_serving_baseline_plus_1_3_times_the_forest(figures):
    m = figures["models"]["50k"]
    bound = m["baseline_serving_rss_mb"] + 1.3 * m["forest_mb"]
    m["cold_start_peak_rss_mb"] = bound + 0.5
    assert not serving.table(figures)[1]["cold_start_rss[50k]"]
    m["cold_start_peak_rss_mb"] = bound
    assert serving.table(figures)[1]["cold_start_rss[50k]"]


def test_nan_parity_fails_on_any_evaluator(figures):
    m = figures["models"]["wide"]
    m["parity_nan_differing"]["tree_by_tree"] = 3
    assert not serving.table(figures)[1]["parity[wide]"]


def test_the_parse_verdict_is_within_1_5x_of_pandas_with_the_same_values(figures):
    figures["targets"] = serving.TARGETS
    figures["parse_rounds"] = 7
    figures["parse"] = {"repr": {"bytes": 6 << 20, "rows": 30_000, "ours_ms": 45.0, "pandas_ms": 30.0,
                                 "ratio": 1.5, "equal": True}}
    markdown, checks = serving.table(figures)
    assert checks["parse[repr]"] and "Parse a 6 MB CSV request (30,000 rows, repr)" in markdown
    figures["parse"]["repr"]["ratio"] = 1.51
    assert not serving.table(figures)[1]["parse[repr]"]
    figures["parse"]["repr"].update(ratio=1.0, equal=False)
    assert not serving.table(figures)[1]["parse[repr]"]


def test_the_notes_name_the_load_around_the_parse_when_it_was_recorded(figures):
    figures["targets"] = serving.TARGETS
    figures.pop("parse_load_average", None)
    assert "around the 6 MB parse" not in serving.table(figures)[0]  # runs before it was recorded
    figures["parse_load_average"] = [8.16, 8.23]
    assert "around the 6 MB parse: 8.16-8.23 on 2 cores" in serving.table(figures)[0]
