"""In-process half of `python -m benchmarks serving`, per model size: single row, batch and parity.

Each model is served as the local endpoint serves it (`deploy.endpoint.loader.load_version`: the
model's own code/inference.py, its model_fn) and compared with scikit-learn's `predict` on the same
fitted estimator (model.joblib), in the same process and the same run, rounds interleaved.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.serving_http import percentiles

SINGLE_ROUNDS = 3
SINGLE_CALLS = {"greenlight": 3000, "sklearn": 150}  # per round
BATCH_ROWS = 100_000
BATCH_REFERENCE_SIZES = (1_000, 10_000)
BATCH_ROUNDS = 5
PARITY_SINGLE_ROWS = 1_000  # single rows through the full path, checked against scikit-learn
PARITY_NAN_ROWS = 2_000
NAN_SHARE = 0.1


def _load(model_dir: Path, label: str):
    import joblib

    from deploy.endpoint.loader import load_version

    served = load_version(label, model_dir)
    sk = joblib.load(model_dir / "model.joblib")
    sk.set_params(n_jobs=None)  # what train.py leaves it at: scikit-learn's default, one thread
    return served, sk


def _invoke(served, body: bytes) -> tuple[bytes, str]:
    """input_fn -> predict_fn -> output_fn, CSV in, JSON out, as the endpoint serves a request."""
    return served.finish(served.parse(body, "text/csv"), "application/json")


def _differing(expected: np.ndarray, actual: np.ndarray) -> int:
    """Rows whose float64 bits differ (NaN equal to NaN)."""
    expected, actual = np.asarray(expected, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    same = (expected.view(np.uint64) == actual.view(np.uint64)) | (np.isnan(expected) & np.isnan(actual))
    return int((~same).sum())


def single_row(model_dir: Path, rows: list[str]) -> dict:
    """p50/p99 of input_fn -> predict_fn -> output_fn on one CSV row (JSON out) against `predict` on a numpy row."""
    served, sk = _load(model_dir, "bench-single")
    bodies = [r.encode() for r in rows]
    arrays = [np.array([[float(v) for v in r.split(",")]]) for r in rows]
    # Parity of the full path: every answer, parsed from its JSON, against scikit-learn's prediction
    checked = bodies[:PARITY_SINGLE_ROWS]
    expected = sk.predict(np.vstack(arrays[:len(checked)]))
    answers = np.array([json.loads(_invoke(served, b)[0])["predictions"][0] for b in checked])
    ours, theirs, round_p50s = [], [], []
    clock = time.perf_counter_ns
    for x in arrays[:5]:  # warm up scikit-learn too
        sk.predict(x)
    for _ in range(SINGLE_ROUNDS):
        this_round = []
        for i in range(SINGLE_CALLS["greenlight"]):
            body = bodies[i % len(bodies)]
            t0 = clock()
            _invoke(served, body)
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
    forest = served.model.predictor
    return {"greenlight_p50_us": p50, "greenlight_p99_us": p99, "sklearn_predict_p50_us": sk50,
            "sklearn_predict_p99_us": sk99, "single_row_speedup": sk50 / p50, "single_row_calls": len(ours),
            "sklearn_single_row_calls": len(theirs), "single_row_round_p50s_us": round_p50s,
            "single_row_evaluator": forest.evaluators[0],
            "parity_single_rows": len(checked), "parity_single_differing": _differing(expected, answers)}


def batch(model_dir: Path, rows: list[str]) -> dict:
    """Rows per second of predict_fn against scikit-learn's predict, interleaved rounds, same rows.

    Ours runs with its default thread count (one) and, for reference, one thread per CPU this process
    may use (GREENLIGHT_PREDICT_THREADS=auto); scikit-learn with its default n_jobs=None (one thread,
    the target's baseline) and, for reference, n_jobs=-1. The reference sizes show the mid-sized
    batches Batch Transform and the endpoints see (a 4-6 MB body holds about 20,000 rows of 10 features).
    """
    served, sk = _load(model_dir, "bench-batch")
    code, model = served.code, served.model
    forest = model.predictor
    default_threads, all_threads = forest.threads, code.compact_forest.available_cpus()
    base = np.array([[float(v) for v in r.split(",")] for r in rows])
    rng = np.random.default_rng(0)
    X = base[rng.integers(len(base), size=BATCH_ROWS)] + rng.normal(0.0, 0.01, size=(BATCH_ROWS, base.shape[1]))
    differing = _differing(sk.predict(X), code.predict_fn(X, model))
    # NaN: every evaluator of the predictor on rows with missing values (serving refuses NaN for a
    # model trained without any, but scikit-learn routes it, and so must the predictor)
    X_nan = X[:PARITY_NAN_ROWS].copy()
    X_nan[rng.random(X_nan.shape) < NAN_SHARE] = np.nan
    expected_nan = sk.predict(X_nan)
    nan_differing = {name: _differing(expected_nan[:got.size], got)
                     for name, got in forest.predict_each_way(X_nan, row_limit=PARITY_NAN_ROWS).items()}

    def ours(threads: int):
        def call(data):
            forest.threads = threads
            try:
                code.predict_fn(data, model)
            finally:
                forest.threads = default_threads
        return call

    def theirs(n_jobs: int | None):
        def call(data):
            sk.set_params(n_jobs=n_jobs)
            sk.predict(data)
        return call

    runners = {"ours": ours(default_threads), "ours_all": ours(all_threads), "sk_1": theirs(None), "sk_all": theirs(-1)}
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
            "batch_threads_all": all_threads, "batch_rows_per_s": rps[(BATCH_ROWS, "ours")],
            "batch_rows_per_s_all_threads": rps[(BATCH_ROWS, "ours_all")],
            "sklearn_batch_rows_per_s": rps[(BATCH_ROWS, "sk_1")],
            "sklearn_batch_rows_per_s_n_jobs_all": rps[(BATCH_ROWS, "sk_all")],
            "batch_ratio": rps[(BATCH_ROWS, "ours")] / rps[(BATCH_ROWS, "sk_1")],
            "batch_ratio_all_threads": rps[(BATCH_ROWS, "ours_all")] / rps[(BATCH_ROWS, "sk_1")],
            "batch_ratio_same_cores": rps[(BATCH_ROWS, "ours_all")] / rps[(BATCH_ROWS, "sk_all")],
            "batch_reference": [{"rows": size, "rows_per_s": rps[(size, "ours")],
                                 "sklearn_rows_per_s": rps[(size, "sk_1")],
                                 "sklearn_rows_per_s_n_jobs_all": rps[(size, "sk_all")]}
                                for size in BATCH_REFERENCE_SIZES],
            "parity_batch_differing": differing, "parity_nan_rows": PARITY_NAN_ROWS,
            "parity_nan_differing": nan_differing}


PARSE_BYTES = 6 * 1024 * 1024  # one Batch Transform request at MaxPayloadInMB = 6
PARSE_ROUNDS = 11
PARSE_FORMATS = {"repr": "each value's shortest repr (17 significant digits)",
                 "%.8g": "8 significant digits, like the issue's held-out CSV (about 100 bytes a row)"}


def _request(n_features: int, fmt: str) -> bytes:
    """About PARSE_BYTES of headerless CSV, whole lines, values uniform in the diabetes features' range."""
    rng = np.random.default_rng(0)
    lines, size = [], 0
    while size < PARSE_BYTES:
        for row in rng.uniform(-0.12, 0.2, size=(1000, n_features)).tolist():
            line = ",".join(repr(v) if fmt == "repr" else format(v, ".8g") for v in row) + "\n"
            if size + len(line) > PARSE_BYTES:
                return "".join(lines).encode()
            lines.append(line)
            size += len(line)
    return "".join(lines).encode()


def parse(model_dir: Path) -> dict:
    """CPU time of the model's input_fn on a 6 MB CSV request against pandas.read_csv on the same bytes.

    Interleaved rounds, medians; each parse's values are checked equal to pandas' (bit for bit).
    """
    import io

    import pandas as pd

    served, _ = _load(model_dir, "bench-parse")
    code, n_features = served.code, served.model.schema.n_features
    results = {}
    load_before = round(os.getloadavg()[0], 2)
    for fmt in PARSE_FORMATS:
        body = _request(n_features, fmt)
        ours = lambda b=body: code.input_fn(b, "text/csv", max_bytes=len(b)).values  # noqa: E731
        theirs = lambda b=body: pd.read_csv(io.BytesIO(b), header=None, dtype=np.float64).to_numpy()  # noqa: E731
        equal = bool(np.array_equal(ours(), theirs()))
        times: dict[str, list[float]] = {"ours": [], "pandas": []}
        for _ in range(PARSE_ROUNDS):
            for name, call in (("ours", ours), ("pandas", theirs)):
                t0 = time.process_time()
                call()
                times[name].append(time.process_time() - t0)
        ms = {name: float(np.median(t)) * 1e3 for name, t in times.items()}
        results[fmt] = {"bytes": len(body), "rows": body.count(b"\n"), "ours_ms": ms["ours"],
                        "pandas_ms": ms["pandas"], "ratio": ms["ours"] / ms["pandas"], "equal": equal}
    return {"parse": results, "parse_rounds": PARSE_ROUNDS,
            "parse_load_average": [load_before, round(os.getloadavg()[0], 2)]}
