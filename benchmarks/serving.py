"""`python -m benchmarks serving`: the serving path against its baselines, side by side in one run.

On the default model (src/train.py's defaults: 100 trees, on the diabetes training split), trained
fresh into a temporary directory by the real step scripts:

1. warm single row through the full serving path (input_fn -> predict_fn -> output_fn, CSV in,
   JSON out) against scikit-learn's `model.predict` on a ready numpy row;
2. a batch of 100,000 rows: predict_fn on a float64 array (checks and float32 cast included)
   against scikit-learn's `predict` with n_jobs=1 (n_jobs=-1 shown for reference);
3. cold start, a fresh interpreter to its first prediction (wall and peak RSS), against
   scikit-learn + joblib doing the same;
4. HTTP: `greenlight endpoint serve` against `mlflow models serve --env-manager local` on the
   same model and rows (MLflow's CSV needs a header line; ours is SageMaker's headerless CSV):
   one client, then 8 concurrent clients, keep-alive connections, 127.0.0.1 only;
5. installed size of the serving dependencies (deploy/lambda/requirements.txt) against
   scikit-learn's, summed from the installed files' records.

Every loop is bounded by a count or a duration. Writes the "serving" section of BENCHMARKS.md.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np

from benchmarks.report import ROOT, write_section

SRC = ROOT / "src"
PY = sys.executable
SINGLE_ROUNDS = 3
SINGLE_CALLS = {"greenlight": 4000, "sklearn": 300}  # per round
BATCH_ROWS = 100_000
COLD_RUNS = 5
HTTP_ROUNDS = 3
HTTP_CALLS = 300  # per round and server, one client
CONCURRENT_CLIENTS = 8
CONCURRENT_SECONDS = 6.0
START_TIMEOUT = 180.0

TARGETS = {
    "single_p50_us": 100.0,
    "single_speedup": 50.0,
    "batch_ratio": 1.0,
    "cold_start_s": 0.4,
    "cold_start_rss_mb": 100.0,
    "http_p50_fraction": 1 / 3,
    "http_throughput_ratio": 3.0,
}


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    arr = np.asarray(samples_ns, dtype=np.float64) / 1000.0
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


# -- the model -------------------------------------------------------------------------------

def train_default_model(work: Path) -> tuple[Path, list[str], list[str]]:
    """Train with the step scripts' defaults; return (model dir, headerless CSV rows, feature names)."""
    from greenlight.data import write_default_dataset

    write_default_dataset(work / "data")
    for args in (["preprocess.py", "--input-dir", "data", "--output-dir", "splits"],
                 ["train.py", "--train", "splits/train", "--validation", "splits/validation", "--model-dir", "model"]):
        subprocess.run([PY, str(SRC / args[0]), *args[1:]], cwd=work, check=True, capture_output=True)
    model_dir = work / "model"
    meta = json.loads((model_dir / "metadata.json").read_text())
    lines = (work / "splits" / "test" / "test.csv").read_text().strip().splitlines()[1:]
    rows = [line.split(",", 1)[1] for line in lines]  # drop the target column
    return model_dir, rows, list(meta["feature_names"])


# -- 1 and 2: in process ---------------------------------------------------------------------

