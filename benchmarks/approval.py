"""How long an approval takes to reach a running local endpoint (`python -m benchmarks approval`).

Two versions trained by `greenlight run`; `greenlight endpoint serve` running with its default poll
(1 s); a client sending one-row requests in a loop and logging (time, version) of every answer.
Each round approves v2 (the endpoint moves v1 -> v2) and rejects it again (v2 -> v1) with the real CLI
in a subprocess. Per transition: the command's wall time, and the time from its return to the first
answer from the new version (negative: the endpoint already answered with it before the command
returned, since the command waits for the smoke test through that endpoint). Baseline in the same
run: `greenlight models list` (the CLI's own start-up and a registry read).
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.report import write_section

ROUNDS = 5
ROW = "0.0380759,0.0506801,0.0616962,0.0218724,-0.0442235,-0.0348208,-0.0434008,-0.00259226,0.0199075,-0.0176461"
COMMAND = "python -m benchmarks approval"


def _cli(home: Path, *args: str) -> float:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "greenlight.cli", *args],
                          env=os.environ | {"GREENLIGHT_HOME": str(home)}, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"greenlight {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return time.perf_counter() - started


def _client(url: str, stop: threading.Event, answers: list, failures: list) -> None:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    while not stop.is_set():
        try:
            conn.request("POST", "/invocations", body=ROW.encode(), headers={"Content-Type": "text/csv"})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                answers.append((time.perf_counter(), response.getheader("X-Greenlight-Model-Version")))
            else:
                failures.append(response.status)
        except (OSError, http.client.HTTPException) as exc:
            failures.append(repr(exc))
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.close()


def _first_answer(answers: list, label: str, after: float) -> float:
    return next(t for t, v in answers if v == label and t >= after)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="gl-bench-approval-") as tmp:
        home = Path(tmp)
        print("training two versions with greenlight run ...", flush=True)
        _cli(home, "run")
        _cli(home, "run", "--param", "NEstimators=40", "--param", "RandomState=7")
        _cli(home, "models", "approve", "1")
        serve = subprocess.Popen([sys.executable, "-m", "greenlight.cli", "endpoint", "serve", "--port", "0"],
                                 env=os.environ | {"GREENLIGHT_HOME": str(home)}, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        record = home / "deployments" / "greenlight-models" / "endpoint.serving.json"
        while not record.exists():
            time.sleep(0.05)
        url = json.loads(record.read_text())["url"]
        stop, answers, failures = threading.Event(), [], []
        client = threading.Thread(target=_client, args=(url, stop, answers, failures), daemon=True)
        client.start()
        baseline, command, after_return, from_start = [], [], [], []
        try:
            time.sleep(1.0)
            for i in range(ROUNDS):
                print(f"round {i + 1}/{ROUNDS}", flush=True)
                baseline.append(_cli(home, "models", "list"))
                for verb, label in (("approve", "greenlight-models/2"), ("reject", "greenlight-models/1")):
                    started = time.perf_counter()
                    command.append(_cli(home, "models", verb, "2"))
                    returned = time.perf_counter()
                    time.sleep(0.5)
                    first = _first_answer(answers, label, started)
                    after_return.append(first - returned)
                    from_start.append(first - started)
        finally:
            stop.set()
            client.join(timeout=60)
            serve.terminate()
            serve.wait(timeout=60)
    med = statistics.median
    figures = {"transitions": len(command), "failed_requests": len(failures), "requests": len(answers),
               "command_s": med(command), "baseline_models_list_s": med(baseline),
               "first_new_answer_after_return_s": med(after_return),
               "first_new_answer_after_start_s": med(from_start),
               "command_over_baseline": med(command) / med(baseline)}
    markdown = f"""## Approval to a serving local endpoint

`greenlight models approve 2` / `reject 2` against a running `greenlight endpoint serve` (default 1 s
poll), {len(command)} transitions (v1 -> v2 and back), one client sending single-row requests throughout.
Each command deploys every local target with its smoke test: the endpoint (through the running
endpoint), the Lambda (in-process, no `lambda serve` runs here) and the batch schedule (a local transform
of the smoke rows). Medians; baseline `greenlight models list` in the same run.

| measure | median |
|---|---|
| approve/reject command, start to return (deploy and smoke test through the endpoint included) | \
{med(command):.2f} s ({figures['command_over_baseline']:.1f}x the baseline) |
| baseline: `greenlight models list` | {med(baseline):.2f} s |
| first answer from the new version, counted from the command's return | {med(after_return) * 1000:+.0f} ms |
| first answer from the new version, counted from the command's start | {med(from_start):.2f} s |
| requests answered / failed during the transitions | {len(answers)} / {len(failures)} |

A negative figure in the third row means the endpoint already answered with the new version before the
command returned: the command returns only after its smoke test got the new version's answer from that
same endpoint. Most of the command's time is the CLI's start-up (the baseline row), the endpoint's poll
(up to 1 s) and loading the new version."""
    write_section("approval", markdown, figures, COMMAND)
    print(markdown)


if __name__ == "__main__":
    main()
