"""pt-table-checksum style table checksums, on the replay engine and on a
live server, and where two of them differ.

A row's text is what the server prints for
``CONCAT_WS('#', c1, ..., cN, CONCAT(ISNULL(c1), ..., ISNULL(cN)))``: the
non-NULL values as text joined by ``#`` plus a field of NULL flags (so NULL
and ``''`` differ). Its checksum is ``CRC32`` of those bytes (utf8mb4 for
text, raw for binary strings). Rows are cut, in primary-key order, into
chunks of ``chunk_size`` rows; a :class:`Chunk` holds its PK range, row
count and the XOR of its rows' CRCs. Comparing two sides uses the same
boundaries (side A's), so an extra or missing row shows up in one range.

Type coverage (engine text == server text): integers, DECIMAL, CHAR,
VARCHAR, TEXT, BINARY, VARBINARY, BLOB, DATE, DATETIME(n), TIMESTAMP(n)
(the server session runs with ``time_zone='+00:00'``, as the engine does),
DOUBLE (the server's shortest round-trip digits, exponent form outside
1e-15 .. 1e15) and FLOAT (6 significant digits). Strings compare by
lower-cased, trailing-space-stripped text to place rows in PK ranges
(``utf8mb4_general_ci``-like); accent folding is not modelled. Tables
without a primary key are one chunk. Other server types (JSON, ENUM, BIT,
TIME, YEAR ...) are checksummed on servers only.
"""

from __future__ import annotations

import bisect
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from binlogkit.replay.engine import Engine

PK = tuple[Any, ...]

# --- value text -------------------------------------------------------------------


def _digits(text: str) -> tuple[str, int]:
    """(digits, decpt) of the positive number ``text``: 0.DIGITS * 10**decpt."""
    sign, digs, exp = Decimal(text).as_tuple()
    digits = "".join(map(str, digs))
    stripped = digits.rstrip("0")
    return stripped, len(digits) + int(exp)


def double_text(value: float, *, single: bool = False) -> str:
    """``value`` as the server prints a DOUBLE (``single``: a FLOAT) in string
    context: shortest round-trip digits (6 significant for FLOAT), plain
    notation when -15 < decpt <= 15 (value = 0.DIGITS * 10**decpt; also for
    17 digits with decpt 16, as observed on MariaDB 10.11 and MySQL 9.7),
    else ``1.5e-16`` style."""
    if value == 0:
        return "0" if math.copysign(1.0, value) > 0 else "-0"
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{value} has no server text")
    # repr() is the shortest text that reads back as the same double
    digits, decpt = _digits(f"{abs(value):.5e}" if single else repr(abs(value)))
    sign = "-" if value < 0 else ""
    if -15 < decpt <= 15 or (decpt == 16 and len(digits) == 17):
        if decpt <= 0:
            return f"{sign}0.{'0' * -decpt}{digits}"
        if decpt >= len(digits):
            return f"{sign}{digits}{'0' * (decpt - len(digits))}"
        return f"{sign}{digits[:decpt]}.{digits[decpt:]}"
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mant}e{decpt - 1}"


def decimal_text(value: Decimal) -> str:
    return format(value, "f")


