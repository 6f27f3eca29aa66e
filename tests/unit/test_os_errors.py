"""The disk's refusals in one line (greenlight/os_errors.py): OSErrors by errno, SQLite errors by their name and
what the filesystem shows, each naming the condition and the path."""

from __future__ import annotations

import errno
import sqlite3

import pytest

from greenlight.errors import ConflictError, StorageError
from greenlight.os_errors import mount_point, sqlite_error, storage_error, storage_problem


def sqlite_failure(message: str, name: str) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorname = name
    return exc


def test_an_oserror_names_the_condition_the_mount_and_the_path(tmp_path):
    path = tmp_path / "home" / "registry.sqlite3"
    where = mount_point(path)
    full = storage_error(OSError(errno.ENOSPC, "No space left on device", str(path)))
    assert isinstance(full, StorageError) and full.errno == errno.ENOSPC and full.path == str(path)
    assert str(full) == f"no space left on {where} while writing {path}"
    assert str(storage_error(OSError(errno.EROFS, "Read-only file system", str(path)))) == \
        f"cannot write {path}: {where} is mounted read-only"
    assert str(storage_error(OSError(errno.EACCES, "Permission denied", str(path)), "reading")) == \
        f"permission denied while reading {path}"
    assert storage_error(FileNotFoundError(errno.ENOENT, "No such file", str(path))) is None  # not the disk's


def test_a_file_in_the_way_is_named(tmp_path):
    (tmp_path / "blocker").write_text("a file")
    path = tmp_path / "blocker" / "home" / "x.json"
    error = storage_error(OSError(errno.ENOTDIR, "Not a directory", str(path)), "writing")
    assert str(error) == f"cannot write {path}: {tmp_path / 'blocker'} is a file, not a directory"


def test_the_mount_point_is_where_the_device_changes(tmp_path):
    where = mount_point(tmp_path / "not" / "there" / "yet")
    assert tmp_path.is_relative_to(where)
    assert where == where.parent or where.parent.stat().st_dev != where.stat().st_dev


@pytest.mark.parametrize("name, message, kind, words", [
    ("SQLITE_BUSY", "database is locked", ConflictError, "stayed busy while writing the model registry; retry"),
    ("SQLITE_FULL", "database or disk is full", StorageError, "no space left on"),
    ("SQLITE_READONLY", "attempt to write a readonly database", StorageError, "read-only for this user"),
    ("SQLITE_NOTADB", "file is not a database", StorageError, "is damaged or not a SQLite database"),
    ("SQLITE_IOERR_WRITE", "disk I/O error", StorageError, "SQLite failed while writing the model registry"),
])
def test_sqlite_errors_become_our_errors_naming_the_database(tmp_path, name, message, kind, words):
    path = tmp_path / "registry.sqlite3"
    error = sqlite_error(sqlite_failure(message, name), path, "writing the model registry")
    assert type(error) is kind and words in str(error) and str(path) in str(error), str(error)
    assert f"(SQLite: {message})" in str(error)


def test_a_healthy_folder_has_no_storage_problem(tmp_path):
    assert storage_problem(tmp_path / "new" / "folder") is None


def test_a_full_or_read_only_filesystem_is_seen_and_sqlite_io_errors_there_are_named(tmp_path):
    from tests.support.disks import fill, free, read_only, tmpfs

    with tmpfs(tmp_path / "disk", "4m") as disk:
        filler = fill(disk)
        assert storage_problem(disk / "home") == f"no space left on {disk}"
        error = sqlite_error(sqlite_failure("disk I/O error", "SQLITE_IOERR_SHMSIZE"), disk / "registry.sqlite3",
                             "reading the model registry")
        assert str(error).startswith(f"no space left on {disk} while reading the model registry")
        free(filler, 64 * 1024)
        assert storage_problem(disk) == f"not enough space left on {disk} (64 KiB free)"
        free(filler)
        assert storage_problem(disk) is None
        with read_only(disk):
            assert storage_problem(disk / "home") == f"{disk} is mounted read-only"
