"""The warm job server (run as a script by pipelines.local.warm): import once, fork one job per request.

    python warm_server.py MODULE [MODULE ...]

Imports the modules, then answers on stdout, one JSON line each: {"ready": true} (or {"error": ...}
and exit 1 if an import failed). Each request on stdin, one JSON line {"argv", "env", "cwd", "log"},
is forked into a child that becomes `python argv[0] argv[1:]` (`become`); the server answers
{"pid": N} at once and {"exit": code} when the child ends (negative: the signal that killed it), then
reads the next request. End of stdin (the CLI finished, or died) ends the server. Stdlib only:
whatever this process imports, every job inherits.
"""

from __future__ import annotations

import json
import os
import signal
import sys


def become(argv: list[str], env: dict[str, str], cwd: str, log_path: str) -> None:
    """In the forked child: run the script as a fresh interpreter would, and exit as it would."""
    import atexit
    import io
    import runpy
    import traceback

    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    # PYTHONUNBUFFERED=1, as the runner sets for every job: text written through at once
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace", write_through=True)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    script = os.path.abspath(argv[0])
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(script)
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException as exc:  # noqa: BLE001 - what the interpreter does with an uncaught exception
        tb = exc.__traceback__
        while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) != script:
            tb = tb.tb_next  # from the script's own frame, as the interpreter prints it (not runpy's)
        traceback.print_exception(type(exc), exc, tb or exc.__traceback__)
        if isinstance(exc, KeyboardInterrupt):  # the interpreter's way: die of the signal
            _flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        code = 1
    try:
        atexit._run_exitfuncs()
    finally:
        _flush()
        os._exit(code)


def _exit_code(exc: SystemExit) -> int:
    """sys.exit(x) as the interpreter turns it into an exit status."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def main(modules: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the CLI decides
    requests, answers = sys.stdin.buffer, os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # a stray print in an import must not reach the answers
    os.close(null)
    try:
        for name in modules:
            __import__(name)
    except Exception as exc:  # noqa: BLE001 - reported to the CLI, whose jobs then start cold
        answers.write(json.dumps({"error": f"importing {name}: {type(exc).__name__}: {exc}"}) + "\n")
        return 1
    answers.write(json.dumps({"ready": True}) + "\n")
    for line in requests:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            try:
                answers.close()
                requests.close()
                become(job["argv"], job["env"], job["cwd"], job["log"])
            finally:
                os._exit(1)  # become() never returns; this only guards against a fault in the set-up
        answers.write(json.dumps({"pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"exit": os.waitstatus_to_exitcode(status)}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
