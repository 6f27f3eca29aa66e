"""`python -m benchmarks local_run`: where a local `greenlight run` spends its time, and how it grows.

Default data: RUNS runs of the real CLI (`.venv/bin/greenlight run` as a subprocess, each in a fresh
GREENLIGHT_HOME), after one uncounted warm-up; the target is their median wall time. Each run's
wall time is split with its execution record: the job processes' wall time (`process_seconds`; they
start warm, forked from a server that imported their libraries while the CLI built the definition:
pipelines/local/warm.py), staging, the steps the runner runs itself, and before and after the
steps. For reference, the import baseline of each script (a fresh interpreter importing what it
imports, measured in the same rounds) is what a cold job would spend before its first line. A probe
(the CLI's `run` in a fresh interpreter, timed around its phases, stopped before the first step)
splits the time before the first step. Then one run on a generated BIG_ROWS x BIG_FEATURES
CSV, with its peak memory, against a default-data run with the same hyperparameters.
"""

from __future__ import annotations

import ast
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from benchmarks.report import ROOT, write_section

COMMAND = "python -m benchmarks local_run"
GREENLIGHT = Path(sys.executable).parent / "greenlight"
RUNS = 5
TARGET_WALL_S, TARGET_OVERHEAD_SHARE = 5.0, 0.5
BIG_ROWS, BIG_FEATURES = 1_000_000, 20
BIG_PARAMS = {"NEstimators": "10", "MaxDepth": "12", "RmseThreshold": "1e9", "NJobs": "-1"}
RUN_TIMEOUT_S, BIG_TIMEOUT_S = 600, 3600
JOB_SCRIPTS = {"Preprocess": "preprocess.py", "Train": "train.py", "Evaluate": "evaluate.py"}
# Imported before the script's work but not at its top: Evaluate's joblib.load unpickles a forest.
LATE_IMPORTS = {"Evaluate": ["sklearn.ensemble"]}
PHASES = {"greenlight_import": "Greenlight's modules imported (`greenlight.cli`, `pipelines.*`)",
          "stage_data": "default data staged (`stage_data`: copies the shipped diabetes.csv)",
          "sdk_import": "SageMaker SDK imported, offline session made (`quiet_sdk`, `offline_session`)",
          "build": "definition built (`build_definition`)",
          "other": "the rest (config, parameter checks, runner set-up)"}

# The CLI's `run` in-process, each phase timed, stopped where the runner would start the first step.
PROBE = r'''
import json, sys, time
t0 = time.perf_counter()
import greenlight.cli as cli
import pipelines.definition as definition, pipelines.local.runner as runner, pipelines.sessions as sessions
import pipelines.local.staging as staging
marks = {"greenlight_import": time.perf_counter() - t0}
class Stop(BaseException):
    pass
def timed(owner, attr, label):
    inner = getattr(owner, attr, None)
    if inner is None:
        return
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            marks[label] = marks.get(label, 0.0) + time.perf_counter() - start
    setattr(owner, attr, wrapper)
def stop(*args, **kwargs):
    marks["until_runner"] = time.perf_counter() - t0
    raise Stop
timed(staging, "stage_data", "stage_data")
timed(sessions, "quiet_sdk", "sdk_import")
timed(sessions, "offline_session", "sdk_import")
timed(definition, "build_definition", "build")
runner.LocalRunner.run = stop
try:
    cli.main(["run"])
except Stop:
    pass
marks["exit_from"] = time.time()  # the parent times the interpreter's exit from here
with open(sys.argv[1], "w") as fh:
    json.dump(marks, fh)
'''


def say(text: str) -> None:
    print(f"[local_run {time.strftime('%H:%M:%S')}] {text}", flush=True)


