"""Row images to Python values and back, compiled once per table layout.

For each (columns, columns-present-in-image) pair a Python function is
generated that walks one image: it reads the null bitmap once, unpacks runs
of fixed-width numeric columns with a single ``struct`` call when none of
them is NULL, and decodes every other column with code chosen for its type
when the function was built. Functions are cached (bounded).

Python values, per column type:

| type                                 | value                                          |
| ------------------------------------ | ---------------------------------------------- |
| integers, YEAR (0 stays 0), BIT      | ``int`` (signedness from metadata)             |
| FLOAT, DOUBLE                        | ``float``                                      |
| DECIMAL                              | ``decimal.Decimal`` with the column's scale    |
| DATE, TIME, DATETIME, TIMESTAMP      | ``str`` as the server prints it (TIMESTAMP UTC)|
| CHAR, VARCHAR, TEXT, ENUM, SET       | ``str``; ``bytes`` when the charset is unknown |
|                                      | or a value does not survive it; ENUM/SET       |
|                                      | ``int`` when their members are unknown         |
| BINARY (pad restored), VARBINARY,    | ``bytes``                                      |
| BLOB, GEOMETRY                       |                                                |
| JSON (MySQL)                         | :class:`binlogkit.codec.jsonb.Json`            |
| VECTOR                               | ``tuple[float, ...]``                          |
| MariaDB UUID, INET6, INET4           | ``str`` when a caller schema names the type    |

A column absent from the image is absent from the row dict; NULL is None.
"""

from __future__ import annotations

import codecs
import ipaddress
import re
import socket
import struct
import uuid as uuidlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import repeat
from typing import Any, NamedTuple

from binlogkit.codec import temporal as tp
from binlogkit.codec.charsets import charmap, decode_text, encode_text, exact, python_codec
from binlogkit.codec.columns import BLOB, GEOMETRY, JSON, STRING, VARCHAR, VECTOR, Column
from binlogkit.codec.jsonb import (
    Json,
    apply_json_diffs,
    decode_json_diffs,
    encode_json,
    encode_json_diffs,
)
from binlogkit.codec.primitives import decode_packed, encode_packed
from binlogkit.codec.rowimage import (
    ENUM_TYPE,
    PARTIAL_JSON_UPDATES,
    SET_TYPE,
    RowFramingError,
    present,
    rows_data,
)
from binlogkit.codec.types import TWO_BITMAPS, UPDATE_ROWS, EventType

WRITE_TYPES = frozenset({20, 23, 30, 166, 169})
# binlog type -> (struct char signed, unsigned, size) for fixed-width numeric runs
_RUN: dict[int, tuple[str, str]] = {1: ("b", "B"), 2: ("h", "H"), 3: ("i", "I"),
                                     8: ("q", "Q"), 4: ("f", "f"), 5: ("d", "d")}


# old-format temporal types: (size, text of the little-endian integer, signed)
_OLD_TEMPORAL: dict[int, tuple[int, Callable[[int], str], bool]] = {
    10: (3, tp.date_text, False), 14: (3, tp.date_text, False), 11: (3, tp.time_text, True),
    12: (8, tp.datetime_text, False), 7: (4, tp.timestamp_text, False)}


class Row(NamedTuple):
    """One row change: ``before``/``after`` dicts keyed by column name (``@N``
    when unknown). ``options`` is a PARTIAL_UPDATE_ROWS image's value_options;
    ``pads`` keeps the unused high bits of the (before, after) null bitmaps,
    which old servers set, so that encoding gives back the same bytes."""

    before: dict[str, Any] | None
    after: dict[str, Any] | None
    options: int | None = None
    pads: tuple[int, int] | None = None  # null-bitmap padding bits set (old servers)


# ---------------------------------------------------------------- value helpers


def _charset_codec(col: Column) -> tuple[str | None, bool]:
    """(python codec, exact) for a text column; codec None means bytes."""
    if col.charset is None or col.is_binary:
        return None, False
    codec = python_codec(col.charset)
    return codec, bool(codec and exact(col.charset))


def _text_decoder(col: Column) -> Callable[[bytes], str | bytes]:
    cs = col.charset
    return lambda raw: decode_text(raw, cs)


def _enum(values: tuple[str, ...] | None) -> Callable[[int], str | int]:
    if values is None:
        return lambda i: i
    table = ("", *values)
    return lambda i: table[i] if i < len(table) else i


def _set(values: tuple[str, ...] | None) -> Callable[[int], str | int]:
    if values is None:
        return lambda m: m
    vals = values

    def name(mask: int) -> str | int:
        if mask >> len(vals):
            return mask
        return ",".join(v for k, v in enumerate(vals) if mask >> k & 1)

    return name


def _json_value(raw: bytes) -> Any:
    return Json(raw=raw)


def _vector(raw: bytes) -> tuple[float, ...]:
    if len(raw) % 4:
        raise RowFramingError(f"VECTOR value of {len(raw)} bytes is not a float32 array")
    return struct.unpack(f"<{len(raw) // 4}f", raw)


