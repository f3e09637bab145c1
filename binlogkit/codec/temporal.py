"""Temporal and decimal column values: binary <-> the text the server prints.

Values are returned as the server's text (``SELECT`` with ``time_zone='+00:00'``)
because zero dates, ``0000-00-00``, negative and >24h times have no Python
``datetime`` equivalent; :func:`to_python` converts when one exists.

| type (code)      | bytes | layout                                                        |
| ---------------- | ----- | ------------------------------------------------------------- |
| DATE (10, 14)    | 3 LE  | day 5 bits, month 4 bits, year 15 bits (low to high)           |
| TIME (11)        | 3 LE  | signed HHMMSS as a decimal number                              |
| DATETIME (12)    | 8 LE  | YYYYMMDDhhmmss as a decimal number                             |
| TIMESTAMP (7)    | 4 LE  | seconds since the epoch (0: zero timestamp)                    |
| TIMESTAMP2 (17)  | 4+f BE| seconds, then the fraction                                     |
| DATETIME2 (18)   | 5+f BE| 1 sign bit (1 = +), 17 bits year*13+month, 5 day, 5 hour,      |
|                  |       | 6 minute, 6 second; then the fraction                          |
| TIME2 (19)       | 3+f BE| 1 sign bit, 1 unused, 10 hour, 6 minute, 6 second, offset by   |
|                  |       | 0x800000; negative fractions borrow from the integer part     |

The fraction (f bytes, f = (fsp + 1) // 2) is big-endian: 1 byte in 1/100 s,
2 bytes in 1/10000 s, 3 bytes in microseconds.

NEWDECIMAL (246) is stored in groups of 9 decimal digits, 4 bytes each,
big-endian, with a leading and a trailing partial group (1-4 bytes for 1-8
digits); the first bit is inverted (1 = non-negative) and every byte of a
negative number is inverted.
"""

from __future__ import annotations

import datetime as dt
import functools
import struct
import time
from collections.abc import Callable
from decimal import Context, Decimal
from typing import Any

DIG2BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)
TIMEF_INT_OFS = 0x800000
TIMEF_OFS = 0x800000000000
DATETIMEF_INT_OFS = 0x8000000000
_FRAC_BYTES = (0, 1, 1, 2, 2, 3, 3)
_FRAC_MULT = {1: 10000, 2: 100, 3: 1}


class TemporalError(ValueError):
    """Text or bytes that are not a value of the column's type."""


