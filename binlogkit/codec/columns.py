"""What row decoding knows about each column: from the TABLE_MAP (type,
metadata, nullability), its optional metadata (MySQL 8.0.1+, MariaDB 10.5+:
names, signedness, charsets, ENUM/SET strings, geometry type, primary key,
visibility) and, where the binlog is silent (binlog_row_metadata=MINIMAL
omits names; older servers write nothing), a schema the caller supplies.

The binlog never says that a BINARY(16) holds a MariaDB UUID or INET6, nor
an old-DECIMAL's length: only a caller schema (``data_type``) can.

Which columns each optional-metadata list covers (both flavors):

| list                        | columns, in table order                              |
| --------------------------- | ---------------------------------------------------- |
| signedness                  | TINY SHORT INT24 LONG LONGLONG YEAR FLOAT DOUBLE     |
|                             | NEWDECIMAL (and old DECIMAL)                          |
| (default_)charset           | CHAR/VARCHAR/BINARY/TEXT/BLOB and GEOMETRY           |
| enum_and_set_(default_)...  | ENUM and SET                                         |
| set/enum_str_value          | SET / ENUM                                           |
| geometry_type               | GEOMETRY                                             |
| vector_dimensionality       | VECTOR                                               |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from binlogkit.codec.charsets import charset_name, decode_text
from binlogkit.codec.rowimage import ENUM_TYPE, SET_TYPE, column_metadata

STRING, VARCHAR, VAR_STRING, BLOB, GEOMETRY, JSON, VECTOR = 254, 15, 253, 252, 255, 245, 242
BINARY_COLLATION = 63
NUMERIC_TYPES = frozenset({0, 1, 2, 3, 4, 5, 8, 9, 13, 246})
TYPE_NAMES = {
    0: "DECIMAL", 1: "TINYINT", 2: "SMALLINT", 3: "INT", 4: "FLOAT", 5: "DOUBLE", 6: "NULL",
    7: "TIMESTAMP", 8: "BIGINT", 9: "MEDIUMINT", 10: "DATE", 11: "TIME", 12: "DATETIME",
    13: "YEAR", 14: "DATE", 15: "VARCHAR", 16: "BIT", 17: "TIMESTAMP", 18: "DATETIME",
    19: "TIME", 242: "VECTOR", 245: "JSON", 246: "DECIMAL", 247: "ENUM", 248: "SET",
    252: "BLOB", 253: "VARCHAR", 254: "CHAR", 255: "GEOMETRY",
}


@dataclass(frozen=True, slots=True)
class Column:
    """One column as row decoding sees it.

    ``type`` is the binlog type code with CHAR-coded ENUM/SET resolved to 247/248
    (``max_length`` is then the stored size); ``meta`` is the TABLE_MAP metadata
    value; ``collation`` None means the charset is unknown.
    """

    index: int
    type: int
    meta: int
    name: str | None = None
    nullable: bool = True
    unsigned: bool | None = None  # None: unknown (decoded as signed, as the server's default)
    collation: int | None = None
    charset: str | None = None
    max_length: int = 0  # CHAR/BINARY: bytes; VARCHAR: bytes
    enum_values: tuple[str, ...] | None = None
    set_values: tuple[str, ...] | None = None
    geometry_type: int | None = None
    vector_dimension: int | None = None
    primary_key: bool = False
    visible: bool = True
    data_type: str | None = None  # from a caller schema: 'uuid', 'inet6', 'json', 'decimal' ...
    fsp: int = 0  # MariaDB's pre-10.1 TIME/DATETIME/TIMESTAMP(n) (types 11/12/7), from a schema

    @property
    def key(self) -> str:
        """The name rows are keyed by: the column name, else ``@N`` (1-based)."""
        return self.name if self.name is not None else f"@{self.index + 1}"

    @property
    def is_binary(self) -> bool:
        return self.collation == BINARY_COLLATION or self.charset == "binary"

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, f"TYPE_{self.type}")


@dataclass(frozen=True)
class ColumnDef:
    """A column as a caller (or information_schema.COLUMNS) describes it."""

    name: str
    data_type: str = ""  # DATA_TYPE, lower case: 'int', 'varchar', 'uuid', 'inet6' ...
    unsigned: bool | None = None
    charset: str | None = None  # CHARACTER_SET_NAME
    enum_values: tuple[str, ...] | None = None  # ENUM or SET members
    primary_key: bool = False
    length: int | None = None  # old DECIMAL: the stored length
    fsp: int | None = None  # DATETIME_PRECISION: MariaDB's old-format TIME/DATETIME/TIMESTAMP(n)


@dataclass(frozen=True)
class TableDef:
    schema: str
    table: str
    columns: tuple[ColumnDef, ...] = field(default_factory=tuple)


class Schemas:
    """Caller-supplied table definitions, by (schema, table)."""

    def __init__(self, tables: Sequence[TableDef] = ()) -> None:
        self.tables: dict[tuple[str, str], TableDef] = {}
        for t in tables:
            self.add(t)

    def add(self, table: TableDef) -> None:
        self.tables[(table.schema, table.table)] = table

    def get(self, schema: str, table: str) -> TableDef | None:
        return self.tables.get((schema, table))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Mapping[str, Sequence[Any]]]) -> Schemas:
        """``{"db": {"table": ["id", {"name": "u", "data_type": "uuid"}, ...]}}``."""
        out = cls()
        for db, tables in data.items():
            for name, cols in tables.items():
                defs = tuple(ColumnDef(c) if isinstance(c, str) else _column_def(c)
                             for c in cols)
                out.add(TableDef(db, name, defs))
        return out

    @classmethod
    def from_server(cls, conn: Any, schemas: Sequence[str] | None = None) -> Schemas:
        """Read information_schema.COLUMNS over a DB-API connection (PyMySQL)."""
        sql = ("SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE,"
               " CHARACTER_SET_NAME, COLUMN_KEY, CHARACTER_OCTET_LENGTH, DATETIME_PRECISION"
               " FROM information_schema.COLUMNS")
        args: tuple[Any, ...] = ()
        if schemas:
            sql += " WHERE TABLE_SCHEMA IN (" + ",".join(["%s"] * len(schemas)) + ")"
            args = tuple(schemas)
        sql += " ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
        grouped: dict[tuple[str, str], list[ColumnDef]] = {}
        with conn.cursor() as cur:
            cur.execute(sql, args)
            for db, tbl, name, dtype, ctype, cs, key, _octets, fsp in cur.fetchall():
                db, tbl, name, dtype, ctype, cs, key = (
                    _s(x) for x in (db, tbl, name, dtype, ctype, cs, key))
                values = _enum_members(ctype) if dtype in ("enum", "set") else None
                grouped.setdefault((db, tbl), []).append(ColumnDef(
                    name, dtype.lower(), "unsigned" in ctype.lower(), cs or None, values,
                    key == "PRI", fsp=int(fsp) if fsp else None))
        return cls([TableDef(db, t, tuple(cols)) for (db, t), cols in grouped.items()])


def _column_def(fields: Mapping[str, Any]) -> ColumnDef:
    """A ColumnDef from JSON-like fields (lists become tuples: definitions are hashable)."""
    clean: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                             for k, v in fields.items()}
    return ColumnDef(**clean)


def _s(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, bytes | bytearray) else ("" if v is None else str(v))


def _enum_members(column_type: str) -> tuple[str, ...]:
    """Members of ``enum('a','b''c')`` as the server lists them in COLUMN_TYPE."""
    inner = column_type[column_type.index("(") + 1 : column_type.rindex(")")]
    out, cur, i, quoted = [], [], 0, False
    while i < len(inner):
        ch = inner[i]
        if quoted:
            if ch == "'" and inner[i + 1 : i + 2] == "'":
                cur.append("'")
                i += 1
            elif ch == "'":
                quoted = False
                out.append("".join(cur))
                cur = []
            else:
                cur.append(ch)
        elif ch == "'":
            quoted = True
        i += 1
    return tuple(out)


def _opt(tm: Any) -> dict[int, Any]:
    return {m.type: m.value for m in (tm.optional_metadata or [])}


def _bits(data: bytes, n: int) -> list[bool]:
    """MSB-first bitmap (optional metadata's order)."""
    return [bool(data[i >> 3] & (0x80 >> (i & 7))) if i >> 3 < len(data) else False
            for i in range(n)]


def _charsets(default: Any, per_column: Any, count: int) -> list[int | None]:
    if per_column is not None:
        vals: list[int | None] = list(per_column)[:count]
        return vals + [None] * (count - len(vals))
    if default is not None:
        out: list[int | None] = [default.default] * count
        for item in default.columns:
            if item.column < count:
                out[item.column] = item.collation
        return out
    return [None] * count


def _members(values: Any, charset: str | None) -> tuple[str, ...]:
    """ENUM/SET member names, written in the column's charset."""
    out = []
    for v in values:
        text = decode_text(bytes(v), charset or "utf8mb4")
        out.append(text if isinstance(text, str) else bytes(v).decode("utf-8", "surrogateescape"))
    return tuple(out)


def _names(values: Any) -> tuple[str, ...]:
    return tuple(bytes(v).decode("utf-8", "surrogateescape") for v in values)


def real_type(col_type: int, meta: int) -> tuple[int, int]:
    """(type, max length) for CHAR-coded columns: STRING can stand for ENUM/SET."""
    if col_type != STRING:
        return col_type, meta
    byte0, byte1 = meta >> 8, meta & 0xFF
    if byte0 and byte0 & 0x30 != 0x30:
        return byte0 | 0x30, byte1 | (((byte0 & 0x30) ^ 0x30) << 4)
    if byte0 in (ENUM_TYPE, SET_TYPE):
        return byte0, byte1
    return STRING, byte1


def columns_from_table_map(tm: Any, table_def: TableDef | None = None,
                           flavor: str = "mysql") -> tuple[Column, ...]:
    """Columns of a TABLE_MAP body, completed by a caller's table definition."""

    types = bytes(tm.column_types)
    metas = column_metadata(types, bytes(tm.metadata or b""))
    nulls = bytes(tm.null_bitmap or b"")
    opt = _opt(tm)
    resolved = [real_type(t, m) for t, m in zip(types, metas, strict=True)]
    numeric = [i for i, (t, _) in enumerate(resolved) if t in NUMERIC_TYPES]
    character = [i for i, (t, _) in enumerate(resolved)
                 if t in (STRING, VARCHAR, VAR_STRING, BLOB, GEOMETRY)]
    enumset = [i for i, (t, _) in enumerate(resolved) if t in (ENUM_TYPE, SET_TYPE)]
    signed = dict(zip(numeric, _bits(bytes(opt[1]), len(numeric)), strict=True)) if 1 in opt else {}
    cs = dict(zip(character, _charsets(opt.get(2), opt.get(3), len(character)), strict=True))
    cs.update(zip(enumset, _charsets(opt.get(10), opt.get(11), len(enumset)), strict=True))
    names = _names(opt[4]) if 4 in opt else None
    sets = list(opt.get(5, []))  # member names stay bytes until the charset is known
    enums = list(opt.get(6, []))
    geo = list(opt.get(7, []))
    vec = list(opt.get(13, []))
    pk = set(opt.get(8, [])) | {item.column for item in opt.get(9, [])}
    visible = _bits(bytes(opt[12]), len(types)) if 12 in opt else [True] * len(types)
    defs = list(table_def.columns) if table_def else []
    out = []
    counters = {"set": 0, "enum": 0, "geo": 0, "vec": 0}
    for i, ((t, length), meta) in enumerate(zip(resolved, metas, strict=True)):
        d = defs[i] if i < len(defs) else None
        col = Column(
            index=i, type=t, meta=meta,
            name=names[i] if names and i < len(names) else (d.name if d else None),
            nullable=bool(nulls[i >> 3] >> (i & 7) & 1) if i >> 3 < len(nulls) else True,
            unsigned=signed[i] if i in signed else (d.unsigned if d else None),
            collation=cs.get(i),
            max_length=length,
            primary_key=i in pk or bool(d and d.primary_key),
            visible=visible[i],
            data_type=d.data_type or None if d else None,
        )
        if col.collation is not None:
            col = replace(col, charset=charset_name(col.collation, flavor))
        elif d and d.charset:
            col = replace(col, charset=d.charset)
        if t in (SET_TYPE, ENUM_TYPE):
            kind = "set" if t == SET_TYPE else "enum"
            k = counters[kind]
            counters[kind] += 1
            lists = sets if t == SET_TYPE else enums
            vals = (_members(lists[k], col.charset) if k < len(lists)
                    else (d.enum_values if d else None))
            col = (replace(col, set_values=vals) if t == SET_TYPE
                   else replace(col, enum_values=vals))
        elif t == GEOMETRY:
            k = counters["geo"]
            counters["geo"] += 1
            col = replace(col, geometry_type=geo[k] if k < len(geo) else None)
        elif t == VECTOR:
            k = counters["vec"]
            counters["vec"] += 1
            col = replace(col, vector_dimension=vec[k] if k < len(vec) else None)
        if t == 0 and d and d.length:
            col = replace(col, max_length=d.length)
        if t in (7, 11, 12) and d and d.fsp:
            col = replace(col, fsp=d.fsp)
        out.append(col)
    return tuple(out)
