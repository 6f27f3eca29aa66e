"""`python -m benchmarks serving`: the serving path against its baselines, side by side in one run.

At four model sizes (benchmarks/serving_models.py: the default diabetes model, forests on a generated
50,000 x 10 CSV and a generated 40,000 x 12 CSV of uniform features with default hyperparameters, a
wide forest of 500 trees of depth 12 on a generated 200,000 x 20 CSV), each against scikit-learn on
the same fitted forest in the same run:

1. warm single row through the full serving path (input_fn -> predict_fn -> output_fn, CSV in,
   JSON out) against scikit-learn's `model.predict` on a ready numpy row;
2. a batch of 100,000 rows: predict_fn on a float64 array (checks and float32 cast included), at
   the default thread count, against scikit-learn's `predict` with its default n_jobs=None (ours on
   one thread, n_jobs=-1, and batches of 1,000 and 10,000 rows shown for reference);
3. cold start, a fresh interpreter to its first prediction (wall and peak RSS), against
   scikit-learn + joblib doing the same, and against interpreters that only import numpy (and the
   serving modules);
4. parity, bit for bit: single rows through the full path, the 100,000-row batch, and rows with
   NaN through every evaluator of the predictor.

On the default model only: the CPU time of input_fn on a 6 MB CSV request against pandas.read_csv
on the same bytes (two number formats); HTTP, `greenlight endpoint serve` against `mlflow models serve
--env-manager local` (one client, then 8 concurrent clients); and the installed size of the
serving dependencies against scikit-learn's. Every loop is bounded by a count or a duration.
Writes the "serving" section of BENCHMARKS.md and its figures in benchmarks/results.json.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from benchmarks.report import write_section
from benchmarks.serving_footprint import cold_start, installed_size
from benchmarks.serving_http import http_servers
from benchmarks.serving_measure import PARSE_FORMATS, batch, parse, single_row
from benchmarks.serving_models import MODELS, clear_stale, prepare

TARGETS = {
    "single_speedup": 30.0,  # warm single row, full path, p50: at least this many times scikit-learn's
    "batch_ratio": 1.5,  # rows/s of a 100,000-row batch over scikit-learn's default predict (one core each)
    "parse_ratio": 1.5,  # CPU time of input_fn on a 6 MB CSV request over pandas.read_csv's on the same bytes
    "cold_start_fraction": 1 / 3,  # cold start wall over scikit-learn + joblib's
    "rss_allowance": 1.3,  # peak RSS <= serving baseline + this x the forest's arrays
    "http_p50_fraction": 1 / 3,
    "http_throughput_ratio": 3.0,
}
PER_MODEL_CHECKS = ("single_row", "batch", "cold_start", "cold_start_rss", "parity")


def model_checks(m: dict, t: dict | None = None) -> dict[str, bool]:
    """Each per-model target met or not (figures of one model), against targets t (default TARGETS)."""
    t = t or TARGETS
    return {
        "single_row": m["single_row_speedup"] >= t["single_speedup"],
        "batch": m["batch_ratio"] >= t["batch_ratio"],
        "cold_start": m["cold_start_fraction"] <= t["cold_start_fraction"],
        "cold_start_rss": m["cold_start_peak_rss_mb"]
        <= m["baseline_serving_rss_mb"] + t["rss_allowance"] * m["forest_mb"],
        "parity": m["parity_single_differing"] == 0 and m["parity_batch_differing"] == 0
        and not any(m["parity_nan_differing"].values()),
    }


def _mark(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def _threads(n: int) -> str:
    return f"{n} thread" + ("s" if n != 1 else "")


def _model_cells(m: dict, ok: dict[str, bool]) -> list[str]:
    nan_total = sum(m["parity_nan_differing"].values())
    return [
        f"{m['trees']} trees, {m['nodes']:,} nodes, depth {m['max_depth']}; arrays {m['forest_mb']:.1f} MB"
        + ("; row layout" if m["row_layout"] else ""),
        f"{m['greenlight_p50_us']:,.1f} / {m['greenlight_p99_us']:,.1f} µs vs {m['sklearn_predict_p50_us']:,.0f} µs: "
        f"**{m['single_row_speedup']:,.0f}×** {_mark(ok['single_row'])}",
        f"{m['batch_rows_per_s']:,.0f} ({_threads(m['batch_threads'])}, the default; {_threads(m['batch_threads_all'])}"
        f" {m['batch_rows_per_s_all_threads']:,.0f}) vs {m['sklearn_batch_rows_per_s']:,.0f} (n_jobs=-1: "
        f"{m['sklearn_batch_rows_per_s_n_jobs_all']:,.0f}): **{m['batch_ratio']:.2f}×** {_mark(ok['batch'])}",
        f"{m['cold_start_s']:.3f} s vs {m['sklearn_cold_start_s']:.3f} s: **{m['cold_start_fraction']:.2f}** "
        f"{_mark(ok['cold_start'])}",
        f"{m['cold_start_peak_rss_mb']:.0f} MB ≤ {m['cold_start_rss_bound_mb']:.0f} MB "
        f"({m['baseline_serving_rss_mb']:.0f} + 1.3 × {m['forest_mb']:.1f}); numpy alone "
        f"{m['baseline_numpy_rss_mb']:.0f} MB; scikit-learn + joblib {m['sklearn_cold_start_peak_rss_mb']:,.0f} MB "
        f"{_mark(ok['cold_start_rss'])}",
        f"{m['parity_single_differing']} of {m['parity_single_rows']:,} / {m['parity_batch_differing']} of "
        f"{m['batch_rows']:,} / {nan_total} of {m['parity_nan_rows']:,} × {len(m['parity_nan_differing'])} evaluators "
        f"{_mark(ok['parity'])}",
    ]


def table(f: dict) -> tuple[str, dict]:
    """The BENCHMARKS.md section body and every check's verdict, from the recorded figures (against the
    targets recorded with them, or TARGETS)."""
    t = {**TARGETS, **f.get("targets", {})}
    order = [spec.key for spec in MODELS if spec.key in f["models"]]  # results.json stores keys sorted
    models = {key: f["models"][key] for key in order + sorted(set(f["models"]) - set(order))}
    checks = {}
    for key, m in models.items():
        checks.update({f"{name}[{key}]": ok for name, ok in model_checks(m, t).items()})
    measures = [
        ("Forest", "—"),
        ("Warm single row, full path (CSV parse, checks, predict, JSON): p50 / p99 vs scikit-learn `predict` p50",
         f"≥ {t['single_speedup']:.0f}× faster"),
        (f"Batch of {f['batch_rows']:,} rows, rows/s (`predict_fn`, checks and cast included; median of "
         f"{f['batch_rounds']}) vs scikit-learn `predict` (default n_jobs=None: one thread)",
         f"≥ {t['batch_ratio']:g}×"),
        (f"Cold start, fresh process to first prediction (median of {f['cold_start_runs']}) vs scikit-learn + joblib",
         "≤ ⅓ of its time"),
        ("Cold start peak RSS vs bound: serving baseline (interpreter, numpy, serving modules) + 1.3 × forest arrays",
         "≤ bound"),
        ("Parity, rows differing by any bit: single rows (full path) / batch / rows with 10% NaN (every evaluator)",
         "0"),
    ]
    cells = {key: _model_cells(m, {n: checks[f"{n}[{key}]"] for n in PER_MODEL_CHECKS}) for key, m in models.items()}
    lines = ["| Measure | Target | " + " | ".join(m["title"] for m in models.values()) + " |",
             "|---|---|" + "---|" * len(models)]
    lines += ["| " + " | ".join([name, target, *(cells[key][i] for key in models)]) + " |"
              for i, (name, target) in enumerate(measures)]
    d = models["default"]
    checks["http_one_client"] = f["http_p50_fraction_of_mlflow"] <= t["http_p50_fraction"] \
        and f["http_one_client_errors"] == 0
    checks["http_8_clients"] = f["http_8_clients_ratio"] >= t["http_throughput_ratio"] \
        and f["http_8_clients_errors"] == 0
    checks["installed_size"] = f["serving_deps_mb"] < f["sklearn_deps_mb"]
    rows = [(f"Batch of {r['rows']:,} rows (reference, no target)", "—",
             f"{r['rows_per_s']:,.0f} rows/s",
             f"{r['sklearn_rows_per_s']:,.0f} rows/s; n_jobs=-1: {r['sklearn_rows_per_s_n_jobs_all']:,.0f}",
             f"{r['rows_per_s'] / r['sklearn_rows_per_s']:.2f}×", "—") for r in d["batch_reference"]]
    rows += [
        ("Local endpoint, one client, single-row CSV: p50 / p99", "p50 ≤ ⅓ of MLflow's, no errors",
         f"{f['http_p50_ms']:.3f} / {f['http_p99_ms']:.3f} ms ({f['http_one_client_errors']} errors)",
         f"`mlflow models serve`: {f['mlflow_http_p50_ms']:.2f} / {f['mlflow_http_p99_ms']:.2f} ms "
         f"({f['mlflow_http_one_client_errors']} errors)",
         f"{f['http_p50_fraction_of_mlflow']:.3f} of MLflow's p50", _mark(checks["http_one_client"])),
        (f"Local endpoint, {f['http_clients']} concurrent clients, {f['http_concurrent_seconds']:g} s: throughput",
         "≥ 3× MLflow's, zero errors", f"{f['http_8_clients_rps']:,.0f} req/s ({f['http_8_clients_errors']} errors)",
         f"{f['mlflow_http_8_clients_rps']:,.0f} req/s ({f['mlflow_http_8_clients_errors']} errors)",
         f"{f['http_8_clients_ratio']:.1f}×", _mark(checks["http_8_clients"])),
        ("Installed size of the serving dependencies (" + ", ".join(f["serving_deps"]) + ")",
         "smaller than scikit-learn's", f"{f['serving_deps_mb']:.1f} MB",
         f"{', '.join(f['sklearn_deps'])}: {f['sklearn_deps_mb']:.1f} MB", f"{f['installed_size_ratio']:.1f}× smaller",
         _mark(checks["installed_size"])),
        ("Endpoint process start to first prediction; server RSS after the load tests (reference, no target)", "—",
         f"{f['endpoint_start_to_first_prediction_s']:.2f} s; {f['http_server_rss_mb']:.0f} MB",
         f"MLflow: {f['mlflow_start_to_first_prediction_s']:.2f} s; {f['mlflow_http_server_rss_mb']:.0f} MB",
         f"{f['mlflow_start_to_first_prediction_s'] / f['endpoint_start_to_first_prediction_s']:.1f}× faster", "—"),
    ]
    parse_rows = []
    # in PARSE_FORMATS' order: results.json keeps its keys sorted, the run its own order
    parsed = f.get("parse", {})
    for fmt, p in sorted(parsed.items(), key=lambda item: list(PARSE_FORMATS).index(item[0])
                         if item[0] in PARSE_FORMATS else len(PARSE_FORMATS)):
        checks[f"parse[{fmt}]"] = p["ratio"] <= t["parse_ratio"] and p["equal"]
        parse_rows.append((
            f"Parse a {p['bytes'] / 2**20:.0f} MB CSV request ({p['rows']:,} rows, {fmt}): `input_fn` CPU time, "
            f"median of {f['parse_rounds']}", f"≤ {t['parse_ratio']:g}× pandas', same values",
            f"{p['ours_ms']:,.1f} ms", f"`pandas.read_csv`: {p['pandas_ms']:,.1f} ms",
            f"{p['ratio']:.2f}× pandas' time" + ("" if p["equal"] else "; values DIFFER"),
            _mark(checks[f"parse[{fmt}]"])))
    at = len(d["batch_reference"])
    rows[at:at] = parse_rows
    lines += ["", "On the default model:", "",
              "| Measure | Target | Greenlight | Baseline (same run) | Ratio | Result |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    notes = (
        f"\nLoad average when the run started: {f['load_average_at_start']}"
        + (f", when it ended: {f['load_average_at_end']}" if "load_average_at_end" in f else "")
        + (f", around the 6 MB parse: {f['parse_load_average'][0]}-{f['parse_load_average'][1]}"
           if "parse_load_average" in f else "")
        + " on 2 cores (other jobs share the machine; absolute times move with it, ratios less so). "
        "Each column is one model, trained as `greenlight run --data` "
        "trains it (src/preprocess.py's split, src/train.py's `fit` and defaults; benchmarks/serving_models.py), "
        "and each ratio is against scikit-learn on that same fitted forest, measured in the same run. Single row: "
        "our p50 per round of " f"{d['single_row_calls'] // len(d['single_row_round_p50s_us']):,} calls, by model: "
        + "; ".join(f"{key} " + ", ".join(f"{v:,.0f}" for v in m["single_row_round_p50s_us"]) + " µs"
                    for key, m in models.items())
        + "; one row is served by " + ", ".join(f"{key} `{m['single_row_evaluator']}`" for key, m in models.items())
        + ". The scikit-learn single-row baseline is `predict` alone (no parsing or formatting). Cold start runs "
        "`code/inference.py` as the Lambda image and SageMaker do (import, `model_fn` with its digest checks, first "
        "request), page cache warm; modules from scikit-learn/pandas/scipy/joblib imported on that path: "
        + (", ".join(sorted({h for m in models.values() for h in m["cold_start_heavy_imports"]})) or "none")
        + ". Serving baseline (a fresh interpreter importing numpy and `inference`, no model): "
        + "; ".join(f"{key} {m['baseline_serving_s']:.3f} s / {m['baseline_serving_rss_mb']:.0f} MB"
                    for key, m in models.items())
        + ". NaN parity feeds the predictor directly: these three models were trained without missing values, so "
        "serving itself refuses NaN for them (400 `missing_value`), but scikit-learn routes NaN and the predictor "
        "must route it the same way. HTTP: each server answers from one worker process (MLflow runs `uvicorn "
        "--workers 1` under its CLI; server RSS counts the whole process tree), on this machine with the clients "
        "(threads of the benchmark process, keep-alive connections); MLflow's CSV carries a header line, ours is "
        f"SageMaker's headerless CSV. Installed size: {f['installed_size_method']}."
    )
    return "\n".join(lines) + "\n" + notes, checks


def main(argv: list[str] | None = None) -> None:
    figures: dict = {"load_average_at_start": round(os.getloadavg()[0], 2), "models": {}}
    with tempfile.TemporaryDirectory(prefix="greenlight-bench-serving-") as tmp:
        work = Path(tmp)
        trained = {}
        for spec in MODELS:
            print(f"serving: model {spec.key} ({spec.title})", flush=True)
            trained[spec.key] = prepare(spec, work, log=lambda msg: print(msg, flush=True))
        clear_stale({t.cache.name for t in trained.values()})
        for key, t in trained.items():
            forest = t.metadata["forest"]
            m = {"title": t.spec.title, "trees": forest["trees"], "nodes": forest["nodes"],
                 "max_depth": forest["max_depth"], "row_layout": forest["row_layout"]}
            for name, step in (("single row", single_row), ("batch", batch), ("cold start", cold_start)):
                print(f"serving: {key}: {name}", flush=True)
                m.update(step(t.model_dir, t.rows))
            figures["models"][key] = m
        default = trained["default"]
        print("serving: parsing a 6 MB CSV request (default model)", flush=True)
        figures.update(parse(default.model_dir))
        print("serving: HTTP (default model)", flush=True)
        figures.update(http_servers(default.model_dir, default.rows, default.features, work))
        print("serving: installed size", flush=True)
        figures.update(installed_size())
    figures.update({k: figures["models"]["default"][k] for k in ("batch_rows", "batch_rounds", "cold_start_runs")})
    figures["load_average_at_end"] = round(os.getloadavg()[0], 2)
    markdown, checks = table(figures)
    figures["targets"] = TARGETS
    figures["pass"] = checks
    write_section("serving", "## Serving path\n\n" + markdown, figures, "make bench")
    print(markdown)
    if not all(checks.values()):
        print("serving: targets missed: " + ", ".join(k for k, ok in checks.items() if not ok), file=sys.stderr)



if __name__ == "__main__":
    main()
