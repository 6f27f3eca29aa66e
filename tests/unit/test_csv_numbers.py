"""src/csv_numbers.py against the CSV decoder it speeds up, kept here as the reference.

The reference is payload.py's CSV path as it was before csv_numbers (np.loadtxt, then the row-by-row
parse that names the bad row and column). On random valid CSV (1 to 17 significant digits, exponents,
signs, negative zero, NaN/inf spellings, underscores, CRLF, with or without a trailing newline) the new
decoder gives the same float64 bits; on random corruptions it raises the same error (code, message,
row, column). Seeded random, no hypothesis (not a test dependency).
"""

from __future__ import annotations

import io
import random
from fractions import Fraction

import numpy as np
import pytest

from tests.conftest import imported_src_modules

CASES = 400


@pytest.fixture(scope="module")
def mods():
    with imported_src_modules(("serving_contract", "csv_numbers", "payload")) as modules:
        yield modules


# --- the reference: payload.py's CSV path before csv_numbers, verbatim ---------------------------------


def reference_decode(payload, body: bytes):
    """payload.decode(body, "text/csv") as it was: rows (float64 array) or one row (list of floats)."""
    size = len(body)
    if size == 0 or (size < 64 and not body.strip()):
        raise payload.PayloadError("empty_body", "the body is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise payload.PayloadError("bad_encoding", f"the body is not UTF-8 text (byte {exc.start})") from None
    return _old_decode_csv(payload, text)


def _old_decode_csv(payload, text: str):
    text = text.strip()
    if "\n" not in text:  # one row: the common case, kept cheap
        try:
            return [float(cell) for cell in text.split(",")]
        except ValueError:
            return _old_csv_rows_checked(payload, text)
    try:
        values = np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2, dtype=np.float64, comments=None)
    except ValueError:
        values = _old_csv_rows_checked(payload, text)
    return values


def _old_csv_rows_checked(payload, text: str) -> np.ndarray:
    rows, width = [], None
    for line in text.splitlines():
        if not line.strip():
            continue
        cells = line.split(",")
        r = len(rows)
        if width is None:
            width = len(cells)
        elif len(cells) != width:
            raise payload.PayloadError("wrong_feature_count", f"row {r} has {len(cells)} values; row 0 has {width}",
                                       row=r)
        row = []
        for c, cell in enumerate(cells):
            try:
                row.append(float(cell))
            except ValueError:
                hint = " (send no header line)" if r == 0 else ""
                raise payload.PayloadError("non_numeric",
                                           f"row {r}, column {c}: {cell.strip()[:40]!r} is not a number{hint}",
                                           row=r, column=c) from None
        rows.append(row)
    if not rows:
        raise payload.PayloadError("no_rows", "the request holds no rows")
    return np.array(rows, dtype=np.float64)


# --- random CSV ----------------------------------------------------------------------------------------

SPELLINGS = ["-0.0", "-0", "+0", "0", "0.0", ".5", "5.", "-.5", "+.5", "007.50", "-00.0012", "1e5", "1.5E-07",
             "-2e+300", "5e-324", "1.7976931348623157e308", "1e400", "nan", "NaN", "-nan", "+nan", "inf", "-inf",
             "Infinity", "-INFINITY", "+inf", "1_000.5", " 1.5", "2.25 ", "\t3", "1" * 30, "0." + "1" * 25,
             "123456789012345678901", "18446744073709551615", "18446744073709551616", "9007199254740993",
             "9007199254740995", "4503599627370496.5", "4503599627370497.5", "0.30000000000000004",
             "0.1000000000000000055511151231257827", "99999999999999999999.5", "-9999999999999999999"]


def midpoint_neighbour(rng: random.Random) -> str:
    """A decimal of up to 19 significant digits next to the exact midpoint of two adjacent doubles."""
    x = rng.uniform(0.001, 2.0) * 10.0 ** rng.randint(-3, 6)
    mid = (Fraction(x) + Fraction(np.nextafter(x, np.inf))) / 2
    digits = 19 - len(str(int(mid))) if mid >= 1 else 19 + len(str(int(1 / mid))) - 1
    digits = max(0, min(digits, 23))
    m = round(mid * 10 ** digits) + rng.choice((-1, 0, 0, 1))
    text = str(m).rjust(digits + 1, "0")
    return (text[:-digits] + "." + text[-digits:]) if digits else text


