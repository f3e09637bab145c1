"""MySQL binary JSON: the storage and binlog format of JSON columns, and the
partial-JSON diff list of PARTIAL_UPDATE_ROWS events.

A document is one type byte followed by the value. All integers are
little-endian. Containers come in a *small* (16-bit offsets) and a *large*
(32-bit offsets) layout; MySQL writes the small one whenever everything fits.

| type | name         | value bytes                                                  |
| ---- | ------------ | ------------------------------------------------------------ |
| 0x00 | small object | count u16, size u16, key entries, value entries, keys, values |
| 0x01 | large object | count u32, size u32, same entries with 32-bit offsets        |
| 0x02 | small array  | count u16, size u16, value entries, values                   |
| 0x03 | large array  | count u32, size u32, value entries, values                   |
| 0x04 | literal      | 1 byte: 0x00 null, 0x01 true, 0x02 false                     |
| 0x05 | int16        | 2 bytes                                                      |
| 0x06 | uint16       | 2 bytes                                                      |
| 0x07 | int32        | 4 bytes                                                      |
| 0x08 | uint32       | 4 bytes                                                      |
| 0x09 | int64        | 8 bytes                                                      |
| 0x0A | uint64       | 8 bytes                                                      |
| 0x0B | double       | 8 bytes IEEE 754                                             |
| 0x0C | string       | var-length n, n bytes of utf8mb4                             |
| 0x0F | opaque       | MySQL field type byte, var-length n, n bytes                 |

- *size* counts the whole container from its count field on; every offset is
  relative to that same point.
- key entry: key offset (u16 small / u32 large) + key length (u16 always).
  Keys are sorted by length, then bytewise (MySQL's ``Json_key_comparator``).
- value entry: type byte + u16 (small) / u32 (large). Literals, int16 and
  uint16 (and int32/uint32 in the large layout) are *inlined* in the entry;
  anything else stores the offset of the value.
- var-length: 7 bits per byte, least significant group first, high bit set
  on every byte but the last (at most 5 bytes).
- opaque NEWDECIMAL (246): precision byte, scale byte, MySQL binary decimal.
  Opaque DATE (10), TIME (11), DATETIME (12), TIMESTAMP (7): 8-byte packed
  ``TIME_to_longlong_packed`` value.
- An empty value (zero bytes) is read as JSON null, as the server does.

Partial-JSON diff list of one column (after the column's 4-byte length)::

    repeated:  operation  1 byte (0 REPLACE, 1 INSERT, 2 REMOVE)
               path       packed length + path text (e.g. $.a."b c"[3])
               value      packed length + binary JSON   (absent for REMOVE)

Packed lengths are ``net_field_length`` integers (1 byte < 251, 0xFC + 2,
0xFD + 3, 0xFE + 8 bytes).
"""

from __future__ import annotations

import base64
import datetime as _dt
import json as _json
import math
import struct
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from binlogkit.codec.primitives import encode_packed
from binlogkit.codec.temporal import DIG2BYTES, decimal_size, encode_decimal

__all__ = [
    "JSON_INSERT",
    "JSON_REMOVE",
    "JSON_REPLACE",
    "Json",
    "JsonDiff",
    "JsonError",
    "JsonOpaque",
    "JsonUInt",
    "apply_json_diffs",
    "decode_json",
    "decode_json_diffs",
    "encode_json",
    "encode_json_diffs",
    "json_text",
]

SMALL_OBJECT, LARGE_OBJECT, SMALL_ARRAY, LARGE_ARRAY = 0x00, 0x01, 0x02, 0x03
LITERAL, INT16, UINT16, INT32, UINT32, INT64, UINT64 = 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A
DOUBLE, STRING, OPAQUE = 0x0B, 0x0C, 0x0F

JSON_REPLACE, JSON_INSERT, JSON_REMOVE = 0, 1, 2
_OP_NAMES = ("REPLACE", "INSERT", "REMOVE")

# MySQL field types that have a meaning inside JSON
TYPE_TIMESTAMP, TYPE_DATE, TYPE_TIME, TYPE_DATETIME = 7, 10, 11, 12
TYPE_VAR_STRING, TYPE_NEWDECIMAL = 253, 246
_TEMPORAL = frozenset((TYPE_TIMESTAMP, TYPE_DATE, TYPE_TIME, TYPE_DATETIME))

_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1
_MAX_DEPTH = 200  # MySQL writes at most 100 levels; this only bounds recursion


class JsonError(ValueError):
    """Malformed binary JSON (or a diff that cannot apply). ``offset`` is the byte
    offset in the data where the problem was found, when there is one."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"at byte {offset}: {message}")
        self.offset = offset


class JsonUInt(int):
    """An integer MySQL stored as unsigned (uint16/uint32/uint64).

    Decoding gives these so that re-encoding picks the same type byte (MySQL
    keeps e.g. ``CAST(5 AS UNSIGNED)`` as uint16 but a parsed ``5`` as int16).
    It behaves as a plain ``int`` otherwise.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"JsonUInt({int(self)})"


# --- opaque values: decimals and temporals --------------------------------------

