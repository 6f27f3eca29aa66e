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
    with pytest.raises(LineTooLong, match="line 2 is 101[+] bytes, over MaxPayloadInMB [(]64 bytes[)]"):
        units(data, 64, 64)
    with pytest.raises(LineTooLong, match="line 3 is"):
        units(b"1\n2\n" + b"9" * 70, 64, 64)  # the last line, without a newline


def test_a_last_line_of_exactly_the_limit_without_its_newline_fits():
    assert units(b"1,2\n" + b"9" * 64, 64, 64) == [(1, b"1,2\n"), (2, b"9" * 64)]
    assert units(b"9" * 64, 64, 64) == [(1, b"9" * 64)]
    with pytest.raises(LineTooLong, match="line 1 is 65"):
        units(b"9" * 64 + b"\n", 64, 64)


def test_units_larger_than_the_line_limit_are_refused():
    with pytest.raises(ValueError, match="cannot honour"):
        units(b"1\n", 65, 64)
    with pytest.raises(ValueError, match="cannot honour"):
        units(b"1\n", 0, None)


def _reference(data: bytes, unit: int, limit: int | None) -> tuple[list[bytes], int | None]:
    """Plainly: the lines (with their newlines) and the first one over the limit (1-based), if any."""
    lines = data.splitlines(keepends=True)
    over = next((i + 1 for i, line in enumerate(lines) if limit is not None and len(line) > limit), None)
    return lines, over


@pytest.mark.parametrize("seed", range(40))
def test_units_are_whole_lines_within_the_unit_and_the_first_line_over_the_limit_is_named(seed):
    """Issue 19: with units no larger than the limit, no line inside a unit can break it (the check
    read_units once made after cutting a unit could never fire): against a plain reference, over random
    files of short and long lines, unit sizes and limits (or none)."""
    import random

    rng = random.Random(seed)
    for _ in range(200):
        lengths = [rng.choice([0, 1, 2, 3, 5, 8, 13, 21, 40]) for _ in range(rng.randint(0, 12))]
        data = b"".join(b"7" * n + b"\n" for n in lengths)
        if rng.random() < 0.5:
            data += b"8" * rng.randint(1, 30)  # a last line without its newline
        unit = rng.randint(1, 24)
        limit = rng.choice([None, unit, unit + rng.randint(0, 20)])
        lines, over = _reference(data, unit, limit)
        got: list[tuple[int, bytes]] = []
        try:
            for item in read_units(io.BytesIO(data), unit, limit):
                got.append(item)
        except LineTooLong as exc:
            assert exc.line == over, (data, unit, limit)
        else:
            assert over is None, (data, unit, limit)
            assert b"".join(u for _, u in got) == data
        expected_first = 1
        for first, chunk in got:
            assert first == expected_first
            chunk_lines = chunk.splitlines(keepends=True)
            assert chunk_lines == lines[first - 1:first - 1 + len(chunk_lines)]  # whole lines, in order
            assert len(chunk) <= unit or len(chunk_lines) == 1  # only a single long line exceeds a unit
            assert limit is None or all(len(line) <= limit for line in chunk_lines)
            expected_first += len(chunk_lines)


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


def test_a_worker_imports_only_what_it_uses():
    import subprocess
    import sys

    # A worker imports deploy.batch.worker: that must not pull in pydantic (or the rest of the package).
    probe = "import sys, deploy.batch.worker; print('pydantic' in sys.modules, 'deploy.batch.config' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.split() == ["False", "False"]


class _ReadIntoOnly(io.BytesIO):
    """A file whose read() is refused: the reader must read straight into its buffers."""

    def read(self, size: int | None = -1) -> bytes:
        raise AssertionError("read() copies each unit once more than readinto()")


def test_units_are_read_straight_into_their_own_buffers():
    # GIVEN a file of many short lines (a unit is cut from a buffer the file was read into)
    data = b"".join(f"{i},{i * 7 % 13}\n".encode() for i in range(2_000))
    # WHEN it is cut into units, keeping every unit (as the units in flight to workers are kept)
    got = list(read_units(_ReadIntoOnly(data), 1_000, 1_000))
    # THEN no read() was needed, the units still hold their own bytes, and together they are the file
    assert len(got) > 10 and b"".join(u for _, u in got) == data
    assert len({id(u) for _, u in got}) == len(got)