def number(rng: random.Random, plain: bool = False) -> str:
    """A field float() reads; plain: magnitudes 1e-3 to 1e6 (few exponents), 1% other spellings."""
    roll = rng.random()
    if roll < (0.01 if plain else 0.06):
        return rng.choice(SPELLINGS)
    if roll < 0.12:
        return midpoint_neighbour(rng)
    x = rng.uniform(-1, 1) * 10.0 ** (rng.randint(-3, 6) if plain else rng.randint(-7, 9))
    if roll < 0.45:
        return repr(x)
    if roll < 0.8:
        return format(x, f".{rng.randint(1, 17)}g")
    if roll < 0.95:
        return format(x, f".{rng.randint(0, 12)}f")
    return str(int(x))


def valid_csv(rng: random.Random, rows: int | None = None, width: int | None = None, plain: bool = False) -> bytes:
    width = width or rng.randint(1, 12)
    rows = rows or rng.randint(2, 40)
    eol = rng.choice(("\n", "\n", "\r\n"))
    lines = [",".join(number(rng, plain) for _ in range(width)) for _ in range(rows)]
    body = eol.join(lines) + rng.choice(("", eol, eol + eol, "  \n"))
    return (rng.choice(("", "", " ", "\n")) + body).encode()


CORRUPTIONS = ["", "abc", "1.2.3", "--1", "+-1", "1-", "1e", "e5", ".", "-", "0x10", '"1"', "1 2", "1d5", "١",
               "\xa0", "1\x0b", "1\x0c2", "\x1c", "1\r", "\x00", "\x7f", "1..", "..1", "1.-2"]


def corrupt(rng: random.Random, body: bytes) -> bytes:
    """A valid body with one to three faults: a bad field, a field more or less, a blank or header line,
    a control byte, invalid UTF-8."""
    lines = body.decode().split("\n")
    for _ in range(rng.randint(1, 3)):
        r = rng.randrange(len(lines))
        cells = lines[r].split(",")
        roll = rng.random()
        if roll < 0.45:
            cells[rng.randrange(len(cells))] = rng.choice(CORRUPTIONS)
        elif roll < 0.55:
            cells.insert(rng.randrange(len(cells) + 1), number(rng))
        elif roll < 0.65 and len(cells) > 1:
            cells.pop(rng.randrange(len(cells)))
        elif roll < 0.75:
            lines.insert(r, rng.choice(("", "   ", "\t", "a,b,c")))
            continue
        elif roll < 0.8:
            lines.insert(0, ",".join(f"f{i}" for i in range(len(cells))))
            continue
        elif roll < 0.85:
            cells[rng.randrange(len(cells))] = "1_0"  # float() reads it, np.loadtxt does not
        lines[r] = ",".join(cells)
    out = "\n".join(lines).encode()
    if rng.random() < 0.05:
        at = rng.randrange(len(out) + 1)
        out = out[:at] + b"\xff" + out[at:]
    return out


# --- comparisons ---------------------------------------------------------------------------------------


def outcome(call, *args, **kwargs):
    try:
        got = call(*args, **kwargs)
    except ValueError as exc:  # PayloadError
        return ("error", exc.error, exc.message, exc.row, exc.column)
    if isinstance(got, list):
        return ("row", np.array(got, dtype=np.float64).view(np.uint64).tolist())
    values = got.values if hasattr(got, "values") else got
    row = getattr(got, "row", None)
    if values is None:
        return ("row", np.array(row, dtype=np.float64).view(np.uint64).tolist())
    return ("rows", values.shape, np.ascontiguousarray(values, dtype=np.float64).view(np.uint64).tolist())


def old(mods, body: bytes):
    return outcome(reference_decode, mods.payload, body)


def new(mods, body: bytes):
    return outcome(mods.payload.decode, body, "text/csv", max_bytes=1 << 30)


def bits(values: np.ndarray) -> list:
    return np.ascontiguousarray(values, dtype=np.float64).view(np.uint64).tolist()


