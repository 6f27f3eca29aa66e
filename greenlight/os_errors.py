"""The one place the disk's refusals become Greenlight's (what greenlight.aws_errors is for botocore).

    with storage_errors("writing", path): ...        # OSError (ENOSPC, EROFS, EACCES ...) -> StorageError
    storage_error(exc, "writing", path)              # the same for a caught OSError; None if not a disk refusal
    sqlite_error(exc, path, "writing the model registry")   # sqlite3.Error -> StorageError / ConflictError
    storage_problem(path)                            # "no space left on /mnt", "/mnt is mounted read-only", None

Every message is one line naming the condition, the filesystem (its mount point) and the path:

    ENOSPC        no space left on /mnt while writing /mnt/home/registry.sqlite3
    EDQUOT        disk quota exceeded on /mnt while writing ...
    EROFS         cannot write /mnt/home/x: /mnt is mounted read-only
    EACCES EPERM  permission denied while writing /mnt/home/x
    EIO           input/output error on /mnt while reading ...
    ENOTDIR       cannot write /mnt/home/x: /mnt/home is a file, not a directory

SQLite reports the same conditions in its own words ("database or disk is full", "disk I/O error",
"attempt to write a readonly database", "unable to open database file"); `sqlite_error` looks at the
filesystem to say which one it was: a "disk I/O error" on a full filesystem is named as no space (SQLite
cannot grow its shared-memory file there). Translations chain the original (`from exc`) for `--debug`.
"""

from __future__ import annotations

import errno as errnos
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from greenlight.errors import ConflictError, GreenlightError, StorageError

__all__ = ["LOW_SPACE_BYTES", "free_bytes", "mount_point", "sqlite_error", "storage_error", "storage_errors",
           "storage_problem"]

# Below this many free bytes a filesystem counts as full: SQLite alone needs 32 KiB to open a WAL database.
LOW_SPACE_BYTES = 1024 * 1024

_WRITE_ERRNOS = frozenset({errnos.ENOSPC, errnos.EDQUOT, errnos.EROFS})
STORAGE_ERRNOS = frozenset({*_WRITE_ERRNOS, errnos.EACCES, errnos.EPERM, errnos.EIO, errnos.ENOTDIR,
                            errnos.EISDIR, errnos.EMFILE, errnos.ENFILE, errnos.ENAMETOOLONG})


def _existing(path: Path) -> Path:
    """path, or its nearest ancestor that exists."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def mount_point(path: str | os.PathLike) -> Path:
    """The mount point of the filesystem holding path (or its nearest existing ancestor)."""
    path = _existing(Path(path))
    try:
        device = path.stat().st_dev
        while path != path.parent and path.parent.stat().st_dev == device:
            path = path.parent
    except OSError:
        pass
    return path


def free_bytes(path: str | os.PathLike) -> int | None:
    """Bytes an unprivileged writer may still use on path's filesystem; None if it cannot be asked."""
    try:
        stat = os.statvfs(_existing(Path(path)))
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def _size(n: int) -> str:
    return f"{n / 1024:,.0f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:,.1f} MiB"


def _space(path: Path) -> str:
    """What ENOSPC means on path's filesystem now: no bytes, little space, or no inodes left."""
    where = mount_point(path)
    try:
        stat = os.statvfs(_existing(Path(path)))
    except OSError:
        return f"no space left on {where}"
    free = stat.f_bavail * stat.f_frsize
    if 0 < free < LOW_SPACE_BYTES:
        return f"not enough space left on {where} ({_size(free)} free)"
    if free and stat.f_files and stat.f_favail == 0:
        return f"no space left on {where} (no free inodes: too many files)"
    return f"no space left on {where}"


def storage_problem(path: str | os.PathLike) -> str | None:
    """Why writing under path would fail, in a few words ("no space left on /mnt", "/mnt is mounted
    read-only", "/x is not writable"), or None when nothing is wrong that can be seen beforehand."""
    existing = _existing(Path(path))
    try:
        stat = os.statvfs(existing)
    except OSError:
        return None
    if stat.f_flag & os.ST_RDONLY:
        return f"{mount_point(existing)} is mounted read-only"
    if stat.f_bavail * stat.f_frsize < LOW_SPACE_BYTES:
        return _space(existing)
    if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable by this user"
    return None


