"""`greenlight demo` (what `make demo` runs): the whole lifecycle on this machine, narrated step by step.

train v1 -> approve -> endpoint, Lambda and batch schedule on v1 -> predictions from the endpoint and the
Lambda, a batch run on a sample file -> retrain v2 (other hyperparameters) -> approve -> everything on v2
-> reject v2 -> everything rolled back to v1 -> the cost comparison -> stop everything it started.

It runs in its own GREENLIGHT_HOME (`--home`, default ./.greenlight-demo): a new or empty directory, which
it marks as its own (the file .greenlight-demo-home), or one an earlier demo marked, which it empties
first; any other non-empty directory is refused before anything is touched (UsageError, exit 2). It starts `greenlight
endpoint serve` and `greenlight lambda serve` as child processes (in their own session, asked to die with
the demo even if it is killed), and stops them on the way out, whether a step failed or Ctrl-C was
pressed. Every step checks what it claims; the first that does not hold ends the demo with exit 1,
naming the step.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from greenlight.errors import GreenlightError, UsageError
from greenlight.os_errors import storage_errors

__all__ = ["DemoFailed", "MARKER", "prepare_home", "run_demo"]

# Written in every home the demo makes; only a directory holding it is ever emptied.
MARKER = ".greenlight-demo-home"

ROW = [0.0380759, 0.0506801, 0.0616962, 0.0218724, -0.0442235, -0.0348208, -0.0434008, -0.00259226,
       0.0199075, -0.0176461]
STEPS = 9
START_TIMEOUT = 60.0


class DemoFailed(GreenlightError):
    """A demo step did not do what it says; the message names the step."""


class _Narrator:
    def __init__(self, echo) -> None:
        self.echo = echo
        self.step = 0
        self.title = ""

    def heading(self, title: str) -> None:
        self.step += 1
        self.title = title
        self.echo("")
        self.echo(f"== Step {self.step}/{STEPS}: {title} ==")

    def fail(self, detail: str) -> DemoFailed:
        return DemoFailed(f"demo step {self.step} ({self.title}) misbehaved: {detail}")


def _label(version: int | None) -> str:
    return "nothing" if version is None else f"v{version}"


def _die_with_parent() -> None:  # runs in the child between fork and exec (Linux: PR_SET_PDEATHSIG)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


class _Children:
    """The servers the demo starts: each in its own session, all stopped by stop_all()."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen([sys.executable, "-m", "greenlight.cli", *args], stdout=log, stderr=subprocess.STDOUT,
                                env=os.environ | {"GREENLIGHT_HOME": str(self.home)}, start_new_session=True,
                                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        log.close()
        self.procs.append((name, proc))
        (self.home / "demo-processes.json").write_text(json.dumps({n: p.pid for n, p in self.procs}))
        return proc

    def stop_all(self) -> list[str]:
        stopped = []
        for name, proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=15)
            stopped.append(f"{name} (pid {proc.pid})")
        self.procs.clear()
        return stopped


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _wait_for_serving(home: Path, group: str, target: str, proc: subprocess.Popen, narrator: _Narrator) -> str:
    from deploy.endpoint.deployed import read_serving

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise narrator.fail(f"`greenlight {target} serve` exited with {proc.returncode} (log: "
                                f"{home / (target + '.log')})")
        record = read_serving(home, group, target)
        if record is not None and record.pid == proc.pid:
            return record.url
        time.sleep(0.05)
    raise narrator.fail(f"`greenlight {target} serve` did not start within {START_TIMEOUT:g} s")


def _check_all_on(ws, version: int, narrator: _Narrator) -> dict[str, Any]:
    from greenlight import api

    current = api.status(ws)
    wrong = [f"{t['target']} runs {_label(t.get('running'))}" for t in current["targets"]
             if t.get("running") != version]
    if wrong:
        raise narrator.fail(f"expected every target on v{version}, but {', '.join(wrong)}")
    return current


def _transitions(result, narrator: _Narrator, rolled_back: bool = False) -> None:
    if not result.ok:
        failed = [f"{r['target']}: {r['message']}" for r in result.results if not r["ok"]]
        raise narrator.fail("; ".join(failed) or "the approval handler reported a failure")
    for r in result.results:
        if r["action"] == "deploy":
            note = " (rolled back)" if rolled_back else ""
            narrator.echo(f"  {r['target']}: {_label(r['running'])} → {_label(r['desired'])}{note}"
                          f"   [{r['message']}]")
        else:
            narrator.echo(f"  {r['target']}: {r['message']}")


def _predict(ws, narrator: _Narrator, expect: int) -> None:
    from greenlight import api

    for target in ("endpoint", "lambda"):
        answer = api.predict(ws, [ROW], target)
        version = (answer.version or "?").rsplit("/", 1)[-1]
        narrator.echo(f"  {target} answered {answer.values[0]:.4f} from v{version}")
        if version != str(expect):
            raise narrator.fail(f"the {target} answered from v{version}, expected v{expect}")