@pytest.fixture
def everything_vectorised(mods, monkeypatch):
    """Small chunks (a few lines each), any share of fields for float(), every body through csv_numbers."""
    monkeypatch.setattr(mods.csv_numbers, "CHUNK_BYTES", 256)
    monkeypatch.setattr(mods.csv_numbers, "_MAX_SLOW_SHARE", 0)
    monkeypatch.setattr(mods.payload, "_VECTORISED_CSV_BYTES", 0)


# --- tests ---------------------------------------------------------------------------------------------


def test_random_valid_csv_gives_the_reference_bits(mods, everything_vectorised):
    rng = random.Random(24)
    vouched = 0
    for case in range(CASES):
        body = valid_csv(rng)
        expected = old(mods, body)
        got = mods.csv_numbers.parse(body)
        if got is not None:
            vouched += 1
            assert ("rows", got.shape, bits(got)) == expected, (case, body)
        assert new(mods, body) == expected, (case, body)
    assert vouched > CASES * 0.9  # the vectorised path itself answered, not only the text path behind it


def test_random_corruptions_raise_the_reference_error(mods, everything_vectorised):
    rng = random.Random(2024)
    errors = 0
    for case in range(CASES):
        body = corrupt(rng, valid_csv(rng))
        expected = old(mods, body)
        errors += expected[0] == "error"
        assert new(mods, body) == expected, (case, body)
    assert errors > CASES * 0.5


def test_large_bodies_at_the_default_threshold_and_chunks(mods):
    """Bodies over the threshold and over several chunks, as served: valid ones vouched for, faults named."""
    rng = random.Random(7)
    assert mods.payload._VECTORISED_CSV_BYTES <= 16 * 1024
    for _ in range(6):
        body = valid_csv(rng, rows=rng.randint(4000, 6000), width=rng.randint(8, 12), plain=True)
        assert len(body) > mods.csv_numbers.CHUNK_BYTES
        expected = old(mods, body)
        assert mods.csv_numbers.parse(body) is not None
        assert new(mods, body) == expected
        lines = body.split(b"\n")
        at = rng.randrange(len(lines) - 1)
        cells = lines[at].split(b",")
        cells[rng.randrange(len(cells))] = rng.choice((b"x", b"", b"1.2.3", b"1,2"))
        lines[at] = b",".join(cells)
        bad = b"\n".join(lines)
        expected = old(mods, bad)
        assert expected[0] == "error" and expected[3] is not None
        assert new(mods, bad) == expected


@pytest.mark.parametrize("fmt", ["repr", ".8g"])
def test_the_benchmark_formats_take_the_vectorised_path(mods, fmt):
    """The request format of `benchmarks serving` (and SageMaker batch mini-batches) is parsed by
    csv_numbers itself, with at most a few fields (exponents) left to float()."""
    rng = np.random.default_rng(0)
    rows = rng.uniform(-0.12, 0.2, size=(3000, 10)).tolist()
    body = "".join(",".join(repr(v) if fmt == "repr" else format(v, ".8g") for v in row) + "\n"
                   for row in rows).encode()
    got = mods.csv_numbers.parse(body)
    assert got is not None
    assert bits(got) == bits(np.array([[float(v) for v in line.split(b",")] for line in body.splitlines()]))


def test_rounding_at_and_next_to_midpoints(mods, everything_vectorised):
    """Decimals of up to 19 digits at, or within a 64-bit rounding of, the midpoint of two doubles: the
    cases where rounding twice (to x87's 64 bits, then to 53) could differ from float()."""
    rng = random.Random(53)
    fields = [midpoint_neighbour(rng) for _ in range(4000)] + ["9007199254740993", "4503599627370496.5",
                                                              "4503599627370497.5", "9007199254740995"]
    body = ("\n".join(fields) + "\n").encode()
    got = mods.csv_numbers.parse(body)
    assert got is not None
    assert bits(got[:, 0]) == bits(np.array([float(f) for f in fields]))


def test_signs_and_negative_zero(mods):
    got = mods.csv_numbers.parse(b"-0.0,-0,+0.5,-.5\n0,5.,-007.50,+3")
    assert bits(got) == bits(np.array([[-0.0, -0.0, 0.5, -0.5], [0.0, 5.0, -7.5, 3.0]]))
    assert np.signbit(got[0, :2]).all() and not np.signbit(got[1, 0])