def _mariadb_special(col: Column) -> Callable[[bytes], Any] | None:
    kind = (col.data_type or "").lower()
    if kind == "uuid":
        return lambda raw: str(uuidlib.UUID(bytes=raw))
    if kind == "inet6":  # the C library's text, as the server prints it (::ffff:1.2.3.4)
        return lambda raw: socket.inet_ntop(socket.AF_INET6, raw)
    if kind == "inet4":
        return lambda raw: str(ipaddress.IPv4Address(raw))
    return None


# ---------------------------------------------------------------- code generation


class _Gen:
    """Builds the source of one image decoder. ``safe`` decoders keep every
    text value that does not decode as bytes and test every column for NULL."""

    def __init__(self, safe: bool) -> None:
        self.lines: list[str] = []
        self.env: dict[str, Any] = {"Decimal": Decimal}
        self.safe = safe
        # UPDATE loops: the before image keeps the raw form of its costlier
        # columns (``keep``: column index -> (value name, raw name)); the
        # after image reuses the before value when the raw forms are equal.
        self.keep: dict[int, tuple[str, str]] | None = None
        self.reuse: dict[int, tuple[str, str]] = {}

    def name(self, prefix: str, obj: Any) -> str:
        key = f"{prefix}{len(self.env)}"
        self.env[key] = obj
        return key

    def emit(self, indent: int, text: str) -> None:
        self.lines.extend("    " * indent + ln for ln in text.strip("\n").split("\n"))

    def reusable(self, col: Column) -> bool:
        """Columns worth reusing across an UPDATE's images: those whose value
        costs more to build than comparing their bytes."""
        if col.type in (246, 17, 18):
            return True
        return (col.type in (STRING, VARCHAR, 253, BLOB) and not col.is_binary
                and col.charset is not None and _mariadb_special(col) is None)

    def same(self, col: Column, v: str, ind: int, raw: str) -> int:
        """Before image: remember ``raw``. After image: emit ``v`` = the before
        value when ``raw`` equals what the before image had, and an ``else:``
        for the code that builds it; returns that code's indent."""
        if self.keep is not None:
            self.keep[col.index] = (v, f"r{v}")
            self.emit(ind, f"r{v} = {raw}")
            return ind
        found = self.reuse.get(col.index)
        if found is None:
            return ind
        self.emit(ind, f"if {raw} == {found[1]}: {v} = {found[0]}\nelse:")
        return ind + 1

    @staticmethod
    def length_width(col: Column) -> int:
        """Size of the length prefix of a variable-length column; 0 for others."""
        t = col.type
        if t in (STRING, VARCHAR, 253):
            return 1 if col.max_length < 256 else 2
        if t in (BLOB, JSON, GEOMETRY, VECTOR):
            return col.meta
        return 0

    def value(self, col: Column, v: str, ind: int,  # noqa: C901, PLR0912, PLR0915
              length: str | None = None) -> None:
        """Code that reads column ``col`` at ``p`` into ``v`` and advances ``p``;
        ``length``: a name holding the length already read (its prefix is
        still to be skipped)."""
        t, m = col.type, col.meta
        e = self.emit
        uns = bool(col.unsigned)
        if t in _RUN:
            s = struct.Struct("<" + _RUN[t][1 if uns else 0])
            e(ind, f"{v} = {self.name('S', s.unpack_from)}(d, p)[0]; p += {s.size}")
        elif t == 9:
            e(ind, f"{v} = int.from_bytes(d[p:p + 3], 'little', signed={not uns}); p += 3")
        elif t == 13:
            e(ind, f"{v} = d[p]; {v} = {v} + 1900 if {v} else 0; p += 1")
        elif t == 16:
            n = (m & 0xFF) + (1 if m >> 8 else 0)
            e(ind, f"{v} = int.from_bytes(d[p:p + {n}], 'big'); p += {n}")
        elif t == 246:
            letters = tp.decimal_struct(m >> 8, m & 0xFF)
            st = struct.Struct(">" + letters)
            fields = [f"f{i}" for i in range(len(letters))]
            e(ind, f"{', '.join(fields)}, = {self.name('S', st.unpack_from)}(d, p); p += {st.size}")
            self.decimal(col, v, ind, fields)
        elif t == 0:
            if not col.max_length:
                raise RowFramingError(
                    f"column {col.key}: old DECIMAL needs its length from a caller schema")
            e(ind, f"{v} = Decimal(d[p:p + {col.max_length}].decode('ascii').strip());"
                   f" p += {col.max_length}")
        elif t in (7, 11, 12) and col.fsp:
            n = tp.HIRES_SIZE[t][col.fsp]
            f = self.name("F", lambda raw, _t=t, _f=col.fsp: tp.mariadb_hires_text(_t, raw, _f))
            e(ind, f"{v} = {f}(d[p:p + {n}]); p += {n}")
        elif t in _OLD_TEMPORAL:
            n, fn, signed = _OLD_TEMPORAL[t]
            f = self.name("F", fn)
            e(ind, f"{v} = {f}(int.from_bytes(d[p:p + {n}], 'little', signed={signed}));"
                   f" p += {n}")
        elif t in (17, 18):
            self._temporal(col, v, ind)
        elif t == 19:
            n = 3 + tp.frac_bytes(m)
            f = self.name("F", lambda raw, _m=m: tp.time2_text(raw, _m))
            e(ind, f"{v} = {f}(d[p:p + {n}]); p += {n}")
        elif t == 6:
            e(ind, f"{v} = None")
        elif t in (ENUM_TYPE, SET_TYPE):
            n = col.max_length
            f = self.name("F", _enum(col.enum_values) if t == ENUM_TYPE else _set(col.set_values))
            e(ind, f"{v} = {f}(int.from_bytes(d[p:p + {n}], 'little')); p += {n}")
        elif t in (STRING, VARCHAR, 253, BLOB, JSON, GEOMETRY, VECTOR):
            w = self.length_width(col)
            if not 1 <= w <= 4:
                raise RowFramingError(f"column {col.key}: length size {w} is not 1-4")
            if length is not None:
                e(ind, f"n = {length} + {w}; {v} = d[p + {w}:p + n]; p += n")
            elif w == 1:
                e(ind, f"n = d[p] + 1; {v} = d[p + 1:p + n]; p += n")
            elif w == 2:
                e(ind, f"n = (d[p] | d[p + 1] << 8) + 2; {v} = d[p + 2:p + n]; p += n")
            else:
                if w == 4:
                    read = f"{self.name('S', struct.Struct('<I').unpack_from)}(d, p)[0]"
                else:
                    read = f"int.from_bytes(d[p:p + {w}], 'little')"
                e(ind, f"n = {read} + {w}; {v} = d[p + {w}:p + n]; p += n")
            if self.reusable(col):
                ind = self.same(col, v, ind, v)
            self._convert_bytes(col, v, ind)
        else:
            raise RowFramingError(f"column {col.key}: type {t} has no known row format")

    def _read_be(self, n: int, split: int) -> str:
        """Source reading ``n`` big-endian bytes at ``p`` as ``(hi, lo)``, where lo is
        the last ``split`` bytes; one struct call where the sizes allow."""
        fmts = {(5, 0): ">IB", (6, 1): ">IBB", (7, 2): ">IBH", (4, 0): ">I", (5, 1): ">IB",
                (6, 2): ">IH", (7, 3): ">IHB"}
        fmt = fmts.get((n, split))
        if n == 8 and split == 3:
            st = self.name("S", struct.Struct(">Q").unpack_from)
            return f"x = {st}(d, p)[0]; hi = x >> 24; lo = x & 16777215"
        assert fmt is not None
        st = self.name("S", struct.Struct(fmt).unpack_from)
        if fmt == ">IB" and split == 0:
            return f"a, b = {st}(d, p); hi = a << 8 | b; lo = 0"
        if fmt == ">IBB":
            return f"a, b, lo = {st}(d, p); hi = a << 8 | b"
        if fmt == ">IBH":
            return f"a, b, lo = {st}(d, p); hi = a << 8 | b"
        if fmt == ">IHB":
            return f"hi, b, c = {st}(d, p); lo = b << 8 | c"
        if fmt == ">I":
            return f"hi = {st}(d, p)[0]; lo = 0"
        return f"hi, lo = {st}(d, p)"

    def _frac(self, fsp: int) -> str:
        """f-string fields for the '.fff' text of the stored fraction ``lo``."""
        table = tp.frac_table(fsp)
        if table is not None:
            return f"{{{self.name('T', table)}[lo]}}"
        if not fsp:
            return ""
        ms, rest = tp.frac_tables(fsp)
        return f"{{{self.name('T', ms)}[lo // 1000]}}{{{self.name('T', rest)}[lo % 1000]}}"

    def be_size(self, col: Column) -> int:
        """Stored size of a big-endian fixed-width column (DECIMAL, DATETIME2,
        TIMESTAMP2), which can join a grouped read; 0 for other columns."""
        if col.type == 246:
            return tp.decimal_size(col.meta >> 8, col.meta & 0xFF)
        if col.type == 18:
            return 5 + tp.frac_bytes(col.meta)
        if col.type == 17:
            return 4 + tp.frac_bytes(col.meta)
        return 0

    def decimal(self, col: Column, v: str, ind: int, fields: list[str]) -> None:
        """Code turning ``fields``, the DECIMAL's digit groups as read with
        :func:`temporal.decimal_struct`'s letters, into its value ``v``."""
        ind = self.same(col, v, ind, f"({', '.join(fields)},)")
        for line in tp.decimal_lines(col.meta >> 8, col.meta & 0xFF, fields, v, self.env):
            self.emit(ind, line)

    def from_int(self, col: Column, v: str, ind: int) -> None:
        """Code turning ``x``, the DATETIME2/TIMESTAMP2's bytes read as one
        big-endian integer, into its value ``v`` (``p`` already past it)."""
        m = col.meta
        ind = self.same(col, v, ind, "x")
        nf = tp.frac_bytes(m)
        self.emit(ind, f"hi = x >> {8 * nf}; lo = x & {(1 << 8 * nf) - 1}" if nf
                  else "hi = x; lo = 0")
        self._temporal_text(col, v, ind, f"x.to_bytes({self.be_size(col)}, 'big')")

    def _temporal_text(self, col: Column, v: str, ind: int, raw: str) -> None:
        """DATETIME2/TIMESTAMP2 text from ``hi`` (the integer part) and ``lo``
        (the fraction): cached date and time-of-day texts, fraction tables.
        ``raw`` is source for the value's bytes (the rare slow path)."""
        m = col.meta
        if col.type == 18:
            ymd, hms = self.name("C", tp.YMD_TEXT), self.name("C", tp.hms_table())
            slow = self.name("F", lambda data, _m=m: tp.datetime2_text(data, _m))
            self.emit(ind, f"""
y = hi - {tp.DATETIMEF_INT_OFS}
if y >= 0: {v} = f'{{{ymd}[y >> 17]}}{{{hms}[y & 131071]}}{self._frac(m)}'
else: {v} = {slow}({raw})""")
            return
        day, sod = self.name("C", tp.DAY_TEXT), self.name("C", tp.sod_table())
        zero = "0000-00-00 00:00:00" + ("." + "0" * m if m else "")
        self.emit(ind, f"""
if hi: {v} = f'{{{day}[hi // 86400]}}{{{sod}[hi % 86400]}}{self._frac(m)}'
else: {v} = {zero!r}""")

    def _temporal(self, col: Column, v: str, ind: int) -> None:
        """DATETIME2/TIMESTAMP2 at ``p``: one struct read, then the text."""
        n = self.be_size(col)
        inner = self.same(col, v, ind, f"d[p:p + {n}]")
        self.emit(inner, self._read_be(n, tp.frac_bytes(col.meta)))
        self._temporal_text(col, v, inner, f"d[p:p + {n}]")
        self.emit(ind, f"p += {n}")

    def _convert_bytes(self, col: Column, v: str, ind: int) -> None:
        t = col.type
        if t == JSON:
            self.emit(ind, f"{v} = {self.name('F', _json_value)}({v})")
            return
        if t == VECTOR:
            self.emit(ind, f"{v} = {self.name('F', _vector)}({v})")
            return
        if t == GEOMETRY:
            return
        special = _mariadb_special(col)
        if col.is_binary or col.charset is None:
            if t == STRING and col.is_binary and col.max_length:
                self.emit(ind, f"if len({v}) < {col.max_length}:"
                               f" {v} = {v}.ljust({col.max_length}, b'\\0')")
            if special:
                self.emit(ind, f"{v} = {self.name('F', special)}({v})")
            return
        codec, exact = _charset_codec(col)
        table = charmap(col.charset) if exact else None
        if table is not None and not self.safe:
            decode = self.name("F", codecs.charmap_decode)
            self._convert(v, ind, f"{decode}(@, 'strict', {self.name('T', table)})[0]")
        elif codec and exact and not self.safe:
            self._convert(v, ind, f"@.decode({codec!r})")
        else:
            self._convert(v, ind, f"{self.name('F', _text_decoder(col))}(@)")

    def _convert(self, v: str, ind: int, expr: str) -> None:
        """``v`` = ``expr`` (``@`` standing for the bytes), in the statement
        that sliced them out when it is the last one."""
        last = self.lines[-1]
        fuse = re.search(rf"{v} = (d\[p \+ \d:p \+ n\]); p \+= n$", last)
        if fuse:
            self.lines[-1] = last.replace(fuse[1], expr.replace("@", fuse[1]))
        else:
            self.emit(ind, f"{v} = {expr.replace('@', v)}")


