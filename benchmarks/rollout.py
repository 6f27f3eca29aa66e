"""How many requests a bad version answers before it is rolled back: canary against all-at-once
(`python -m benchmarks rollout`; issue 22).

Two versions trained by `greenlight run`; v2's own code/inference.py is changed so that it answers 500 on
every live (one-row) request while its smoke test (five rows in one request) passes: the failure a smoke test
cannot see. `greenlight endpoint serve` runs; two clients send one-row requests in a loop throughout. Each
round, from v1:

- canary: `[endpoint] traffic = "canary"`, `canary_percent = 20`, `min_requests = 20`; `greenlight models
  approve 2` stages and probes v2, shifts 20% to it, follows the rollout, and the engine rolls it back by
  itself; counted: v2's failed answers, and the time from the command's start to v1 answering everything
  again (the window);
- all-at-once (the baseline, same run): the same approval switches everything to v2; nothing judges live
  traffic, so v2 serves until rejected; counted: v2's failed answers within the same window as the canary's
  round (what an operator rejecting exactly as fast as the canary's automatic rollback would have let through),
  then `greenlight models reject 2` puts v1 back.

Between rounds `models reject 2` (after a canary, v2 is held anyway) so the next approval is a new one.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.report import write_section

ROUNDS = 3
ROW = "0.0380759,0.0506801,0.0616962,0.0218724,-0.0442235,-0.0348208,-0.0434008,-0.00259226,0.0199075,-0.0176461"
COMMAND = "python -m benchmarks rollout"
GROUP = "greenlight-models"
BAD = '''
_benchmark_predict_fn = predict_fn


def predict_fn(data, model):
    if getattr(data, "row", None) is not None:  # one row: live traffic; the smoke test sends its rows together
        raise RuntimeError("benchmarks/rollout.py: a version that fails on live rows")
    return _benchmark_predict_fn(data, model)
'''
SETTINGS = ('[endpoint]\ntraffic = "{traffic}"\ncanary_percent = 20\nstep_wait_seconds = 60\nbake_seconds = 60\n'
            'min_requests = 20\n[lambda]\nenabled = false\n[batch]\nenabled = false\n')


def _cli(home: Path, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "greenlight.cli", *args],
                          env=os.environ | {"GREENLIGHT_HOME": str(home)}, capture_output=True, text=True, timeout=900)
    if proc.returncode not in ok:
        raise SystemExit(f"greenlight {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _make_v2_bad(home: Path) -> None:
    url = json.loads(_cli(home, "models", "show", "2", "--json").stdout)["model_data_url"]
    archive = home / "s3" / url.removeprefix("s3://")
    unpacked = home / "v2-unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    with open(unpacked / "code" / "inference.py", "a") as fh:
        fh.write(BAD)
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(unpacked.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(unpacked)), recursive=False)


def _client(url: str, stop: threading.Event, answers: list) -> None:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    while not stop.is_set():
        try:
            conn.request("POST", "/invocations", body=ROW.encode(), headers={"Content-Type": "text/csv"})
            response = conn.getresponse()
            response.read()
            answers.append((time.perf_counter(), response.status, response.getheader("X-Greenlight-Model-Version")))
        except (OSError, http.client.HTTPException) as exc:
            answers.append((time.perf_counter(), 0, repr(exc)))
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.close()


def _bad(answers: list, start: float, end: float) -> int:
    return sum(1 for t, status, version in answers if start <= t <= end and version == f"{GROUP}/2" and status != 200)


def _all(answers: list, start: float, end: float) -> int:
    return sum(1 for t, _, _ in answers if start <= t <= end)


def _back_on_v1(answers: list, after: float) -> float:
    """When v1 answered everything again: the first answer after which no v2 answer follows."""
    last_v2 = max((t for t, _, v in answers if v == f"{GROUP}/2" and t >= after), default=after)
    return next(t for t, _, v in answers if t > last_v2)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="gl-bench-rollout-") as tmp:
        home = Path(tmp)
        print("training two versions with greenlight run ...", flush=True)
        _cli(home, "run")
        _cli(home, "run", "--param", "NEstimators=40", "--param", "RandomState=7")
        _make_v2_bad(home)
        (home / "greenlight.toml").write_text(SETTINGS.format(traffic="all-at-once"))
        _cli(home, "models", "approve", "1")
        serve = subprocess.Popen([sys.executable, "-m", "greenlight.cli", "endpoint", "serve", "--port", "0",
                                  "--poll-seconds", "0.2"], env=os.environ | {"GREENLIGHT_HOME": str(home)},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        record = home / "deployments" / GROUP / "endpoint.serving.json"
        while not record.exists():
            time.sleep(0.05)
        url = json.loads(record.read_text())["url"]
        stop, answers = threading.Event(), []
        clients = [threading.Thread(target=_client, args=(url, stop, answers), daemon=True) for _ in range(2)]
        for client in clients:
            client.start()
        canary_bad, canary_window, canary_share, base_bad, base_total_bad, reasons = [], [], [], [], [], []
        try:
            time.sleep(1.0)
            for i in range(ROUNDS):
                print(f"round {i + 1}/{ROUNDS}: canary", flush=True)
                (home / "greenlight.toml").write_text(SETTINGS.format(traffic="canary"))
                start = time.perf_counter()
                out = _cli(home, "models", "approve", "2", ok=(1,)).stdout
                reasons.append(next((line.strip() for line in out.splitlines() if "rolled back:" in line), "?"))
                time.sleep(0.5)
                back = _back_on_v1(answers, start)
                canary_bad.append(_bad(answers, start, back))
                canary_window.append(back - start)
                canary_share.append(canary_bad[-1] / max(1, _all(answers, start, back)))
                _cli(home, "models", "reject", "2")
                print(f"round {i + 1}/{ROUNDS}: all at once", flush=True)
                (home / "greenlight.toml").write_text(SETTINGS.format(traffic="all-at-once"))
                start = time.perf_counter()
                _cli(home, "models", "approve", "2")
                time.sleep(max(0.0, start + canary_window[-1] - time.perf_counter()))
                _cli(home, "models", "reject", "2")
                time.sleep(0.5)
                base_bad.append(_bad(answers, start, start + canary_window[-1]))
                base_total_bad.append(_bad(answers, start, time.perf_counter()))
        finally:
            stop.set()
            for client in clients:
                client.join(timeout=60)
            serve.terminate()
            serve.wait(timeout=60)
    med = statistics.median
    figures = {"rounds": ROUNDS, "canary_bad_answers": med(canary_bad), "canary_window_s": med(canary_window),
               "canary_failed_share": med(canary_share), "all_at_once_bad_answers_same_window": med(base_bad),
               "all_at_once_bad_answers_until_rejected": med(base_total_bad),
               "canary_over_all_at_once": med(canary_bad) / max(1, med(base_bad)), "requests": len(answers)}
    markdown = f"""## Progressive delivery: what a bad version answers before rollback

