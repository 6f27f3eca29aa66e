"""The capture benchmark's verdict: a mode's p50 against off's, judged by an A/A comparison of the same run.

    band = aa_band(off_rounds, off_again_rounds)    where off-vs-off's p50 ratio falls (95%), centred on 1
    ratio_interval(off_rounds, mode_rounds)         the same interval for a mode's ratio
    within(ratio, band)                             the pass rule: the mode's ratio is not above the A/A band

Each argument is a list of rounds, each round the call timings (ns) of one mode in that round. The resampling
unit is the round (rounds are interleaved, so a load change on the machine moves every mode of a round alike):
a resample draws rounds with replacement, the same draw for both modes (paired), and takes the ratio of the p50s
of the drawn calls. Pure functions on plain lists; numpy only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RESAMPLES", "aa_band", "p50_ratio", "ratio_interval", "within"]

RESAMPLES = 2000
SEED = 25  # a fixed draw: the same timings always give the same band


def p50_ratio(base: list[list[int]], other: list[list[int]]) -> float:
    """p50 of every call of `other` over p50 of every call of `base`."""
    return float(np.median(np.concatenate(other)) / np.median(np.concatenate(base)))


def ratio_interval(base: list[list[int]], other: list[list[int]], resamples: int = RESAMPLES,
                   level: float = 0.95) -> tuple[float, float]:
    """The central `level` interval of p50(other)/p50(base) over paired bootstrap resamples of the rounds."""
    if len(base) != len(other) or not base:
        raise ValueError("both modes need the same, non-zero number of rounds")
    rng = np.random.default_rng(SEED)
    base_arrays = [np.asarray(r, dtype=np.float64) for r in base]
    other_arrays = [np.asarray(r, dtype=np.float64) for r in other]
    ratios = np.empty(resamples)
    for i in range(resamples):
        drawn = rng.integers(0, len(base), len(base))
        ratios[i] = (np.median(np.concatenate([other_arrays[j] for j in drawn]))
                     / np.median(np.concatenate([base_arrays[j] for j in drawn])))
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def aa_band(off: list[list[int]], off_again: list[list[int]]) -> tuple[float, float]:
    """The noise band: where a mode that costs nothing falls against off, 95% of the time.

    Off and off again both do exactly what capture off does, so their true p50 ratio is 1. The spread of
    off-again's resampled ratios around the one observed is the noise of this run's design; the band is that
    spread moved to centre on 1 (each end divided by the observed A/A ratio), so the A/A pair's own luck in this
    run (off again 1% faster than off, say) does not move the bar a judged mode is held to (decision 0061)."""
    low, high = ratio_interval(off, off_again)
    observed = p50_ratio(off, off_again)
    return low / observed, high / observed


def within(ratio: float, band: tuple[float, float]) -> bool:
    """The pass rule: a mode's p50 ratio to off is not above the A/A band's upper end (capture adds no latency the
    noise does not explain); below its lower end the mode was faster than off, which passes too."""
    return ratio <= band[1]