def _decimal_parts(data: bytes) -> tuple[bool, str, str]:
    """(negative, integer digits, fraction digits) of an opaque NEWDECIMAL payload."""
    if len(data) < 2:
        raise JsonError("decimal payload shorter than its precision and scale bytes", 0)
    precision, scale = data[0], data[1]
    if scale > precision or precision == 0:
        raise JsonError(f"decimal precision {precision} / scale {scale}", 0)
    body = data[2:]
    n = decimal_size(precision, scale)
    if len(body) != n:
        raise JsonError(f"decimal({precision},{scale}) needs {n} bytes, has {len(body)}", 2)
    negative = not body[0] & 0x80
    value = int.from_bytes(body, "big") ^ (1 << (8 * n - 1))
    if negative:
        value ^= (1 << (8 * n)) - 1
    raw = value.to_bytes(n, "big")
    intg = precision - scale
    groups: list[tuple[int, int]] = []  # (bytes, digits)
    if intg % 9:
        groups.append((DIG2BYTES[intg % 9], intg % 9))
    groups += [(4, 9)] * (intg // 9)
    split = len(groups)
    groups += [(4, 9)] * (scale // 9)
    if scale % 9:
        groups.append((DIG2BYTES[scale % 9], scale % 9))
    pos = 0
    digits: list[str] = []
    for width, ndig in groups:
        g = int.from_bytes(raw[pos : pos + width], "big")
        if g >= 10**ndig:
            raise JsonError(f"decimal group {g} has more than {ndig} digits", 2 + pos)
        digits.append(str(g).zfill(ndig))
        pos += width
    return negative, "".join(digits[:split]), "".join(digits[split:])


def _encode_decimal(value: Decimal) -> bytes:
    if not value.is_finite():
        raise ValueError(f"{value} cannot be stored in JSON")
    text = format(value.copy_abs(), "f")  # abs() would round to the context's 28 digits
    ipart, _, frac = text.partition(".")
    ipart = ipart.lstrip("0")
    scale = len(frac)
    intg = max(1, len(ipart))
    precision = intg + scale
    if precision > 65 or scale > 30:
        raise ValueError(f"{value} needs DECIMAL({precision},{scale}); MySQL allows (65,30)")
    # the sign of a zero is not stored (MySQL keeps no negative zero here)
    return bytes((precision, scale)) + encode_decimal(value if value else value.copy_abs(),
                                                      precision, scale)


def _unpack_temporal(field_type: int, packed: int) -> str:
    """MySQL's ``my_TIME_to_str(t, 6)`` of a packed temporal value."""
    negative = packed < 0
    if negative:
        packed = -packed
    frac = packed % (1 << 24)
    whole = packed >> 24
    if field_type == TYPE_TIME:
        hms = whole
        hour, minute, second = (hms >> 12) % (1 << 10), (hms >> 6) % 64, hms % 64
        return f"{'-' if negative else ''}{hour:02d}:{minute:02d}:{second:02d}.{frac:06d}"
    ymd, hms = whole >> 17, whole % (1 << 17)
    day, ym = ymd % 32, ymd >> 5
    year, month = ym // 13, ym % 13
    date = f"{year:04d}-{month:02d}-{day:02d}"
    if field_type == TYPE_DATE:
        return date
    hour, minute, second = hms >> 12, (hms >> 6) % 64, hms % 64
    return f"{date} {hour:02d}:{minute:02d}:{second:02d}.{frac:06d}"


def _pack_temporal(field_type: int, year: int, month: int, day: int, hour: int, minute: int,
                   second: int, microsecond: int, negative: bool) -> bytes:
    if field_type == TYPE_TIME:
        value = ((hour << 12 | minute << 6 | second) << 24) + microsecond
    else:
        ymd = ((year * 13 + month) << 5) | day
        value = (((ymd << 17) | (hour << 12 | minute << 6 | second)) << 24) + microsecond
    return struct.pack("<q", -value if negative else value)


def _mysql_base64(data: bytes) -> str:
    """MySQL's ``base64_encode``: a newline after every 76 output characters."""
    text = base64.b64encode(data).decode("ascii")
    if len(text) <= 76:
        return text
    return "\n".join(text[i : i + 76] for i in range(0, len(text), 76))


class JsonOpaque:
    """An opaque JSON scalar (type 0x0F): a MySQL field type and its raw bytes.

    ``value`` is a :class:`~decimal.Decimal` for NEWDECIMAL, the string MySQL
    prints for DATE/TIME/DATETIME/TIMESTAMP (``"2015-01-15 23:24:25.000000"``:
    MySQL always prints six fractional digits for the types with a time part),
    and the raw bytes for anything else.
    """

    __slots__ = ("data", "field_type")

    def __init__(self, field_type: int, data: bytes) -> None:
        if not 0 <= field_type <= 255:
            raise ValueError(f"field type {field_type} does not fit in a byte")
        self.field_type = field_type
        self.data = bytes(data)

    @classmethod
    def from_decimal(cls, value: Decimal | int | str) -> JsonOpaque:
        """A NEWDECIMAL opaque as MySQL stores a decimal literal (scale from the
        value's exponent, at least one integer digit)."""
        return cls(TYPE_NEWDECIMAL, _encode_decimal(Decimal(value)))

    @classmethod
    def temporal(cls, field_type: int, year: int = 0, month: int = 0, day: int = 0,
                 hour: int = 0, minute: int = 0, second: int = 0, microsecond: int = 0,
                 negative: bool = False) -> JsonOpaque:
        """A DATE/TIME/DATETIME/TIMESTAMP opaque from its fields (``negative`` for TIME)."""
        if field_type not in _TEMPORAL:
            raise ValueError(f"field type {field_type} is not a temporal type")
        return cls(field_type, _pack_temporal(field_type, year, month, day, hour, minute,
                                              second, microsecond, negative))

    @classmethod
    def from_python(cls, value: _dt.date | _dt.time) -> JsonOpaque:
        """DATETIME, DATE or TIME opaque of a :mod:`datetime` value."""
        if isinstance(value, _dt.datetime):
            return cls.temporal(TYPE_DATETIME, value.year, value.month, value.day, value.hour,
                                value.minute, value.second, value.microsecond)
        if isinstance(value, _dt.date):
            return cls.temporal(TYPE_DATE, value.year, value.month, value.day)
        return cls.temporal(TYPE_TIME, hour=value.hour, minute=value.minute,
                            second=value.second, microsecond=value.microsecond)

    @property
    def value(self) -> Decimal | str | bytes:
        ft = self.field_type
        if ft == TYPE_NEWDECIMAL:
            neg, ipart, frac = _decimal_parts(self.data)
            return Decimal(f"{'-' if neg else ''}{ipart or '0'}.{frac}" if frac
                           else f"{'-' if neg else ''}{ipart or '0'}")
        if ft in _TEMPORAL:
            return self._temporal()
        return self.data

    def _temporal(self) -> str:
        if len(self.data) != 8:
            raise JsonError(f"packed temporal of {len(self.data)} bytes, expected 8", 0)
        return _unpack_temporal(self.field_type, struct.unpack("<q", self.data)[0])

    def text(self) -> str:
        """What MySQL prints for this value inside JSON text."""
        ft = self.field_type
        if ft == TYPE_NEWDECIMAL:
            neg, ipart, frac = _decimal_parts(self.data)
            body = (ipart.lstrip("0") or "0") + ("." + frac if frac else "")
            return "-" + body if neg else body
        if ft in _TEMPORAL:
            return f'"{self._temporal()}"'
        if ft == TYPE_VAR_STRING:  # MySQL prints these as plain strings
            return _quote(self.data.decode("utf-8", "replace"))
        return _quote(f"base64:type{ft}:{_mysql_base64(self.data)}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JsonOpaque):
            return NotImplemented
        return self.field_type == other.field_type and self.data == other.data

    def __hash__(self) -> int:
        return hash((JsonOpaque, self.field_type, self.data))

    def __repr__(self) -> str:
        return f"JsonOpaque({self.field_type}, {self.data!r})"


# --- decoding --------------------------------------------------------------------

_unpack_from = struct.unpack_from
_INLINE_SMALL = frozenset((LITERAL, INT16, UINT16))
_INLINE_LARGE = frozenset((LITERAL, INT16, UINT16, INT32, UINT32))
_LITERALS: tuple[Any, ...] = (None, True, False)
_TYPES = frozenset((*range(0x0D), OPAQUE))
_FIXED = {INT16: ("<h", 2), INT32: ("<i", 4), INT64: ("<q", 8), DOUBLE: ("<d", 8)}
_UFIXED = {UINT16: ("<H", 2), UINT32: ("<I", 4), UINT64: ("<Q", 8)}


def _varlen(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = 0
    for i in range(5):
        if pos + i >= end:
            break
        b = data[pos + i]
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            if value > 0xFFFFFFFF:
                break
            return value, pos + i + 1
    raise JsonError("a variable-length size (at most 5 bytes, within the value)", pos)


def _inline(t: int, v: int, at: int) -> Any:
    if t == LITERAL:
        lit = v & 0xFF
        if lit > 2:
            raise JsonError(f"literal 0, 1 or 2, found {lit}", at)
        return _LITERALS[lit]
    if t == INT16:
        v &= 0xFFFF
        return v - 0x10000 if v & 0x8000 else v
    if t == UINT16:
        return JsonUInt(v & 0xFFFF)
    if t == INT32:
        return v - 0x100000000 if v & 0x80000000 else v
    return JsonUInt(v)  # UINT32


def _node(data: bytes, t: int, pos: int, end: int, depth: int, budget: list[int]) -> Any:
    """The value of type ``t`` stored at ``pos``; it must end by ``end``."""
    if t == STRING:
        n, p = _varlen(data, pos, end)
        if p + n > end:
            raise JsonError(f"string of {n} bytes runs past the end of its container", pos)
        try:
            return data[p : p + n].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonError("utf-8 string", p + exc.start) from None
    if t <= LARGE_ARRAY:
        return _container(data, t, pos, end, depth, budget)
    fixed = _FIXED.get(t)
    if fixed is not None:
        if pos + fixed[1] > end:
            raise JsonError(f"{fixed[1]}-byte number", pos)
        return _unpack_from(fixed[0], data, pos)[0]
    ufixed = _UFIXED.get(t)
    if ufixed is not None:
        if pos + ufixed[1] > end:
            raise JsonError(f"{ufixed[1]}-byte number", pos)
        return JsonUInt(_unpack_from(ufixed[0], data, pos)[0])
    if t == LITERAL:
        if pos >= end:
            raise JsonError("literal byte", pos)
        return _inline(LITERAL, data[pos], pos)
    if t == OPAQUE:
        if pos >= end:
            raise JsonError("opaque field type byte", pos)
        n, p = _varlen(data, pos + 1, end)
        if p + n > end:
            raise JsonError(f"opaque value of {n} bytes runs past the end of its container", pos)
        return JsonOpaque(data[pos], data[p : p + n])
    raise JsonError(f"JSON type byte (0x00-0x0C or 0x0F), found 0x{t:02x}", pos)


def _container(data: bytes, t: int, pos: int, end: int, depth: int, budget: list[int]) -> Any:
    if depth > _MAX_DEPTH:
        raise JsonError(f"nesting deeper than {_MAX_DEPTH} levels", pos)
    large = t & 1
    is_object = t <= LARGE_OBJECT
    what = "object" if is_object else "array"
    if large:
        hdr, ke, ve, kfmt, vfmt = 8, 6, 5, "IH", "BI"
        if pos + 8 > end:
            raise JsonError(f"large {what} header (8 bytes)", pos)
        count, size = _unpack_from("<II", data, pos)
    else:
        hdr, ke, ve, kfmt, vfmt = 4, 4, 3, "HH", "BH"
        if pos + 4 > end:
            raise JsonError(f"small {what} header (4 bytes)", pos)
        count, size = _unpack_from("<HH", data, pos)
    if size > end - pos or size < hdr:
        raise JsonError(f"{what} size {size} within the {end - pos} bytes left", pos)
    entries = count * ((ke if is_object else 0) + ve)
    if hdr + entries > size:
        raise JsonError(f"{what} of {count} elements within its size {size}", pos)
    budget[0] -= count
    if budget[0] < 0:
        raise JsonError("value entries that do not share their values", pos)
    cend = pos + size
    depth += 1
    inline = _INLINE_LARGE if large else _INLINE_SMALL
    vpos = pos + hdr + (count * ke if is_object else 0)
    vals = _unpack_from("<" + vfmt * count, data, vpos)
    if is_object:
        keys = _unpack_from("<" + kfmt * count, data, pos + hdr)
        obj: dict[str, Any] = {}
        for i in range(count):
            ko = keys[2 * i]
            kl = keys[2 * i + 1]
            if ko + kl > size:
                raise JsonError(f"key of {kl} bytes at offset {ko} within the object size {size}",
                                pos + hdr + i * ke)
            try:
                key = data[pos + ko : pos + ko + kl].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise JsonError("utf-8 key", pos + ko + exc.start) from None
            vt = vals[2 * i]
            v = vals[2 * i + 1]
            if vt in inline:
                obj[key] = _inline(vt, v, vpos + i * ve)
            else:
                if vt not in _TYPES:
                    raise JsonError(f"JSON type byte (0x00-0x0C or 0x0F), found 0x{vt:02x}",
                                    vpos + i * ve)
                if v >= size:
                    raise JsonError(f"value offset {v} within the object size {size}",
                                    vpos + i * ve)
                obj[key] = _node(data, vt, pos + v, cend, depth, budget)
        return obj
    arr: list[Any] = []
    append = arr.append
    for i in range(count):
        vt = vals[2 * i]
        v = vals[2 * i + 1]
        if vt in inline:
            append(_inline(vt, v, vpos + i * ve))
        else:
            if vt not in _TYPES:
                raise JsonError(f"JSON type byte (0x00-0x0C or 0x0F), found 0x{vt:02x}",
                                vpos + i * ve)
            if v >= size:
                raise JsonError(f"value offset {v} within the array size {size}", vpos + i * ve)
            append(_node(data, vt, pos + v, cend, depth, budget))
    return arr


def _decode(data: bytes, start: int, end: int) -> Any:
    if start == end:
        return None
    t = data[start]
    if t not in _TYPES:
        raise JsonError(f"JSON type byte (0x00-0x0C or 0x0F), found 0x{t:02x}", start)
    return _node(data, t, start + 1, end, 0, [end - start])


def decode_json(data: bytes) -> Any:
    """Decode one binary JSON document.

    Objects become dicts in stored key order, arrays lists; strings str;
    numbers int (:class:`JsonUInt` when stored unsigned) or float; ``true``/
    ``false``/``null`` bool/None; opaque values :class:`JsonOpaque`. Zero bytes
    decode as JSON null (what MySQL reads for an empty JSON value). Raises
    :class:`JsonError` naming the byte offset of malformed input.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    return _decode(data, 0, len(data))


# --- encoding --------------------------------------------------------------------


class _TooBig(Exception):
    """The small layout overflowed: the nearest large-capable ancestor retries."""


def _key_order(item: tuple[bytes, Any]) -> tuple[int, bytes]:
    return len(item[0]), item[0]


def _varlen_bytes(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _int_kind(v: int) -> bool:
    """True if MySQL holds ``v`` as unsigned."""
    if isinstance(v, JsonUInt) or v > _INT64_MAX:
        if not 0 <= v <= _UINT64_MAX:
            raise ValueError(f"{v} does not fit in a 64-bit unsigned integer")
        return True
    if v < _INT64_MIN:
        raise ValueError(f"{v} does not fit in a 64-bit integer")
    return False


def _try_inline(v: Any, out: bytearray, pos: int, large: bool) -> bool:
    if v is None or v is True or v is False:
        out[pos] = LITERAL
        struct.pack_into("<I" if large else "<H", out, pos + 1, 0 if v is None else
                         (1 if v else 2))
        return True
    if isinstance(v, int):
        if _int_kind(v):
            if v <= 0xFFFF:
                out[pos] = UINT16
            elif large and v <= 0xFFFFFFFF:
                out[pos] = UINT32
            else:
                return False
            struct.pack_into("<I" if large else "<H", out, pos + 1, v)
            return True
        if -0x8000 <= v <= 0x7FFF:
            out[pos] = INT16
        elif large and -0x80000000 <= v <= 0x7FFFFFFF:
            out[pos] = INT32
        else:
            return False
        struct.pack_into("<i" if large else "<h", out, pos + 1, v)
        return True
    return False


def _enc_value(v: Any, out: bytearray, small_parent: bool) -> int:
    """Append the value of ``v`` to ``out``; return its type byte."""
    if isinstance(v, str):
        b = v.encode("utf-8")
        out += _varlen_bytes(len(b))
        out += b
        return STRING
    if isinstance(v, dict | list | tuple):
        is_object = isinstance(v, dict)
        start = len(out)
        try:
            _enc_container(v, out, False)
            return SMALL_OBJECT if is_object else SMALL_ARRAY
        except _TooBig:
            if small_parent:
                raise
            del out[start:]
        _enc_container(v, out, True)
        return LARGE_OBJECT if is_object else LARGE_ARRAY
    if v is None or v is True or v is False:
        out.append(0 if v is None else (1 if v else 2))
        return LITERAL
    if isinstance(v, int):
        if _int_kind(v):
            if v <= 0xFFFF:
                out += struct.pack("<H", v)
                return UINT16
            if v <= 0xFFFFFFFF:
                out += struct.pack("<I", v)
                return UINT32
            out += struct.pack("<Q", v)
            return UINT64
        if -0x8000 <= v <= 0x7FFF:
            out += struct.pack("<h", v)
            return INT16
        if -0x80000000 <= v <= 0x7FFFFFFF:
            out += struct.pack("<i", v)
            return INT32
        out += struct.pack("<q", v)
        return INT64
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{v} cannot be stored in JSON")
        out += struct.pack("<d", v)
        return DOUBLE
    if isinstance(v, JsonOpaque | Decimal | _dt.date | _dt.time):
        op = _as_opaque(v)
        out.append(op.field_type)
        out += _varlen_bytes(len(op.data))
        out += op.data
        return OPAQUE
    if isinstance(v, Json):
        return _enc_value(v.value, out, small_parent)
    raise TypeError(f"cannot encode {type(v).__name__} as JSON")


def _as_opaque(v: JsonOpaque | Decimal | _dt.date | _dt.time) -> JsonOpaque:
    if isinstance(v, JsonOpaque):
        return v
    if isinstance(v, Decimal):
        return JsonOpaque.from_decimal(v)
    return JsonOpaque.from_python(v)


def _enc_container(v: dict[str, Any] | list[Any] | tuple[Any, ...], out: bytearray,
                   large: bool) -> None:
    start = len(out)
    limit = 0xFFFFFFFF if large else 0xFFFF
    off_fmt = "<I" if large else "<H"
    ve = 5 if large else 3
    n = len(v)
    if n > limit:
        raise _TooBig if not large else ValueError("JSON container too big")
    out += struct.pack("<II" if large else "<HH", n, 0)
    if isinstance(v, dict):
        items = []
        for k, val in v.items():
            if not isinstance(k, str):
                raise TypeError(f"JSON object keys must be str, not {type(k).__name__}")
            kb = k.encode("utf-8")
            if len(kb) > 0xFFFF:
                raise ValueError(f"JSON object key of {len(kb)} bytes (at most 65535)")
            items.append((kb, val))
        items.sort(key=_key_order)
        ke = 6 if large else 4
        offset = len(out) - start + n * (ke + ve)
        kfmt = "<IH" if large else "<HH"
        for kb, _ in items:
            if offset > limit:
                _too_big(large)
            out += struct.pack(kfmt, offset, len(kb))
            offset += len(kb)
        values: Sequence[Any] = [val for _, val in items]
        entry = len(out)
        out += bytes(n * ve)
        for kb, _ in items:
            out += kb
    else:
        values = v
        entry = len(out)
        out += bytes(n * ve)
    for val in values:
        if not _try_inline(val, out, entry, large):
            offset = len(out) - start
            if offset > limit:
                _too_big(large)
            struct.pack_into(off_fmt, out, entry + 1, offset)
            out[entry] = _enc_value(val, out, not large)
        entry += ve
    size = len(out) - start
    if size > limit:
        _too_big(large)
    struct.pack_into(off_fmt, out, start + (4 if large else 2), size)


def _too_big(large: bool) -> None:
    if large:
        raise ValueError("JSON document larger than 4 GiB")
    raise _TooBig


def encode_json(value: Any) -> bytes:
    """Binary JSON of ``value``, laid out exactly as MySQL's serializer does.

    Accepts what :func:`decode_json` returns, plus tuples (arrays),
    :class:`~decimal.Decimal` and :mod:`datetime` values (stored as opaque
    NEWDECIMAL/DATETIME/DATE/TIME like ``CAST(... AS JSON)``).
    """
    out = bytearray(1)
    out[0] = _enc_value(value, out, False)
    return bytes(out)


# --- JSON text -------------------------------------------------------------------

_ESCAPES = {i: f"\\u{i:04x}" for i in range(0x20)}
_ESCAPES.update({0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r",
                 0x22: '\\"', 0x5C: "\\\\"})


def _quote(s: str) -> str:
    return '"' + s.translate(_ESCAPES) + '"'


def _format_double(d: float) -> str:
    """MySQL's ``my_gcvt(d, DOUBLE, 34)`` plus the ``.0`` JSON appends to whole numbers.

    The digits are the shortest that round-trip (as Python's repr); 'f' format
    is used when the decimal exponent lies in [-14, 15] (or the digits reach
    past the point), else 'e' format without '+' or exponent padding.
    """
    r = repr(abs(d))
    mant, _, exp = r.partition("e")
    ipart, _, frac = mant.partition(".")
    digits = (ipart + frac).lstrip("0")
    if not digits:  # zero
        return "-0.0" if math.copysign(1.0, d) < 0 else "0.0"
    decpt = len(ipart) + (int(exp) if exp else 0)
    if ipart == "0":
        stripped = frac.lstrip("0")
        decpt = (int(exp) if exp else 0) - (len(frac) - len(stripped))
    digits = digits.rstrip("0")
    n = len(digits)
    sign = "-" if d < 0 else ""
    if -14 <= decpt <= 15 or (decpt > 15 and n > decpt):
        if decpt <= 0:
            text = "0." + "0" * -decpt + digits
        elif decpt < n:
            text = digits[:decpt] + "." + digits[decpt:]
        else:
            text = digits + "0" * (decpt - n) + ".0"
        return sign + text
    e = decpt - 1
    return f"{sign}{digits[0]}{'.' + digits[1:] if n > 1 else ''}e{e}"


def _mysql_key_order(k: str) -> tuple[int, bytes]:
    b = k.encode("utf-8")
    return len(b), b


def _text(v: Any, parts: list[str]) -> None:
    if isinstance(v, str):
        parts.append('"' + v.translate(_ESCAPES) + '"')
    elif v is None:
        parts.append("null")
    elif v is True:
        parts.append("true")
    elif v is False:
        parts.append("false")
    elif isinstance(v, int):
        parts.append(str(int(v)))
    elif isinstance(v, float):
        parts.append(_format_double(v))
    elif isinstance(v, dict):
        parts.append("{")
        first = True
        for k in sorted(v, key=_mysql_key_order):
            if not first:
                parts.append(", ")
            first = False
            parts.append('"' + k.translate(_ESCAPES) + '": ')
            _text(v[k], parts)
        parts.append("}")
    elif isinstance(v, list | tuple):
        parts.append("[")
        for i, item in enumerate(v):
            if i:
                parts.append(", ")
            _text(item, parts)
        parts.append("]")
    elif isinstance(v, JsonOpaque | Decimal | _dt.date | _dt.time):
        parts.append(_as_opaque(v).text())
    elif isinstance(v, Json):
        _text(v.value, parts)
    else:
        raise TypeError(f"cannot print {type(v).__name__} as JSON")


def json_text(value: Any) -> str:
    """The JSON text MySQL prints for ``value`` (``SELECT``, ``CAST(... AS CHAR)``):
    ``", "`` and ``": "`` separators, keys in MySQL's order (length, then bytes),
    doubles like ``my_gcvt``, only ``"``, ``\\`` and control characters escaped."""
    parts: list[str] = []
    _text(value, parts)
    return "".join(parts)


# --- the value of a JSON column ------------------------------------------------------

_MISSING: Any = object()


class Json:
    """The value of a MySQL JSON column (so SQL NULL, ``None``, differs from JSON
    null, ``Json(value=None)``).

    ``raw`` is the binary as logged (None when made from a value or by applying
    diffs); ``value`` decodes it lazily; ``diffs`` are the partial-update diffs
    that produced the value, if any.
    """

    __slots__ = ("_value", "diffs", "raw")

    def __init__(self, raw: bytes | None = None, value: Any = _MISSING,
                 diffs: Sequence[JsonDiff] | None = None) -> None:
        if raw is None and value is _MISSING and diffs is None:
            raise TypeError("Json needs raw bytes, a value or diffs")
        self.raw = None if raw is None else bytes(raw)
        self._value = value
        self.diffs = None if diffs is None else tuple(diffs)

    @property
    def value(self) -> Any:
        v = self._value
        if v is _MISSING:
            if self.raw is None:
                raise JsonError("only the partial-update diffs of this document are known"
                                " (the before image does not hold it)")
            v = self._value = decode_json(self.raw)
        return v

    @property
    def known(self) -> bool:
        """False for diffs whose document is unknown (a MINIMAL before image)."""
        return self.raw is not None or self._value is not _MISSING

    def to_bytes(self) -> bytes:
        """The binary as logged, or MySQL's serialization of the value."""
        return self.raw if self.raw is not None else encode_json(self.value)

    def text(self) -> str:
        """MySQL's JSON text of the value."""
        return json_text(self.value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Json):
            return NotImplemented
        return bool(self.value == other.value)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        extra = f", diffs={list(self.diffs)!r}" if self.diffs else ""
        if not self.known:
            return f"Json(diffs={list(self.diffs or ())!r})"
        return f"Json(value={self.value!r}{extra})"


# --- partial-JSON diffs ---------------------------------------------------------------


@dataclass(frozen=True)
class JsonDiff:
    """One logical change of a partial JSON update: ``op`` (JSON_REPLACE,
    JSON_INSERT or JSON_REMOVE), the MySQL JSON path it applies to, and the new
    value (None for REMOVE)."""

    op: int
    path: str
    value: Any = None

    def __post_init__(self) -> None:
        if self.op not in (JSON_REPLACE, JSON_INSERT, JSON_REMOVE):
            raise ValueError(f"JSON diff operation {self.op} (0 REPLACE, 1 INSERT, 2 REMOVE)")


def _packed_at(data: bytes, pos: int, what: str) -> tuple[int, int]:
    if pos >= len(data):
        raise JsonError(f"packed length of the {what}", pos)
    first = data[pos]
    if first < 251:
        return first, pos + 1
    width = {252: 2, 253: 3, 254: 8}.get(first)
    if width is None or pos + 1 + width > len(data):
        raise JsonError(f"packed length of the {what}", pos)
    return int.from_bytes(data[pos + 1 : pos + 1 + width], "little"), pos + 1 + width


def decode_json_diffs(data: bytes) -> list[JsonDiff]:
    """The diffs of one column of a PARTIAL_UPDATE_ROWS after image (the column
    value without its 4-byte length)."""
    if not isinstance(data, bytes):
        data = bytes(data)
    out: list[JsonDiff] = []
    pos, end = 0, len(data)
    while pos < end:
        op = data[pos]
        if op > JSON_REMOVE:
            raise JsonError(f"diff operation 0, 1 or 2, found {op}", pos)
        n, p = _packed_at(data, pos + 1, "path")
        if p + n > end:
            raise JsonError(f"path of {n} bytes within the diff", p)
        try:
            path = data[p : p + n].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonError("utf-8 path", p + exc.start) from None
        pos = p + n
        if op == JSON_REMOVE:
            out.append(JsonDiff(op, path))
            continue
        n, p = _packed_at(data, pos, "value")
        if p + n > end:
            raise JsonError(f"value of {n} bytes within the diff", p)
        if n == 0:
            raise JsonError("a binary JSON value (length 0)", p)
        out.append(JsonDiff(op, path, _decode(data, p, p + n)))
        pos = p + n
    return out


def encode_json_diffs(diffs: Sequence[JsonDiff]) -> bytes:
    """Inverse of :func:`decode_json_diffs` (without the 4-byte length)."""
    out = bytearray()
    for d in diffs:
        path = d.path.encode("utf-8")
        out.append(d.op)
        out += encode_packed(len(path))
        out += path
        if d.op != JSON_REMOVE:
            value = encode_json(d.value)
            out += encode_packed(len(value))
            out += value
    return bytes(out)


# Path legs: str for a member, (index, from_end) for an array cell.
_Leg = str | tuple[int, bool]
_IDENT_EXTRA = frozenset("$_\u200c\u200d")
_IDENT_CATS = frozenset(("Lu", "Ll", "Lt", "Lm", "Lo", "Nl"))
_IDENT_MORE = frozenset(("Mn", "Mc", "Nd", "Pc"))


def _is_identifier(name: str) -> bool:
    """ECMAScript IdentifierName, as MySQL checks before printing a key unquoted."""
    if not name:
        return False
    for i, ch in enumerate(name):
        if ch in _IDENT_EXTRA:
            continue
        cat = unicodedata.category(ch)
        if cat in _IDENT_CATS or (i and cat in _IDENT_MORE):
            continue
        return False
    return True


def json_path(*legs: str | int) -> str:
    """Format a path as MySQL does: ``json_path("a", "b c", 3)`` is ``$.a."b c"[3]``."""
    parts = ["$"]
    for leg in legs:
        if isinstance(leg, int):
            parts.append(f"[{leg}]")
        else:
            parts.append("." + (leg if _is_identifier(leg) else _quote(leg)))
    return "".join(parts)


def _parse_path(path: str) -> list[_Leg]:
    s = path.strip()
    if not s.startswith("$"):
        raise JsonError(f"JSON path {path!r} does not start with '$'")
    legs: list[_Leg] = []
    i, n = 1, len(s)

    def bad(why: str) -> JsonError:
        return JsonError(f"JSON path {path!r}: {why} at character {i}")

    while True:
        while i < n and s[i].isspace():
            i += 1
        if i >= n:
            return legs
        c = s[i]
        if c == ".":
            i += 1
            while i < n and s[i].isspace():
                i += 1
            if i < n and s[i] == '"':
                j = i + 1
                while j < n and s[j] != '"':
                    j += 2 if s[j] == "\\" else 1
                if j >= n:
                    raise bad("unterminated quoted member")
                try:
                    legs.append(_json.loads(s[i : j + 1]))
                except ValueError:
                    raise bad("bad quoted member") from None
                i = j + 1
            else:
                j = i
                while j < n and s[j] not in ".[" and not s[j].isspace():
                    j += 1
                name = s[i:j]
                if name == "*" or not name:
                    raise bad("wildcards and empty members cannot be applied")
                legs.append(name)
                i = j
        elif c == "[":
            j = s.find("]", i)
            if j < 0:
                raise bad("unterminated array index")
            inner = s[i + 1 : j].strip()
            from_end = inner.startswith("last")
            if from_end:
                rest = inner[4:].strip()
                if rest.startswith("-"):
                    inner = rest[1:].strip()
                elif rest:
                    raise bad("bad array index")
                else:
                    inner = "0"
            if not inner.isdigit() or not inner.isascii():
                raise bad("array index (wildcards and ranges cannot be applied)")
            legs.append((int(inner), from_end))
            i = j + 1
        else:
            raise bad("'.' or '['")


def _position(leg: tuple[int, bool], size: int) -> tuple[int, bool]:
    """(position, within bounds) as MySQL's Json_array_index computes them."""
    index, from_end = leg
    if from_end:
        return (size - index - 1 if index < size else 0), index < size
    return min(index, size), index < size


def _sorted_object(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(sorted(obj.items(), key=lambda kv: _mysql_key_order(kv[0])))


def _apply_last(node: Any, leg: _Leg, op: int, value: Any, where: str) -> Any:
    if isinstance(node, dict) and isinstance(leg, str):
        present = leg in node
        if (op == JSON_INSERT) == present:
            raise JsonError(f"{where}: member {'exists' if present else 'not found'}")
        obj = dict(node)
        if op == JSON_REMOVE:
            del obj[leg]
            return obj
        obj[leg] = value
        return obj if present else _sorted_object(obj)
    if isinstance(node, list) and isinstance(leg, tuple):
        pos, within = _position(leg, len(node))
        arr = list(node)
        if op == JSON_INSERT:
            arr.insert(pos, value)
            return arr
        if not within:
            raise JsonError(f"{where}: array index out of range")
        if op == JSON_REMOVE:
            del arr[pos]
        else:
            arr[pos] = value
        return arr
    raise JsonError(f"{where}: path does not match the document")


def _apply_at(node: Any, legs: list[_Leg], i: int, op: int, value: Any, where: str) -> Any:
    leg = legs[i]
    if i == len(legs) - 1:
        return _apply_last(node, leg, op, value, where)
    if isinstance(node, dict) and isinstance(leg, str):
        if leg not in node:
            raise JsonError(f"{where}: member {leg!r} not found")
        obj = dict(node)
        obj[leg] = _apply_at(node[leg], legs, i + 1, op, value, where)
        return obj
    if isinstance(node, list) and isinstance(leg, tuple):
        pos, within = _position(leg, len(node))
        if not within:
            raise JsonError(f"{where}: array index out of range")
        arr = list(node)
        arr[pos] = _apply_at(node[pos], legs, i + 1, op, value, where)
        return arr
    raise JsonError(f"{where}: path does not match the document")


def apply_json_diffs(doc: Any, diffs: Sequence[JsonDiff]) -> Any:
    """Apply diffs in order with the server's semantics (``apply_json_diffs`` in
    sql/json_diff.cc) and return the new document; ``doc`` is not mutated
    (containers along each path are copied, the rest is shared).

    REPLACE needs the path to exist; INSERT adds a member that must not exist,
    or inserts into an array before the index (past the end appends); REMOVE
    deletes an existing member or cell. No auto-wrapping. A diff that does not
    apply raises :class:`JsonError`, as the server rejects it.
    """
    for d in diffs:
        legs = _parse_path(d.path)
        where = f"{_OP_NAMES[d.op]} {d.path}"
        if not legs:
            raise JsonError(f"{where}: a diff cannot apply to the whole document")
        doc = _apply_at(doc, legs, 0, d.op, d.value, where)
    return doc