def decimal_size(precision: int, scale: int) -> int:
    intg = precision - scale
    return (intg // 9) * 4 + DIG2BYTES[intg % 9] + (scale // 9) * 4 + DIG2BYTES[scale % 9]


def frac_bytes(fsp: int) -> int:
    return _FRAC_BYTES[fsp]


def _frac_text(usec: int, fsp: int) -> str:
    return "." + f"{usec:06d}"[:fsp] if fsp else ""


# ---------------------------------------------------------------- decimal


def decimal_plan(precision: int, scale: int) -> tuple[int, int, int, int, int]:
    """(size, leading int digits, full int groups, full frac groups, trailing frac digits)."""
    intg = precision - scale
    return (decimal_size(precision, scale), intg % 9, intg // 9, scale // 9, scale % 9)


def decode_decimal(raw: bytes, precision: int, scale: int) -> Decimal:
    return decimal_decoder(precision, scale)(raw)


_DECIMAL_DECODERS: dict[tuple[int, int], Callable[[bytes], Decimal]] = {}
DECIMAL_CONTEXT = Context(prec=65)  # DECIMAL's largest precision: scaleb stays exact


_GROUP_LETTERS = {1: "B", 2: "H", 3: "BH", 4: "I"}


def decimal_struct(precision: int, scale: int) -> str:
    """Big-endian struct letters reading DECIMAL(precision, scale) one digit
    group per field (a 3-byte group as two fields)."""
    _, lead, ngroups, nfrac, tail = decimal_plan(precision, scale)
    sizes = ([DIG2BYTES[lead]] if lead else []) + [4] * (ngroups + nfrac) \
        + ([DIG2BYTES[tail]] if tail else [])
    return "".join(_GROUP_LETTERS[k] for k in sizes)


def decimal_lines(precision: int, scale: int, fields: list[str], out: str,
                  env: dict[str, Any]) -> list[str]:
    """Python source turning ``fields`` (the values the letters of
    :func:`decimal_struct` were unpacked into) into the Decimal ``out``, for
    generated decoders: the top bit of the first byte is the sign, a negative
    number has every byte inverted. Adds the names the source uses to ``env``."""
    _, lead, ngroups, nfrac, tail = decimal_plan(precision, scale)
    digits = ([lead] if lead else []) + [9] * (ngroups + nfrac) + ([tail] if tail else [])
    groups: list[tuple[int, int, str]] = []  # (digits, bytes, value)
    names = iter(fields)
    for nd in digits:
        k = DIG2BYTES[nd]
        value = f"({next(names)} << 16 | {next(names)})" if k == 3 else next(names)
        groups.append((nd, k, value))
    sign_bit = 1 << (8 * groups[0][1] - 1)
    first_bits = 8 if groups[0][1] == 3 else 8 * groups[0][1]

    def number(neg: bool) -> str:
        terms = []
        for i, (_, k, value) in enumerate(groups):
            top = (1 << 8 * k) - 1
            if i == 0:  # the sign bit: set for a positive number, clear for a negative one
                terms.append(f"({sign_bit - 1} - {value})" if neg else f"({value} ^ {sign_bit})")
            else:
                terms.append(f"({top} - {value})" if neg else value)
        expr = terms[0]
        for (nd, _, _), term in zip(groups[1:], terms[1:], strict=True):
            expr = f"({expr}) * {10 ** nd} + {term}"
        return expr

    env["Decimal"], env["DECIMAL_CONTEXT"] = Decimal, DECIMAL_CONTEXT
    scaled = ""
    if scale:
        env[f"E{scale}"] = Decimal(-scale)  # a Decimal exponent: scaleb skips converting an int
        scaled = f".scaleb(E{scale}, DECIMAL_CONTEXT)"
    zero = "-0" + ("." + "0" * scale if scale else "")
    return [f"if {fields[0]} >> {first_bits - 1}:",
            f"    {out} = Decimal({number(False)}){scaled}",
            "else:",
            f"    n = {number(True)}",
            f"    {out} = Decimal(-n){scaled} if n else Decimal({zero!r})"]


def decimal_decoder(precision: int, scale: int) -> Callable[[bytes], Decimal]:
    """A function decoding DECIMAL(precision, scale) bytes, generated for that
    layout: one struct call, digit groups combined with integer arithmetic."""
    key = (precision, scale)
    fn = _DECIMAL_DECODERS.get(key)
    if fn is not None:
        return fn
    size = decimal_size(precision, scale)
    letters = decimal_struct(precision, scale)
    fields = [f"f{i}" for i in range(len(letters))]
    env: dict[str, Any] = {"TemporalError": TemporalError,
                           "unpack": struct.Struct(">" + letters).unpack}
    lines = ["def dec(raw):",
             f"    if len(raw) != {size}: raise TemporalError("
             f"'DECIMAL({precision},{scale}) takes {size} bytes')",
             f"    {', '.join(fields)}, = unpack(raw)",
             *("    " + ln for ln in decimal_lines(precision, scale, fields, "out", env)),
             "    return out"]
    exec("\n".join(lines), env)  # noqa: S102 (generated from integers only)
    fn = _DECIMAL_DECODERS[key] = env["dec"]
    return fn


def decimal_text(raw: bytes, precision: int, scale: int) -> str:
    """The binary decimal as the server prints it (exactly ``scale`` fraction digits)."""
    size, lead, ngroups, nfrac, tail = decimal_plan(precision, scale)
    if len(raw) != size:
        raise TemporalError(f"DECIMAL({precision},{scale}) takes {size} bytes, not {len(raw)}")
    negative = not raw[0] & 0x80
    b = bytearray(raw)
    b[0] ^= 0x80
    if negative:
        b = bytearray(x ^ 0xFF for x in b)
    pos = 0
    parts = []
    n = DIG2BYTES[lead]
    if n:
        parts.append(str(int.from_bytes(b[:n], "big")))
        pos = n
    for _ in range(ngroups):
        parts.append(f"{int.from_bytes(b[pos:pos + 4], 'big'):09d}")
        pos += 4
    intpart = "".join(parts).lstrip("0") or "0"
    fparts = []
    for _ in range(nfrac):
        fparts.append(f"{int.from_bytes(b[pos:pos + 4], 'big'):09d}")
        pos += 4
    if tail:
        fparts.append(f"{int.from_bytes(b[pos:pos + DIG2BYTES[tail]], 'big'):0{tail}d}")
    out = intpart + ("." + "".join(fparts) if scale else "")
    return "-" + out if negative else out


def encode_decimal(value: Decimal | str | int, precision: int, scale: int) -> bytes:
    d = Decimal(value)
    sign, digits, exp = d.as_tuple()
    if not isinstance(exp, int):
        raise TemporalError(f"{value!r} is not a finite decimal")
    text = format(d.copy_abs(), "f")
    intpart, _, frac = text.partition(".")
    frac = (frac + "0" * scale)[:scale]
    if len(frac.rstrip("0")) < len(text.partition(".")[2].rstrip("0")):
        raise TemporalError(f"{value!r} has more than {scale} fraction digits")
    intg = precision - scale
    intpart = intpart.lstrip("0")
    if len(intpart) > intg:
        raise TemporalError(f"{value!r} does not fit DECIMAL({precision},{scale})")
    intpart = intpart.rjust(intg, "0")
    _, lead, ngroups, nfrac, tail = decimal_plan(precision, scale)
    out = bytearray()
    if lead:
        out += int(intpart[:lead]).to_bytes(DIG2BYTES[lead], "big")
    for k in range(ngroups):
        out += int(intpart[lead + 9 * k : lead + 9 * k + 9]).to_bytes(4, "big")
    for k in range(nfrac):
        out += int(frac[9 * k : 9 * k + 9]).to_bytes(4, "big")
    if tail:
        out += int(frac[9 * nfrac :]).to_bytes(DIG2BYTES[tail], "big")
    if sign:
        out = bytearray(x ^ 0xFF for x in out)
    out[0] ^= 0x80
    return bytes(out)


# ---------------------------------------------------------------- old formats


def date_text(v: int) -> str:
    return f"{v >> 9:04d}-{v >> 5 & 15:02d}-{v & 31:02d}"


def time_text(v: int) -> str:
    sign = "-" if v < 0 else ""
    v = abs(v)
    return f"{sign}{v // 10000:02d}:{v // 100 % 100:02d}:{v % 100:02d}"


def datetime_text(v: int) -> str:
    d, t = divmod(v, 1000000)
    return (f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d} "
            f"{t // 10000:02d}:{t // 100 % 100:02d}:{t % 100:02d}")


_SECONDS: dict[int, str] = {}
_CACHE_MAX = 1 << 16


def _seconds_text(seconds: int) -> str:
    text = _SECONDS.get(seconds)
    if text is None:
        if len(_SECONDS) >= _CACHE_MAX:
            _SECONDS.clear()
        t = time.gmtime(seconds)
        text = _SECONDS[seconds] = (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d} "
                                    f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}")
    return text


