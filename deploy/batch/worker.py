"""A batch worker process: loads one model version once, then transforms the units its parent sends.

    python -m deploy.batch.worker '{"model_dir": ..., "label": ..., "single_record": ..., "join_input": ...,
                                    "budget": ...}'

Framed messages over stdin/stdout (`!BQ` kind and length, then the payload): the parent sends WORK
(the unit's bytes); the worker answers READY once (after model_fn), then RESULT per unit (a `!QQ`
header: records and the length of a JSON list of bad rows; the list; the output bytes) or FATAL
(a JSON message) when the model's code fails. The worker's own stdout is moved to stderr first, so
a print() in model code cannot corrupt the stream. Stdin closing (the parent ended or died, even by
SIGKILL) ends the worker; SIGINT is ignored (Ctrl-C reaches the whole process group; the parent
decides what stops).
"""

from __future__ import annotations

import json
import os
import signal
import struct
import sys
import traceback
from typing import IO

__all__ = ["FATAL", "READY", "RESULT", "WORK", "read_message", "write_message"]

WORK, READY, RESULT, FATAL = 1, 2, 3, 4
_FRAME = struct.Struct("!BQ")
RESULT_HEADER = struct.Struct("!QQ")


def write_message(stream: IO[bytes], kind: int, *parts: bytes) -> None:
    """One framed message (the parts are concatenated)."""
    stream.write(_FRAME.pack(kind, sum(len(p) for p in parts)))
    for part in parts:
        stream.write(part)
    stream.flush()


def read_message(stream: IO[bytes]) -> tuple[int, bytes] | None:
    """The next message, or None at end of stream. Raises: EOFError on a truncated message."""
    header = stream.read(_FRAME.size)
    if not header:
        return None
    if len(header) < _FRAME.size:
        raise EOFError("the stream ended inside a message header")
    kind, length = _FRAME.unpack(header)
    payload = stream.read(length)
    if len(payload) < length:
        raise EOFError(f"the stream ended {length - len(payload)} bytes short of a message")
    return kind, payload


def _fatal(out: IO[bytes], what: str, exc: BaseException) -> None:
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {frame[0].filename}:{frame[0].lineno})" if frame else ""
    write_message(out, FATAL, json.dumps({"error": f"{what}: {type(exc).__name__}: {exc}{where}"}).encode())


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = json.loads(argv[0])
    inp = sys.stdin.buffer
    out = os.fdopen(os.dup(1), "wb")  # the protocol's stream; fd 1 itself now goes to stderr
    os.dup2(2, 1)
    from deploy.batch.transform import transform_unit
    from deploy.endpoint.loader import load_version

    try:
        loaded = load_version(settings["label"], settings["model_dir"])
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the job with it
        _fatal(out, f"cannot load model {settings['label']} from {settings['model_dir']}", exc)
        return 1
    write_message(out, READY, json.dumps({"pid": os.getpid()}).encode())
    code, model = loaded.code, loaded.model
    while True:
        message = read_message(inp)
        if message is None:
            return 0
        kind, data = message
        if kind != WORK:
            continue
        try:
            result = transform_unit(code, model, data, single_record=settings["single_record"],
                                    join_input=settings["join_input"], budget=settings["budget"])
        except Exception as exc:  # noqa: BLE001 - the model's code failed: the job fails with its message
            _fatal(out, "the model's code failed", exc)
            return 1
        bad = json.dumps(result.bad).encode()
        write_message(out, RESULT, RESULT_HEADER.pack(result.records, len(bad)), bad, result.output)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (BrokenPipeError, EOFError):  # the parent is gone
        os._exit(0)
