"""The capture benchmark's verdict: the A/A band from interleaved rounds, and the pass rule that follows it."""

from __future__ import annotations

import copy

import pytest

from benchmarks import capture
from benchmarks.capture_stats import aa_band, p50_ratio, ratio_interval, within
from benchmarks.report import MARKDOWN, latest


def _rounds(level: float, spread: float, n: int = 8, calls: int = 200) -> list[list[int]]:
    """n rounds whose calls sit around `level` ns, each round shifted by up to `spread` (the machine's load)."""
    return [[int(level * (1 + spread * ((r % 3) - 1)) + (i % 7)) for i in range(calls)] for r in range(n)]


def test_the_a_a_band_holds_the_noise_and_a_slower_mode_falls_above_it():
    # GIVEN two off modes that differ only by noise, and a mode 5% slower in every round
    off, again = _rounds(30_000, 0.01), _rounds(30_000, 0.01)
    slower = [[int(t * 1.05) for t in r] for r in off]
    band = aa_band(off, again)
    # THEN the A/A ratio lies in its band, the slower mode's ratio above it, and the rule says so
    assert band[0] <= p50_ratio(off, again) <= band[1]
    assert p50_ratio(off, slower) == pytest.approx(1.05, abs=0.001)
    assert not within(p50_ratio(off, slower), band) and within(p50_ratio(off, again), band)
    low, high = ratio_interval(off, slower)
    assert low > band[1] and high == pytest.approx(1.05, abs=0.002)


def test_the_band_is_centred_on_one_whatever_luck_the_a_a_pair_had():
    # GIVEN an off-again mode that happened to run 1.5% faster than off in this run, and a mode that costs nothing
    off = _rounds(30_000, 0.01)
    lucky = [[int(t * 0.985) for t in r] for r in off]
    free = [list(r) for r in off]
    band = aa_band(off, lucky)
    # THEN the band holds 1 (the A/A pair's true ratio) though the A/A ratio itself is 0.985
    assert p50_ratio(off, lucky) == pytest.approx(0.985, abs=0.001)
    assert band[0] <= 1.0 <= band[1] and (band[0] + band[1]) / 2 == pytest.approx(1.0, abs=0.002)
    # AND a mode that costs nothing passes, which the uncentred interval (0.985 at most) would have failed
    assert within(p50_ratio(off, free), band) and ratio_interval(off, lucky)[1] < 1.0
    # AND one 5% slower still fails
    assert not within(p50_ratio(off, [[int(t * 1.05) for t in r] for r in off]), band)


@pytest.mark.parametrize(("ratio", "passes"), [(0.90, True), (1.00, True), (1.02, True), (1.0201, False)])
def test_the_pass_rule_is_not_above_the_band(ratio, passes):
    assert within(ratio, (0.98, 1.02)) is passes


def test_the_recorded_figures_render_the_committed_section_and_its_verdicts():
    figures = latest("capture")
    assert figures is not None, "benchmarks/results.json has no capture run"
    assert capture.markdown(figures).strip() in MARKDOWN.read_text(encoding="utf-8")
    for level in ("in_process", "lambda_end_to_end", "endpoint_end_to_end"):
        recorded = figures[level]
        for mode, passed in recorded["pass"].items():
            assert passed is within(recorded[capture._key(mode)]["p50_ratio_to_off"], recorded["aa_band"])
    # a judged mode moved above the band renders as a FAIL
    changed = copy.deepcopy(figures)
    level = changed["lambda_end_to_end"]
    level[capture._key(capture.AFTER)]["p50_ratio_to_off"] = level["aa_band"][1] + 0.01
    level["pass"][capture.AFTER] = False
    assert "**FAIL**: above the A/A band" in capture.markdown(changed)
    # the writer thread is judged at the endpoint; in process its cost is shown against the band, not hidden
    endpoint = changed["endpoint_end_to_end"]
    assert list(endpoint["pass"]) == [capture.ON] and changed["in_process"]["pass"] == {}
    local = changed["in_process"]
    local[capture._key(capture.ON)]["p50_ratio_to_off"] = local["aa_band"][1] + 0.01
    assert "| on | " in capture.markdown(changed)
    assert "the writer's cost here; judged at the endpoint: above the A/A band" in capture.markdown(changed)
