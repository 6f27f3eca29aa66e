"""`python -m benchmarks capture`: what capture (src/capture.py) adds to a single-row request, at three levels.

In process: the default model served as the local endpoint serves it (`deploy.endpoint.loader.load_version`),
one CSV row through input_fn -> predict_fn -> output_fn, in seven modes interleaved (each in every position in
turn): off, off again (the A/A pair), on (the writer thread), written after the answer (what the Lambda extension
does, untimed after each call), printed at once (Lambda's fallback), handed off only (diagnostic: the record
dropped unformatted, what the request path itself pays), and held only (diagnostic: what the writer thread holds
of each record, kept for its interval and then dropped unformatted: what holding costs without the writer's
work). End to end: benchmarks.capture_lambda (Lambda) and benchmarks.capture_endpoint (the local endpoint over
HTTP). Each mode's p50 against off is set against the A/A band of its level and run (benchmarks.capture_stats);
the verdicts are end to end (the writer thread at the endpoint, the extension in Lambda: decision 0061), the
in-process level shows each path's cost without one. The records are counted afterwards, one line per request
captured.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

from benchmarks.capture_endpoint import CALLS as ENDPOINT_CALLS
from benchmarks.capture_endpoint import ENDPOINT_MODES, measure_endpoint
from benchmarks.capture_endpoint import ROUNDS as ENDPOINT_ROUNDS
from benchmarks.capture_lambda import CALLS as LAMBDA_CALLS
from benchmarks.capture_lambda import LAMBDA_MODES, measure_lambda
from benchmarks.capture_lambda import ROUNDS as LAMBDA_ROUNDS
from benchmarks.capture_stats import aa_band, p50_ratio, ratio_interval, within
from benchmarks.report import write_section
from benchmarks.serving_http import percentiles
from benchmarks.serving_models import train_default_model

ROUNDS = 10
CALLS = 2000  # per mode and round
OFF = "off"
AA = "off again (A/A)"
ON = "on"
AFTER = "on, written after the answer"
AT_ONCE = "on, printed at once"
HANDOFF = "on, handed off only (diagnostic)"
HELD = "on, held only (diagnostic)"
MODES = (OFF, AA, ON, AFTER, AT_ONCE, HANDOFF, HELD)
JUDGED: tuple[str, ...] = ()  # in process: each path's precise cost, judged where a caller sees latency (0061)
LAMBDA_JUDGED = (AFTER,)  # Lambda's default path (its capture extension), with Lambda's own steps between calls
ENDPOINT_JUDGED = (ON,)  # the writer thread: the endpoint's, batch's and every local host's default path
NOT_JUDGED = {ON: "the writer's cost here; judged at the endpoint", AFTER: "the extension's work; judged in Lambda",
              AT_ONCE: "fallback, not judged", HANDOFF: "diagnostic, not judged", HELD: "diagnostic, not judged"}


def _settings(capture, mode: str, sink: Path) -> None:
    capture.reset()
    if mode in (OFF, AA):  # exactly a capture-off server: GREENLIGHT_CAPTURE unset, re-read every RECHECK s
        capture.configure(sink=None)
    elif mode == ON:
        capture.configure(sink=str(sink / "on"), rate=1.0, synchronous=False, target="endpoint")
    elif mode == HELD:  # the writer thread's path; what it holds is taken away from the writer (_between)
        capture.configure(sink=str(sink / "held"), rate=1.0, synchronous=False, target="endpoint")
    elif mode in (AFTER, HANDOFF):  # as in Lambda with the capture extension: printed to stdout after the answer
        capture.configure(sink="stdout", rate=1.0, synchronous=True, after_answer=True, target="lambda")
    else:  # as in Lambda without it: each record printed to stdout (here a file) before the answer
        capture.configure(sink="stdout", rate=1.0, synchronous=True, after_answer=False, target="lambda")


def _between(capture, mode: str, held: dict) -> None:
    """What runs after a timed call, untimed: the extension's write (AFTER), or dropping the handed-off record
    unformatted (HANDOFF: what the request path itself costs, nothing written), or keeping what the writer thread
    would hold and dropping it once every writer interval (HELD: what holding costs, nothing formatted)."""
    if mode == AFTER:
        capture.flush()  # what the extension does once the handler has answered
    elif mode == HANDOFF:
        capture._state.pending.clear()
    elif mode == HELD:
        held.setdefault("records", []).extend(capture._state.pending)
        capture._state.pending.clear()
        now = time.monotonic()
        if now >= held.get("until", 0.0):
            held["records"] = []
            held["until"] = now + capture.WRITE_INTERVAL


def measure(model_dir: Path, rows: list[str], sink: Path) -> dict:
    from deploy.endpoint.loader import load_version

    served = load_version("bench-capture", model_dir)
    capture = served.code.capture  # this version's own capture module (inference.py imports it)
    bodies = [r.encode() for r in rows]
    clock = time.perf_counter_ns
    rounds: dict[str, list[list[int]]] = {m: [] for m in MODES}
    sink.mkdir(parents=True, exist_ok=True)
    with open(sink / "stdout.jsonl", "w", encoding="utf-8") as stdout, contextlib.redirect_stdout(stdout):
        for mode in MODES:  # warm up each mode once; what it writes is not counted
            _settings(capture, mode, sink)
            for body in bodies[:200]:
                served.finish(served.parse(body, "text/csv"), "application/json")
                _between(capture, mode, {})
            capture.flush()
        stdout.flush()
        before = _lines(sink / "on" / "endpoint.jsonl")
        written = {ON: 0, AFTER: 0, AT_ONCE: 0}
        for r in range(ROUNDS):
            for mode in MODES[r % len(MODES):] + MODES[:r % len(MODES)]:  # each mode takes every position in turn
                _settings(capture, mode, sink)
                printed = _lines(sink / "stdout.jsonl")
                this_round = []
                held: dict = {}
                for i in range(CALLS):
                    body = bodies[i % len(bodies)]
                    t0 = clock()
                    served.finish(served.parse(body, "text/csv"), "application/json")
                    this_round.append(clock() - t0)
                    _between(capture, mode, held)
                held.clear()
                capture.flush()
                stdout.flush()
                if mode in (AFTER, AT_ONCE):
                    written[mode] += _lines(sink / "stdout.jsonl") - printed
                rounds[mode].append(this_round)
    capture.reset()
    written[ON] = _lines(sink / "on" / "endpoint.jsonl") - before
    figures: dict = {"calls_per_mode": ROUNDS * CALLS, "rounds": ROUNDS, "records_written": written}
    figures.update(judge(rounds, MODES))
    return figures


def judge(rounds: dict[str, list[list[int]]], modes: tuple[str, ...], judged: tuple[str, ...] = JUDGED) -> dict:
    """Per mode: p50, p99, p50 ratio to off with its interval, p50 per round; the A/A band; the verdicts."""
    band = aa_band(rounds[OFF], rounds[AA])
    figures: dict = {"aa_band": list(band)}
    for mode in modes:
        timings = [t for r in rounds[mode] for t in r]
        p50, p99 = percentiles(timings)
        ratio = p50_ratio(rounds[OFF], rounds[mode])
        figures[_key(mode)] = {"p50_us": p50, "p99_us": p99, "p50_ratio_to_off": ratio,
                               "ratio_interval": list(ratio_interval(rounds[OFF], rounds[mode])),
                               "round_p50s_us": [percentiles(r)[0] for r in rounds[mode]]}
    figures["pass"] = {mode: within(figures[_key(mode)]["p50_ratio_to_off"], band) for mode in judged}
    return figures


def _lines(path: Path) -> int:
    with open(path, encoding="utf-8") as fh:
        return sum(1 for _ in fh)


def _key(mode: str) -> str:
    return mode.replace(",", "").replace(" ", "_")


def _table(level: dict, modes: tuple[str, ...], judged: tuple[str, ...]) -> list[str]:
    low, high = level["aa_band"]
    rows = ["| capture | p50 | p99 | p50 against off | its 95% interval | p50 per round | verdict |",
            "|---|---|---|---|---|---|---|"]
    for mode in modes:
        if _key(mode) not in level:  # a run from before this mode existed
            continue
        f = level[_key(mode)]
        if mode in judged:
            ratio = level[_key(mode)]["p50_ratio_to_off"]
            verdict = ("**FAIL**: above the A/A band" if not level["pass"][mode] else
                       "pass: faster than off, below the A/A band" if ratio < low else "pass: within the A/A band")
        elif mode == OFF:
            verdict = "baseline"
        elif mode == AA:
            verdict = f"the A/A band: {low:.3f}x to {high:.3f}x"
        else:
            ratio = f["p50_ratio_to_off"]
            where = "above" if ratio > high else "below" if ratio < low else "within"
            verdict = f"{NOT_JUDGED[mode]}: {where} the A/A band"
        rows.append(f"| {mode} | {f['p50_us']:.1f} | {f['p99_us']:.1f} | {f['p50_ratio_to_off']:.3f}x | "
                    f"{f['ratio_interval'][0]:.3f}x to {f['ratio_interval'][1]:.3f}x | "
                    f"{', '.join(f'{v:.1f}' for v in f['round_p50s_us'])} | {verdict} |")
    return rows


def markdown(figures: dict) -> str:
    local, lam = figures["in_process"], figures["lambda_end_to_end"]
    written = ", ".join(f"{name}: {count:,}" for name, count in sorted(local["records_written"].items()))
    busy = ", ".join(f"{m}: {lam['post_invoke_p50_us'][m]:.0f} µs" for m in LAMBDA_MODES)
    registered = ", ".join(f"{m}: {lam['extensions_registered'][m]}" for m in LAMBDA_MODES)
    lam_written = ", ".join(f"{name}: {count:,}" for name, count in sorted(lam["records_written"].items()))
    return "\n".join([
        "## Capture: what a capture record adds to a request",
        "",
        "**Pass rule**: a default capture path (the writer thread; in Lambda, records written after the answer by",
        "the capture extension) passes when its single-row p50 against off is within the A/A band of the same",
        "run or below it (faster than off): the band is the 95% interval of the p50 ratio of two modes that both",
        "do exactly what capture off does (\"off again\"), over paired resamples of the interleaved rounds, centred",
        "on 1 (their true ratio; benchmarks/capture_stats.py, decision 0061). Each mode's own interval is shown",
        "beside it. p50 and p99 in µs. Each default path is judged where a caller sees latency: the writer thread",
        "at the endpoint end to end (HTTP), the extension in Lambda end to end. The in-process level is the fine",
        "one: it shows each path's own cost on a request with no I/O, and where that falls against its own A/A",
        "band, without a verdict (there the extension's after-the-answer work runs back to back with the next",
        "call, which Lambda never does: the next event waits for the extension, then crosses the Runtime API and",
        "the runtime client).",
        "",
        "**In process.** One CSV row through the default model's `input_fn -> predict_fn -> output_fn` (JSON out),",
        "as the local endpoint serves it: capture off; off again; on (every request sampled; the writer thread",
        "appends to a file every 0.2 s: the endpoint, batch and local hosts); on, written after the answer (what",
        "the Lambda extension does once the handler has answered, here untimed after each call); on, printed at",
        *_in_process_modes(local),
        f"position in turn, in {local['rounds']} rounds of {local['calls_per_mode'] // local['rounds']:,} calls.",
        "",
        *_table(local, MODES, JUDGED),
        "",
        f"Records written: {written}.",
        "",
        "**Lambda, end to end.** The same row as a Function URL event, invoked over HTTP on local Lambda execution",
        "environments running the model's real `lambda_handler` (benchmarks/lambda_runtime.py: the Runtime and",
        "Extensions APIs, a runtime client in its own process): off, off again, on with the capture extension,",
        "and on where the extension cannot register. Each round starts four new environments and times each",
        f"in turn, each in every position over the {lam['rounds']} rounds of "
        f"{lam['calls_per_mode'] // lam['rounds']:,} invokes; after each answer the client waits, untimed,",
        "until the environment's invocation is over, as Lambda does before it sends the next.",
        "",
        *_table(lam, LAMBDA_MODES, LAMBDA_JUDGED),
        "",
        "After each answer the environment stayed busy (its post-invoke phase, untimed above; billed) for a p50 "
        f"of {busy}.",
        f"Records written: {lam_written}; extensions registered: "
        f"{registered}. Load average (1 min) before "
        f"and after the run: {figures['load_average_1min_before']} and {figures['load_average_1min_after']}.",
        *_endpoint_part(figures.get("endpoint_end_to_end")),
        *_scale(local, figures.get("endpoint_end_to_end")),
    ])


def _in_process_modes(level: dict) -> list[str]:
    if _key(HELD) not in level:  # a run from before the held-only diagnostic
        return ["once (Lambda where the extension cannot register); and on, handed off only (the record dropped",
                "unformatted after each call: what the request path itself pays). Modes interleaved, each in every"]
    return ["once (Lambda where the extension cannot register); on, handed off only (the record dropped unformatted",
            "after each call: what the request path itself pays); and on, held only (what the writer thread holds of",
            "each record, kept as long as it keeps it, 0.2 s, then dropped unformatted: what holding costs without",
            "the writer's work). Modes interleaved, each in every"]


def _endpoint_part(level: dict | None) -> list[str]:
    if level is None:  # a run from before this level existed
        return []
    return [
        "",
        "**Endpoint, end to end.** The same row over HTTP to `greenlight endpoint serve` (one client, keep-alive):",
        "off (`GREENLIGHT_CAPTURE=off`), off again, and on (the writer thread, as every local serving command",
        f"sets it). Three new servers every round, each in every position over the {level['rounds']} rounds of "
        f"{level['calls_per_mode'] // level['rounds']:,} requests.",
        "",
        *_table(level, ENDPOINT_MODES, ENDPOINT_JUDGED),
        "",
        f"Records written by the capture-on servers: {level['records_written'][ON]:,} of "
        f"{level['requests_to_capture']:,} requests (warm-up included).",
    ]


def _scale(local: dict, endpoint: dict | None) -> list[str]:
    """The writer thread's in-process p50 difference set against the endpoint's end-to-end p50: what the fine level
    says the coarse one could at most have seen."""
    if endpoint is None:
        return []
    added = local[_key(ON)]["p50_us"] - local[_key(OFF)]["p50_us"]
    share = 100 * added / endpoint[_key(OFF)]["p50_us"]
    return ["", f"In process the writer thread's p50 was {added:+.2f} µs against off's: {share:+.3f}% of off's p50 at "
                f"the endpoint end to end, whose A/A band reaches {100 * (endpoint['aa_band'][1] - 1):+.1f}%."]


def main() -> None:
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="greenlight-bench-capture-") as tmp:
        work = Path(tmp)
        model_dir, rows, _ = train_default_model(work / "model")
        local = measure(model_dir, rows, work / "capture")
        lambda_rounds, facts = measure_lambda(model_dir, rows, work / "lambda")
        endpoint_rounds, endpoint_facts = measure_endpoint(model_dir, rows, work / "endpoint")
    lam = {"calls_per_mode": LAMBDA_ROUNDS * LAMBDA_CALLS, "rounds": LAMBDA_ROUNDS, **facts,
           **judge(lambda_rounds, LAMBDA_MODES, LAMBDA_JUDGED)}
    endpoint = {"calls_per_mode": ENDPOINT_ROUNDS * ENDPOINT_CALLS, "rounds": ENDPOINT_ROUNDS, **endpoint_facts,
                **judge(endpoint_rounds, ENDPOINT_MODES, ENDPOINT_JUDGED)}
    figures = {"in_process": local, "lambda_end_to_end": lam, "endpoint_end_to_end": endpoint,
               "load_average_1min_before": load_before,
               "load_average_1min_after": round(os.getloadavg()[0], 2)}
    write_section("capture", markdown(figures), figures, "python -m benchmarks capture")
    print(markdown(figures))


if __name__ == "__main__":
    main()
