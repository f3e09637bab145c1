"""Row images as the reference decoders print them with ``-vv --base64-output=decode-rows``,
and our JSON values rendered the way those tools print them.

Parsing (``parse_rows``): a row event's body holds, per row::

    ### INSERT INTO `db`.`t`          ### UPDATE `db`.`t`          ### DELETE FROM `db`.`t`
    ### SET                           ### WHERE                    ### WHERE
    ###   @1=1 /* INT meta=0 nullable=0 is_null=0 */   (WHERE image, then ### SET image)

Each ``###   @N=<value> /* <TYPE> meta=M nullable=B is_null=B */`` line becomes a
``RefValue``: the value text exactly as printed (trailing blanks of the ``%-20g`` FLOAT
padding removed), the type name (``DATETIME(6)``, ``ENUM(1 byte)``, ``BLOB/TEXT``), meta and
is_null.  MySQL prints a partial JSON update over several lines (``###      JSON_REPLACE(``
continuations); those are joined with newlines.  A value the tool cannot print
(``@53=!! Don't know how to handle column type=255 meta=4 (0004)``: mysqlbinlog and
GEOMETRY) ends the tool's printout of the whole event: the value is ``unprintable`` and the
event is ``truncated``.  Strings keep the tool's bytes exactly (the output is read with
surrogateescape); they are compared by rendering *our* value the tool's way, never by
unescaping the tool's text, which is ambiguous (see ``quote``).

Rendering (``render``): see the rules in tests/test_row_values_reference.py.
"""

from __future__ import annotations

import base64
import calendar
import json
import math
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

_ROW_START = re.compile(r"^### (INSERT INTO|UPDATE|DELETE FROM) (.*)$")
_VALUE = re.compile(r"^###   @(\d+)=(.*)$", re.S)
_COMMENT = re.compile(
    r"^(.*) /\* ([^*]*?)(?: meta=(\d+))?(?: nullable=(\d))?(?: is_null=(\d))? \*/$", re.S
)
_CONT = "###     "  # mysqlbinlog's continuation lines of a partial JSON update


@dataclass
class RefValue:
    col: int  # 1-based, as printed
    text: str  # as printed ('NULL', "'abc'", "b'0101'", '-1 (255)', ...)
    type_name: str  # 'INT', 'DATETIME(6)', 'ENUM(1 byte)', '' when unprintable
    meta: int | None
    nullable: bool | None
    is_null: bool
    unprintable: bool = False


@dataclass
class RefRow:
    kind: str  # 'INSERT INTO' | 'UPDATE' | 'DELETE FROM'
    table: str  # '`db`.`t`' as printed
    before: dict[int, RefValue] | None = None  # WHERE image (UPDATE, DELETE)
    after: dict[int, RefValue] | None = None  # SET image (INSERT, UPDATE)
    truncated: bool = False  # the tool stopped printing inside this row


@dataclass
class RefRows:
    rows: list[RefRow] = field(default_factory=list)
    truncated: bool = False  # the tool stopped printing the event early
    count: int | None = None  # mariadb-binlog: '# Number of rows: N'


def _finish_value(col: int, text: str) -> RefValue:
    if text.startswith("!!"):
        return RefValue(col, text, "", None, None, False, unprintable=True)
    m = _COMMENT.match(text)
    if m is None:
        return RefValue(col, text, "", None, None, text == "NULL", unprintable=True)
    value, tname, meta, nullable, is_null = m.groups()
    if not value.startswith("'") and not value.startswith(("JSON_", "b'")):
        value = value.rstrip(" ")
    return RefValue(
        col,
        value,
        tname.strip(),
        int(meta) if meta is not None else None,
        nullable == "1" if nullable is not None else None,
        is_null == "1" if is_null is not None else value == "NULL",
    )