def value_text(value: Any, sql_type: str = "") -> bytes | None:
    """The bytes the server prints for a stored value (None for NULL)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, Decimal):
        return decimal_text(value).encode()
    if isinstance(value, float):
        return double_text(value, single=sql_type.startswith("FLOAT")).encode()
    return str(value).encode("utf-8")


def row_text(values: Sequence[Any], types: Sequence[str] = ()) -> bytes:
    """``CONCAT_WS('#', values..., CONCAT(ISNULL(v)...))`` as bytes."""
    types = tuple(types) or ("",) * len(values)
    parts = [t for t in (value_text(v, ty) for v, ty in zip(values, types, strict=True))
             if t is not None]
    parts.append("".join("1" if v is None else "0" for v in values).encode())
    return b"#".join(parts)


def row_crc(values: Sequence[Any], types: Sequence[str] = ()) -> int:
    return zlib.crc32(row_text(values, types))


# --- chunks -----------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """Rows with ``lo <= PK < hi`` (``lo`` None: from the start, ``hi`` None:
    to the end): how many and the XOR of their CRC32s."""

    lo: PK | None
    hi: PK | None
    count: int
    crc: int


@dataclass(frozen=True)
class TableChecksum:
    """``table`` is ``schema.name``; chunks in PK order covering every PK."""

    table: str
    chunks: tuple[Chunk, ...]

    @property
    def boundaries(self) -> list[PK]:
        """The PKs that start the 2nd, 3rd ... chunk (pass to the other side)."""
        return [c.lo for c in self.chunks[1:] if c.lo is not None]

    @property
    def count(self) -> int:
        return sum(c.count for c in self.chunks)


def range_text(lo: PK | None, hi: PK | None) -> str:
    def one(pk: PK | None) -> str:
        if pk is None:
            return ""
        return ", ".join(repr(v) for v in pk) if len(pk) > 1 else repr(pk[0])

    if lo is None and hi is None:
        return "all rows"
    if lo is None:
        return f"PK < ({one(hi)})"
    if hi is None:
        return f"PK >= ({one(lo)})"
    return f"({one(lo)}) <= PK < ({one(hi)})"


@dataclass(frozen=True)
class ChunkDiff:
    """A PK range of ``table`` whose rows differ (counts and CRCs of A and B);
    ``missing`` names the side a whole table is missing from."""

    table: str
    lo: PK | None
    hi: PK | None
    count_a: int
    count_b: int
    crc_a: int
    crc_b: int
    missing: str = ""

    def __str__(self) -> str:
        if self.missing:
            return f"{self.table}: table missing on {self.missing}"
        return (f"{self.table}: {range_text(self.lo, self.hi)}: rows {self.count_a} vs "
                f"{self.count_b}, crc {self.crc_a:08x} vs {self.crc_b:08x}")


def _total(t: TableChecksum) -> tuple[int, int]:
    crc = 0
    for c in t.chunks:
        crc ^= c.crc
    return t.count, crc


def diff(a: TableChecksum | Mapping[str, TableChecksum],
         b: TableChecksum | Mapping[str, TableChecksum]) -> list[ChunkDiff]:
    """Where ``a`` and ``b`` differ: chunk by chunk when ``b`` was computed with
    ``a``'s boundaries (``boundaries=a.boundaries``); otherwise one whole-table
    difference when the row counts or the XOR of all row CRCs differ. Given
    mappings (``Engine.checksum()`` results), tables missing on one side are
    reported with ``missing="A"``/``"B"``."""
    if not isinstance(a, TableChecksum) or not isinstance(b, TableChecksum):
        if isinstance(a, TableChecksum) or isinstance(b, TableChecksum):
            raise TypeError("diff() takes two TableChecksums or two mappings of them")
        out: list[ChunkDiff] = []
        for name in sorted(set(a) | set(b)):
            if name not in a or name not in b:
                out.append(ChunkDiff(name, None, None, 0, 0, 0, 0,
                                     missing="A" if name not in a else "B"))
            else:
                out.extend(diff(a[name], b[name]))
        return out
    ranges_a = [(c.lo, c.hi) for c in a.chunks]
    ranges_b = [(c.lo, c.hi) for c in b.chunks]
    if ranges_a != ranges_b:
        (na, xa), (nb, xb) = _total(a), _total(b)
        return [] if (na, xa) == (nb, xb) else [ChunkDiff(a.table, None, None, na, nb, xa, xb)]
    return [ChunkDiff(a.table, x.lo, x.hi, x.count, y.count, x.crc, y.crc)
            for x, y in zip(a.chunks, b.chunks, strict=True)
            if (x.count, x.crc) != (y.count, y.crc)]


def _collate(value: Any) -> Any:
    if isinstance(value, str):
        return (1, value.rstrip(" ").lower())
    return (0, value)


def pk_key(pk: PK) -> tuple[Any, ...]:
    """Sort key of a PK tuple, strings compared case-insensitively."""
    return tuple(_collate(v) for v in pk)


def chunk_rows(table: str, rows: Iterable[tuple[PK | None, int]], chunk_size: int,
               boundaries: Sequence[PK] | None) -> TableChecksum:
    """Chunk ``(pk, crc)`` pairs (pk None: a table without primary key, one chunk)."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    items = list(rows)
    if any(pk is None for pk, _ in items):
        crc = 0
        for _, c in items:
            crc ^= c
        return TableChecksum(table, (Chunk(None, None, len(items), crc),))
    keyed = sorted(((pk_key(pk), pk, crc) for pk, crc in items if pk is not None),
                   key=lambda x: x[0])
    if boundaries is None:
        bounds = [keyed[i][1] for i in range(chunk_size, len(keyed), chunk_size)]
    else:
        bounds = [tuple(b) for b in boundaries]
    bkeys = [pk_key(b) for b in bounds]
    counts = [0] * (len(bounds) + 1)
    crcs = [0] * (len(bounds) + 1)
    for key, _, crc in keyed:
        i = bisect.bisect_right(bkeys, key)
        counts[i] += 1
        crcs[i] ^= crc
    los: list[PK | None] = [None, *bounds]
    his: list[PK | None] = [*bounds, None]
    return TableChecksum(table, tuple(Chunk(lo, hi, n, c)
                                      for lo, hi, n, c in zip(los, his, counts, crcs,
                                                              strict=True)))


