"""Column types as a binlog TABLE_MAP describes them, from ``ColumnInfo.sql_type``.

:func:`table_map_body` gives the TABLE_MAP body a server with
``binlog_row_metadata=FULL`` writes for a :class:`~binlogkit.replay.model.TableInfo`
(types, metadata, nullability, signedness, charsets, ENUM/SET members, names,
primary key; MySQL adds column visibility), and :func:`table_columns` the
:class:`~binlogkit.codec.columns.Column` tuple row images are encoded with: the
one a reader derives from that body, so writer and reader cannot disagree.

| sql_type                              | type code | metadata                          |
| ------------------------------------- | --------- | --------------------------------- |
| TINYINT SMALLINT MEDIUMINT INT BIGINT | 1 2 9 3 8 | --  (UNSIGNED: signedness bit)    |
| FLOAT / DOUBLE                        | 4 / 5     | 4 / 8                             |
| DECIMAL(p,s) (NUMERIC)                | 246       | p, s                              |
| DATE / YEAR                           | 10 / 13   | --                                |
| TIME(f) DATETIME(f) TIMESTAMP(f)      | 19 18 17  | f                                 |
| CHAR(n) / BINARY(n)                   | 254       | real type 254 + max bytes (n*mbmaxlen) |
| VARCHAR(n) / VARBINARY(n)             | 15        | max bytes (u16)                   |
| TINY/-/MEDIUM/LONG TEXT and BLOB      | 252       | length bytes 1 2 3 4              |
| ENUM(...) / SET(...)                  | 254       | real type 247/248 + 1-2 / 1-8 bytes |
| BIT(n)                                | 16        | n % 8, n // 8                     |
| JSON (MySQL)                          | 245       | 4                                 |

Strings are utf8mb4 unless ``CHARACTER SET x`` / ``COLLATE x`` follows the
type (utf8mb4, utf8mb3/utf8, latin1, ascii, binary are known).
"""

from __future__ import annotations

import re
from typing import Any

import construct as c

from binlogkit.codec.columns import Column, columns_from_table_map
from binlogkit.codec.registry import spec_for
from binlogkit.codec.types import EventType
from binlogkit.replay.model import ColumnInfo, TableInfo

TM_BIT_LEN_EXACT_F = 1

_INTS = {"TINYINT": 1, "BOOL": 1, "BOOLEAN": 1, "SMALLINT": 2, "MEDIUMINT": 9, "INT": 3,
         "INTEGER": 3, "BIGINT": 8}
_TEXTS = {"TINYTEXT": 1, "TEXT": 2, "MEDIUMTEXT": 3, "LONGTEXT": 4,
          "TINYBLOB": 1, "BLOB": 2, "MEDIUMBLOB": 3, "LONGBLOB": 4}
_NUMERIC = frozenset({0, 1, 2, 3, 4, 5, 8, 9, 13, 246})
_CHARACTER = frozenset({15, 252, 253, 254, 255})

# charset -> (mbmaxlen, default collation on MySQL, on MariaDB)
_CHARSETS: dict[str, tuple[int, int, int]] = {
    "utf8mb4": (4, 255, 45), "utf8mb3": (3, 33, 33), "utf8": (3, 33, 33),
    "latin1": (1, 8, 8), "ascii": (1, 11, 11), "binary": (1, 63, 63),
}
_COLLATIONS = {"utf8mb4_general_ci": 45, "utf8mb4_bin": 46, "utf8mb4_unicode_ci": 224,
               "utf8mb4_0900_ai_ci": 255, "utf8mb4_0900_bin": 309, "utf8mb3_general_ci": 33,
               "utf8_general_ci": 33, "latin1_swedish_ci": 8, "latin1_bin": 47,
               "ascii_general_ci": 11, "binary": 63}

_TYPE_RE = re.compile(r"^\s*([A-Za-z]+(?:\s+PRECISION)?)\s*(?:\((.*?)\))?\s*(.*)$", re.S)


