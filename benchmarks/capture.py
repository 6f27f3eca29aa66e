"""`python -m benchmarks capture`: what capture (src/capture.py) adds to a single-row request.

The default model is served as the local endpoint serves it (`deploy.endpoint.loader.load_version`: the
model's own code/inference.py), and one CSV row goes input_fn -> predict_fn -> output_fn (JSON out), in
four modes, rounds interleaved in one run: capture off; on (every request sampled, the writer thread
appending to a file, as the endpoint, the batch jobs and every local host run it); on, written after
the answer (Lambda: the capture extension writes each invocation's records once the handler has its
answer, so here `capture.flush()` runs after each timed call, untimed); and on, printed at once (Lambda
where the extension cannot register). The figure is each mode's p50 against off's. The records are
counted afterwards: one line per request captured.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

from benchmarks.report import write_section
from benchmarks.serving_http import percentiles
from benchmarks.serving_models import train_default_model

ROUNDS = 5
CALLS = 4000  # per mode and round
AFTER = "on, written after the answer"
AT_ONCE = "on, printed at once"
MODES = ("off", "on", AFTER, AT_ONCE)


def _settings(capture, mode: str, sink: Path) -> None:
    capture.reset()
    if mode == "off":
        capture.configure(sink=None)
    elif mode == "on":
        capture.configure(sink=str(sink / "on"), rate=1.0, synchronous=False, target="endpoint")
    elif mode == AFTER:  # as in Lambda with the capture extension: printed to stdout after the answer
        capture.configure(sink="stdout", rate=1.0, synchronous=True, after_answer=True, target="lambda")
    else:  # as in Lambda without it: each record printed to stdout (here a file) before the answer
        capture.configure(sink="stdout", rate=1.0, synchronous=True, after_answer=False, target="lambda")


def measure(model_dir: Path, rows: list[str], sink: Path) -> dict:
    from deploy.endpoint.loader import load_version

    served = load_version("bench-capture", model_dir)
    capture = served.code.capture  # this version's own capture module (inference.py imports it)
    bodies = [r.encode() for r in rows]
    clock = time.perf_counter_ns
    timings: dict[str, list[int]] = {m: [] for m in MODES}
    round_p50s: dict[str, list[float]] = {m: [] for m in MODES}
    sink.mkdir(parents=True, exist_ok=True)
    with open(sink / "stdout.jsonl", "w", encoding="utf-8") as stdout, contextlib.redirect_stdout(stdout):
        for mode in MODES:  # warm up each mode once; what it writes is not counted
            _settings(capture, mode, sink)
            for body in bodies[:200]:
                served.finish(served.parse(body, "text/csv"), "application/json")
            capture.flush()
        stdout.flush()
        before = _lines(sink / "on" / "endpoint.jsonl")
        written = {"on": 0, AFTER: 0, AT_ONCE: 0}
        for _ in range(ROUNDS):
            for mode in MODES:
                _settings(capture, mode, sink)
                printed = _lines(sink / "stdout.jsonl")
                this_round = []
                after_answer = capture.settings().after_answer
                for i in range(CALLS):
                    body = bodies[i % len(bodies)]
                    t0 = clock()
                    served.finish(served.parse(body, "text/csv"), "application/json")
                    this_round.append(clock() - t0)
                    if after_answer:
                        capture.flush()  # what the extension does once the handler has answered
                capture.flush()
                stdout.flush()
                if mode in (AFTER, AT_ONCE):
                    written[mode] += _lines(sink / "stdout.jsonl") - printed
                timings[mode].extend(this_round)
                round_p50s[mode].append(percentiles(this_round)[0])
    capture.reset()
    written["on"] = _lines(sink / "on" / "endpoint.jsonl") - before
    figures: dict = {"calls_per_mode": ROUNDS * CALLS, "records_written": written,
                     "load_average_1min_after": round(os.getloadavg()[0], 2)}
    off = percentiles(timings["off"])[0]
    for mode in MODES:
        p50, p99 = percentiles(timings[mode])
        figures[_key(mode)] = {"p50_us": p50, "p99_us": p99, "p50_ratio_to_off": p50 / off,
                               "round_p50s_us": round_p50s[mode]}
    return figures


def _lines(path: Path) -> int:
    with open(path, encoding="utf-8") as fh:
        return sum(1 for _ in fh)


def _key(mode: str) -> str:
    return mode.replace(",", "").replace(" ", "_")


def markdown(figures: dict) -> str:
    rows = []
    for mode in MODES:
        f = figures[_key(mode)]
        rows.append(f"| {mode} | {f['p50_us']:.1f} | {f['p99_us']:.1f} | {f['p50_ratio_to_off']:.2f}x | "
                    f"{', '.join(f'{v:.1f}' for v in f['round_p50s_us'])} |")
    written = ", ".join(f"{name}: {count:,}" for name, count in sorted(figures["records_written"].items()))
    return "\n".join([
        "## Capture: what a capture record adds to a request",
        "",
        "One CSV row through the default model's `input_fn -> predict_fn -> output_fn` (JSON out), as the local",
        "endpoint serves it, with capture (src/capture.py) off, on (every request sampled; the writer thread",
        "appends to a file every 0.2 s), on with each record printed after the answer (Lambda: the capture",
        "extension writes once the handler has answered; here untimed after each call), and on with each",
        "record printed at once (Lambda where the extension cannot register). Modes",
        f"interleaved in {ROUNDS} rounds of {CALLS:,} calls each, same run; p50 and p99 in µs.",
        "",
        "| capture | p50 | p99 | p50 against off | p50 per round |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Records written (one line per request captured): {written}. Load average (1 min) after the run: "
        f"{figures['load_average_1min_after']}.",
    ])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="greenlight-bench-capture-") as tmp:
        work = Path(tmp)
        model_dir, rows, _ = train_default_model(work / "model")
        figures = measure(model_dir, rows, work / "capture")
    write_section("capture", markdown(figures), figures, "python -m benchmarks capture")
    print(markdown(figures))


if __name__ == "__main__":
    main()