def _image_body(g: _Gen, cols: Sequence[Column], ind: int, v: str = "v", nb: str = "nb") -> str:
    """Emit code reading one image of ``cols`` at ``p`` into ``{v}0``, ``{v}1``...;
    returns the dict expression of the image.

    NOT NULL columns (the TABLE_MAP's null bitmap) skip their own test: one
    check per image that none of their bits is set. When the table has
    nullable columns, an image with none of them NULL (the common case) takes
    code written as if every column were NOT NULL."""
    n = (len(cols) + 7) // 8
    read = {1: "d[p]", 2: "d[p] | d[p + 1] << 8"}.get(n, f"int.from_bytes(d[p:p + {n}], 'little')")
    g.emit(ind, f"{nb} = {read}; p += {n}")
    if g.safe:
        _image_columns(g, cols, ind, v, nb, frozenset())
    else:
        notnull = sum(1 << k for k, c in enumerate(cols) if not c.nullable)
        if notnull:
            g.emit(ind, f"if {nb} & {notnull}: raise Retry('NULL in a NOT NULL column')")
            g.env["Retry"] = RetrySafely
        nullable = ((1 << len(cols)) - 1) & ~notnull
        if nullable:
            g.emit(ind, f"if not {nb} & {nullable}:")
            _image_columns(g, cols, ind + 1, v, nb, frozenset(range(len(cols))))
            g.emit(ind, "else:")
            ind += 1
        _image_columns(g, cols, ind, v, nb,
                       frozenset(k for k, c in enumerate(cols) if not c.nullable))
    return "{" + ", ".join(f"{c.key!r}: {v}{i}" for i, c in enumerate(cols)) + "}"