class UnsupportedType(ValueError):
    """A column type the writer cannot describe in a TABLE_MAP."""


def _args(text: str | None) -> list[str]:
    if not text:
        return []
    out, cur, quoted, i = [], [], False, 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "'" and i + 1 < len(text) and text[i + 1] == "'":
                cur.append("'")
                i += 1
            elif ch == "'":
                quoted = False
            else:
                cur.append(ch)
        elif ch == "'":
            quoted = True
        elif ch == ",":
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur).strip())
    return out


def _charset(rest: str, flavor: str, binary: bool) -> tuple[int, int]:
    """(collation id, mbmaxlen) of a string column."""
    if binary:
        return 63, 1
    m = re.search(r"COLLATE\s+`?(\w+)", rest, re.I)
    if m and m.group(1).lower() in _COLLATIONS:
        coll = _COLLATIONS[m.group(1).lower()]
        cs = m.group(1).lower().split("_")[0]
        return coll, _CHARSETS.get(cs, (4, 0, 0))[0]
    m = re.search(r"(?:CHARACTER\s+SET|CHARSET)\s+`?(\w+)", rest, re.I)
    cs = m.group(1).lower() if m else "utf8mb4"
    if cs not in _CHARSETS:
        raise UnsupportedType(f"unknown character set {cs!r}")
    mb, mysql_coll, maria_coll = _CHARSETS[cs]
    return (mysql_coll if flavor == "mysql" else maria_coll), mb


class _Spec:
    """One column's TABLE_MAP parts."""

    def __init__(self, type_code: int, meta: bytes = b"", collation: int | None = None,
                 unsigned: bool = False, members: list[str] | None = None) -> None:
        self.type = type_code
        self.meta = meta
        self.collation = collation
        self.unsigned = unsigned
        self.members = members