def timestamp_text(seconds: int, usec: int = 0, fsp: int = 0) -> str:
    if seconds == 0 and usec == 0:
        return "0000-00-00 00:00:00" + _frac_text(0, fsp)
    return _seconds_text(seconds) + (_frac_text(usec, fsp) if fsp else "")


# ---------------------------------------------------------------- *2 formats

# Text caches for the generated row decoders: dates by their packed
# year*13+month / day bits, times of day by packed h/m/s bits, UTC days by
# day number. Values in a binlog cluster, so these stay small; each is
# cleared when it reaches _CACHE_MAX.


class _TextCache(dict[int, str]):
    def __init__(self, make: Callable[[int], str]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: int) -> str:
        if len(self) >= _CACHE_MAX:
            self.clear()
        text = self[key] = self.make(key)
        return text


def _ymd_text(ymd: int) -> str:
    ym = ymd >> 5
    return f"{ym // 13:04d}-{ym % 13:02d}-{ymd & 31:02d} "


def _hms_text(hms: int) -> str:
    return f"{hms >> 12:02d}:{hms >> 6 & 63:02d}:{hms & 63:02d}"


def _day_text(day: int) -> str:
    t = time.gmtime(day * 86400)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d} "


def _sod_text(sod: int) -> str:
    return f"{sod // 3600:02d}:{sod // 60 % 60:02d}:{sod % 60:02d}"