def single_row(model_dir: Path, rows: list[str]) -> dict:
    import joblib

    from deploy.endpoint.loader import load_version

    served = load_version("bench", model_dir)
    sk = joblib.load(model_dir / "model.joblib")
    sk.set_params(n_jobs=1)
    bodies = [r.encode() for r in rows]
    arrays = [np.array([[float(v) for v in r.split(",")]]) for r in rows]
    ours, theirs = [], []
    clock = time.perf_counter_ns
    for body in bodies:  # warm up both, and check they agree
        out, _ = served.invoke(body, "text/csv", "application/json")
    max_diff = max(abs(json.loads(served.invoke(b, "text/csv", "application/json")[0])["predictions"][0]
                       - float(sk.predict(a)[0])) for b, a in zip(bodies, arrays, strict=True))
    for _ in range(SINGLE_ROUNDS):
        for i in range(SINGLE_CALLS["greenlight"]):
            body = bodies[i % len(bodies)]
            t0 = clock()
            served.invoke(body, "text/csv", "application/json")
            ours.append(clock() - t0)
        for i in range(SINGLE_CALLS["sklearn"]):
            x = arrays[i % len(arrays)]
            t0 = clock()
            sk.predict(x)
            theirs.append(clock() - t0)
    p50, p99 = _percentiles(ours)
    sk50, sk99 = _percentiles(theirs)
    return {"greenlight_p50_us": p50, "greenlight_p99_us": p99, "sklearn_predict_p50_us": sk50,
            "sklearn_predict_p99_us": sk99, "single_row_speedup": sk50 / p50, "single_row_max_abs_diff": max_diff,
            "single_row_calls": len(ours), "sklearn_single_row_calls": len(theirs)}


def batch(model_dir: Path, rows: list[str]) -> dict:
    import joblib

    from deploy.endpoint.loader import load_version

    served = load_version("bench-batch", model_dir)
    code, model = served.code, served.model
    sk = joblib.load(model_dir / "model.joblib")
    base = np.array([[float(v) for v in r.split(",")] for r in rows])
    rng = np.random.default_rng(0)
    X = base[rng.integers(len(base), size=BATCH_ROWS)] + rng.normal(0.0, 0.01, size=(BATCH_ROWS, base.shape[1]))
    ours, one, two = [], [], []
    diff = float(np.max(np.abs(code.predict_fn(X, model) - sk.set_params(n_jobs=1).predict(X))))
    for _ in range(3):
        t0 = time.perf_counter()
        code.predict_fn(X, model)
        ours.append(time.perf_counter() - t0)
        sk.set_params(n_jobs=1)
        t0 = time.perf_counter()
        sk.predict(X)
        one.append(time.perf_counter() - t0)
        sk.set_params(n_jobs=-1)
        t0 = time.perf_counter()
        sk.predict(X)
        two.append(time.perf_counter() - t0)
    ours_rps, one_rps, two_rps = (BATCH_ROWS / float(np.median(t)) for t in (ours, one, two))
    return {"batch_rows": BATCH_ROWS, "batch_rows_per_s": ours_rps, "sklearn_batch_rows_per_s": one_rps,
            "sklearn_batch_rows_per_s_n_jobs_all": two_rps, "batch_ratio": ours_rps / one_rps,
            "batch_max_abs_diff": diff}


# -- 3: cold start ---------------------------------------------------------------------------

# Peak RSS is VmHWM of the child's own address space: ru_maxrss would carry the parent's over fork.
PEAK_RSS_KB = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])"

OURS_COLD = """
import sys, time
sys.path.insert(0, {code!r})
import inference
m = inference.model_fn({model!r})
body, _ = inference.output_fn(inference.predict_fn(inference.input_fn({row!r}, "text/csv"), m), "application/json")
done = time.time()
print(done, {peak}, sorted(k for k in sys.modules if k in ("sklearn", "pandas", "scipy", "joblib")))
"""

SKLEARN_COLD = """
import time
import joblib, numpy
m = joblib.load({model_file!r})
m.predict(numpy.array([[float(v) for v in {row!r}.split(",")]]))
done = time.time()
print(done, {peak}, [])
"""


def _cold_once(script: str) -> tuple[float, float, list]:
    started = time.time()
    proc = subprocess.run([PY, "-I", "-c", script], capture_output=True, text=True, check=True, timeout=120)
    done, rss_kb, heavy = proc.stdout.split(" ", 2)
    return float(done) - started, int(rss_kb) / 1024.0, json.loads(heavy.replace("'", '"'))


