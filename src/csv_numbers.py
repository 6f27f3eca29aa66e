"""Headerless numeric CSV bytes to a float64 matrix in numpy passes (no per-number Python, no dtoa).

    parse(data) -> ndarray (rows x fields, float64) | None

None means "not vouched for": the caller runs its precise parser (payload.py), which then gives the
same values or names the bad row, column and reason. A matrix comes back only when every line has the
first line's field count and each value is the float64 that float() reads from its field. Numpy only
(the serving images carry nothing else); decision 0043 has the measurements.

How (per chunk of whole lines, about 512 KB, so the work stays in the CPU's cache):
1. One copy of the bytes XOR 0x30: digits become 0..9, every other byte is above 9. The positions of
   the non-digits (nonzero) give the separators (',' and '\\n'), hence each field's end.
2. A field is *regular* when it holds digits, at most one '.', at most one sign as its first byte, and
   at most 24 bytes; checked by counting, not per byte: every non-digit must be a separator, a
   field's leading sign or a field's last non-digit being a '.'.
3. A regular field's digits: the 8, 16 or 24 bytes ending at the field, masked to it with the dot's
   lane cleared (one table lookup), read as 8-digit integers by multiply-and-shift in u16, u32 and u64
   lanes; the integer part, if any, is split off (the dot counted as a 0 digit), so the field is
   +-m / 10**F with m < 2**64 and F its fraction digits.
4. Correct rounding, bit-identical to float(): m <= 2**53 and F <= 22 make one IEEE division of exact
   operands (Clinger's fast path). Otherwise m and 10**F (F <= 27) are exact in x87 extended
   precision, whose division rounds once to 64 bits and the cast to float64 once more; the two
   roundings give float()'s answer unless the 64-bit quotient lies exactly halfway between two
   doubles (its low 11 bits 0b10000000000). Those fields, and on platforms without that type every
   field beyond the fast path, are read by float().
5. Other fields (exponents, nan, inf, spaces, underscores, more than 24 bytes) are read by float() one
   by one. If float() refuses one, or a field holds a control byte (which the precise parser might
   take as a line break), or more than an eighth of the fields need float(), the answer is None.
"""

from __future__ import annotations

import re
import sys

import numpy as np

__all__ = ["parse"]

CHUNK_BYTES = 1 << 19
_PAD = 32  # zero bytes before and after the copy, so every window read stays inside it
_COMMA, _NL, _DOT, _MINUS, _PLUS = (ord(ch) ^ 0x30 for ch in ",\n.-+")
_WHITESPACE = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # what str.strip() removes from ASCII text
_UNSAFE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # control bytes other than tab
_MAX_SLOW_SHARE = 8  # more than 1/8 of the fields for float(): None (the precise parser is as fast)
_TWO53 = np.uint64(2 ** 53)
_U64 = np.dtype("<u8")
_E8, _E16 = np.uint64(10 ** 8), np.uint64(10 ** 16)
_SWAR16, _SWAR32, _SWAR64 = np.uint16(2561), np.uint32(6553601), np.uint64((10000 << 32) + 1)
_S8, _S16, _S32 = np.uint16(8), np.uint32(16), np.uint64(32)
_LOW11, _HALF = np.uint64(0x7FF), np.uint64(0x400)


def _extended_precision() -> bool:
    """np.longdouble is x87 extended here (64-bit significand, little-endian, arithmetic kept at 64 bits)."""
    if np.finfo(np.longdouble).nmant != 63 or np.dtype(np.longdouble).itemsize != 16 or sys.byteorder != "little":
        return False
    x = np.array([2 ** 64 - 1], dtype=np.uint64).astype(np.longdouble)
    return bool(((x - 1) - x)[0] == -1) and int(x.view(_U64)[0]) == 2 ** 64 - 1


EXTENDED = _extended_precision()


