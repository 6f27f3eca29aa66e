"""One line for any fault inside a target (the reconciler's per-target isolation), never a traceback.

    fault_line(exc)   "no space left on /mnt/x while writing /mnt/x/home/deployments/g/lambda.json"

OS errors are named by what happened and where (the path, and for a full or read-only file system
its mount point), SQLite errors as SQLite's, our own errors by their message; anything else is a bug
and says its type. `with_path(exc, path)` gives an OSError raised without a file name (a write that
fails at flush or close, as ENOSPC usually does) the path it was writing.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from greenlight.errors import GreenlightError

__all__ = ["fault_line", "mount_point", "with_path"]

_WORDS = {errno.ENOSPC: "no space left on {mount} while writing {path}",
          errno.EDQUOT: "disk quota exceeded on {mount} while writing {path}",
          errno.EROFS: "{mount} is a read-only file system; cannot write {path}",
          errno.EACCES: "permission denied: {path}",
          errno.EPERM: "operation not permitted: {path}",
          errno.ENOENT: "no such file or directory: {path}",
          errno.ENOTDIR: "not a directory: a part of {path}",
          errno.EISDIR: "is a directory: {path}"}


def mount_point(path: str | os.PathLike) -> str:
    """The mount point holding `path` (its nearest existing ancestor that is one)."""
    current = Path(os.path.abspath(path))
    while not current.exists() and current != current.parent:
        current = current.parent
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return str(current)


def with_path(exc: OSError, path: str | os.PathLike) -> OSError:
    """`exc` with `path` as its file name when it has none (same errno and words)."""
    if exc.filename is not None or exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))


def _os_line(exc: OSError) -> str:
    code = errno.errorcode.get(exc.errno or 0, "")
    path = exc.filename
    if path is None:
        return f"{exc.strerror or exc} ({code or type(exc).__name__})"
    template = _WORDS.get(exc.errno or 0)
    if template is None:
        return f"{exc.strerror or exc} ({code}): {path}"
    return template.format(mount=mount_point(path), path=path)


def fault_line(exc: BaseException) -> str:
    """The fault in one line (module docstring)."""
    if isinstance(exc, GreenlightError):
        return " ".join(str(exc).split())
    if isinstance(exc, OSError):
        return _os_line(exc)
    if isinstance(exc, sqlite3.Error):
        return f"SQLite: {exc}"
    return f"{type(exc).__name__}: {' '.join(str(exc).split())} (a bug in Greenlight)"