def _image_columns(g: _Gen, cols: Sequence[Column], ind: int, v: str, nb: str,
                   present: frozenset[int]) -> None:
    """The columns of one image; those in ``present`` are known not to be NULL."""
    k = 0
    while k < len(cols):
        run: list[Column] = []
        while (k + len(run) < len(cols) and cols[k + len(run)].type in _RUN):
            run.append(cols[k + len(run)])
        fmt = "<" + "".join(_RUN[c.type][1 if c.unsigned else 0] for c in run)
        mask = sum(1 << (k + j) for j in range(len(run)) if k + j not in present)
        nxt = k + len(run)
        if run and not mask and nxt in present and g.length_width(cols[nxt]) in (2, 4):
            # the run and the next column's length prefix in one struct call
            st = struct.Struct(fmt + ("H" if g.length_width(cols[nxt]) == 2 else "I"))
            names = "".join(f"{v}{k + j}, " for j in range(len(run)))
            g.emit(ind, f"{names}ln, = {g.name('S', st.unpack_from)}(d, p); "
                        f"p += {st.size - g.length_width(cols[nxt])}")
            g.value(cols[nxt], f"{v}{nxt}", ind, length="ln")
            k = nxt + 1
            continue
        if len(run) > 1:
            st = struct.Struct(fmt)
            names = ", ".join(f"{v}{k + j}" for j in range(len(run)))
            read = f"{names}, = {g.name('S', st.unpack_from)}(d, p); p += {st.size}"
            if not mask:
                g.emit(ind, read)
                k += len(run)
                continue
            g.emit(ind, f"if not {nb} & {mask}:")
            g.emit(ind + 1, read)
            g.emit(ind, "else:")
            for j, c in enumerate(run):
                _nullable(g, c, f"{v}{k + j}", nb, 1 << (k + j), ind + 1, k + j in present)
            k += len(run)
            continue
        group: list[Column] = []
        while (k + len(group) < len(cols) and k + len(group) in present
               and g.be_size(cols[k + len(group)])):
            group.append(cols[k + len(group)])
        if len(group) > 1:
            _be_group(g, group, [f"{v}{k + j}" for j in range(len(group))], ind)
            k += len(group)
            continue
        _nullable(g, cols[k], f"{v}{k}", nb, 1 << k, ind, k in present)
        k += 1


