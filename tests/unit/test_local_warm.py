"""pipelines/local/warm.py: a job forked from the warm server behaves as `python script.py args` does.

Each case runs the same script both ways, cold (a fresh interpreter, as the runner starts a job
without a fork server) and warm, and compares the job's log and exit code byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipelines.local.warm import WarmStarter, eligible

SCRIPTS = {
    "argv-env-cwd": """
        import os, sys
        import helper
        print("argv", sys.argv[1:], "name", __name__, "helper", helper.VALUE)
        print("cwd", os.getcwd() == os.environ["GREENLIGHT_EXPECTED_CWD"], "path0", sys.path[0] == os.path.dirname(__file__))
        print("env", os.environ.get("SM_HP_X"), "absent", os.environ.get("AWS_ONLY_IN_THE_CLI"))
        print("to stderr", file=sys.stderr)
        print("after")
    """,
    "exit-code": """
        import sys
        print("leaving")
        sys.exit(3)
    """,
    "exit-message": """
        import sys
        sys.exit("a message")
    """,
    "uncaught": """
        def fail():
            raise ValueError("bad data in row 7")
        print("before")
        fail()
    """,
    "atexit": """
        import atexit
        atexit.register(lambda: print("atexit ran"))
        print("main done")
    """,
}


@pytest.fixture(scope="module")
def starter():
    os.environ["AWS_ONLY_IN_THE_CLI"] = "x"  # in the server's environment, not in the jobs'
    warm = WarmStarter()
    try:
        warm.start()
    finally:
        del os.environ["AWS_ONLY_IN_THE_CLI"]
    yield warm
    warm.close()


def job(tmp_path: Path, name: str, server_env: dict[str, str]) -> tuple[list[str], dict[str, str], Path]:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "helper.py").write_text("VALUE = 42\n")
    script = code / f"{name}.py"
    script.write_text(textwrap.dedent(SCRIPTS[name]))
    cwd = tmp_path / "work"
    cwd.mkdir(exist_ok=True)
    env = {k: v for k, v in server_env.items() if not k.startswith(("SM_", "AWS_"))}  # as the runner does
    env.update({"SM_HP_X": "7", "GREENLIGHT_CONTAINER_ROOT": str(tmp_path), "PYTHONUNBUFFERED": "1",
                "GREENLIGHT_EXPECTED_CWD": str(cwd)})
    return [sys.executable, str(script), "--flag", "value"], env, cwd


def run_cold(cmd, env, cwd, log: Path) -> int:
    with open(log, "wb") as fh:
        return subprocess.run(cmd, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT).returncode


def run_warm(starter, cmd, env, cwd, log: Path) -> int:
    log.write_bytes(b"")
    proc = starter.launch(cmd, env, cwd, log)
    assert proc is not None, "the job should start warm"
    return proc.wait(60)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_a_warm_job_writes_the_same_log_and_exit_code_as_a_fresh_interpreter(starter, tmp_path, name):
    cmd, env, cwd = job(tmp_path, name, starter._env)
    cold = run_cold(cmd, env, cwd, tmp_path / "cold.log")
    warm = run_warm(starter, cmd, env, cwd, tmp_path / "warm.log")
    assert (warm, (tmp_path / "warm.log").read_text()) == (cold, (tmp_path / "cold.log").read_text())
    assert (tmp_path / "cold.log").read_text()  # the cases do write something


def test_the_scripts_libraries_are_already_imported_in_a_warm_job(starter, tmp_path):
    code = tmp_path / "probe.py"
    code.write_text("import sys\nprint(sorted(m for m in ('numpy', 'pandas', 'sklearn.ensemble', 'joblib') "
                    "if m in sys.modules))\n")
    cmd, env, cwd = [sys.executable, str(code)], dict(starter._env), tmp_path
    assert run_warm(starter, cmd, env, cwd, tmp_path / "warm.log") == 0
    assert (tmp_path / "warm.log").read_text().strip() == "['joblib', 'numpy', 'pandas', 'sklearn.ensemble']"
    assert run_cold(cmd, env, cwd, tmp_path / "cold.log") == 0
    assert (tmp_path / "cold.log").read_text().strip() == "[]"


def test_a_warm_job_can_be_terminated(starter, tmp_path):
    code = tmp_path / "sleep.py"
    code.write_text("import time\nprint('sleeping', flush=True)\ntime.sleep(600)\n")
    log = tmp_path / "warm.log"
    log.write_bytes(b"")
    proc = starter.launch([sys.executable, str(code)], dict(starter._env), tmp_path, log)
    for _ in range(600):
        if log.read_text():
            break
        time.sleep(0.05)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(0.1)
    proc.terminate()
    assert proc.wait(30) == -15


def test_a_job_whose_environment_could_change_the_imports_starts_cold():
    server = {"PATH": "/bin", "HOME": "/root", "AWS_PROFILE": "p"}
    cmd = [sys.executable, "/x/train.py", "--n_estimators", "5"]
    assert eligible(cmd, {"PATH": "/bin", "HOME": "/root", "SM_HP_X": "1", "GREENLIGHT_CONTAINER_ROOT": "/r",
                          "PYTHONUNBUFFERED": "1", "SAGEMAKER_VALIDATE_ROLE": "false"}, server)
    assert not eligible(cmd, {**server, "OMP_NUM_THREADS": "1"}, server)  # read by OpenBLAS at import
    assert not eligible(cmd, {"HOME": "/root"}, server)  # PATH removed
    assert not eligible(["/usr/bin/python3.9", "/x/train.py"], server, server)  # another interpreter
    assert not eligible([sys.executable, "-m", "train"], server, server)


def test_without_a_server_every_job_starts_cold(tmp_path):
    assert WarmStarter().launch([sys.executable, str(tmp_path / "x.py")], dict(os.environ), tmp_path,
                                tmp_path / "log") is None
