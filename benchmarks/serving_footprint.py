"""Footprint half of `python -m benchmarks serving`: cold start in a fresh process, and installed size.

Cold start runs the model's own `code/inference.py` (import, model_fn, first request) in a fresh
interpreter, against scikit-learn + joblib doing the same; wall time from spawn to the first
prediction and the child's own peak RSS. Installed size sums the files in each distribution's
install record, for the serving requirements and for scikit-learn with its dependencies.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np

from benchmarks.report import ROOT

PY = sys.executable
COLD_RUNS = 5

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