_BE_PARTS = {1: "B", 2: "H", 3: "BH", 4: "I", 5: "BI", 6: "HI", 7: "BHI", 8: "Q"}


def _be_group(g: _Gen, group: list[Column], names: list[str], ind: int) -> None:
    """Consecutive NOT NULL big-endian fixed-width columns read with one
    struct call: a DECIMAL as its digit groups, a DATETIME2/TIMESTAMP2 in
    parts rebuilt into one integer."""
    fmt, k = ">", 0
    code: list[tuple[Column, str, list[str], str]] = []
    for col, name in zip(group, names, strict=True):
        if col.type == 246:
            letters = tp.decimal_struct(col.meta >> 8, col.meta & 0xFF)
        elif col.type == 17 and tp.frac_bytes(col.meta) in (1, 2):
            letters = "IB" if tp.frac_bytes(col.meta) == 1 else "IH"  # (seconds, fraction)
        else:
            letters = _BE_PARTS[g.be_size(col)]
        fields = [f"q{k + j}" for j in range(len(letters))]
        k += len(letters)
        fmt += letters
        expr = fields[0]
        for part, letter in zip(fields[1:], letters[1:], strict=True):
            expr = f"({expr}) << {8 * struct.calcsize('>' + letter)} | {part}"
        code.append((col, name, fields, expr))
    st = struct.Struct(fmt)
    g.emit(ind, f"{', '.join(f'q{j}' for j in range(k))}, = "
                f"{g.name('S', st.unpack_from)}(d, p); p += {st.size}")
    for col, name, fields, expr in code:
        if col.type == 246:
            g.decimal(col, name, ind, fields)
        elif col.type == 17 and len(fields) == 2:  # read as (seconds, fraction)
            inner = g.same(col, name, ind, f"({fields[0]}, {fields[1]})")
            g.emit(inner, f"hi = {fields[0]}; lo = {fields[1]}")
            g._temporal_text(col, name, inner, "")
        else:
            g.emit(ind, f"x = {expr}")
            g.from_int(col, name, ind)


class RetrySafely(UnicodeDecodeError):
    """The fast decoder met what it assumed away: decode the event again in safe mode."""

    def __init__(self, why: str) -> None:
        super().__init__("binlogkit", b"", 0, 1, why)


def _nullable(g: _Gen, col: Column, v: str, nb: str, bit: int, ind: int,
              present: bool) -> None:
    if present:
        g.value(col, v, ind)
        return
    keep = f"; r{v} = None" if g.keep is not None and g.reusable(col) else ""
    g.emit(ind, f"if {nb} & {bit}: {v} = None{keep}")
    g.emit(ind, "else:")
    g.value(col, v, ind + 1)


