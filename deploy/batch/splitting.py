"""Cutting input files into units of whole lines, streaming (SplitType Line).

MultiRecord: each unit is one mini-batch, as many whole lines as fit in MaxPayloadInMB (newlines
included), as SageMaker packs them. SingleRecord: units of about 1 MiB of whole lines, sent one line
per request by the worker. A line (with its newline) longer than the payload limit is refused,
naming it. Only one unit's bytes (plus one partial line) are held at a time, whatever the file size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from greenlight.errors import DataError, NotFoundError


class Readable(Protocol):
    """What the splitter reads from: an open binary file (or io.BytesIO); `read` only for over-long lines."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...

    def read(self, size: int = -1, /) -> bytes: ...


__all__ = ["SINGLE_RECORD_UNIT_BYTES", "InputFile", "LineTooLong", "list_input_files", "read_units"]

SINGLE_RECORD_UNIT_BYTES = 1 << 20


class LineTooLong(DataError):
    """A line does not fit in MaxPayloadInMB."""

    def __init__(self, line: int, length: int, limit: int):
        super().__init__(f"line {line} is {length:,}+ bytes, over MaxPayloadInMB ({limit:,} bytes): SageMaker "
                         "fails such a job too; raise max_payload_mb (at most 100) or split the line")
        self.line, self.length, self.limit = line, length, limit


@dataclass(frozen=True)
class InputFile:
    """One input file: its path relative to the input (with '/'), where it is, and its size."""

    relative: str
    path: Path
    size: int


def list_input_files(location: Path, prefix: str | None = None) -> list[InputFile]:
    """Every file of a folder (recursively; names starting with '.' skipped) or the one file given,
    sorted by relative path as S3 lists keys; with `prefix`, only those whose relative path starts
    with it (S3 prefix semantics).

    Raises:
        NotFoundError: the location does not exist.
        DataError: it holds no input file.
    """
    location = Path(location)
    if location.is_file():
        files = [InputFile(location.name, location, location.stat().st_size)]
    elif location.is_dir():
        files = []
        for path in location.rglob("*"):
            relative = path.relative_to(location).as_posix()
            if any(part.startswith(".") for part in relative.split("/")) or not path.is_file():
                continue
            files.append(InputFile(relative, path, path.stat().st_size))
    else:
        raise NotFoundError(f"the batch input {location} does not exist")
    if prefix:
        files = [f for f in files if f.relative.startswith(prefix)]
    if not files:
        where = f"{location} (prefix {prefix!r})" if prefix else str(location)
        raise DataError(f"no input files in {where}")
    return sorted(files, key=lambda f: f.relative.encode("utf-8"))


def read_units(fh: Readable, unit_bytes: int, line_limit: int | None) -> Iterator[tuple[int, bytearray]]:
    """(first line number, bytes of whole lines) for each unit of the file (a bytearray nobody else holds).

    Every unit but one made of a single line longer than unit_bytes holds at most unit_bytes bytes.
    The buffer never holds more than unit_bytes, and a unit is a prefix of it, so a line inside a
    unit fits in unit_bytes <= line_limit: only a line longer than a whole unit can break the limit,
    and `_long_line` checks that one.

    Raises:
        ValueError: unit_bytes is not positive, or larger than line_limit.
        LineTooLong: a line (with its newline) is longer than line_limit (None: no limit).
    """
    if unit_bytes <= 0 or (line_limit is not None and unit_bytes > line_limit):
        raise ValueError(f"units of {unit_bytes} bytes cannot honour a line limit of {line_limit} bytes")
    rest, line, eof = b"", 1, False
    while True:
        buf, eof = _fill(fh, rest, unit_bytes, eof)
        if not buf:
            return
        cut = len(buf) - 1 if eof else buf.rfind(b"\n")
        if cut < 0:  # no newline in a whole unit: one long line
            rest, eof = yield from _long_line(fh, bytes(buf), line, line_limit, unit_bytes)
            line += 1
            continue
        rest = bytes(buf[cut + 1:])
        del buf[cut + 1:]  # the unit is the buffer itself, cut in place: no copy of its bytes
        yield line, buf
        line += buf.count(b"\n")


def _fill(fh: Readable, rest: bytes, unit_bytes: int, eof: bool) -> tuple[bytearray, bool]:
    """A new buffer holding `rest`, then the file's next bytes, read straight into it, up to unit_bytes in all.

    A new one each time: the unit handed out before may still be queued for a worker. Reading into it
    and cutting it in place copies each byte once (appending to bytes and slicing copied it twice more).
    """
    buf = bytearray(unit_bytes)
    buf[:len(rest)] = rest
    filled = len(rest)
    with memoryview(buf) as view:
        while not eof and filled < unit_bytes:
            got = fh.readinto(view[filled:])
            if got:
                filled += got
            else:
                eof = True
    del buf[filled:]
    return buf, eof


def _long_line(fh: Readable, buf: bytes, line: int, limit: int | None, chunk_bytes: int):
    """Read on, chunk_bytes at a time, until the line that fills `buf` ends; yield it alone.

    Returns (rest, eof): rest is what followed the line in the last chunk, shorter than chunk_bytes.
    """
    parts = [buf]
    length = len(buf)
    while True:
        chunk = fh.read(chunk_bytes)
        if not chunk:  # the file's last line, without a newline
            if limit is not None and length > limit:
                raise LineTooLong(line, length, limit)
            yield line, b"".join(parts)
            return b"", True
        end = chunk.find(b"\n")
        taken = chunk if end < 0 else chunk[:end + 1]
        length += len(taken)
        if limit is not None and length > limit:
            raise LineTooLong(line, length, limit)
        parts.append(taken)
        if end >= 0:
            yield line, b"".join(parts)
            return chunk[end + 1:], False
