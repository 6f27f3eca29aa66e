"""The capture benchmark's second level: the Lambda path end to end (benchmarks.lambda_runtime).

One CSV row as a Function URL event, invoked over HTTP on four local Lambda execution environments running the
default model's real handler: capture off, off again (the A/A pair), on with the capture extension (records
written after each answer), and on where the extension cannot register (each record printed before its answer).
Every round starts four new environments (a process's own placement and luck is part of the noise the A/A pair
measures), warms them, and times each in turn, each mode in every position over the rounds. The timed span is what
a caller of Invoke sees: the request out, the handler run by the runtime, the answer back; after each answer the
client waits, untimed, until the environment's invocation is over (Lambda sends no invocation to a busy
environment), and that wait is reported as the post-invoke phase.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.lambda_runtime import LambdaEnvironment

__all__ = ["LAMBDA_MODES", "measure_lambda"]

ROUNDS = 20  # more rounds than in process: a new process per mode and round brings its own luck (0061)
CALLS = 400  # per environment and round
WARM = 100  # untimed invokes of each new environment first
OFF, AA, AFTER, AT_ONCE = "off", "off again (A/A)", "on, written after the answer", "on, printed at once"
LAMBDA_MODES = (OFF, AA, AFTER, AT_ONCE)


def measure_lambda(model_dir: Path, rows: list[str], work: Path) -> tuple[dict[str, list[list[int]]], dict]:
    """Per mode, the timed invokes of each round (ns); what the environments wrote and registered, and how long
    each stayed busy after its answers (the post-invoke phase, p50 µs)."""
    from deploy.function.events import function_url_event

    events = [function_url_event("POST", "/", "", {"content-type": "text/csv"}, row.encode(), now=0.0,
                                 request_id="bench") for row in rows[:200]]
    work.mkdir(parents=True, exist_ok=True)
    rounds: dict[str, list[list[int]]] = {m: [] for m in LAMBDA_MODES}
    busy: dict[str, list[int]] = {m: [] for m in LAMBDA_MODES}
    written = dict.fromkeys(LAMBDA_MODES, 0)
    registered = dict.fromkeys(LAMBDA_MODES, 0)
    clock = time.perf_counter_ns
    for r in range(ROUNDS):  # new environments every round: a process's own luck is part of the noise
        logs = {mode: work / f"lambda-{r}-{i}.log" for i, mode in enumerate(LAMBDA_MODES)}
        envs = {mode: LambdaEnvironment(model_dir, logs[mode], capture=mode in (AFTER, AT_ONCE),
                                        refuse_extensions=mode == AT_ONCE) for mode in LAMBDA_MODES}
        try:
            for env in envs.values():
                env.__enter__()
            for env in envs.values():  # warm up: what they write is not counted
                for event in events[:WARM]:
                    env.wait_ready()
                    env.invoke(event)
                env.wait_ready()
            before = {mode: _records(logs[mode]) for mode in LAMBDA_MODES}
            for mode in LAMBDA_MODES[r % len(LAMBDA_MODES):] + LAMBDA_MODES[:r % len(LAMBDA_MODES)]:
                env, this_round = envs[mode], []
                for i in range(CALLS):
                    t0 = clock()
                    answer = env.invoke(events[i % len(events)])
                    t1 = clock()
                    env.wait_ready()  # untimed for the answer: Lambda sends no invocation to a busy environment
                    busy[mode].append(clock() - t1)
                    this_round.append(t1 - t0)
                    if answer.get("statusCode") != 200:
                        raise RuntimeError(f"the handler answered {answer}")
                rounds[mode].append(this_round)
            for mode, env in envs.items():
                written[mode] += _records(logs[mode]) - before[mode]
                registered[mode] = max(registered[mode], env.extensions())
        finally:
            for env in envs.values():
                env.__exit__()
    facts = {"extensions_registered": registered, "records_written": written,
             "post_invoke_p50_us": {mode: float(np.median(busy[mode])) / 1000 for mode in LAMBDA_MODES}}
    return rounds, facts


def _records(path: Path) -> int:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return sum(1 for line in fh if line.startswith('{"greenlight_capture"'))