def _compile(g: _Gen, name: str, params: str, label: str) -> Callable[..., Any]:
    # helpers become default arguments: locals are the cheapest names to load
    g.env["fb"] = int.from_bytes
    g.env["format"] = format
    helpers = ", ".join(f"{k}={k}" for k in g.env)
    g.lines.insert(0, f"def {name}({params}, {helpers}):")
    code = "\n".join(g.lines).replace("int.from_bytes(", "fb(")
    exec(compile(code, label, "exec"), g.env)  # noqa: S102 (names and numbers only)
    fn: Callable[..., Any] = g.env[name]
    return fn


def _build_image(cols: Sequence[Column], safe: bool) -> Callable[[bytes, int], Any]:
    """One image at ``p`` -> (dict, end, null-bitmap padding bits)."""
    g = _Gen(safe)
    expr = _image_body(g, cols, 1)
    g.emit(1, f"return {expr}, p, nb >> {len(cols)}")
    return _compile(g, "image", "d, p", f"<row image {len(cols)} columns>")


def _build_loop(kind: str, before: Sequence[Column], after: Sequence[Column],
                safe: bool) -> Callable[..., tuple[list[Row], int]]:
    """Every row of a WRITE ('w'), DELETE ('d') or UPDATE ('u') event in one
    generated loop: no call per image. Images and null-bitmap padding bits
    are collected in lists and paired into Rows at the end (:func:`_rows_of`)."""
    g = _Gen(safe)
    g.env["rows_of"] = _rows_of
    g.emit(1, "out = []\nap = out.append\npads = []\npp = pads.append")
    if kind == "u":
        g.emit(1, "out2 = []\nap2 = out2.append")
    g.emit(1, "while p < end:")
    if kind == "u":
        g.keep = {}
        b = _image_body(g, before, 2, "v", "nb")
        g.reuse, g.keep = g.keep, None
        a = _image_body(g, after, 2, "w", "na")
        g.emit(2, f"ap({b})\nap2({a})\npp(nb >> {len(before)} << 8 | na >> {len(after)})")
        g.emit(1, "return rows_of('u', out, out2, pads), p")
    else:
        g.emit(2, f"ap({_image_body(g, before, 2)})\npp(nb >> {len(before)})")
        g.emit(1, f"return rows_of({kind!r}, out, None, pads), p")
    return _compile(g, "rows", "d, p, end", f"<row loop {kind} {len(before)} columns>")


def _pad(kind: str, bits: int) -> tuple[int, int] | None:
    """Row.pads from the padding bits a generated loop collected."""
    if not bits:
        return None
    return (bits >> 8, bits & 255) if kind == "u" else (0, bits) if kind == "w" else (bits, 0)


def _rows_of(kind: str, images: list[dict[str, Any]], after: list[dict[str, Any]] | None,
             pads: list[int]) -> list[Row]:
    """Rows from the images of one event. ``map`` over ``zip`` builds each Row
    from a tuple zip reuses: cheaper than building one per row in the loop.
    The padding bits are nearly always the same for every row of an event."""
    n = len(pads)
    p: Iterable[Any] = (repeat(_pad(kind, pads[0])) if n and pads.count(pads[0]) == n
                        else [_pad(kind, bits) for bits in pads])
    b: Iterable[Any] = images if kind != "w" else repeat(None)
    a: Iterable[Any] = (after or []) if kind == "u" else images if kind == "w" else repeat(None)
    return list(map(tuple.__new__, repeat(Row), zip(b, a, repeat(None), p)))


_CACHE: OrderedDict[Any, Callable[[bytes, int], Any]] = OrderedDict()
_CACHE_SIZE = 2048


def _cached(key: Any, build: Callable[[], Any]) -> Any:
    """Generated functions, shared by every reader in the process (bounded LRU)."""
    fn = _CACHE.get(key)
    if fn is None:
        fn = _CACHE[key] = build()
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return fn


def image_decoder(cols: tuple[Column, ...], safe: bool = False) -> Callable[[bytes, int], Any]:
    """The compiled decoder of images holding exactly ``cols`` (cached)."""
    fn: Callable[[bytes, int], Any] = _cached(("image", cols, safe),
                                              lambda: _build_image(cols, safe))
    return fn


# ---------------------------------------------------------------- row events


@dataclass
class _Plan:
    before: tuple[Column, ...]
    after: tuple[Column, ...]
    json_after: list[Column] = field(default_factory=list)
    decoders: dict[bool, tuple[Callable[[bytes, int], Any], ...]] = field(default_factory=dict)
    loops: dict[tuple[str, bool], Callable[..., tuple[list[Row], int]]] = field(
        default_factory=dict)

    def loop(self, kind: str, safe: bool) -> Callable[..., tuple[list[Row], int]]:
        """The generated whole-event loop for this plan (see _build_loop)."""
        key = (kind, safe)
        fn = self.loops.get(key)
        if fn is None:
            fn = self.loops[key] = _cached(("loop", kind, self.before, self.after, safe),
                                           lambda: _build_loop(kind, self.before, self.after,
                                                               safe))
        return fn

    def images(self, safe: bool) -> tuple[Callable[[bytes, int], Any], ...]:
        """(before decoder, after decoder), compiled on first use."""
        found = self.decoders.get(safe)
        if found is None:
            b = image_decoder(self.before, safe)
            a = image_decoder(self.after, safe) if self.after != self.before else b
            found = self.decoders[safe] = (b, a)
        return found


