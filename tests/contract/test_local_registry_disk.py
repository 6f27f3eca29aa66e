"""The local registry on a full or read-only disk: reads still answer, writes fail in one line naming the
condition and change nothing, and everything works again once the disk does.

A WAL database needs a 32 KiB shared-memory file beside it to be read; on a full filesystem SQLite
cannot grow it ("disk I/O error", SQLITE_IOERR_SHMSIZE) and on a read-only one cannot create it
("unable to open database file"). Runs on a real tmpfs (root only; CI runs as root).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from greenlight.errors import StorageError
from greenlight.registry.local import LocalModelRegistry
from greenlight.registry.model import ApprovalStatus
from tests.support.disks import fill, free, read_only, tmpfs

GROUP = "disk-models"
ROOT = Path(__file__).resolve().parents[2]


def request() -> dict:
    return {"ModelPackageGroupName": GROUP,
            "InferenceSpecification": {"Containers": [{"Image": "sagemaker-scikit-learn:1.9-0-cpu-py3",
                                                       "ModelDataUrl": "s3://b/model.tar.gz"}],
                                       "SupportedContentTypes": ["text/csv"],
                                       "SupportedResponseMIMETypes": ["text/csv"]}}


def reads(registry: LocalModelRegistry) -> tuple:
    return ([v.version for v in registry.list_versions(GROUP)], registry.get(GROUP, 1).status,
            registry.list_groups(), len(registry.pending_events()), len(registry.events()))


def test_on_a_full_disk_reads_answer_and_writes_fail_naming_the_space(tmp_path):
    with tmpfs(tmp_path / "disk", "4m") as disk:
        LocalModelRegistry(disk / "home").create_model_package(request())
        filler = fill(disk)
        registry = LocalModelRegistry(disk / "home")  # a new process's registry: it cannot set itself up
        assert reads(registry) == ([1], ApprovalStatus.PENDING, [GROUP], 1, 1)
        for write in (lambda: registry.update_status(GROUP, 1, ApprovalStatus.APPROVED),
                      lambda: registry.create_model_package(request())):
            with pytest.raises(StorageError) as refused:
                write()
            assert str(refused.value).startswith(f"no space left on {disk} while writing the model registry "
                                                 f"{disk / 'home' / 'registry.sqlite3'}"), str(refused.value)
        assert reads(registry) == ([1], ApprovalStatus.PENDING, [GROUP], 1, 1)  # nothing changed
        free(filler)
        assert registry.update_status(GROUP, 1, ApprovalStatus.APPROVED).status is ApprovalStatus.APPROVED
        assert reads(LocalModelRegistry(disk / "home"))[:2] == ([1], ApprovalStatus.APPROVED)


def test_on_a_read_only_disk_reads_answer_and_writes_fail_naming_it(tmp_path):
    with tmpfs(tmp_path / "disk", "4m") as disk:
        LocalModelRegistry(disk / "home").create_model_package(request())
        with read_only(disk):
            registry = LocalModelRegistry(disk / "home")
            assert reads(registry) == ([1], ApprovalStatus.PENDING, [GROUP], 1, 1)
            with pytest.raises(StorageError, match=f"{disk} is mounted read-only while writing the model registry"):
                registry.update_status(GROUP, 1, ApprovalStatus.APPROVED)
            with pytest.raises(StorageError, match=f"cannot create {disk / 'elsewhere'}: {disk} is mounted read-only"):
                LocalModelRegistry(disk / "elsewhere")
        assert registry.update_status(GROUP, 1, ApprovalStatus.APPROVED).status is ApprovalStatus.APPROVED


def test_a_damaged_registry_file_is_one_error_naming_it(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "registry.sqlite3").write_bytes(b"this is not a database" * 100)
    registry = LocalModelRegistry(tmp_path / "home")
    for call in (lambda: registry.list_versions(GROUP), lambda: registry.create_model_package(request())):
        with pytest.raises(StorageError, match="registry.sqlite3 is damaged or not a SQLite database"):
            call()


def test_on_a_full_disk_a_read_still_sees_what_only_the_write_ahead_log_holds(tmp_path):
    """A writer killed with its log unmerged leaves version 2 only in registry.sqlite3-wal; with the log's
    shared memory gone and no byte free, a read must still see it (read exclusively, not as an immutable file)."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    with tmpfs(tmp_path / "disk", "4m") as disk:
        home = disk / "home"
        LocalModelRegistry(home).create_model_package(request())
        writer = textwrap.dedent(f"""
            import os, signal, sqlite3, sys
            sys.path.insert(0, {str(ROOT)!r})
            from greenlight.registry.local import LocalModelRegistry
            from tests.contract.test_local_registry_disk import request
            held = sqlite3.connect({str(home / 'registry.sqlite3')!r})
            held.execute("SELECT 1 FROM model_packages").fetchall()  # keeps the log from being merged
            LocalModelRegistry({str(home)!r}).create_model_package(request())
            os.kill(os.getpid(), signal.SIGKILL)
        """)
        killed = subprocess.run([sys.executable, "-c", writer], capture_output=True, text=True, timeout=120)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        log = home / "registry.sqlite3-wal"
        assert log.stat().st_size > 0
        os.unlink(home / "registry.sqlite3-shm")
        fill(disk)
        assert [v.version for v in LocalModelRegistry(home).list_versions(GROUP)] == [2, 1]
