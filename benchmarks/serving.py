"""`python -m benchmarks serving`: the serving path against its baselines, side by side in one run.

On the default model (src/train.py's defaults: 100 trees, on the diabetes training split), trained
fresh into a temporary directory by the real step scripts:

1. warm single row through the full serving path (input_fn -> predict_fn -> output_fn, CSV in,
   JSON out) against scikit-learn's `model.predict` on a ready numpy row;
2. a batch of 100,000 rows: predict_fn on a float64 array (checks and float32 cast included), at
   the default thread count, against scikit-learn's `predict` with n_jobs=1 (ours on one thread,
   n_jobs=-1, and batches of 1,000 and 10,000 rows shown for reference);
3. cold start, a fresh interpreter to its first prediction (wall and peak RSS), against
   scikit-learn + joblib doing the same;
4. HTTP: `greenlight endpoint serve` against `mlflow models serve --env-manager local` on the
   same model and rows (MLflow's CSV needs a header line; ours is SageMaker's headerless CSV):
   one client, then 8 concurrent clients, keep-alive connections, 127.0.0.1 only;
5. installed size of the serving dependencies (deploy/lambda/requirements.txt) against
   scikit-learn's: `pip install --target` of the Lambda platform's wheels.

Every loop is bounded by a count or a duration. Writes the "serving" section of BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import ROOT, write_section
from benchmarks.serving_footprint import cold_start, installed_size
from benchmarks.serving_http import http_servers, percentiles

SRC = ROOT / "src"
PY = sys.executable
SINGLE_ROUNDS = 3
SINGLE_CALLS = {"greenlight": 4000, "sklearn": 300}  # per round
BATCH_ROWS = 100_000
BATCH_REFERENCE_SIZES = (1_000, 10_000)
BATCH_ROUNDS = 5

TARGETS = {
    "single_p50_us": 100.0,
    "single_speedup": 50.0,
    "batch_ratio": 1.0,
    "cold_start_s": 0.4,
    "cold_start_rss_mb": 100.0,
    "http_p50_fraction": 1 / 3,
    "http_throughput_ratio": 3.0,
}


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
    ours, theirs, round_p50s = [], [], []
    clock = time.perf_counter_ns
    for body in bodies:  # warm up both, and check they agree
        out, _ = served.invoke(body, "text/csv", "application/json")
    max_diff = max(abs(json.loads(served.invoke(b, "text/csv", "application/json")[0])["predictions"][0]
                       - float(sk.predict(a)[0])) for b, a in zip(bodies, arrays, strict=True))
    for _ in range(SINGLE_ROUNDS):
        this_round = []
        for i in range(SINGLE_CALLS["greenlight"]):
            body = bodies[i % len(bodies)]
            t0 = clock()
            served.invoke(body, "text/csv", "application/json")
            this_round.append(clock() - t0)
        ours.extend(this_round)
        round_p50s.append(percentiles(this_round)[0])
        for i in range(SINGLE_CALLS["sklearn"]):
            x = arrays[i % len(arrays)]
            t0 = clock()
            sk.predict(x)
            theirs.append(clock() - t0)
    p50, p99 = percentiles(ours)
    sk50, sk99 = percentiles(theirs)
    return {"greenlight_p50_us": p50, "greenlight_p99_us": p99, "sklearn_predict_p50_us": sk50,
            "sklearn_predict_p99_us": sk99, "single_row_speedup": sk50 / p50, "single_row_max_abs_diff": max_diff,
            "single_row_calls": len(ours), "sklearn_single_row_calls": len(theirs),
            "single_row_round_p50s_us": round_p50s}


def batch(model_dir: Path, rows: list[str]) -> dict:
    """Rows per second of predict_fn against scikit-learn's predict, interleaved rounds, same rows.

    Ours runs with its default thread count (the CPUs this process may use) and, for reference,
    one thread; scikit-learn with its default n_jobs=None (one thread, the target's baseline) and,
    for reference, n_jobs=-1. The reference sizes show the mid-sized batches Batch Transform and
    the endpoints see (a 4-6 MB body holds about 20,000 rows of 10 features).
    """
    import joblib

    from deploy.endpoint.loader import load_version

    served = load_version("bench-batch", model_dir)
    code, model = served.code, served.model
    forest = model.predictor
    default_threads = forest.threads
    sk = joblib.load(model_dir / "model.joblib")
    base = np.array([[float(v) for v in r.split(",")] for r in rows])
    rng = np.random.default_rng(0)
    X = base[rng.integers(len(base), size=BATCH_ROWS)] + rng.normal(0.0, 0.01, size=(BATCH_ROWS, base.shape[1]))
    sk.set_params(n_jobs=1)
    diff = float(np.max(np.abs(code.predict_fn(X, model) - sk.predict(X))))

    def ours(threads: int):
        def call(data):
            forest.threads = threads
            try:
                code.predict_fn(data, model)
            finally:
                forest.threads = default_threads
        return call

    def theirs(n_jobs: int):
        def call(data):
            sk.set_params(n_jobs=n_jobs)
            sk.predict(data)
        return call

    runners = {"ours": ours(default_threads), "ours_1": ours(1), "sk_1": theirs(1), "sk_all": theirs(-1)}
    times: dict[tuple[int, str], list[float]] = {}
    for _ in range(BATCH_ROUNDS):
        for size in (BATCH_ROWS, *BATCH_REFERENCE_SIZES):
            data = X[:size]
            for name, call in runners.items():
                t0 = time.perf_counter()
                call(data)
                times.setdefault((size, name), []).append(time.perf_counter() - t0)
    rps = {key: key[0] / float(np.median(t)) for key, t in times.items()}
    return {"batch_rows": BATCH_ROWS, "batch_rounds": BATCH_ROUNDS, "batch_threads": default_threads,
            "batch_rows_per_s": rps[(BATCH_ROWS, "ours")],
            "batch_rows_per_s_one_thread": rps[(BATCH_ROWS, "ours_1")],
            "sklearn_batch_rows_per_s": rps[(BATCH_ROWS, "sk_1")],
            "sklearn_batch_rows_per_s_n_jobs_all": rps[(BATCH_ROWS, "sk_all")],
            "batch_ratio": rps[(BATCH_ROWS, "ours")] / rps[(BATCH_ROWS, "sk_1")],
            "batch_ratio_one_thread": rps[(BATCH_ROWS, "ours_1")] / rps[(BATCH_ROWS, "sk_1")],
            "batch_ratio_same_cores": rps[(BATCH_ROWS, "ours")] / rps[(BATCH_ROWS, "sk_all")],
            "batch_reference": [{"rows": size, "rows_per_s": rps[(size, "ours")],
                                 "sklearn_rows_per_s": rps[(size, "sk_1")],
                                 "sklearn_rows_per_s_n_jobs_all": rps[(size, "sk_all")]}
                                for size in BATCH_REFERENCE_SIZES],
            "batch_max_abs_diff": diff}


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
        (f"Batch of {f['batch_rows']:,} rows (`predict_fn` on float64, checks and cast included; "
         f"median of {f['batch_rounds']})",
         "≥ scikit-learn `predict` (its default n_jobs=None: one thread)",
         f"{f['batch_rows_per_s']:,.0f} rows/s ({f['batch_threads']} threads, the default here); "
         f"one thread: {f['batch_rows_per_s_one_thread']:,.0f}",
         f"{f['sklearn_batch_rows_per_s']:,.0f} rows/s; n_jobs=-1: {f['sklearn_batch_rows_per_s_n_jobs_all']:,.0f}",
         f"{f['batch_ratio']:.2f}× (one thread: {f['batch_ratio_one_thread']:.2f}×; same cores as n_jobs=-1: "
         f"{f['batch_ratio_same_cores']:.2f}×)", _mark(checks["batch"])),
    ]
    rows += [
        (f"Batch of {r['rows']:,} rows (reference, no target)", "—",
         f"{r['rows_per_s']:,.0f} rows/s",
         f"{r['sklearn_rows_per_s']:,.0f} rows/s; n_jobs=-1: {r['sklearn_rows_per_s_n_jobs_all']:,.0f}",
         f"{r['rows_per_s'] / r['sklearn_rows_per_s']:.2f}×", "—")
        for r in f["batch_reference"]
    ]
    rows += [
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
        (f"Local endpoint, {f['http_clients']} concurrent clients, {f['http_concurrent_seconds']:g} s: throughput",
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
        "The scikit-learn single-row baseline is `predict` alone (no parsing or formatting); our single-row p50 "
        f"per round of {SINGLE_CALLS['greenlight']:,} calls: "
        + ", ".join(f"{v:.0f}" for v in f["single_row_round_p50s_us"]) + " µs (the spread is the machine's). "
        "Cold start runs "
        "`code/inference.py` as the Lambda image and SageMaker do (import, `model_fn`, first request); modules "
        f"from scikit-learn/pandas/scipy/joblib imported on that path: {f['cold_start_heavy_imports'] or 'none'}. "
        "HTTP: each server answers from one worker process (MLflow runs `uvicorn --workers 1` under its CLI; "
        "server RSS counts the whole process tree), on this machine with the clients (threads of the benchmark "
        "process, keep-alive connections); MLflow's CSV carries a header line, ours is SageMaker's headerless CSV. "
        f"Installed size: {f['installed_size_method']}."
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