class TableCodec:
    """Row decoding and encoding for one table map: plans (which columns each
    image holds, and their compiled decoders) are cached by the event's
    column bitmaps."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = tuple(columns)
        self._plans: dict[tuple[bool, int, bytes, bytes | None], _Plan] = {}
        self.extra: dict[str, Any] = {}  # what callers derive from the columns, cached

    def plan(self, ev_type: int, body: Any) -> _Plan:
        two = ev_type in TWO_BITMAPS
        key = (two, body.width, bytes(body.columns), bytes(body.columns_after) if two else None)
        found = self._plans.get(key)
        if found is None:
            if len(self._plans) > 64:
                self._plans.clear()
            found = self._plans[key] = _plan(ev_type, body, self.columns)
        return found

    def decode(self, ev_type: int, body: Any) -> list[Row]:
        data = rows_data(ev_type, body)
        plan = self.plan(ev_type, body)
        try:
            return _decode(ev_type, data, plan, safe=False)
        except UnicodeDecodeError:
            return _decode(ev_type, data, plan, safe=True)


def _plan(ev_type: int, body: Any, columns: Sequence[Column]) -> _Plan:
    width = body.width
    bcols = present(bytes(body.columns), width)
    acols = present(bytes(body.columns_after), width) if ev_type in TWO_BITMAPS else bcols
    for i in (*bcols, *acols):
        if i >= len(columns):
            raise RowFramingError(f"column {i + 1} is not in the table map")
    before = tuple(columns[i] for i in bcols)
    after = tuple(columns[i] for i in acols)
    return _Plan(before, after, [c for c in after if c.type == JSON])


def decode_rows(ev_type: int, body: Any, columns: Sequence[Column] | TableCodec) -> list[Row]:
    """Every row change of a row event, as Python values. Pass the table's
    :class:`TableCodec` (``TableMaps.codec``) when decoding many events."""
    codec = columns if isinstance(columns, TableCodec) else TableCodec(columns)
    return codec.decode(ev_type, body)


def _decode(ev_type: int, data: bytes, plan: _Plan, safe: bool) -> list[Row]:
    if ev_type != EventType.PARTIAL_UPDATE_ROWS:
        kind = "u" if ev_type in UPDATE_ROWS else "w" if ev_type in WRITE_TYPES else "d"
        try:
            out, p = plan.loop(kind, safe)(data, 0, len(data))
            if p == len(data):
                return out
        except (IndexError, struct.error, ValueError, TypeError, KeyError) as exc:
            if isinstance(exc, UnicodeDecodeError):
                raise
        # fall through: the per-image path says which row and byte went wrong
    return _decode_images(ev_type, data, plan, safe)


def _decode_images(ev_type: int, data: bytes, plan: _Plan, safe: bool) -> list[Row]:
    end = len(data)
    img_b, img_a = plan.images(safe)
    out: list[Row] = []
    append = out.append
    p = 0
    try:
        if ev_type in UPDATE_ROWS:
            partial = ev_type == EventType.PARTIAL_UPDATE_ROWS
            while p < end:
                before, p, pad_b = img_b(data, p)
                options = None
                bits = b""
                if partial:
                    options, p = decode_packed(data, p)
                    if options and options & PARTIAL_JSON_UPDATES:
                        n = (len(plan.json_after) + 7) // 8
                        bits = data[p : p + n]
                        p += n
                after, p, pad_a = img_a(data, p)
                if bits:
                    _apply_partial(plan.json_after, bits, before, after)
                append(Row(before, after, options, (pad_b, pad_a) if pad_b or pad_a else None))
        elif ev_type in WRITE_TYPES:
            while p < end:
                after, p, pad = img_b(data, p)
                append(Row(None, after, None, (0, pad) if pad else None))
        else:
            while p < end:
                before, p, pad = img_b(data, p)
                append(Row(before, None, None, (pad, 0) if pad else None))
    except (IndexError, struct.error, ValueError, TypeError, KeyError) as exc:
        if isinstance(exc, UnicodeDecodeError):
            raise
        raise RowFramingError(f"row {len(out) + 1} at byte {p} of the row data: expected values"
                              f" of the table map's column types, found {exc}") from None
    if p != end:
        raise RowFramingError(f"row {len(out)} runs {p - end} bytes past the row data")
    return out


def _apply_partial(json_cols: list[Column], bits: bytes, before: dict[str, Any] | None,
                   after: dict[str, Any]) -> None:
    for k, col in enumerate(json_cols):
        if not bits[k >> 3] >> (k & 7) & 1:
            continue
        cur = after.get(col.key)
        if cur is None:
            continue
        diffs = tuple(decode_json_diffs(cur.raw))
        base = (before or {}).get(col.key)
        if isinstance(base, Json):
            after[col.key] = Json(value=apply_json_diffs(base.value, diffs), diffs=diffs)
        else:  # a MINIMAL before image: only the diffs are known
            after[col.key] = Json(diffs=diffs)


# ---------------------------------------------------------------- encoding


def _length(n: int, width: int) -> bytes:
    return n.to_bytes(width, "little")


def encode_value(col: Column, v: Any) -> bytes:  # noqa: C901, PLR0911, PLR0912
    """One non-NULL value in the column's row format."""
    t, m = col.type, col.meta
    uns = bool(col.unsigned)
    if t in _RUN:
        return struct.pack("<" + _RUN[t][1 if uns else 0], v)
    if t == 9:
        return int(v).to_bytes(3, "little", signed=not uns)
    if t == 13:
        return bytes((v - 1900 if v else 0,))
    if t == 16:
        return int(v).to_bytes((m & 0xFF) + (1 if m >> 8 else 0), "big")
    if t == 246:
        return tp.encode_decimal(v, m >> 8, m & 0xFF)
    if t == 0:
        return format(Decimal(v), "f").rjust(col.max_length).encode("ascii")
    if t in (7, 11, 12) and col.fsp:
        return tp.encode_mariadb_hires(t, v, col.fsp)
    if t in (10, 14):
        return tp.encode_date(v)
    if t == 11:
        return tp.encode_time(v)
    if t == 12:
        return tp.encode_datetime(v)
    if t == 7:
        return tp.timestamp_seconds(v)[0].to_bytes(4, "little")
    if t == 17:
        return tp.encode_timestamp2(v, m)
    if t == 18:
        return tp.encode_datetime2(v, m)
    if t == 19:
        return tp.encode_time2(v, m)
    if t == 6:
        return b""
    if t == ENUM_TYPE:
        idx = v if isinstance(v, int) else ("", *(col.enum_values or ())).index(v)
        return idx.to_bytes(col.max_length, "little")
    if t == SET_TYPE:
        mask = v if isinstance(v, int) else _set_mask(col, v)
        return mask.to_bytes(col.max_length, "little")
    return _encode_bytes(col, v)