def cold_start(model_dir: Path, rows: list[str]) -> dict:
    ours_script = OURS_COLD.format(code=str(model_dir / "code"), model=str(model_dir), row=rows[0], peak=PEAK_RSS_KB)
    sk_script = SKLEARN_COLD.format(model_file=str(model_dir / "model.joblib"), row=rows[0], peak=PEAK_RSS_KB)
    _cold_once(ours_script), _cold_once(sk_script)  # page cache warm for both
    ours, theirs, heavy = [], [], []
    for _ in range(COLD_RUNS):
        wall, rss, imported = _cold_once(ours_script)
        ours.append((wall, rss))
        heavy.extend(imported)
        theirs.append(_cold_once(sk_script)[:2])
    o_wall, o_rss = (float(np.median([r[i] for r in ours])) for i in (0, 1))
    s_wall, s_rss = (float(np.median([r[i] for r in theirs])) for i in (0, 1))
    return {"cold_start_s": o_wall, "cold_start_peak_rss_mb": o_rss, "sklearn_cold_start_s": s_wall,
            "sklearn_cold_start_peak_rss_mb": s_rss, "cold_start_ratio": s_wall / o_wall,
            "cold_start_rss_ratio": s_rss / o_rss, "cold_start_runs": COLD_RUNS,
            "cold_start_heavy_imports": sorted(set(heavy))}


# -- 4: HTTP ---------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants (MLflow serves from a uvicorn child)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024.0


