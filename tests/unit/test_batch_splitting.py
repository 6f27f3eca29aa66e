"""Cutting input into units of whole lines (SplitType Line), and listing the input files."""

from __future__ import annotations

import io

import pytest

from deploy.batch.splitting import LineTooLong, list_input_files, read_units
from greenlight.errors import DataError, NotFoundError


def units(data: bytes, unit: int, limit: int | None) -> list[tuple[int, bytes]]:
    return list(read_units(io.BytesIO(data), unit, limit))


def test_multi_record_units_pack_whole_lines_up_to_the_limit():
    lines = [f"{i},{'x' * (i % 7)}\n".encode() for i in range(500)]
    data = b"".join(lines)
    got = units(data, 64, 64)
    assert b"".join(u for _, u in got) == data
    assert all(len(u) <= 64 and u.endswith(b"\n") for _, u in got)
    # Greedy, as SageMaker packs: the next line would not have fitted in the unit before it.
    for (_, unit), (_, following) in zip(got, got[1:], strict=False):
        assert len(unit) + len(following.split(b"\n", 1)[0]) + 1 > 64
    # First line numbers are 1-based and continuous.
    expected = 1
    for first, unit in got:
        assert first == expected
        expected += unit.count(b"\n")


def test_the_last_line_may_lack_its_newline():
    assert units(b"1,2\n3,4", 64, 64) == [(1, b"1,2\n3,4")]
    assert units(b"", 64, 64) == []


def test_a_line_over_the_limit_is_named():
    data = b"1,2\n" + b"9" * 100 + b"\n3,4\n"
    with pytest.raises(LineTooLong, match="line 2 is 64[,+]"):
        units(data, 64, 64)
    with pytest.raises(LineTooLong, match="line 3 is"):
        units(b"1\n2\n" + b"9" * 70, 64, 64)  # the last line, without a newline


def test_single_record_units_read_long_lines_up_to_the_limit_or_without_one():
    long_line = b"7" * 5000 + b"\n"
    data = b"1\n" + long_line + b"2\n"
    got = units(data, 1024, None)
    assert b"".join(u for _, u in got) == data and (2, long_line) in got
    assert b"".join(u for _, u in units(data, 1024, 8192)) == data
    with pytest.raises(LineTooLong, match="line 2"):
        units(data, 1024, 4096)


def test_input_files_are_listed_like_s3_keys(tmp_path):
    for name in ("b.csv", "a.csv", "sub/c.csv", "sub/.hidden.csv", ".greenlight-staging-x/a.partial", "part-1.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("1\n")
    assert [f.relative for f in list_input_files(tmp_path)] == ["a.csv", "b.csv", "part-1.csv", "sub/c.csv"]
    assert [f.relative for f in list_input_files(tmp_path, "part")] == ["part-1.csv"]
    assert [(f.relative, f.size) for f in list_input_files(tmp_path / "a.csv")] == [("a.csv", 2)]
    with pytest.raises(NotFoundError, match="does not exist"):
        list_input_files(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no input files in"):
        list_input_files(tmp_path / "empty")


def test_a_worker_imports_neither_pydantic_nor_the_rest_of_the_package():
    import subprocess
    import sys

    # deploy/batch/__init__.py imports nothing (callers import the submodule they need), so a worker,
    # which imports deploy.batch.worker, must not pull in pydantic or the rest of the package.
    probe = "import sys, deploy.batch.worker; print('pydantic' in sys.modules, 'deploy.batch.config' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.split() == ["False", "False"]