# --- the engine -------------------------------------------------------------------


def engine_checksum(engine: Engine, tables: Iterable[str] | None = None,
                    chunk_size: int = 1000,
                    boundaries: Mapping[str, Sequence[PK]] | None = None
                    ) -> dict[str, TableChecksum]:
    """Checksums of the engine's tables (``schema.name``; all when None)."""
    out: dict[str, TableChecksum] = {}
    infos = {t.qualified: t for t in engine.tables()}
    names = list(infos) if tables is None else list(tables)
    for name in names:
        if name not in infos:
            raise KeyError(f"no table {name}")
        info = infos[name]
        types = [c.sql_type for c in info.columns]
        cols = [c.name for c in info.columns]
        pairs: list[tuple[PK | None, int]] = []
        for row in engine.rows(info.schema, info.name):
            values = [row.get(c) for c in cols]
            pk = tuple(row[c] for c in info.primary_key) if info.primary_key else None
            pairs.append((pk, row_crc(values, types)))
        out[name] = chunk_rows(name, pairs, chunk_size,
                               None if boundaries is None else boundaries.get(name))
    return out


# --- a server ---------------------------------------------------------------------

_TEXT_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set")


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def server_tables(conn: Any) -> list[str]:
    """``schema.name`` of every base table outside the system schemas."""
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
                    "WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN "
                    "('mysql', 'information_schema', 'performance_schema', 'sys') "
                    "ORDER BY TABLE_SCHEMA, TABLE_NAME")
        return [f"{_text(s)}.{_text(t)}" for s, t in cur.fetchall()]


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def server_checksum(conn: Any, schema: str, table: str, chunk_size: int = 1000,
                    boundaries: Sequence[PK] | None = None) -> TableChecksum:
    """The checksum of ``schema.table`` on a server (a PyMySQL connection):
    the server prints each row (``CONCAT_WS``), Python computes the CRCs.
    Sets the session ``time_zone`` to ``+00:00``. Raises KeyError when the
    table does not exist."""
    with conn.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                    (schema, table))
        cols = [(_text(n), _text(t).lower()) for n, t in cur.fetchall()]
        if not cols:
            raise KeyError(f"no table {schema}.{table}")
        cur.execute("SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE "
                    "TABLE_SCHEMA = %s AND TABLE_NAME = %s AND INDEX_NAME = 'PRIMARY' "
                    "ORDER BY SEQ_IN_INDEX", (schema, table))
        pk = [_text(r[0]) for r in cur.fetchall()]
        types = dict(cols)
        names = [_quote(n) for n, _ in cols]
        # text columns as utf8mb4 whatever their charset (MariaDB defaults to latin1)
        texts = [f"CONVERT({_quote(n)} USING utf8mb4)" if t in _TEXT_TYPES else _quote(n)
                 for n, t in cols]
        flags = "CONCAT(" + ", ".join(f"ISNULL({n})" for n in names) + ")"
        pk_exprs = [f"CAST({_quote(c)} AS CHAR)"
                    if types[c] in ("date", "datetime", "timestamp") else _quote(c)
                    for c in pk]
        sql = (f"SELECT CONCAT_WS('#', {', '.join(texts)}, {flags})"
               + "".join(", " + e for e in pk_exprs)
               + f" FROM {_quote(schema)}.{_quote(table)}")
        if pk:
            sql += " ORDER BY " + ", ".join(_quote(c) for c in pk)
        cur.execute("SET time_zone = '+00:00'")
        cur.execute(sql)
        pairs: list[tuple[PK | None, int]] = []
        for row in cur.fetchall_unbuffered() if hasattr(cur, "fetchall_unbuffered") \
                else cur.fetchall():
            text = row[0]
            data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
            key = tuple(_text(v) if isinstance(v, bytes) and types[c] not in (
                "binary", "varbinary", "blob", "tinyblob", "mediumblob", "longblob")
                else v for v, c in zip(row[1:], pk, strict=True)) if pk else None
            pairs.append((key, zlib.crc32(data)))
    return chunk_rows(f"{schema}.{table}", pairs, chunk_size, boundaries)
