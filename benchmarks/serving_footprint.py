"""Footprint half of `python -m benchmarks serving`: cold start in a fresh process, and installed size.

Cold start runs the model's own `code/inference.py` (import, model_fn, first request) in a fresh
interpreter, against scikit-learn + joblib doing the same; wall time from spawn to the first
prediction and the child's own peak RSS. Two baselines run in the same rounds: a fresh interpreter
that imports numpy, and one that imports numpy and the serving modules (`inference` and what it
imports) without loading a model, then runs numpy's first reduction (numpy sets up about 1 MB on
the first one, whatever the model); the memory target is the latter plus 1.3x the forest's arrays.

Installed size is what `pip install --target` of the CPython 3.12 manylinux x86_64 wheels (the
Lambda image's platform) writes, for the serving
requirements and for scikit-learn (the version setup.py pins) with its dependencies; without
network access to the package index it falls back to summing this environment's install records,
and says so.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tempfile
import time
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np

from benchmarks.report import ROOT

PY = sys.executable
COLD_RUNS = 5
RSS_ALLOWANCE = 1.3  # peak RSS target: the serving baseline plus this many times the forest's arrays

# Peak RSS is VmHWM of the child's own address space: ru_maxrss would carry the parent's over fork.
PEAK_RSS_KB = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])"

OURS_COLD = """
import sys, time
sys.path.insert(0, {code!r})
import inference
m = inference.model_fn({model!r})
body, _ = inference.output_fn(inference.predict_fn(inference.input_fn({row!r}, "text/csv"), m), "application/json")
done = time.time()
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(done, {peak}, repr([[int(status["RssFile"].split()[0]), int(status["RssAnon"].split()[0])],
                         sorted(k for k in sys.modules if k in ("sklearn", "pandas", "scipy", "joblib"))]))
"""

BASE_NUMPY = """
import time
import numpy
done = time.time()
print(done, {peak}, "[[], []]")
"""

BASE_SERVING = """
import sys, time
sys.path.insert(0, {code!r})
import inference
import numpy
numpy.add.accumulate(numpy.zeros(4))  # numpy's first reduction sets up about 1 MB, whatever the model
done = time.time()
print(done, {peak}, "[[], []]")
"""

SKLEARN_COLD = """
import time
import joblib, numpy
m = joblib.load({model_file!r})
m.predict(numpy.array([[float(v) for v in {row!r}.split(",")]]))
done = time.time()
print(done, {peak}, "[[], []]")
"""


def _cold_once(script: str) -> tuple[float, float, list]:
    """(wall s, peak RSS MB, what the script reports after them) of one fresh interpreter running script."""
    started = time.time()
    proc = subprocess.run([PY, "-I", "-c", script], capture_output=True, text=True, check=True, timeout=300)
    done, rss_kb, rest = proc.stdout.split(" ", 2)
    return float(done) - started, int(rss_kb) / 1024.0, ast.literal_eval(rest)


def cold_start(model_dir: Path, rows: list[str]) -> dict:
    code = str(model_dir / "code")
    scripts = {"ours": OURS_COLD.format(code=code, model=str(model_dir), row=rows[0], peak=PEAK_RSS_KB),
               "sklearn": SKLEARN_COLD.format(model_file=str(model_dir / "model.joblib"), row=rows[0],
                                              peak=PEAK_RSS_KB),
               "numpy": BASE_NUMPY.format(peak=PEAK_RSS_KB),
               "serving": BASE_SERVING.format(code=code, peak=PEAK_RSS_KB)}
    for script in scripts.values():  # page cache warm for all
        _cold_once(script)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in scripts}
    heavy: list[str] = []
    split: list[list[int]] = []  # ours: RssFile and RssAnon (kB) at the first prediction
    for _ in range(COLD_RUNS):
        for name, script in scripts.items():
            wall, rss, reported = _cold_once(script)
            runs[name].append((wall, rss))
            if name == "ours":
                split.append(reported[0])
                heavy.extend(reported[1])
    wall, rss = ({name: float(np.median([r[i] for r in got])) for name, got in runs.items()} for i in (0, 1))
    forest_mb = json.loads((model_dir / "metadata.json").read_text())["forest"]["bytes"] / 2**20
    bound = rss["serving"] + RSS_ALLOWANCE * forest_mb
    return {"cold_start_s": wall["ours"], "cold_start_peak_rss_mb": rss["ours"],
            "sklearn_cold_start_s": wall["sklearn"], "sklearn_cold_start_peak_rss_mb": rss["sklearn"],
            "cold_start_ratio": wall["sklearn"] / wall["ours"], "cold_start_fraction": wall["ours"] / wall["sklearn"],
            "cold_start_rss_ratio": rss["sklearn"] / rss["ours"],
            "cold_start_runs": COLD_RUNS, "cold_start_heavy_imports": sorted(set(heavy)),
            "baseline_numpy_s": wall["numpy"], "baseline_numpy_rss_mb": rss["numpy"],
            "baseline_serving_s": wall["serving"], "baseline_serving_rss_mb": rss["serving"],
            "forest_mb": forest_mb, "cold_start_rss_bound_mb": bound,
            "cold_start_rss_over_baseline_mb": rss["ours"] - rss["serving"],
            "cold_start_rss_file_mb": float(np.median([s[0] for s in split])) / 1024,
            "cold_start_rss_anon_mb": float(np.median([s[1] for s in split])) / 1024}


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


LAMBDA_WHEELS = ["--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:",
                 "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
                 "--platform", "manylinux2014_x86_64"]


def installed_size() -> dict:
    requirements = ROOT / "deploy" / "lambda" / "requirements.txt"
    lines = [line.split("#", 1)[0].strip() for line in requirements.read_text().splitlines()]
    serving_reqs = [line for line in lines if line]
    sklearn_req = f"scikit-learn=={_pinned_sklearn()}"
    try:
        (serving, ours), (baseline, theirs) = _pip_target(serving_reqs), _pip_target([sklearn_req])
        method = ("`pip install --target` of the CPython 3.12 manylinux x86_64 wheels, no bytecode "
                  f"(requirements.txt; {sklearn_req})")
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"serving: pip install --target failed ({exc}); summing this environment's install records",
              flush=True)
        from packaging.requirements import Requirement

        serving, baseline = _closure([Requirement(r).name for r in serving_reqs]), _closure(["scikit-learn"])
        ours, theirs = _installed_mb(serving), _installed_mb(baseline)
        method = f"install records of this environment (Python {sys.version_info.major}.{sys.version_info.minor})"
    return {"serving_deps": serving, "serving_deps_mb": ours, "sklearn_deps": baseline, "sklearn_deps_mb": theirs,
            "installed_size_ratio": theirs / ours, "installed_size_method": method}


def _pinned_sklearn() -> str:
    from importlib.metadata import version

    return version("scikit-learn")  # the venv installs setup.py's pin


def _pip_target(requirements: list[str]) -> tuple[list[str], float]:
    """Install requirements into an empty directory for the Lambda platform; (distributions, MB on disk)."""
    with tempfile.TemporaryDirectory(prefix="greenlight-bench-size-") as tmp:
        subprocess.run([PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                        "--target", tmp, *LAMBDA_WHEELS, *requirements],
                       check=True, capture_output=True, text=True, timeout=600)
        root = Path(tmp)
        names = sorted(d.name.split("-")[0].replace("_", "-") for d in root.glob("*.dist-info"))
        total = sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())
    return names, total / 1e6