YMD_TEXT = _TextCache(_ymd_text)
DAY_TEXT = _TextCache(_day_text)
_TIME_TABLES: dict[str, list[str]] = {}


def hms_table() -> list[str]:
    """'hh:mm:ss' for every 17-bit packed DATETIME2 time of day (built once)."""
    table = _TIME_TABLES.get("hms")
    if table is None:
        table = _TIME_TABLES["hms"] = [_hms_text(x) for x in range(1 << 17)]
    return table


def sod_table() -> list[str]:
    """'hh:mm:ss' for every second of a day (built once)."""
    table = _TIME_TABLES.get("sod")
    if table is None:
        table = _TIME_TABLES["sod"] = [_sod_text(x) for x in range(86400)]
    return table


@functools.cache
def frac_tables(fsp: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """For 3-byte fractions (fsp 5, 6): ('.mmm' by milliseconds, the remaining
    fsp - 3 digits by the microseconds within the millisecond)."""
    return (tuple(f".{i:03d}" for i in range(1000)),
            tuple(f"{i:03d}"[: fsp - 3] for i in range(1000)))


@functools.cache
def frac_table(fsp: int) -> tuple[str, ...] | None:
    """'.f' texts indexed by the stored fraction, for 1- and 2-byte fractions."""
    n = _FRAC_BYTES[fsp]
    if n not in (1, 2):
        return None
    mult, div = _FRAC_MULT[n], 10 ** (6 - fsp)
    return tuple("." + format(x * mult // div, f"0{fsp}d") for x in range(256 ** n))


def frac_usec(raw: bytes, fsp: int) -> int:
    n = _FRAC_BYTES[fsp]
    return int.from_bytes(raw, "big") * _FRAC_MULT[n] if n else 0


_DATETIMES: dict[bytes, str] = {}


def _datetime2_main(head: bytes) -> str:
    text = _DATETIMES.get(head)
    if text is None:
        v = int.from_bytes(head, "big") - DATETIMEF_INT_OFS
        sign = ""
        if v < 0:  # the server never writes these; printed the way it would read them
            sign, v = "-", -v
        ymd, hms = v >> 17, v & 0x1FFFF
        ym = ymd >> 5
        text = (f"{sign}{ym // 13:04d}-{ym % 13:02d}-{ymd & 31:02d} "
                f"{hms >> 12:02d}:{hms >> 6 & 63:02d}:{hms & 63:02d}")
        if len(_DATETIMES) >= _CACHE_MAX:
            _DATETIMES.clear()
        _DATETIMES[head] = text
    return text


def datetime2_text(raw: bytes, fsp: int) -> str:
    if not fsp:
        return _datetime2_main(raw[:5])
    return _datetime2_main(raw[:5]) + _frac_text(frac_usec(raw[5:], fsp), fsp)


def timestamp2_text(raw: bytes, fsp: int) -> str:
    return timestamp_text(int.from_bytes(raw[:4], "big"), frac_usec(raw[4:], fsp), fsp)


def time2_packed(raw: bytes, fsp: int) -> int:
    """The server's packed TIME (``hms << 24 | usec``, negated when negative)."""
    n = _FRAC_BYTES[fsp]
    if n == 3:
        return int.from_bytes(raw[:6], "big") - TIMEF_OFS
    intpart = int.from_bytes(raw[:3], "big") - TIMEF_INT_OFS
    if n == 0:
        return intpart << 24
    frac = int.from_bytes(raw[3 : 3 + n], "big")
    if intpart < 0 and frac:
        intpart += 1
        frac -= 0x100 if n == 1 else 0x10000
    return (intpart << 24) + frac * _FRAC_MULT[n]


def time2_text(raw: bytes, fsp: int) -> str:
    packed = time2_packed(raw, fsp)
    sign = "-" if packed < 0 else ""
    packed = abs(packed)
    hms, usec = packed >> 24, packed & 0xFFFFFF
    return (f"{sign}{hms >> 12 & 1023:02d}:{hms >> 6 & 63:02d}:{hms & 63:02d}"
            + _frac_text(usec, fsp))


# ---------------------------------------------------------------- text -> binary


def _split_frac(text: str, fsp: int) -> tuple[str, int]:
    main, _, frac = text.partition(".")
    if len(frac) > 6 or not (frac.isdigit() or frac == ""):
        raise TemporalError(f"bad fraction in {text!r}")
    usec = int((frac + "000000")[:6])
    if fsp < 6 and usec % 10 ** (6 - fsp):
        raise TemporalError(f"{text!r} has more than {fsp} fraction digits")
    return main, usec


def _ymd_hms(text: str) -> tuple[int, int, int, int, int, int]:
    try:
        d, _, t = text.strip().partition(" ")
        y, mo, da = (int(x) for x in d.split("-"))
        h, mi, s = (int(x) for x in t.split(":")) if t else (0, 0, 0)
    except ValueError:
        raise TemporalError(f"{text!r} is not YYYY-MM-DD[ hh:mm:ss]") from None
    return y, mo, da, h, mi, s


def _hms(text: str) -> tuple[bool, int, int, int]:
    neg = text.startswith("-")
    try:
        h, mi, s = (int(x) for x in text.lstrip("-").split(":"))
    except ValueError:
        raise TemporalError(f"{text!r} is not [-]hh:mm:ss") from None
    return neg, h, mi, s


def encode_date(text: str) -> bytes:
    y, mo, d, *_ = _ymd_hms(text)
    return (y << 9 | mo << 5 | d).to_bytes(3, "little")


def encode_time(text: str) -> bytes:
    neg, h, mi, s = _hms(text)
    v = h * 10000 + mi * 100 + s
    return (-v if neg else v).to_bytes(3, "little", signed=True)


def encode_datetime(text: str) -> bytes:
    y, mo, d, h, mi, s = _ymd_hms(text)
    return (((y * 100 + mo) * 100 + d) * 1000000 + h * 10000 + mi * 100 + s).to_bytes(8, "little")


def _frac_raw(usec: int, fsp: int) -> bytes:
    n = _FRAC_BYTES[fsp]
    return (usec // _FRAC_MULT[n]).to_bytes(n, "big") if n else b""


def encode_datetime2(text: str, fsp: int) -> bytes:
    main, usec = _split_frac(text, fsp)
    y, mo, d, h, mi, s = _ymd_hms(main)
    v = ((y * 13 + mo) << 5 | d) << 17 | h << 12 | mi << 6 | s
    return (v + DATETIMEF_INT_OFS).to_bytes(5, "big") + _frac_raw(usec, fsp)


def timestamp_seconds(text: str) -> tuple[int, int]:
    main, usec = _split_frac(text, 6)
    y, mo, d, h, mi, s = _ymd_hms(main)
    if (y, mo, d, h, mi, s) == (0, 0, 0, 0, 0, 0):
        return 0, usec
    try:
        when = dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.UTC)
    except ValueError:
        raise TemporalError(f"{text!r} is not a valid TIMESTAMP") from None
    return int(when.timestamp()), usec


def encode_timestamp2(text: str, fsp: int) -> bytes:
    _split_frac(text, fsp)
    seconds, usec = timestamp_seconds(text)
    return seconds.to_bytes(4, "big") + _frac_raw(usec, fsp)


def encode_time2(text: str, fsp: int) -> bytes:
    main, usec = _split_frac(text, fsp)
    neg, h, mi, s = _hms(main)
    packed = (h << 12 | mi << 6 | s) << 24 | usec
    if neg:
        packed = -packed
    n = _FRAC_BYTES[fsp]
    if n == 3:
        return (packed + TIMEF_OFS).to_bytes(6, "big")
    intpart = packed >> 24
    frac = -((-packed) & 0xFFFFFF) if packed < 0 else packed & 0xFFFFFF  # C remainder
    out = (intpart + TIMEF_INT_OFS).to_bytes(3, "big")
    if n:
        q = int(frac / _FRAC_MULT[n])  # C division truncates toward zero
        out += (q & (0xFF if n == 1 else 0xFFFF)).to_bytes(n, "big")
    return out


# ---------------------------------------------------------------- Python objects


def to_python(text: str) -> dt.date | dt.datetime | dt.timedelta | None:
    """A temporal value's text as ``date``, ``datetime`` (naive, UTC for
    TIMESTAMP) or ``timedelta`` (TIME); None for zero or partial-zero dates."""
    if ":" in text and "-" not in text.lstrip("-"):
        main, usec = _split_frac(text, 6)
        neg, h, mi, s = _hms(main)
        delta = dt.timedelta(hours=h, minutes=mi, seconds=s, microseconds=usec)
        return -delta if neg else delta
    main, usec = _split_frac(text, 6)
    y, mo, d, h, mi, s = _ymd_hms(main)
    try:
        if " " not in main:
            return dt.date(y, mo, d)
        return dt.datetime(y, mo, d, h, mi, s, usec)
    except ValueError:
        return None


# ---------------------------------------------------------------- MariaDB 5.3-10.0 formats
#
# TIME(n), DATETIME(n) and TIMESTAMP(n) with n > 0 made before MariaDB 10.1
# (or with mysql56_temporal_format=OFF) keep their old type codes (11, 12, 7)
# with no table-map metadata, so n must come from the table definition.
#
# | type          | bytes (n = 1..6)      | big-endian value                               |
# | ------------- | --------------------- | ---------------------------------------------- |
# | TIMESTAMP(n)  | 4 + (1,1,2,2,3,3)[n]  | seconds, then usec // 10**(6-n)                 |
# | DATETIME(n)   | (6,6,7,7,7,8)[n]      | packed // 10**(6-n), packed = ((((((y*13+m)*32  |
# |               |                       | +d)*24+h)*60+mi)*60+s)*10**6+usec               |
# | TIME(n)       | (4,4,5,5,5,6)[n]      | (±packed time) // 10**(6-n) + 839:00:00 // same |

HIRES_SIZE = {7: (4, 5, 5, 6, 6, 7, 7), 12: (5, 6, 6, 7, 7, 7, 8), 11: (3, 4, 4, 5, 5, 5, 6)}
_TIME_ZERO_SECONDS = 3020400  # 839:00:00, one past the largest TIME


def mariadb_hires_text(col_type: int, raw: bytes, fsp: int) -> str:
    v = int.from_bytes(raw, "big")
    scale = 10 ** (6 - fsp)
    if col_type == 7:
        n = len(raw) - 4
        seconds, frac = v >> (8 * n), v & ((1 << (8 * n)) - 1)
        return timestamp_text(seconds, frac * scale, fsp)
    if col_type == 12:
        v *= scale
        usec, v = v % 1000000, v // 1000000
        s, v = v % 60, v // 60
        mi, v = v % 60, v // 60
        h, v = v % 24, v // 24
        d, v = v % 32, v // 32
        return (f"{v // 13:04d}-{v % 13:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}"
                + _frac_text(usec, fsp))
    v = (v - _TIME_ZERO_SECONDS * 1000000 // scale) * scale
    sign = "-" if v < 0 else ""
    v = abs(v)
    usec, secs = v % 1000000, v // 1000000
    return (f"{sign}{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
            + _frac_text(usec, fsp))


def encode_mariadb_hires(col_type: int, text: str, fsp: int) -> bytes:
    size = HIRES_SIZE[col_type][fsp]
    scale = 10 ** (6 - fsp)
    if col_type == 7:
        seconds, usec = timestamp_seconds(text)
        n = size - 4
        return seconds.to_bytes(4, "big") + (usec // scale).to_bytes(n, "big")
    main, usec = _split_frac(text, fsp)
    if col_type == 12:
        y, mo, d, h, mi, s = _ymd_hms(main)
        packed = (((((y * 13 + mo) * 32 + d) * 24 + h) * 60 + mi) * 60 + s) * 1000000 + usec
        return (packed // scale).to_bytes(size, "big")
    neg, h, mi, s = _hms(main)
    packed = ((h * 60 + mi) * 60 + s) * 1000000 + usec
    packed = -packed if neg else packed
    return (packed // scale + _TIME_ZERO_SECONDS * 1000000 // scale).to_bytes(size, "big")