def parse_rows(body: Iterable[str]) -> RefRows:
    out = RefRows()
    row: RefRow | None = None
    image: dict[int, RefValue] | None = None
    pending: list[str] | None = None  # lines of a value whose comment has not come yet
    pending_col = 0

    def flush() -> None:
        nonlocal pending
        if pending is not None and image is not None:
            image[pending_col] = _finish_value(pending_col, "\n".join(pending))
            if image[pending_col].unprintable and row is not None:
                row.truncated = out.truncated = True
        pending = None

    for line in body:
        if pending is not None:
            if line.startswith(_CONT) or not line.startswith("#"):
                pending.append(line)
                if _COMMENT.match("\n".join(pending)):
                    flush()
                continue
            flush()
        if line.startswith("# Number of rows: "):
            try:
                out.count = int(line.split(":", 1)[1])
            except ValueError:
                pass
            continue
        if not line.startswith("###"):
            continue
        m = _ROW_START.match(line)
        if m:
            row = RefRow(m.group(1), m.group(2))
            out.rows.append(row)
            image = None
            if row.kind == "INSERT INTO":
                row.after = image = {}
            continue
        if row is None:
            continue
        if line == "### WHERE":
            row.before = image = {}
            continue
        if line == "### SET":
            row.after = image = {}
            continue
        mv = _VALUE.match(line)
        if mv and image is not None:
            pending_col = int(mv.group(1))
            pending = [mv.group(2)]
            if mv.group(2).startswith("!!") or _COMMENT.match(mv.group(2)):
                flush()
    flush()
    return out


# --------------------------------------------------------------------------------------
# Rendering our values the way the tools print them
# --------------------------------------------------------------------------------------


MYSQLBINLOG = "mysqlbinlog"
MARIADB_BINLOG = "mariadb-binlog"
# MySQL 9.7's my_b_write_quoted: C escapes for these, \\xHH for the other bytes < 0x20
_MYSQL_ESC = {0x08: b"\\b", 0x09: b"\\t", 0x0A: b"\\n", 0x0C: b"\\f", 0x0D: b"\\r",
              0x27: b"\\'", 0x5C: b"\\\\"}  # fmt: skip
_MYSQL_UNESC = {v[1:]: bytes([k]) for k, v in _MYSQL_ESC.items()}


def quote(data: bytes, tool: str = MARIADB_BINLOG) -> str:
    """How the tool prints a string value (``my_b_write_quoted``), read back as UTF-8
    with surrogateescape.

    mariadb-binlog: bytes < 0x20 as ``\\xHH`` (lower-case hex), every other byte as is;
    its branches for ``'`` and ``\\`` are dead code (both are > 0x1F), so they print raw.
    mysqlbinlog (9.7): ``\\b \\t \\n \\f \\r \\' \\\\`` for those five control bytes,
    the quote and the backslash, ``\\xHH`` for the other bytes < 0x20.
    """
    out = bytearray(b"'")
    mysql = tool == MYSQLBINLOG
    for b in data:
        if mysql and b in _MYSQL_ESC:
            out += _MYSQL_ESC[b]
        elif b > 0x1F:
            out.append(b)
        else:
            out += b"\\x%02x" % b
    out += b"'"
    return out.decode("utf-8", "surrogateescape")


INT_BITS = {"TINYINT": 8, "SHORTINT": 16, "MEDIUMINT": 24, "INT": 32, "LONGINT": 64}
STRING_TYPES = ("STRING(", "VARSTRING(", "BLOB/TEXT", "TINYBLOB/TINYTEXT",
                "MEDIUMBLOB/MEDIUMTEXT", "LONGBLOB/LONGTEXT", "GEOMETRY")  # fmt: skip


@dataclass
class Column:
    """What the table map tells about one column (None: not known)."""

    charset: str | None = None  # Python codec, 'binary' for the binary charset
    labels: list[bytes] | None = None  # ENUM / SET values
    labels_charset: str | None = None
    signed: bool | None = None


