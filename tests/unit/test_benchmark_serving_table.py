"""The serving benchmark's table: recorded figures re-render to BENCHMARKS.md, and each verdict follows its target."""

from __future__ import annotations

import copy

from benchmarks import serving
from benchmarks.report import MARKDOWN, latest


def test_recorded_figures_render_the_committed_table():
    # GIVEN the figures of the last recorded serving run
    figures = latest("serving")
    assert figures is not None, "benchmarks/results.json has no serving run"
    # WHEN the table is rendered from them
    markdown, checks = serving.table(figures)
    # THEN BENCHMARKS.md shows exactly that table, and the stored verdicts are the recomputed ones
    assert markdown.strip() in MARKDOWN.read_text(encoding="utf-8")
    assert checks == figures["pass"]


def test_batch_verdict_follows_the_ratio_to_single_thread_sklearn():
    figures = copy.deepcopy(latest("serving"))
    figures["batch_ratio"] = 0.99
    markdown, checks = serving.table(figures)
    assert not checks["batch"]
    assert "0.99× " in markdown and "**FAIL**" in markdown
    figures["batch_ratio"] = 1.0
    assert serving.table(figures)[1]["batch"]


def test_single_row_verdict_needs_both_latency_and_speedup():
    figures = copy.deepcopy(latest("serving"))
    figures["greenlight_p50_us"], figures["single_row_speedup"] = 100.1, 200.0
    assert not serving.table(figures)[1]["single_row"]
    figures["greenlight_p50_us"], figures["single_row_speedup"] = 60.0, 49.0
    assert not serving.table(figures)[1]["single_row"]
    figures["single_row_speedup"] = 50.0
    assert serving.table(figures)[1]["single_row"]