def _cpu_busy_s() -> float:
    """CPU-seconds the whole machine has been busy since boot (every process, every core)."""
    user, nice, system, _idle, _iowait, irq, softirq = map(int, Path("/proc/stat").read_text().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _proc_tree(root: int) -> dict[int, tuple[str, int]]:
    """pid -> (label, RSS in kB) for `root` and its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if not argv[0]:  # a zombie: exited, not yet reaped
            continue
        rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        script = next((a for a in argv if Path(a).name in JOB_SCRIPTS.values()), None)
        tree[pid] = ("greenlight CLI" if pid == root else Path(script or argv[0]).name, rss)
    return tree


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, 9)
    except ProcessLookupError:
        pass


def timed(cmd: list[str], env: dict | None = None, log: Path | None = None, timeout: float = RUN_TIMEOUT_S,
          sample: bool = False) -> dict:
    """Run `cmd` to its end (killed after `timeout`): wall time, exit code, peak RSS, CPU, others' CPU."""
    out = open(log, "wb") if log else subprocess.DEVNULL
    busy, own = _cpu_busy_s(), resource.getrusage(resource.RUSAGE_SELF)
    launched, started = time.time(), time.perf_counter()
    try:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        if log:
            out.close()
    killer = threading.Timer(timeout, _kill_group, (proc.pid,))
    killer.start()
    peaks: dict[str, int] = {}
    done = threading.Event()

    def sampler() -> None:
        while not done.wait(0.2):
            tree = _proc_tree(proc.pid)
            for label, rss in tree.values():
                peaks[label] = max(peaks.get(label, 0), rss)
            peaks["tree total"] = max(peaks.get("tree total", 0), sum(rss for _, rss in tree.values()))

    thread = threading.Thread(target=sampler, daemon=True)
    if sample:
        thread.start()
    _, status, usage = os.wait4(proc.pid, 0)  # usage: the child and its reaped descendants
    wall = time.perf_counter() - started
    done.set()
    killer.cancel()
    if sample:
        thread.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    mine = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    others = _cpu_busy_s() - busy - cpu - (mine.ru_utime + mine.ru_stime - own.ru_utime - own.ru_stime)
    return {"wall_s": wall, "launched": launched, "code": proc.returncode, "cpu_s": cpu,
            "others_cpu_s": max(others, 0.0), "peak_rss_mb": usage.ru_maxrss / 1024,
            "sampled_peak_rss_mb": {k: v / 1024 for k, v in peaks.items()}}


def script_imports(step: str) -> list[str]:
    """The modules a job script imports at its top (its siblings in src/ left out), plus LATE_IMPORTS."""
    from pipelines.definition import src_dir

    path = src_dir() / JOB_SCRIPTS[step]
    siblings = {p.stem for p in path.parent.glob("*.py")}
    names = set(LATE_IMPORTS.get(step, []))
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return sorted(n for n in names if n != "__future__" and n.split(".")[0] not in siblings)


def _env(home: Path) -> dict:
    return {**os.environ, "GREENLIGHT_HOME": str(home)}


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def greenlight_run(args: list[str], timeout: float = RUN_TIMEOUT_S, sample: bool = False) -> dict:
    """One `greenlight run` in a fresh GREENLIGHT_HOME, with its execution record's step times."""
    from pipelines.local.executions import ExecutionStore

    tmp = Path(tempfile.mkdtemp(prefix="greenlight-bench-"))
    try:
        home = tmp / "home"
        run = timed([str(GREENLIGHT), "run", *args], _env(home), tmp / "cli.log", timeout, sample)
        if run["code"] != 0:
            tail = (tmp / "cli.log").read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(f"greenlight run {args} exited {run['code']}:\n" + "\n".join(tail))
        record = ExecutionStore(home / "executions").list()[0]
        run["steps"] = {s.name: {"seconds": _epoch(s.end) - _epoch(s.start), "process_s": s.process_seconds}
                        for s in record.steps}
        run["before_steps_s"] = _epoch(record.start) - run["launched"]
        run["after_steps_s"] = run["launched"] + run["wall_s"] - _epoch(record.end)
        data = home / "s3" / record.parameters["InputDataUrl"].removeprefix("s3://")
        with open(next(data.rglob("*.csv")) if data.is_dir() else data, encoding="utf-8") as fh:
            run["columns"] = len(fh.readline().split(","))
            run["rows"] = sum(1 for _ in fh)
        return run
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def split(run: dict, baseline: dict[str, float]) -> dict:
    """Split a run's wall time into the scripts' own work and Greenlight's overhead (in place)."""
    jobs = {n: s for n, s in run["steps"].items() if s["process_s"] is not None}
    for s in jobs.values():
        # Warm jobs start with their libraries imported: a process's wall time is the fork and the
        # script's own work; what is left above the bare interpreter's start counts as work.
        s["startup_s"] = min(s["process_s"], baseline["python -c pass"])
        s["work_s"] = s["process_s"] - s["startup_s"]
        s["staging_s"] = s["seconds"] - s["process_s"]
    for key in ("startup", "work", "staging"):
        run[f"job_{key}_s"] = sum(s[f"{key}_s"] for s in jobs.values())
    run["between_s"] = run["wall_s"] - run["before_steps_s"] - run["after_steps_s"] - run["job_startup_s"] \
        - run["job_work_s"] - run["job_staging_s"]
    run["overhead_s"] = run["wall_s"] - run["job_work_s"]
    run["overhead_share"] = run["overhead_s"] / run["wall_s"]
    # The other reading: a script's imports are its own work (it pays them on SageMaker too), and
    # "process start" is the bare interpreter launch (`python -c pass`).
    bare = baseline["python -c pass"]
    run["job_work_incl_imports_s"] = sum(max(s["process_s"] - bare, 0.0) for s in jobs.values())
    run["overhead_excl_imports_s"] = run["wall_s"] - run["job_work_incl_imports_s"]
    run["overhead_excl_imports_share"] = run["overhead_excl_imports_s"] / run["wall_s"]
    return run


def probe_definition() -> dict:
    """The phases before the first step, timed inside the CLI's `run` in a fresh interpreter."""
    tmp = Path(tempfile.mkdtemp(prefix="greenlight-bench-"))
    try:
        t = timed([sys.executable, "-c", PROBE, str(tmp / "marks.json")], _env(tmp / "home"), tmp / "probe.log")
        marks = json.loads((tmp / "marks.json").read_text()) if t["code"] == 0 else {}
        if "until_runner" not in marks:
            raise RuntimeError("definition probe failed:\n" + (tmp / "probe.log").read_text(errors="replace")[-2000:])
        marks["other"] = marks["until_runner"] - sum(marks.get(k, 0.0) for k in PHASES if k != "other")
        marks["exit"] = t["launched"] + t["wall_s"] - marks.pop("exit_from")
        return marks
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_big_csv(path: Path) -> None:
    """BIG_ROWS x BIG_FEATURES standard normal features, target = X @ w + noise; identical on every run."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.standard_normal((BIG_ROWS, BIG_FEATURES))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(BIG_FEATURES)])
    frame["target"] = x @ rng.uniform(-10, 10, BIG_FEATURES) + rng.normal(0, 1, BIG_ROWS)
    frame.to_csv(path, index=False, float_format="%.6g")


def med(runs: list[dict], get) -> float:
    return statistics.median(get(r) for r in runs)


def render(runs, probes, baseline, imports, same, big, gen) -> tuple[str, dict]:
    """The BENCHMARKS.md section and the results.json figures."""
    s, pct = (lambda x: f"{x:.2f} s"), (lambda x: f"{x:.0%}")
    wall, work, over = (med(runs, lambda r, k=k: r[k]) for k in ("wall_s", "job_work_s", "overhead_s"))
    share = med(runs, lambda r: r["overhead_share"])
    ok_wall, ok_over = wall < TARGET_WALL_S, share < TARGET_OVERHEAD_SHARE
    work_b = med(runs, lambda r: r["job_work_incl_imports_s"])
    over_b = med(runs, lambda r: r["overhead_excl_imports_s"])
    share_b = med(runs, lambda r: r["overhead_excl_imports_share"])
    ok_over_b = share_b < TARGET_OVERHEAD_SHARE
    verdict = lambda ok: "**pass**" if ok else "**FAIL**"  # noqa: E731
    parts = {k: med(runs, lambda r, k=k: r[k])
             for k in ("before_steps_s", "job_startup_s", "job_staging_s", "between_s", "after_steps_s")}
    phases = {k: med(probes, lambda p, k=k: p.get(k, 0.0)) for k in [*PHASES, "until_runner", "exit"]}
    others = max(r["others_cpu_s"] / r["wall_s"] for r in runs)
    jobs = [n for n in JOB_SCRIPTS if n in runs[0]["steps"]]
    r0 = runs[0]
    lines = [
        "### Local run (`greenlight run`)", "",
        f"{RUNS} runs of the real CLI, `.venv/bin/greenlight run` as a subprocess, on the default data "
        f"({r0['rows']} rows x {r0['columns'] - 1} features, default hyperparameters: 100 trees), each with a "
        "fresh, empty `GREENLIGHT_HOME`, after one warm-up run that is not counted. **Whole run** is the wall "
        "time of the command. Each job records the wall time of its own process (`process_seconds`; jobs start "
        "warm, their libraries already imported); the **import baseline** is the median wall time of a fresh "
        "`python -c \"import ...\"` of the modules that script imports (read from its source; Evaluate also "
        "`sklearn.ensemble`, which unpickling the forest imports), measured in the same rounds: what a cold job "
        "would spend first. **Scripts' own work** = the sum over jobs of (process time - a bare interpreter's "
        "start); **Greenlight overhead** = whole run - scripts' own work. The overhead rows below come from the "
        "execution record's timestamps. Medians of "
        f"{RUNS}; shares are each row's median over the median whole run (rows need not add up exactly).", "",
        "| | median | share of the run | target | result |", "| --- | --- | --- | --- | --- |",
        f"| **whole run** (wall) | {s(wall)} | 100% | < {TARGET_WALL_S:.0f} s | {verdict(ok_wall)} |",
        f"| scripts' own work | {s(work)} | {pct(work / wall)} | | |",
        f"| **Greenlight overhead** | {s(over)} | {pct(share)} (median share) | < {TARGET_OVERHEAD_SHARE:.0%} "
        f"| {verdict(ok_over)} |",
        f"| - before the first step: CLI start-up, data staging, SDK import, definition build | "
        f"{s(parts['before_steps_s'])} | {pct(parts['before_steps_s'] / wall)} | | |",
        f"| - {len(jobs)} job processes' start-up (warm: fork; counted up to a bare interpreter's start) | "
        f"{s(parts['job_startup_s'])} | {pct(parts['job_startup_s'] / wall)} | | |",
        f"| - job staging: inputs copied in, outputs copied back, model.tar.gz packed (gzip level 6) | "
        f"{s(parts['job_staging_s'])} | {pct(parts['job_staging_s'] / wall)} | | |",
        f"| - Condition and Register steps, execution record writes | {s(parts['between_s'])} | "
        f"{pct(parts['between_s'] / wall)} | | |",
        f"| - after the last step: the CLI's exit | {s(parts['after_steps_s'])} | "
        f"{pct(parts['after_steps_s'] / wall)} | | |",
        f"| scripts' own work, **their imports included** | {s(work_b)} | {pct(work_b / wall)} | | |",
        f"| **Greenlight overhead, process start = bare interpreter** | {s(over_b)} | {pct(share_b)} (median share) "
        f"| < {TARGET_OVERHEAD_SHARE:.0%} | {verdict(ok_over_b)} |", "",
        "The jobs start warm: forked from a server that imported numpy, pandas, scikit-learn and joblib on "
        "another CPU while the CLI built the definition (pipelines/local/warm.py), so a job's process time is "
        "its script's own work; the import baselines below are what each would first spend as a fresh "
        "interpreter (as on SageMaker, where each job is a container). What remains before the first step "
        "is mostly the SageMaker SDK's import and the definition build.", "",
        "Whole runs: " + ", ".join(f"{r['wall_s']:.1f}" for r in runs) + " s. Peak RSS of the largest process: "
        f"{med(runs, lambda r: r['peak_rss_mb']):.0f} MB.", "",
        "| job | step (wall) | its process | import baseline | script's own work | staging |",
        "| --- | --- | --- | --- | --- | --- |",
        *[f"| {n} | {s(med(runs, lambda r, n=n: r['steps'][n]['seconds']))} | "
          f"{s(med(runs, lambda r, n=n: r['steps'][n]['process_s']))} | {s(baseline[n])} "
          f"(`{', '.join(m for m in imports[n] if m.split('.')[0] not in sys.stdlib_module_names)}`) | "
          f"{s(med(runs, lambda r, n=n: r['steps'][n]['work_s']))} | "
          f"{s(med(runs, lambda r, n=n: r['steps'][n]['staging_s']))} |" for n in jobs], "",
        f"Start-up baselines (median of {RUNS} fresh interpreters): `python -c pass` {s(baseline['python -c pass'])}; "
        f"`import numpy, pandas, sklearn.ensemble, joblib` {s(baseline['numpy, pandas, sklearn.ensemble, joblib'])}.",
        "", f"Before the first step, timed inside the CLI's `run` (a fresh interpreter, stopped where the runner "
        f"would start the first step; median of {RUNS}):", "", "| phase | median | share of the whole run |",
        "| --- | --- | --- |",
        *[f"| {label} | {s(phases[k])} | {pct(phases[k] / wall)} |" for k, label in PHASES.items()],
        f"| total until the runner starts | {s(phases['until_runner'])} | {pct(phases['until_runner'] / wall)} |",
        "| (for reference: a normal interpreter exit once the SDK is loaded; the CLI skips it with os._exit, "
        f"see 'after the last step' above) | {s(phases['exit'])} | "
        f"{pct(phases['exit'] / wall)} |", "",
    ]
    lines += big_section(same, big, gen, s)
    big_others = big["others_cpu_s"] / big["wall_s"]
    shared = [part for part, cores in (("the default-data runs", others), ("the big run", big_others)) if cores > 0.25]
    lines += ["", f"Other processes on the machine used at most {others:.2f} cores on average during a default-data "
              f"run (/proc/stat busy time minus this benchmark's own), {big_others:.2f} during the big run."
              + (f" **The machine was shared during {' and '.join(shared)}**: those absolute times are inflated."
                 if shared else " The machine was otherwise idle.")]
    figures = {"runs": RUNS, "whole_run_s": wall, "whole_run_runs_s": [r["wall_s"] for r in runs],
               "scripts_work_s": work, "overhead_s": over, "overhead_share": share,
               "overhead_parts_s": parts, "before_steps_phases_s": phases, "import_baselines_s": baseline,
               "steps_s": {n: {k: med(runs, lambda r, n=n, k=k: r["steps"][n][k])
                               for k in ("seconds", "process_s", "work_s", "staging_s")} for n in jobs},
               "target_whole_run_s": TARGET_WALL_S, "target_overhead_share": TARGET_OVERHEAD_SHARE,
               "whole_run_pass": ok_wall, "overhead_pass": ok_over, "others_cores_max": others,
               "scripts_work_incl_imports_s": work_b, "overhead_excl_imports_s": over_b,
               "overhead_excl_imports_share": share_b, "overhead_excl_imports_pass": ok_over_b,
               "big": {"rows": big["rows"], "features": big["columns"] - 1, "csv_bytes": gen["bytes"],
                       "params": BIG_PARAMS, "whole_run_s": big["wall_s"], "peak_rss_mb": big["peak_rss_mb"],
                       "sampled_peak_rss_mb": big["sampled_peak_rss_mb"], "before_steps_s": big["before_steps_s"],
                       "scripts_work_s": big["job_work_s"], "steps_s": big["steps"],
                       "baseline_same_params_whole_run_s": same["wall_s"]}}
    return "\n".join(lines), figures


def times(ratio: float) -> str:
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def big_section(same: dict, big: dict, gen: dict, s) -> list[str]:
    rows = big["rows"] / same["rows"]
    cells = rows * (big["columns"] - 1) / (same["columns"] - 1)
    def row(label: str, key: str) -> tuple[str, str, str, str]:
        a, b = same[key], big[key]
        return label, s(a), s(b), times(b / a) if a else "-"

    def step(n: str) -> tuple[str, str, str, str]:
        a, b = same["steps"][n], big["steps"][n]
        return (f"{n} step (its process)", f"{s(a['seconds'])} ({s(a['process_s'])})",
                f"{s(b['seconds'])} ({s(b['process_s'])})", times(b["seconds"] / a["seconds"]))

    table = [("rows x features", f"{same['rows']} x {same['columns'] - 1}",
              f"{big['rows']:,} x {big['columns'] - 1}", f"{rows:,.0f}x rows, {cells:,.0f}x cells"),
             row("**whole run** (wall)", "wall_s"),
             row("before the first step (includes hashing and copying `--data` into the store)", "before_steps_s"),
             *[step(n) for n in JOB_SCRIPTS if n in big["steps"]],
             row("scripts' own work", "job_work_s"), row("Greenlight overhead", "overhead_s"),
             ("peak RSS, largest single process", f"{same['peak_rss_mb']:.0f} MB", f"{big['peak_rss_mb']:.0f} MB",
              times(big["peak_rss_mb"] / same["peak_rss_mb"]))]
    sampled = ", ".join(f"{k} {v:.0f} MB" for k, v in sorted(big["sampled_peak_rss_mb"].items(), key=lambda kv: -kv[1]))
    return [f"**Growth with data.** One run on a generated {BIG_ROWS:,}-row, {BIG_FEATURES}-feature CSV "
            f"({gen['bytes'] / 1e6:.0f} MB; numpy `default_rng(0)`, target = X @ w + noise, written in "
            f"{gen['seconds']:.0f} s, not counted) with " + ", ".join(f"`{k}={v}`" for k, v in BIG_PARAMS.items())
            + " (a smaller forest, so it ends in minutes on 2 cores), against one default-data run with the same "
            "hyperparameters, measured just before it.", "",
            "| | default data, same hyperparameters | big CSV | ratio |", "| --- | --- | --- | --- |",
            *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in table], "",
            "Peak RSS of the largest single process is `ru_maxrss` from `wait4` on the CLI process (the figure "
            "`/usr/bin/time -v` prints): the peak of whichever one process of the tree (CLI or a job) was "
            "biggest, not the sum. Sampled every 0.2 s from /proc (short peaks can be missed), per process: "
            f"{sampled} (tree total = the CLI and the running job together)."]


def main() -> None:
    imports = {n: script_imports(n) for n in JOB_SCRIPTS}
    commands = {"python -c pass": "pass", **{n: "import " + ", ".join(m) for n, m in imports.items()},
                "numpy, pandas, sklearn.ensemble, joblib": "import numpy, pandas, sklearn.ensemble, joblib"}
    say(f"load average {os.getloadavg()}; warm-up (not counted)")
    for code in commands.values():
        timed([sys.executable, "-c", code])
    greenlight_run([])
    samples: dict[str, list[float]] = {k: [] for k in commands}
    runs, probes = [], []
    for i in range(RUNS):
        for key, code in commands.items():
            samples[key].append(timed([sys.executable, "-c", code])["wall_s"])
        runs.append(split(greenlight_run([]), {k: statistics.median(v) for k, v in samples.items()}))
        probes.append(probe_definition())
        say(f"run {i + 1}/{RUNS}: {runs[-1]['wall_s']:.1f} s, overhead {runs[-1]['overhead_share']:.0%} (provisional "
            f"baseline); until the runner starts {probes[-1]['until_runner']:.1f} s")
    baseline = {k: statistics.median(v) for k, v in samples.items()}
    runs = [split(r, baseline) for r in runs]
    big_args = [a for k, v in BIG_PARAMS.items() for a in ("--param", f"{k}={v}")]
    say("default data with the big run's hyperparameters")
    same = split(greenlight_run(big_args), baseline)
    tmp = Path(tempfile.mkdtemp(prefix="greenlight-bench-big-"))
    try:
        say(f"writing a {BIG_ROWS:,} x {BIG_FEATURES} CSV")
        started = time.perf_counter()
        write_big_csv(tmp / "big.csv")
        gen = {"seconds": time.perf_counter() - started, "bytes": (tmp / "big.csv").stat().st_size}
        say(f"wrote {gen['bytes'] / 1e6:.0f} MB in {gen['seconds']:.0f} s; the big run takes several minutes")
        big = split(greenlight_run(["--data", str(tmp / "big.csv"), *big_args], BIG_TIMEOUT_S, sample=True), baseline)
        say(f"big run: {big['wall_s']:.0f} s, peak RSS {big['peak_rss_mb']:.0f} MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    markdown, figures = render(runs, probes, baseline, imports, same, big, gen)
    write_section("local_run", markdown, figures, COMMAND)
    say(f"wrote the local_run section of BENCHMARKS.md; load average {os.getloadavg()}")