class Mismatch(Exception):
    """Our value cannot be what the tool printed."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _need(cond: bool, why: str) -> None:
    if not cond:
        raise Mismatch(why)


def is_float32(x: float) -> bool:
    """``x`` is a single-precision value: exactly, or as its shortest decimal repr."""
    try:
        f32 = struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return False
    if f32 == x or math.isnan(x):
        return True
    for digits in range(1, 10):
        r = float(format(f32, f".{digits}g"))
        try:
            if struct.unpack("<f", struct.pack("<f", r))[0] == f32:
                return r == x
        except OverflowError:
            continue
    return False


def _digits_in(type_name: str) -> int | None:
    m = re.search(r"\((\d+)\)", type_name)
    return int(m.group(1)) if m else None


_DT = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


def timestamp_text(ours: str) -> str:
    """Our TIMESTAMP string (UTC) as the tools print it: epoch seconds, then the fraction
    digits as they are (both print ``.%0*d`` with the column's precision)."""
    m = _DT.match(ours)
    if m is None:
        raise Mismatch(f"not a datetime string: {ours!r}")
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    frac = m.group(7)
    secs = 0 if (y, mo, d) == (0, 0, 0) else calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    return f"{secs}.{frac}" if frac else str(secs)


def _text_bytes(ours: str, col: Column, binary_hint: bool) -> list[bytes]:
    """Candidate byte strings our string value can stand for."""
    cands: list[bytes] = []
    cs = col.charset
    if cs == "binary":
        try:
            return [base64.b64decode(ours, validate=True)]
        except ValueError as exc:
            raise Mismatch(f"binary column but not base64: {ours!r}") from exc
    if cs == "latin1":  # MySQL's latin1 is cp1252 with the 5 holes mapped straight
        codecs = ["cp1252", "latin-1"]
    else:
        codecs = [cs] if cs else ["utf-8", "cp1252", "latin-1"]
    for codec in codecs:
        try:
            cands.append(ours.encode(codec))
        except UnicodeEncodeError:
            continue
    if cs is None or binary_hint:
        try:
            cands.append(base64.b64decode(ours, validate=True))
        except ValueError:
            pass
    return cands


def json_equal(a: Any, b: Any) -> bool:
    """Structural JSON equality; numbers compared by value (bool is not a number)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float | Decimal) and isinstance(b, int | float | Decimal):
        if isinstance(a, float) or isinstance(b, float):
            return float(a) == float(b)
        return Decimal(a) == Decimal(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def unquote(text: str, tool: str = MARIADB_BINLOG) -> bytes:
    """The bytes of a quoted value, reading the tool's escapes back (``\\xHH`` is taken as
    a byte: only right where raw ``\\xHH`` text cannot occur, as in JSON text)."""
    _need(len(text) >= 2 and text[0] == "'" and text[-1] == "'", f"not quoted: {text!r}")
    raw = text[1:-1].encode("utf-8", "surrogateescape")
    if tool == MYSQLBINLOG:
        pat = rb"\\x([0-9a-f]{2})|\\([btnfr'\\])"
    else:
        pat = rb"\\x([0-9a-f]{2})"

    def one(m: re.Match[bytes]) -> bytes:
        if m.group(1) is not None:
            return bytes([int(m.group(1), 16)])
        return _MYSQL_UNESC[m.group(2)]

    return re.sub(pat, one, raw)


def parse_json_text(text: str, tool: str = MYSQLBINLOG) -> Any:
    raw = unquote(text, tool).decode("utf-8", "surrogateescape")
    return json.loads(raw, parse_float=Decimal)


def check_value(ours: Any, ref: RefValue, col: Column, tool: str = MARIADB_BINLOG) -> None:
    """Raise Mismatch unless ``ours`` (our JSON value) is what the tool printed as ``ref``.
    JSON partial updates are checked by the caller."""
    t = ref.type_name
    text = ref.text
    if ref.is_null:
        _need(ours is None, "tool prints NULL")
        return
    _need(ours is not None, "ours is null")
    if t in INT_BITS:
        bits = INT_BITS[t]
        m = re.match(r"^(-?\d+)(?: \((\d+)\))?$", text)
        _need(m is not None, f"int text {text!r}")
        assert m is not None
        s = int(m.group(1))
        u = s % (1 << bits)
        _need(_is_int(ours) and ours in (s, u), f"expected {s} or {u}")
        if col.signed is not None:
            _need(ours == (s if col.signed else u), "signedness from the table map")
        return
    if t == "YEAR":
        _need(_is_int(ours), "YEAR not an integer")
        # both tools print stored+1900, so the server's 0 ('0000') shows as 1900 (year-0)
        _need(ours == (0 if text == "1900" else int(text)), "YEAR")
        return
    if t.startswith("BIT("):
        n = _digits_in(t) or 0
        _need(_is_int(ours) and 0 <= ours < (1 << max(n, 1)), "BIT not a fitting integer")
        _need(text == f"b'{ours:0{n}b}'", "BIT bits")
        return
    if t.startswith("DECIMAL("):
        _need(isinstance(ours, str) and ours == text, "DECIMAL text")
        return
    if t == "FLOAT":
        _need(isinstance(ours, int | float) and not isinstance(ours, bool), "FLOAT not a number")
        _need(is_float32(float(ours)), "FLOAT not a single-precision value")
        _need(format(float(ours), "g") == text, "FLOAT %g")
        return
    if t == "DOUBLE":
        _need(isinstance(ours, int | float) and not isinstance(ours, bool), "DOUBLE not a number")
        _need(format(float(ours), ".20g") == text, "DOUBLE %.20g")
        return
    if t == "DATE" or t == "NEWDATE":
        _need(isinstance(ours, str), "DATE not a string")
        _need(text == quote(ours.replace("-", ":").encode(), tool), "DATE (printed YYYY:MM:DD)")
        return
    if t.startswith(("TIME", "DATETIME")) and not t.startswith("TIMESTAMP"):
        _need(isinstance(ours, str) and text == quote(ours.encode(), tool), "TIME/DATETIME text")
        return
    if t.startswith("TIMESTAMP"):
        _need(isinstance(ours, str) and timestamp_text(ours) == text, "TIMESTAMP epoch")
        return
    if t.startswith("ENUM("):
        idx = _enum_index(ours, col)
        _need(text == str(idx), f"ENUM index {idx}")
        return
    if t.startswith("SET("):
        nbytes = int(re.findall(r"\d+", t)[0])
        mask = _set_mask(ours, col)
        _need(0 <= mask < 1 << (8 * nbytes), f"SET bitmask {mask:#x} too wide")
        stored = mask.to_bytes(nbytes, "little")
        printed = "".join(f"{b:08b}" for b in stored)  # stored (little-endian) byte order
        _need(text == f"b'{printed}'", f"SET bitmask {mask:#x}")
        return
    if t.startswith("VECTOR"):
        _need(isinstance(ours, list) and all(isinstance(x, int | float) for x in ours),
              "VECTOR not a list of numbers")
        _need(text == "[" + ",".join(format(x, ".5e") for x in ours) + "]", "VECTOR %.5e")
        return
    if t == "JSON":
        _need(not isinstance(ours, dict) or "raw" not in ours, "JSON not decoded")
        _need(json_equal(ours, parse_json_text(text, tool)), "JSON value")
        return
    if t.startswith(STRING_TYPES):
        _need(isinstance(ours, str), "string column not a string")
        binary_hint = t.startswith(("GEOMETRY", "STRING(", "VARSTRING(")) or "BLOB" in t
        cands = _text_bytes(ours, col, binary_hint)
        if t.startswith("STRING(") and col.charset in ("binary", None):
            # BINARY(n): the binlog holds the value without its trailing 0x00 padding,
            # the server's value (ours) has it
            cands += [c.rstrip(b"\0") for c in cands if len(c) == (_digits_in(t) or -1)]
        _need(any(quote(c, tool) == text for c in cands),
              f"bytes (charset {col.charset or 'unknown'})")
        return
    raise Mismatch(f"type {t!r} not handled by the test")


def _label(v: bytes, col: Column) -> str:
    return v.decode(col.labels_charset or "utf-8", "surrogateescape")


def _enum_index(ours: Any, col: Column) -> int:
    if _is_int(ours):
        return int(ours)
    _need(isinstance(ours, str), "ENUM not a string")
    if ours == "":
        return 0
    _need(col.labels is not None, "ENUM labels unknown but ours is a string")
    assert col.labels is not None
    names = [_label(v, col) for v in col.labels]
    _need(ours in names, f"{ours!r} not an ENUM label")
    return names.index(ours) + 1


def _set_mask(ours: Any, col: Column) -> int:
    if _is_int(ours):
        return int(ours)
    _need(isinstance(ours, str), "SET not a string")
    if ours == "":
        return 0
    _need(col.labels is not None, "SET labels unknown but ours is a string")
    assert col.labels is not None
    names = [_label(v, col) for v in col.labels]
    mask = 0
    for part in ours.split(","):
        _need(part in names, f"{part!r} not a SET member")
        mask |= 1 << names.index(part)
    return mask


# --------------------------------------------------------------------------------------
# MySQL partial JSON: JSON_REPLACE / JSON_INSERT / JSON_REMOVE expressions
# --------------------------------------------------------------------------------------


@dataclass
class JsonOp:
    op: str  # 'JSON_REPLACE' | 'JSON_INSERT' | 'JSON_REMOVE'
    path: str
    value: Any = None


class _Expr:
    def __init__(self, text: str) -> None:
        self.s = re.sub(r"\n###\s+", "", text)
        self.i = 0

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \n":
            self.i += 1

    def eat(self, tok: str) -> None:
        self.ws()
        _need(self.s.startswith(tok, self.i), f"expected {tok!r} at {self.s[self.i:][:30]!r}")
        self.i += len(tok)

    def quoted(self) -> str:
        """A string quoted by mysqlbinlog (escapes as in ``quote``)."""
        self.ws()
        _need(self.s.startswith("'", self.i), "expected a quoted string")
        j = self.i + 1
        while j < len(self.s) and self.s[j] != "'":
            j += 2 if self.s[j] == "\\" else 1
        _need(j < len(self.s), "unterminated string")
        raw = self.s[self.i : j + 1]
        self.i = j + 1
        return unquote(raw, MYSQLBINLOG).decode("utf-8", "surrogateescape")

    def value(self) -> Any:
        self.ws()
        if self.s.startswith("CAST(", self.i):
            self.i += 5
            v = json.loads(self.quoted(), parse_float=Decimal)
            self.eat("AS JSON)")
            return v
        if self.s.startswith("'", self.i):
            return self.quoted()
        m = re.compile(r"[^,)]+").match(self.s, self.i)
        _need(m is not None, "expected a value")
        assert m is not None
        self.i = m.end()
        return json.loads(m.group(0).strip(), parse_float=Decimal)

    def expr(self, col: int) -> list[JsonOp]:
        self.ws()
        if self.s.startswith(f"@{col}", self.i):
            self.i += len(f"@{col}")
            return []
        m = re.compile(r"(JSON_REPLACE|JSON_INSERT|JSON_REMOVE)\(").match(self.s, self.i)
        _need(m is not None, f"expected a JSON function at {self.s[self.i:][:30]!r}")
        assert m is not None
        self.i = m.end()
        ops = self.expr(col)
        fn = m.group(1)
        while True:
            self.ws()
            if self.s.startswith(")", self.i):
                self.i += 1
                return ops
            self.eat(",")
            path = self.quoted()
            if fn == "JSON_REMOVE":
                ops.append(JsonOp(fn, path))
            else:
                self.eat(",")
                ops.append(JsonOp(fn, path, self.value()))


def parse_partial_json(text: str, col: int) -> list[JsonOp]:
    e = _Expr(text)
    ops = e.expr(col)
    e.ws()
    _need(e.i == len(e.s), f"trailing text in {text!r}")
    return ops


_LEG = re.compile(r'\.(?:"((?:[^"\\]|\\.)*)"|([A-Za-z_$][\w$]*))|\[(\d+)\]')


def json_path(path: str) -> list[str | int]:
    _need(path.startswith("$"), f"path {path!r}")
    legs: list[str | int] = []
    i = 1
    while i < len(path):
        m = _LEG.match(path, i)
        _need(m is not None, f"path {path!r}")
        assert m is not None
        if m.group(3) is not None:
            legs.append(int(m.group(3)))
        elif m.group(1) is not None:
            legs.append(json.loads(f'"{m.group(1)}"'))
        else:
            legs.append(m.group(2))
        i = m.end()
    return legs


def apply_json_ops(doc: Any, ops: Sequence[JsonOp]) -> Any:
    """MySQL's semantics for the three functions on a single path each."""
    for op in ops:
        legs = json_path(op.path)
        _need(bool(legs), "diff on the root")
        parent = doc
        for leg in legs[:-1]:
            parent = parent[leg]
        last = legs[-1]
        if op.op == "JSON_REMOVE":
            del parent[last]
        elif isinstance(parent, list):
            assert isinstance(last, int)
            if op.op == "JSON_INSERT" and last >= len(parent):
                parent.append(op.value)
            else:
                parent[last] = op.value
        else:
            parent[last] = op.value
    return doc