def _batch(ws, home: Path, narrator: _Narrator, expect: int) -> None:
    from greenlight.data import default_dataset_csv

    lines = default_dataset_csv().decode().splitlines()[1:21]
    sample = home / "batch-input" / "sample.csv"
    sample.parent.mkdir(parents=True, exist_ok=True)
    sample.write_text("".join(",".join(line.split(",")[:-1]) + "\n" for line in lines))
    output = home / "batch-output"
    proc = subprocess.run([sys.executable, "-m", "greenlight.cli", "batch", "run", "--input", str(sample.parent),
                           "--output", str(output), "--workers", "1"], capture_output=True, text=True,
                          env=os.environ | {"GREENLIGHT_HOME": str(home)}, timeout=300)
    if proc.returncode != 0:
        raise narrator.fail(f"greenlight batch run failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    predictions = (output / "sample.csv.out").read_text().split()
    jobs = json.loads(subprocess.run([sys.executable, "-m", "greenlight.cli", "batch", "jobs", "--json"],
                                     capture_output=True, text=True, timeout=120,
                                     env=os.environ | {"GREENLIGHT_HOME": str(home)}).stdout or "[]")
    version = jobs[0].get("model_version") if jobs else None
    narrator.echo(f"  batch: {len(predictions)} rows of {sample.name} -> {output / 'sample.csv.out'} "
                  f"(v{version}; first prediction {float(predictions[0]):.4f})")
    if version != expect or len(predictions) != len(lines):
        raise narrator.fail(f"the batch job used v{version} for {len(predictions)} rows, expected v{expect} "
                            f"for {len(lines)}")


def prepare_home(home: Path) -> Path:
    """An empty home for the demo, marked as the demo's: home created, or emptied when an earlier demo marked it.

    Raises:
        UsageError: home is a file, or a non-empty directory without the demo's marker (nothing is touched).
        StorageError: the disk refused to empty or create it.
    """
    home = Path(home).resolve()
    if home.exists() and not home.is_dir():
        raise UsageError(f"--home {home} is a file, not a directory: give a new or empty directory")
    with storage_errors("creating", home):
        if home.is_dir() and not (home / MARKER).is_file():
            if any(home.iterdir()):
                raise UsageError(f"--home {home} is not empty and was not created by the demo (no {MARKER} file): "
                                 "the demo empties its home, so give a new or empty directory; nothing was touched")
        elif home.is_dir():
            shutil.rmtree(home)
        home.mkdir(parents=True, exist_ok=True)
        (home / MARKER).write_text("Created by `greenlight demo`, which empties this directory when it runs in it "
                                   "again.\n", encoding="utf-8")
    return home


def run_demo(home: Path, echo=print) -> None:
    """The demo, start to finish (module docstring). Raises: DemoFailed naming the step; UsageError (a home
    that is not the demo's, before anything runs)."""
    from greenlight import api

    home = prepare_home(home)
    os.environ["GREENLIGHT_HOME"] = str(home)
    narrator = _Narrator(echo)
    children = _Children(home)
    started = time.monotonic()
    echo(f"Greenlight demo in {home} (its own directory, emptied first; nothing else is touched)")
    with _sigterm_as_interrupt():
        try:
            ws = api.workspace("local", home=home)
            group = ws.deploy_config().group

            narrator.heading("train version 1 locally (the SageMaker Pipeline definition, run on this machine)")
            v1 = api.train(ws, params={"NEstimators": "50", "RandomState": "0"},
                           on_step=lambda step, s: s is not None and echo(f"  {step.name:<12} {step.status} "
                                                                          f"in {s:.1f}s"))
            echo(f"  registered {v1.group} v{v1.version} as PendingManualApproval")

            narrator.heading("start the local endpoint and the local Lambda (nothing deployed yet: they answer 503)")
            for target in ("endpoint", "lambda"):
                proc = children.start(target, target, "serve", "--port", "0")
                echo(f"  {target}: {_wait_for_serving(home, group, target, proc, narrator)} (pid {proc.pid})")

            narrator.heading(f"approve v{v1.version}: the approval handler deploys every target")
            _transitions(api.approve(ws, v1.version, description="demo: first version"), narrator)
            _check_all_on(ws, v1.version, narrator)

            narrator.heading(f"predictions from v{v1.version}: the endpoint, the Lambda and a batch run")
            _predict(ws, narrator, v1.version)
            _batch(ws, home, narrator, v1.version)

            narrator.heading("retrain with other hyperparameters: version 2")
            v2 = api.train(ws, params={"NEstimators": "80", "MaxDepth": "8", "RandomState": "1"})
            echo(f"  registered {v2.group} v{v2.version}; v{v1.version} still serves everywhere")

            narrator.heading(f"approve v{v2.version}: everything moves to v{v2.version}")
            _transitions(api.approve(ws, v2.version, description="demo: more trees"), narrator)
            _check_all_on(ws, v2.version, narrator)
            _predict(ws, narrator, v2.version)

            narrator.heading(f"reject v{v2.version}: everything is rolled back to v{v1.version}")
            _transitions(api.reject(ws, v2.version, description="demo: rolled back"), narrator, rolled_back=True)
            _check_all_on(ws, v1.version, narrator)
            _predict(ws, narrator, v1.version)
            echo(f"  rolled back: every target serves v{v1.version} again")

            narrator.heading("what serving costs: 10,000 requests a day on each AWS option")
            costs = api.cost(10_000)
            for row in costs.rows:
                echo(f"  {row['option']:<22} ${row['monthly_usd']:>9,.2f} a month")
            echo(f"  recommended: {costs.recommended} ({costs.reason})")

            narrator.heading("stop everything the demo started")
        except DemoFailed:
            raise
        except GreenlightError as exc:
            raise narrator.fail(str(exc)) from exc
        except KeyboardInterrupt:
            echo("")
            echo("interrupted: stopping what the demo started")
            raise
        finally:
            for stopped in children.stop_all():
                echo(f"  stopped {stopped}")
    echo("")
    echo(f"Demo finished in {time.monotonic() - started:.0f} s: v{v1.version} -> v{v2.version} -> rolled back to "
         f"v{v1.version}. The state is in {home}; `GREENLIGHT_HOME={home} greenlight history` shows every "
         "deployment, its trigger and smoke result (`greenlight status`: what runs now).")