def column_spec(col: ColumnInfo, flavor: str) -> _Spec:  # noqa: C901, PLR0911, PLR0912
    m = _TYPE_RE.match(col.sql_type)
    if not m:
        raise UnsupportedType(f"column {col.name}: cannot read type {col.sql_type!r}")
    base = m.group(1).upper().split()[0]
    args = _args(m.group(2))
    rest = m.group(3) or ""
    unsigned = bool(re.search(r"\bUNSIGNED\b", rest, re.I))
    if base in _INTS:
        return _Spec(_INTS[base], unsigned=unsigned)
    if base == "FLOAT":
        return _Spec(4, b"\x04", unsigned=unsigned)
    if base in ("DOUBLE", "REAL"):
        return _Spec(5, b"\x08", unsigned=unsigned)
    if base in ("DECIMAL", "NUMERIC", "DEC", "FIXED"):
        p = int(args[0]) if args else 10
        s = int(args[1]) if len(args) > 1 else 0
        return _Spec(246, bytes((p, s)), unsigned=unsigned)
    if base == "DATE":
        return _Spec(10)
    if base == "YEAR":
        return _Spec(13, unsigned=True)
    if base in ("TIME", "DATETIME", "TIMESTAMP"):
        fsp = int(args[0]) if args else 0
        return _Spec({"TIME": 19, "DATETIME": 18, "TIMESTAMP": 17}[base], bytes((fsp,)))
    if base in ("CHAR", "BINARY", "NCHAR"):
        n = int(args[0]) if args else 1
        coll, mb = _charset(rest, flavor, base == "BINARY" or bool(re.search(
            r"CHARACTER\s+SET\s+binary", rest, re.I)))
        size = n * mb
        if size > 1020:
            raise UnsupportedType(f"column {col.name}: {col.sql_type} is too wide")
        byte0 = 254 ^ ((size & 0x300) >> 4)
        return _Spec(254, bytes((byte0, size & 0xFF)), coll)
    if base in ("VARCHAR", "VARBINARY", "NVARCHAR"):
        n = int(args[0])
        coll, mb = _charset(rest, flavor, base == "VARBINARY")
        return _Spec(15, (n * mb).to_bytes(2, "little"), coll)
    if base in _TEXTS:
        coll, _ = _charset(rest, flavor, "BLOB" in base)
        return _Spec(252, bytes((_TEXTS[base],)), coll)
    if base in ("ENUM", "SET"):
        coll, _ = _charset(rest, flavor, False)
        if base == "ENUM":
            return _Spec(254, bytes((247, 1 if len(args) < 256 else 2)), coll, members=args)
        return _Spec(254, bytes((248, (len(args) + 7) // 8)), coll, members=args)
    if base == "BIT":
        n = int(args[0]) if args else 1
        return _Spec(16, bytes((n % 8, n // 8)))
    if base == "JSON" and flavor == "mysql":
        return _Spec(245, b"\x04", 63)
    if base == "JSON":  # MariaDB: LONGTEXT
        return _Spec(252, b"\x04", _charset(rest, flavor, False)[0])
    raise UnsupportedType(f"column {col.name}: type {col.sql_type!r} is not supported")


def _msb_bits(bits: list[bool]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, b in enumerate(bits):
        if b:
            out[i >> 3] |= 0x80 >> (i & 7)
    return bytes(out)


def table_map_body(table: TableInfo, table_id: int, flavor: str) -> c.Container:
    """The TABLE_MAP body (a Container for the TABLE_MAP spec) of ``table``."""
    specs = [column_spec(col, flavor) for col in table.columns]
    nulls = bytearray((len(specs) + 7) // 8)
    for i, col in enumerate(table.columns):
        if col.nullable:
            nulls[i >> 3] |= 1 << (i & 7)
    numeric = [s for s in specs if s.type in _NUMERIC]
    character = [s for s in specs if s.type in _CHARACTER and not s.members]
    enumset = [s for s in specs if s.members is not None]
    opt: list[dict[str, Any]] = []
    if numeric:
        opt.append({"type": 1, "value": _msb_bits([s.unsigned for s in numeric])})
    if character:
        colls = [s.collation or 63 for s in character]
        default = max(set(colls), key=colls.count)
        opt.append({"type": 2, "value": {"default": default, "columns": [
            {"column": k, "collation": cl} for k, cl in enumerate(colls) if cl != default]}})
    sets = [[x.encode() for x in s.members or ()] for s in specs if s.members is not None
            and s.meta[0] == 248]
    enums = [[x.encode() for x in s.members or ()] for s in specs if s.members is not None
             and s.meta[0] == 247]
    if sets:
        opt.append({"type": 5, "value": sets})
    if enums:
        opt.append({"type": 6, "value": enums})
    opt.append({"type": 4, "value": [col.name.encode() for col in table.columns]})
    if enumset:
        colls = [s.collation or 63 for s in enumset]
        default = max(set(colls), key=colls.count)
        opt.append({"type": 10, "value": {"default": default, "columns": [
            {"column": k, "collation": cl} for k, cl in enumerate(colls) if cl != default]}})
    if table.primary_key:
        names = [col.name.lower() for col in table.columns]
        opt.append({"type": 8, "value": [names.index(k.lower()) for k in table.primary_key]})
    if flavor == "mysql":
        opt.append({"type": 12, "value": _msb_bits([True] * len(specs))})
    return c.Container(
        table_id=table_id, flags=TM_BIT_LEN_EXACT_F, post_extra=b"",
        schema=table.schema.encode(), table=table.name.encode(),
        column_count=len(specs), column_types=bytes(s.type for s in specs),
        metadata=b"".join(s.meta for s in specs), null_bitmap=bytes(nulls),
        optional_metadata=[c.Container(o) for o in opt], rest=b"",
    )


def table_columns(body: c.Container, flavor: str) -> tuple[Column, ...]:
    """The columns a reader derives from a TABLE_MAP body (built, then parsed)."""
    spec = spec_for(EventType.TABLE_MAP)
    parsed = spec.parse(spec.build(body, ph=8), ph=8)
    return columns_from_table_map(parsed, flavor=flavor)