A v2 that answers 500 on every live (one-row) request and passes its smoke test (five rows in one request),
approved {ROUNDS} times against a running `greenlight endpoint serve` with two clients sending one-row requests
throughout. Canary: `traffic = "canary"`, `canary_percent = 20`, `min_requests = 20`; the engine rolls v2 back
by itself (`{reasons[0]}`). Baseline in the same run, all-at-once: the same approval, then `models reject 2`
as soon as the canary's round had rolled back (the same window). Medians.

| measure | canary 20% | all-at-once |
|---|---|---|
| v2's failed answers, approval to v1 answering everything again | {med(canary_bad):.0f} | \
{med(base_bad):.0f} (same window) |
| window: the approval command's start to v1 answering everything | {med(canary_window):.2f} s | the same |
| share of all requests in the window that failed | {100 * med(canary_share):.0f}% | - |
| v2's failed answers until `models reject 2` returned | - | {med(base_total_bad):.0f} |

The canary let through {figures['canary_over_all_at_once']:.2f}x the failures all-at-once did in the same
window: only its 20% share reached v2, and only until a reconcile had seen `min_requests` of v2's answers
(the approving command reconciles every 0.25 s while it follows the rollout; the server drops the split at
its next poll, 0.2 s here). More than `min_requests` fail because of those two intervals. All-at-once relies on
someone noticing and rejecting; here an operator as fast as the engine, which is the baseline's best case."""
    write_section("rollout", markdown, figures, COMMAND)
    print(markdown)


if __name__ == "__main__":
    main()