def _set_mask(col: Column, text: str) -> int:
    members = col.set_values or ()
    return sum(1 << members.index(x) for x in text.split(",") if x)


def _encode_bytes(col: Column, v: Any) -> bytes:
    t = col.type
    if t == JSON:
        raw = v.to_bytes() if hasattr(v, "to_bytes") else _encode_json(v)
        return _length(len(raw), col.meta) + raw
    if t == VECTOR:
        raw = struct.pack(f"<{len(v)}f", *v)
        return _length(len(raw), col.meta) + raw
    if isinstance(v, str):
        kind = (col.data_type or "").lower()
        if kind == "uuid":
            raw = uuidlib.UUID(v).bytes
        elif kind in ("inet6", "inet4"):
            raw = ipaddress.ip_address(v).packed
        else:
            raw = encode_text(v.rstrip(" ") if t == STRING else v, col.charset)
    else:
        raw = bytes(v)
    if t == STRING and col.is_binary:
        raw = raw.rstrip(b"\0")
    if t in (STRING, VARCHAR, 253):
        return _length(len(raw), 1 if col.max_length < 256 else 2) + raw
    return _length(len(raw), col.meta) + raw


def _encode_json(v: Any) -> bytes:
    return encode_json(v)


def encode_image(cols: Sequence[Column], values: dict[str, Any],
                 partial: frozenset[str] = frozenset(), pad: int = 0) -> bytes:
    """One image of ``cols`` (the columns the event's bitmap names)."""
    nulls = pad << len(cols)
    parts = []
    for k, col in enumerate(cols):
        v = values.get(col.key)
        if v is None:
            nulls |= 1 << k
        elif col.key in partial:
            raw = encode_json_diffs(v.diffs)
            parts.append(_length(len(raw), col.meta) + raw)
        else:
            parts.append(encode_value(col, v))
    return nulls.to_bytes((len(cols) + 7) // 8, "little") + b"".join(parts)


def encode_rows(ev_type: int, body: Any, columns: Sequence[Column], rows: Sequence[Row]) -> bytes:
    """The (uncompressed) row data of ``rows`` under the event's column bitmaps."""
    plan = _plan(ev_type, body, columns)
    out = bytearray()
    for row in rows:
        pad_b, pad_a = row.pads or (0, 0)
        if ev_type in UPDATE_ROWS:
            out += encode_image(plan.before, row.before or {}, pad=pad_b)
            partial: frozenset[str] = frozenset()
            if ev_type == EventType.PARTIAL_UPDATE_ROWS:
                options = row.options or 0
                out += encode_packed(options)
                if options & PARTIAL_JSON_UPDATES:
                    after = row.after or {}
                    flags = [getattr(after.get(c.key), "diffs", None) is not None
                             for c in plan.json_after]
                    partial = frozenset(c.key for c, f in zip(plan.json_after, flags,
                                                              strict=True) if f)
                    bits = sum(1 << k for k, f in enumerate(flags) if f)
                    out += bits.to_bytes((len(flags) + 7) // 8, "little")
            out += encode_image(plan.after, row.after or {}, partial, pad_a)
        elif ev_type in WRITE_TYPES:
            out += encode_image(plan.before, row.after or {}, pad=pad_a)
        else:
            out += encode_image(plan.before, row.before or {}, pad=pad_b)
    return bytes(out)