class Server:
    """A server process on 127.0.0.1, and how to send it one row."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict, make_body, content_type: str):
        self.name, self.port, self.make_body, self.content_type = name, port, make_body, content_type
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self._stderr: list[str] = []
        threading.Thread(target=lambda: self._stderr.extend(self.proc.stderr), daemon=True).start()

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def post(self, conn: http.client.HTTPConnection, row: str) -> tuple[int, bytes]:
        conn.request("POST", "/invocations", body=self.make_body(row), headers={"Content-Type": self.content_type})
        response = conn.getresponse()
        return response.status, response.read()

    def wait_first_prediction(self, row: str) -> float:
        """Seconds from process start to the first 200 from /invocations (polling every 10 ms)."""
        deadline = self.started + START_TIMEOUT
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {''.join(self._stderr)[-2000:]}")
            try:
                conn = self.connect()
                status, body = self.post(conn, row)
                conn.close()
                if status == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"{self.name} did not answer within {START_TIMEOUT:.0f} s: {''.join(self._stderr)[-2000:]}")

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def _one_client(server: Server, rows: list[str], calls: int) -> tuple[list[int], int]:
    conn, samples, errors = server.connect(), [], 0
    for i in range(calls):
        t0 = time.perf_counter_ns()
        try:
            status, _ = server.post(conn, rows[i % len(rows)])
        except (OSError, http.client.HTTPException):
            status = -1
            conn.close()
            conn = server.connect()
        samples.append(time.perf_counter_ns() - t0)
        errors += status != 200
    conn.close()
    return samples, errors


def _concurrent(server: Server, rows: list[str]) -> dict:
    stop, ok, errors, barrier = threading.Event(), [0] * CONCURRENT_CLIENTS, [0] * CONCURRENT_CLIENTS, \
        threading.Barrier(CONCURRENT_CLIENTS + 1)

    def client(index: int) -> None:
        conn = server.connect()
        barrier.wait()
        i = index
        while not stop.is_set():
            try:
                status, _ = server.post(conn, rows[i % len(rows)])
            except (OSError, http.client.HTTPException):
                status = -1
                conn.close()
                conn = server.connect()
            if status == 200:
                ok[index] += 1
            else:
                errors[index] += 1
            i += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CONCURRENT_CLIENTS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    t0 = time.perf_counter()
    time.sleep(CONCURRENT_SECONDS)
    stop.set()
    for thread in threads:
        thread.join(60)
    elapsed = time.perf_counter() - t0
    return {"rps": sum(ok) / elapsed, "ok": sum(ok), "errors": sum(errors)}


def http_servers(model_dir: Path, rows: list[str], features: list[str], work: Path) -> dict:
    env = dict(os.environ, GREENLIGHT_HOME=str(work / "home"), MLFLOW_TRACKING_URI=f"file://{work / 'mlruns'}",
               PATH=f"{Path(PY).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    mlflow_model = work / "mlflow-model"
    subprocess.run([PY, "-c", "import sys, joblib, mlflow.sklearn; mlflow.sklearn.save_model("
                    "joblib.load(sys.argv[1]), sys.argv[2], serialization_format='cloudpickle')",
                    str(model_dir / "model.joblib"), str(mlflow_model)], env=env, check=True, capture_output=True)
    header = ",".join(features)
    ours_port, mlflow_port = _free_port(), _free_port()
    servers = [
        Server("greenlight", [PY, "-m", "greenlight.cli", "endpoint", "serve", "--model", str(model_dir),
                              "--port", str(ours_port)], ours_port, env, lambda r: r.encode(), "text/csv"),
        Server("mlflow", [PY, "-m", "mlflow", "models", "serve", "-m", str(mlflow_model), "--env-manager", "local",
                          "-h", "127.0.0.1", "-p", str(mlflow_port)], mlflow_port, env,
               lambda r: f"{header}\n{r}\n".encode(), "text/csv"),
    ]
    out: dict = {}
    try:
        ours, theirs = servers
        out["endpoint_start_to_first_prediction_s"] = ours.wait_first_prediction(rows[0])
        out["mlflow_start_to_first_prediction_s"] = theirs.wait_first_prediction(rows[0])
        # Same answers? (both from the same forest)
        diffs, conns = [], [ours.connect(), theirs.connect()]
        for row in rows:
            a, b = (json.loads(s.post(c, row)[1]) for s, c in zip(servers, conns, strict=True))
            diffs.append(abs(a["predictions"][0] - b["predictions"][0]))
        for conn in conns:
            conn.close()
        out["http_max_abs_diff"] = max(diffs)
        for server in servers:  # warm up
            _one_client(server, rows, 50)
        samples = {s.name: [] for s in servers}
        errors = {s.name: 0 for s in servers}
        for _ in range(HTTP_ROUNDS):
            for server in servers:
                got, bad = _one_client(server, rows, HTTP_CALLS)
                samples[server.name].extend(got)
                errors[server.name] += bad
        for server in servers:
            p50, p99 = _percentiles(samples[server.name])
            prefix = "http" if server.name == "greenlight" else "mlflow_http"
            out[f"{prefix}_p50_ms"], out[f"{prefix}_p99_ms"] = p50 / 1000, p99 / 1000
            out[f"{prefix}_one_client_errors"] = errors[server.name]
        for server in servers:
            result = _concurrent(server, rows)
            prefix = "http" if server.name == "greenlight" else "mlflow_http"
            out[f"{prefix}_8_clients_rps"] = result["rps"]
            out[f"{prefix}_8_clients_requests"] = result["ok"]
            out[f"{prefix}_8_clients_errors"] = result["errors"]
            out[f"{prefix}_server_rss_mb"] = _tree_rss_mb(server.proc.pid)
    finally:
        for server in servers:
            server.stop()
    out["http_p50_fraction_of_mlflow"] = out["http_p50_ms"] / out["mlflow_http_p50_ms"]
    out["http_8_clients_ratio"] = out["http_8_clients_rps"] / out["mlflow_http_8_clients_rps"]
    return out


# -- 5: installed size -----------------------------------------------------------------------

def _closure(names: list[str]) -> list[str]:
    from packaging.requirements import Requirement

    seen: dict[str, str] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        dist = importlib_metadata.distribution(name)
        seen[key] = dist.metadata["Name"]
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return sorted(seen.values())


def _installed_mb(names: list[str]) -> float:
    total = 0
    for name in names:
        dist = importlib_metadata.distribution(name)
        for file in dist.files or []:
            path = Path(dist.locate_file(file))
            if path.is_file():
                total += path.stat().st_size
    return total / 1e6


def installed_size() -> dict:
    requirements = ROOT / "deploy" / "lambda" / "requirements.txt"
    names = ["numpy"]
    if requirements.exists():
        from packaging.requirements import Requirement

        names = [Requirement(line.split("#", 1)[0].strip()).name
                 for line in requirements.read_text().splitlines() if line.split("#", 1)[0].strip()]
    serving, baseline = _closure(names), _closure(["scikit-learn"])
    ours, theirs = _installed_mb(serving), _installed_mb(baseline)
    return {"serving_deps": serving, "serving_deps_mb": ours, "sklearn_deps": baseline, "sklearn_deps_mb": theirs,
            "installed_size_ratio": theirs / ours}


# -- the report ------------------------------------------------------------------------------

def _mark(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def table(f: dict) -> tuple[str, dict]:
    t = TARGETS
    checks = {
        "single_row": f["greenlight_p50_us"] <= t["single_p50_us"] and f["single_row_speedup"] >= t["single_speedup"],
        "batch": f["batch_ratio"] >= t["batch_ratio"],
        "cold_start": f["cold_start_s"] <= t["cold_start_s"] and f["cold_start_peak_rss_mb"] <= t["cold_start_rss_mb"],
        "http_one_client": f["http_p50_fraction_of_mlflow"] <= t["http_p50_fraction"]
        and f["http_one_client_errors"] == 0,
        "http_8_clients": f["http_8_clients_ratio"] >= t["http_throughput_ratio"] and f["http_8_clients_errors"] == 0,
        "installed_size": f["serving_deps_mb"] < f["sklearn_deps_mb"],
    }
    rows = [
        ("Warm single row, full serving path (CSV parse, validate, predict, JSON format): p50 / p99",
         f"p50 ≤ {t['single_p50_us']:.0f} µs and ≥ {t['single_speedup']:.0f}× faster than scikit-learn",
         f"{f['greenlight_p50_us']:.1f} / {f['greenlight_p99_us']:.1f} µs",
         f"`predict` on a numpy row: {f['sklearn_predict_p50_us']:,.0f} / {f['sklearn_predict_p99_us']:,.0f} µs",
         f"{f['single_row_speedup']:,.0f}× faster", _mark(checks["single_row"])),
        (f"Batch of {f['batch_rows']:,} rows (`predict_fn` on float64, checks and cast included)",
         "≥ scikit-learn n_jobs=1",
         f"{f['batch_rows_per_s']:,.0f} rows/s",
         f"{f['sklearn_batch_rows_per_s']:,.0f} rows/s (n_jobs=-1: {f['sklearn_batch_rows_per_s_n_jobs_all']:,.0f})",
         f"{f['batch_ratio']:.2f}×", _mark(checks["batch"])),
        ("Cold start: fresh process to first prediction, wall / peak RSS (median of "
         f"{f['cold_start_runs']})",
         f"≤ {t['cold_start_s']} s and ≤ {t['cold_start_rss_mb']:.0f} MB",
         f"{f['cold_start_s']:.3f} s / {f['cold_start_peak_rss_mb']:.0f} MB",
         f"scikit-learn + joblib: {f['sklearn_cold_start_s']:.3f} s / {f['sklearn_cold_start_peak_rss_mb']:.0f} MB",
         f"{f['cold_start_ratio']:.1f}× faster, {f['cold_start_rss_ratio']:.1f}× less memory",
         _mark(checks["cold_start"])),
        ("Local endpoint, one client, single-row CSV: p50 / p99",
         "p50 ≤ ⅓ of MLflow's, no errors",
         f"{f['http_p50_ms']:.3f} / {f['http_p99_ms']:.3f} ms ({f['http_one_client_errors']} errors)",
         f"`mlflow models serve`: {f['mlflow_http_p50_ms']:.2f} / {f['mlflow_http_p99_ms']:.2f} ms "
         f"({f['mlflow_http_one_client_errors']} errors)",
         f"{f['http_p50_fraction_of_mlflow']:.3f} of MLflow's p50", _mark(checks["http_one_client"])),
        (f"Local endpoint, {CONCURRENT_CLIENTS} concurrent clients, {CONCURRENT_SECONDS:.0f} s: throughput",
         "≥ 3× MLflow's, zero errors",
         f"{f['http_8_clients_rps']:,.0f} req/s ({f['http_8_clients_errors']} errors)",
         f"{f['mlflow_http_8_clients_rps']:,.0f} req/s ({f['mlflow_http_8_clients_errors']} errors)",
         f"{f['http_8_clients_ratio']:.1f}×", _mark(checks["http_8_clients"])),
        ("Installed size of the serving dependencies (" + ", ".join(f["serving_deps"]) + ")",
         "smaller than scikit-learn's",
         f"{f['serving_deps_mb']:.1f} MB",
         f"{', '.join(f['sklearn_deps'])}: {f['sklearn_deps_mb']:.1f} MB",
         f"{f['installed_size_ratio']:.1f}× smaller", _mark(checks["installed_size"])),
        ("Endpoint process start to first prediction; server RSS after the load tests (reference, no target)",
         "—",
         f"{f['endpoint_start_to_first_prediction_s']:.2f} s; {f['http_server_rss_mb']:.0f} MB",
         f"MLflow: {f['mlflow_start_to_first_prediction_s']:.2f} s; {f['mlflow_http_server_rss_mb']:.0f} MB",
         f"{f['mlflow_start_to_first_prediction_s'] / f['endpoint_start_to_first_prediction_s']:.1f}× faster", "—"),
    ]
    lines = ["| Measure | Target | Greenlight | Baseline (same run) | Ratio | Result |",
             "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    notes = (
        f"\nLoad average when the run started: {f['load_average_at_start']} on 2 cores (other jobs share the "
        "machine; absolute times move with it, ratios less so). "
        "Default model: 100 trees trained by `src/train.py` on the diabetes training split. Predictions agree "
        f"with scikit-learn's (max abs diff: single row {f['single_row_max_abs_diff']:.3g}, batch "
        f"{f['batch_max_abs_diff']:.3g}, over HTTP against MLflow {f['http_max_abs_diff']:.3g}). "
        "The scikit-learn single-row baseline is `predict` alone (no parsing or formatting). Cold start runs "
        "`code/inference.py` as the Lambda image and SageMaker do (import, `model_fn`, first request); modules "
        f"from scikit-learn/pandas/scipy/joblib imported on that path: {f['cold_start_heavy_imports'] or 'none'}. "
        "HTTP: each server answers from one worker process (MLflow runs `uvicorn --workers 1` under its CLI; "
        "server RSS counts the whole process tree), on this machine with the clients (threads of the benchmark "
        "process, keep-alive connections); MLflow's CSV carries a header line, ours is SageMaker's headerless CSV. "
        "Installed size sums the files each distribution's install record lists (what `pip install --target` "
        "adds on this platform; the Lambda image installs the CPython 3.12 wheels)."
    )
    return "\n".join(lines) + "\n" + notes, checks


def main() -> None:
    figures: dict = {"load_average_at_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="greenlight-bench-serving-") as tmp:
        work = Path(tmp)
        print("serving: training the default model", flush=True)
        model_dir, rows, features = train_default_model(work)
        for name, step in (("single row", lambda: single_row(model_dir, rows)),
                           ("batch", lambda: batch(model_dir, rows)),
                           ("cold start", lambda: cold_start(model_dir, rows)),
                           ("HTTP", lambda: http_servers(model_dir, rows, features, work)),
                           ("installed size", installed_size)):
            print(f"serving: {name}", flush=True)
            figures.update(step())
    markdown, checks = table(figures)
    figures["targets"] = {k: {"target": v} for k, v in TARGETS.items()}
    figures["pass"] = checks
    write_section("serving", "## Serving path\n\n" + markdown, figures, "make bench")
    print(markdown)


if __name__ == "__main__":
    main()