def _file_in_the_way(path: Path) -> Path | None:
    for parent in [path, *path.parents]:
        if parent.exists():
            return parent if not parent.is_dir() else None
    return None


def storage_error(exc: OSError, action: str | None = None, path: str | os.PathLike | None = None
                  ) -> StorageError | None:
    """The one-line StorageError for an OSError the disk raised; None for other OSErrors (not found ...).

    `action` is "writing", "reading", "creating" ...; by default guessed from the errno. `path` defaults to
    the exception's filename.
    """
    code = exc.errno
    if code not in STORAGE_ERRNOS:
        return None
    named = path if path is not None else exc.filename
    action = action or ("writing" if code in _WRITE_ERRNOS else "accessing")
    verb = {"writing": "write", "reading": "read", "creating": "create"}.get(action, "use")
    if named is None:  # a write to a descriptor (a flush at close) names no file
        from greenlight.settings import home

        target, what = home(), f"a file under {home()}"
    else:
        target, what = Path(os.fsdecode(named)), os.fsdecode(named)
    if code == errnos.ENOSPC:
        message = f"{_space(target)} while {action} {what}"
    elif code == errnos.EDQUOT:
        message = f"disk quota exceeded on {mount_point(target)} while {action} {what}"
    elif code == errnos.EROFS:
        message = f"cannot {verb} {what}: {mount_point(target)} is mounted read-only"
    elif code in (errnos.EACCES, errnos.EPERM):
        message = f"permission denied while {action} {what}"
    elif code == errnos.EIO:
        message = f"input/output error on {mount_point(target)} while {action} {what}"
    elif code == errnos.ENOTDIR:
        blocker = _file_in_the_way(target)
        message = (f"cannot {verb} {what}: {blocker} is a file, not a directory" if blocker is not None
                   else f"cannot {verb} {what}: a part of the path is not a directory")
    elif code == errnos.EISDIR:
        message = f"cannot {verb} {what}: it is a directory"
    elif code in (errnos.EMFILE, errnos.ENFILE):
        message = f"too many open files while {action} {what}"
    else:
        message = f"the path is too long: {what}"
    return StorageError(message, path=None if named is None else os.fsdecode(named), errno=code)


@contextmanager
def storage_errors(action: str, path: str | os.PathLike) -> Iterator[None]:
    """Translate the disk's OSErrors raised inside the block (module docstring); others pass through."""
    try:
        yield
    except OSError as exc:
        translated = storage_error(exc, action, exc.filename if exc.filename is not None else path)
        if translated is None:
            raise
        raise translated from exc


def sqlite_error(exc: sqlite3.Error, path: str | os.PathLike, action: str) -> GreenlightError:
    """One line for a SQLite failure on the database at path while `action` ("writing the model registry").

    Busy or locked: ConflictError (retry). Full, read-only, I/O error, cannot open, damaged: StorageError
    naming the filesystem's condition when one can be seen.
    """
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    path = Path(path)
    said = f"(SQLite: {text})"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text or "busy" in text:
        return ConflictError(f"{path} stayed busy while {action}; retry {said}")
    problem = storage_problem(path.parent)
    if name == "SQLITE_FULL" or "full" in text:
        return StorageError(f"{_space(path.parent)} while {action} {path} {said}", path=str(path),
                            errno=errnos.ENOSPC)
    if name.startswith(("SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN")) and problem is not None:
        return StorageError(f"{problem} while {action} {path} {said}", path=str(path))
    if name.startswith("SQLITE_READONLY"):
        return StorageError(f"cannot write {path}: the file or its folder is read-only for this user {said}",
                            path=str(path))
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return StorageError(f"{path} is damaged or not a SQLite database {said}; move it aside to start "
                            "an empty one", path=str(path))
    return StorageError(f"SQLite failed while {action} {path} {said}", path=str(path))