def test_without_extended_precision_the_long_mantissas_go_to_float(mods, everything_vectorised, monkeypatch):
    """Where np.longdouble is not x87 extended (arm64, Windows), mantissas beyond 2**53 are read by float()."""
    monkeypatch.setattr(mods.csv_numbers, "EXTENDED", False)
    rng = random.Random(64)
    for case in range(CASES // 4):
        body = valid_csv(rng)
        got = mods.csv_numbers.parse(body)
        assert got is not None
        assert ("rows", got.shape, bits(got)) == old(mods, body), case


def test_what_it_does_not_vouch_for(mods):
    """None (the text path decides) for one line, ragged or blank lines, a lone CR, control bytes, fields
    float() refuses, and too many fields for float() at the default share."""
    parse = mods.csv_numbers.parse
    for body in (b"1,2,3", b"1,2\n3", b"1,2\n\n3,4", b"1,2\r3,4", b"1,2\n3\x0b,4", b"1,x\n3,4", b"1,\n3,4",
                 b"nan,inf\n-inf,nan", b"1_0,2\n3,4"):
        assert parse(body) is None, body
    assert parse(b" 1,2\r\n3,4\r\n ").tolist() == [[1.0, 2.0], [3.0, 4.0]]


TRAPS = [
    b"1\x0b,3\n4,1_0",  # float() reads "1\x0b"; np.loadtxt fails on 1_0; the text path splits lines at \x0b
    b"1\x0c,3\n4,5\n6,1_0",
    b"1\x1c,3\n4,1_0",
    b"1,2\r3,4\n5,1_0",  # a lone CR: a line break to splitlines(), not to the tokenizer
    b"1,2\r\n3,4\r\n\r\n5,6",
    b"1,2\n \n3,4",
    b"\t1,2\n3,\t4\t",
    b"1,2\n3,4\n",
    b"-0,+0\n-.0,+.0",
    b"1,2\n3,4 \xc2\xa0",
    b"a,b\n1,2",
]


@pytest.mark.parametrize("body", TRAPS, ids=[repr(b)[2:30] for b in TRAPS])
def test_known_traps_match_the_reference(mods, everything_vectorised, body):
    expected = old(mods, body)
    assert new(mods, body) == expected


def test_the_default_data_takes_the_vectorised_path(mods):
    """Rows in the format of the shipped diabetes data (up to 18 significant digits), as a batch request."""
    from greenlight.data import default_dataset_csv

    lines = default_dataset_csv().decode().splitlines()[1:]
    body = ("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n").encode() * 20
    got = mods.csv_numbers.parse(body)
    assert got is not None and got.shape == (20 * len(lines), 10)
    assert bits(got) == bits(np.array([[float(v) for v in line.split(b",")] for line in body.splitlines()]))


def test_predictions_match_the_reference_decoder_on_6_mb_and_the_default_data(mods, models):
    """What a client gets back: predictions through input_fn and predict_fn on a 6 MB body of random rows
    (the size and format of `benchmarks serving`'s parse request) and on the shipped data as a batch
    request, bit-identical to predictions from the reference decoder's rows."""
    from greenlight.data import default_dataset_csv

    with imported_src_modules(("inference", "compact_forest", "forest_files", "forest_rows")) as serving:
        inference = serving.inference
        model = inference.model_fn(str(models["a"]))
        n_features = model.schema.n_features
        rng = np.random.default_rng(24)
        lines, size = [], 0
        while size < 6 * 1024 * 1024:
            line = ",".join(repr(v) for v in rng.uniform(-0.12, 0.2, size=n_features).tolist()) + "\n"
            lines.append(line)
            size += len(line)
        random_rows = "".join(lines).encode()
        shipped = default_dataset_csv().decode().splitlines()[1:]  # the target is the last column
        default_data = ("\n".join(line.rsplit(",", 1)[0] for line in shipped) + "\n").encode()
        for body in (random_rows, default_data):
            assert mods.csv_numbers.parse(body) is not None  # the vectorised path answers, not the text path
            batch = inference.input_fn(body, "text/csv", max_bytes=len(body), model=model)
            got = inference.predict_fn(batch, model)
            want = inference.predict_fn(np.asarray(reference_decode(mods.payload, body)), model)
            assert len(got) == body.count(b"\n")
            assert bits(got) == bits(want)