class _Tables:
    """Lookups for one window width wb (8, 16 or 24 bytes), by t = (length * (wb + 1) + fi) * 2 + negative,
    where length counts the field's bytes after its sign and fi is its fraction digits (wb: no dot)."""

    def __init__(self, wb: int):
        self.wb, self.rows = wb, wb + 1
        mask = np.zeros((wb + 1, wb + 1, 2, wb), dtype=np.uint8)
        frac = np.zeros((wb + 1, wb + 1, 2), dtype=np.int64)
        for length in range(wb + 1):
            mask[length, :, :, wb - length:] = 0xFF
            for f in range(wb):
                mask[length, f, :, wb - 1 - f] = 0  # the dot's lane
                frac[length, f, :] = f
        self.mask = mask.reshape(-1, wb).view(np.dtype((np.void, wb))).ravel()
        f = frac.ravel()
        dotted = np.ones((wb + 1, wb + 1, 2), dtype=bool)
        dotted[:, wb, :] = False
        # the dot counts as a 0 digit: V = integer * 10**(F+1) + fraction, so V >= next_power has an integer part
        self.next_power = np.array([10 ** (v + 1) if d and v < 19 else 2 ** 64 - 1
                                    for v, d in zip(f, dotted.ravel(), strict=True)], dtype=np.uint64)
        self.power = np.array([10 ** v if v < 20 else 0 for v in f], dtype=np.uint64)
        sign = np.tile([1.0, -1.0], len(f) // 2)
        self.divisor = sign * np.array([10.0 ** v for v in f])
        self.exact = f <= 22
        self.divisor_ld = np.array([s * _power_ld(v) for s, v in zip(sign, f, strict=True)], dtype=np.longdouble)


def _power_ld(n: int) -> np.longdouble:
    p = np.longdouble(1)
    for _ in range(n):
        p *= 10  # exact while 5**n < 2**64 (n <= 27)
    return p


_TABLES = {wb: _Tables(wb) for wb in (8, 16, 24)}


def parse(data: bytes) -> np.ndarray | None:
    """The rows of an ASCII CSV body holding more than one line, or None (see the module docstring)."""
    lo, hi = 0, len(data)
    while lo < hi and data[lo] in _WHITESPACE:
        lo += 1
    while hi > lo and data[hi - 1] in _WHITESPACE:
        hi -= 1
    first_nl = data.find(b"\n", lo, hi)
    if first_nl < 0:
        return None
    if data.find(b"\r", lo, hi) >= 0:
        if data.count(b"\r", lo, hi) != data.count(b"\r\n", lo, hi):
            return None
        data = data[lo:hi].replace(b"\r\n", b"\n")
        lo, hi, first_nl = 0, len(data), data.find(b"\n")
    view = memoryview(data)[lo:hi]
    n = hi - lo
    width = data.count(b",", lo, first_nl) + 1
    shifted = np.empty(_PAD + n + _PAD, dtype=np.uint8)
    shifted[:_PAD] = 0
    shifted[_PAD + n:] = 0
    np.bitwise_xor(np.frombuffer(view, dtype=np.uint8), 0x30, out=shifted[_PAD:_PAD + n])
    out = np.empty(((n + 1) // (2 * width) + 1) * width)  # a field takes a byte and a separator at least
    slow: list[tuple[int, int, int]] = []
    start = done = 0
    while start < n:
        end = data.find(b"\n", lo + start + CHUNK_BYTES, hi) - lo if start + CHUNK_BYTES < n else n
        end = n if end < 0 else end
        fields = _chunk(shifted, start, end, width, out, done, slow)
        if fields is None or len(slow) * _MAX_SLOW_SHARE > done + fields:
            return None
        done += fields
        start = end + 1
    for i, s, e in slow:
        text = view[s:e].tobytes()
        if _UNSAFE.search(text):
            return None
        try:
            out[i] = float(text.decode("ascii"))
        except ValueError:
            return None
    out.resize(done, refcheck=False)
    return out.reshape(-1, width)


def _chunk(shifted, c0, c1, width, out, f0, slow) -> int | None:
    """Fields of whole lines [c0, c1) into out[f0:]; irregular ones listed in slow. None: not vouched for."""
    n = c1 - c0
    body = shifted[_PAD + c0:_PAD + c1]
    where = (body > 9).nonzero()[0]  # non-digits
    m = len(where)
    code = np.empty(m + 1, dtype=np.uint8)
    code[m] = 0  # what code[-1] reads: no dot
    body.take(where, out=code[:m])
    sep = code == _COMMA
    sep |= code == _NL
    k = sep.nonzero()[0]
    nf = len(k) + 1
    newlines = nf // width - 1
    if nf % width or np.count_nonzero(code == _NL) != newlines or (
            newlines and np.count_nonzero(code.take(k[width - 1::width]) != _NL)):
        return None
    bounds = np.empty(nf + 1, dtype=np.int64)
    bounds[0] = -1
    where.take(k, out=bounds[1:-1])
    bounds[-1] = n
    starts, ends = bounds[:-1] + 1, bounds[1:]
    last = np.empty(nf, dtype=np.int64)  # each field's last non-digit (or the one before it)
    np.subtract(k, 1, out=last[:-1])
    last[-1] = m - 1
    has_dot = code.take(last) == _DOT
    first = shifted[_PAD + c0:_PAD + c1 + 1].take(starts)
    negative = first == _MINUS
    has_sign = negative | (first == _PLUS)
    length = ends - starts
    length -= has_sign
    fi = ends - (where.take(last, mode="wrap") if m else 0)  # where has_dot, the dot's position
    fi -= 1
    longest = int(length.max())
    wb = 8 if longest <= 8 else 16 if longest <= 16 else 24
    np.copyto(fi, wb, where=~has_dot)
    irregular = _irregular(code, k, m, nf, has_sign, has_dot, length, longest)
    if irregular is not None:
        length[irregular] = 0
        fi[irregular] = wb
    tables = _TABLES[wb]
    t = length * tables.rows
    t += fi
    t <<= 1
    t += negative
    res = out[f0:f0 + nf]
    if len(res) != nf:
        return None
    v, over = _mantissas(shifted, c0, n, ends, t, tables, longest)
    slow_mask = _divide(v, t, tables, longest, res)
    if over is not None:
        slow_mask = over if slow_mask is None else slow_mask | over
    if slow_mask is not None and np.count_nonzero(slow_mask):
        slow_fields = slow_mask.nonzero()[0]
        irregular = slow_fields if irregular is None else np.union1d(irregular, slow_fields)
    if irregular is not None:
        slow.extend((f0 + i, c0 + s, c0 + e) for i, s, e in zip(
            irregular.tolist(), starts[irregular].tolist(), ends[irregular].tolist(), strict=True))
    return nf


def _irregular(code, k, m, nf, has_sign, has_dot, length, longest):
    """Fields that are not regular (module docstring, step 2), or None when all are."""
    signs, dots = int(np.count_nonzero(has_sign)), int(np.count_nonzero(has_dot))
    unexplained = m - (nf - 1) - signs - dots
    too_short = length <= has_dot
    if not unexplained and longest <= 24 and not np.count_nonzero(too_short):
        return None
    parts = [too_short.nonzero()[0]]
    if longest > 24:
        parts.append((length > 24).nonzero()[0])
    if unexplained:
        other = code[:m] - np.uint8(_PLUS)
        other = ((other > 3) & (code[:m] != _NL)).nonzero()[0]  # not one of + , - .
        parts.append(np.searchsorted(k, other))
    fields = np.unique(np.concatenate(parts))
    bounds = np.concatenate(([-1], k, [m]))  # field i's non-digits are code[bounds[i] + 1:bounds[i + 1]]
    non_digits = int((bounds[fields + 1] - bounds[fields] - 1).sum())
    explained = signs + dots - int(np.count_nonzero(has_sign[fields])) - int(np.count_nonzero(has_dot[fields]))
    if m - (nf - 1) - non_digits != explained:  # some field holds an extra sign or dot: find which
        bad = np.diff(bounds) - 1 != has_sign.astype(np.int64) + has_dot
        bad[fields] = True
        fields = bad.nonzero()[0]
    return fields


def _mantissas(shifted, c0, n, ends, t, tables, longest):
    """(m, overflow or None): each field's digits as an integer (m of step 3), and where it passed 2**64."""
    wb = tables.wb
    window = np.ndarray((n + 1,), dtype=tables.mask.dtype, buffer=shifted, offset=_PAD + c0 - wb, strides=(1,))
    x = window[ends].view(_U64).reshape(-1, wb // 8)
    x &= tables.mask.take(t).view(_U64).reshape(-1, wb // 8)
    lanes = x.view("<u2")  # pairs of digits: 10 * first + second
    lanes *= _SWAR16
    lanes >>= _S8
    lanes = x.view("<u4")  # 4 digits
    lanes *= _SWAR32
    lanes >>= _S16
    x *= _SWAR64  # 8 digits
    x >>= _S32
    over = None
    if wb == 24:
        v = x[:, 0] * _E16
        if longest > 19:
            over = x[:, 0] > 1843  # v would pass 2**64
        v += x[:, 1] * _E8
        v += x[:, 2]
    elif wb == 16:
        v = x[:, 0] * _E8
        v += x[:, 1]
    else:
        v = x.reshape(-1)
    p = tables.next_power.take(t)
    whole = (v >= p).nonzero()[0]
    if len(whole):  # integer * 10**(F+1) + fraction  ->  integer * 10**F + fraction
        v[whole] -= (v[whole] // p[whole]) * np.uint64(9) * tables.power.take(t[whole])
    return v, over


def _divide(v, t, tables, longest, res):
    """res = +-V / 10**F, correctly rounded; the fields left for float() as a mask, or None."""
    if (longest <= 15 or not np.count_nonzero(v > _TWO53)) and (longest < 24 or tables.exact.take(t).all()):
        np.divide(v.astype(np.float64), tables.divisor.take(t), out=res)
        return None
    if not EXTENDED:
        np.divide(v.astype(np.float64), tables.divisor.take(t), out=res)
        return (v > _TWO53) | ~tables.exact.take(t)
    quotient = v.astype(np.longdouble)
    quotient /= tables.divisor_ld.take(t)
    res[:] = quotient
    halfway = quotient.view(_U64)[::2] & _LOW11
    return halfway == _HALF
