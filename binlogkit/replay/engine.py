"""An embedded, in-memory SQL engine for the subset :mod:`binlogkit.replay.sql`
parses: enough to run the same statements as a MySQL/MariaDB primary and
show where statement-based replication drifts from row-based.

Storage: per table a ``SortedDict`` from primary-key sort key to row (tables
without a primary key get a hidden row id), per secondary index a
``SortedList`` of ``(index key, primary key)``. Values use the model's
representation (see :mod:`binlogkit.replay.model`) and are coerced like a
strict-mode server (out of range, too long, bad dates: :class:`SqlError`).

Access path. UPDATE, DELETE and SELECT walk ONE index in its order and test
the whole WHERE on every row the walk reaches:

- ``access="primary"``: always the primary key (hidden row id without one);
- ``access="first"`` / ``"last"``: the first / last secondary index
  (declaration order) whose first column appears in a top-level AND term
  ``col op literal`` (op ``= < <= > >=`` or ``BETWEEN``); else the primary key;
- ``access={"t": "idx"}`` or ``{"db.t": "idx"}``: that index for that table
  (``"PRIMARY"`` for the primary key), like ``FORCE INDEX``; other tables
  use the primary key.

Range terms on the chosen index's first column bound the walk. With ORDER BY
the matching rows are sorted by it (stable, ties by primary key) before
LIMIT; without it LIMIT takes the first rows in index order, so two engines
with different ``access`` may change different rows for the same statement,
as a replica whose optimizer picks another index does.

Cannot: joins, subqueries, aggregates, ALTER TABLE, foreign keys, triggers,
time zones (everything is UTC), collations beyond ASCII case-folding with
trailing spaces ignored, LOCK/isolation (one writer at a time), INSERT
IGNORE clipping (IGNORE only skips duplicate keys), savepoints, XA.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
import random
import re
import struct
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sortedcontainers import SortedDict, SortedList

from binlogkit.replay import sql as S
from binlogkit.replay.checksum import decimal_text, double_text
from binlogkit.replay.model import ColumnInfo, Context, Executed, RowChange, TableInfo
from binlogkit.replay.sql import ReplayError, SqlError

if TYPE_CHECKING:
    from binlogkit.replay.checksum import TableChecksum

__all__ = ["Engine", "Session", "SqlError", "ApplyError", "ReplayError", "mysql_rand",
           "rand_seeds_for"]

RAND_MAX = 0x3FFFFFFF
_DEC = decimal.Context(prec=100, rounding=decimal.ROUND_HALF_UP)
_INT_RANGES = {"TINYINT": 8, "SMALLINT": 16, "MEDIUMINT": 24, "INT": 32, "BIGINT": 64}
_HIGH = (2,)  # sorts after every (0,) / (1, v) key element
_NULLKEY = (0,)
_EPOCH = _dt.datetime(1970, 1, 1)
_TS_MIN = "1970-01-01 00:00:01.000000"
_TS_MAX = "2038-01-19 03:14:07.999999"


class ApplyError(ReplayError):
    """A row change cannot be applied exactly (``handler`` names the storage
    engine error: HA_ERR_KEY_NOT_FOUND, HA_ERR_FOUND_DUPP_KEY; ``code`` the
    replica's SQL error 1032 / 1062)."""

    def __init__(self, message: str, handler: str, code: int) -> None:
        super().__init__(message)
        self.handler = handler
        self.code = code


# --- RAND() ----------------------------------------------------------------------


def mysql_rand(seeds: tuple[int, int]) -> tuple[float, tuple[int, int]]:
    """One step of the server's RAND() generator: (value, new seeds)."""
    s1, s2 = seeds
    s1 = (s1 * 3 + s2) % RAND_MAX
    s2 = (s1 + s2 + 33) % RAND_MAX
    return s1 / RAND_MAX, (s1, s2)


def rand_seeds_for(n: int) -> tuple[int, int]:
    """The seeds ``RAND(n)`` starts from."""
    n &= 0xFFFFFFFF
    return ((n * 0x10001 + 55555555) & 0xFFFFFFFF) % RAND_MAX, \
        ((n * 0x10000001) & 0xFFFFFFFF) % RAND_MAX


# --- column types and values ------------------------------------------------------


_DT_RE = re.compile(
    r"\s*(\d{4}|\d{2})[-/.:](\d{1,2})[-/.:](\d{1,2})"
    r"(?:(?:[ T]+)(\d{1,2})[:.](\d{1,2})[:.](\d{1,2})(?:\.(\d*))?)?\s*$")
_DT_COMPACT = re.compile(r"\s*(\d{8}|\d{14})(?:\.(\d*))?\s*$")


def _year(y: str) -> int:
    v = int(y)
    if len(y) == 2:
        v += 2000 if v < 70 else 1900
    return v


def parse_datetime(text: str) -> tuple[tuple[int, int, int, int, int, int], str] | None:
    """(y, mo, d, h, mi, s), fraction digits of a date/datetime text, or None."""
    m = _DT_RE.match(text)
    if m:
        y, mo, d, h, mi, s, frac = m.groups()
        return (_year(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0)), frac or ""
    m = _DT_COMPACT.match(text)
    if m:
        digits, frac = m.groups()
        vals = [int(digits[0:4]), int(digits[4:6]), int(digits[6:8])]
        vals += [int(digits[8:10]), int(digits[10:12]), int(digits[12:14])] \
            if len(digits) == 14 else [0, 0, 0]
        return (vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]), frac or ""
    return None


def _valid(p: tuple[int, ...]) -> bool:
    y, mo, d, h, mi, s = p[:6]
    if not (1 <= y <= 9999 and 1 <= mo <= 12 and 1 <= d and h < 24 and mi < 60 and s < 60):
        return False
    try:
        _dt.date(y, mo, d)
    except ValueError:
        return False
    return True


def _to_datetime(value: Any, fsp: int, round_fraction: bool) -> _dt.datetime | None:
    """A datetime rounded/truncated to ``fsp`` digits, or None if not a date."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal | float):
        text = format(Decimal(repr(value)) if isinstance(value, float) else Decimal(value),
                      "f")
        whole, _, frac = text.partition(".")
        if len(whole) not in (8, 14):
            return None
        value = whole + ("." + frac if frac else "")
    if not isinstance(value, str):
        return None
    parsed = parse_datetime(value)
    if parsed is None or not _valid(parsed[0]):
        return None
    (y, mo, d, h, mi, s), frac = parsed
    frac = (frac + "000000000")[:9]
    ns = int(frac)
    base = _dt.datetime(y, mo, d, h, mi, s)
    unit = 10 ** (9 - fsp)
    kept = ns // unit
    if round_fraction and ns % unit * 2 >= unit:
        kept += 1
    return base + _dt.timedelta(microseconds=kept * unit // 1000)


def _dt_text(v: _dt.datetime, fsp: int, date_only: bool = False) -> str:
    if date_only:
        return v.strftime("%Y-%m-%d") if v.year >= 1000 else f"{v.year:04d}-{v.month:02d}-" \
            f"{v.day:02d}"
    text = f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}"
    if fsp:
        text += "." + f"{v.microsecond:06d}"[:fsp]
    return text


def canonical_temporal(value: Any) -> str | None:
    """A 26-character 'YYYY-MM-DD HH:MM:SS.ffffff' for comparisons, or None."""
    d = _to_datetime(value, 6, True)
    return None if d is None else _dt_text(d, 6)


def _collate(s: str) -> str:
    return s.rstrip(" ").lower()


@dataclass
class _Col:
    info: ColumnInfo
    spec: S.TypeSpec
    kind: str  # int decimal float double string binary date datetime timestamp
    default_now: bool = False
    default_fsp: int = 0

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def temporal(self) -> bool:
        return self.kind in ("date", "datetime", "timestamp")

    def key(self, v: Any) -> tuple[Any, ...]:
        """Sort key of a stored value (NULL first)."""
        if v is None:
            return _NULLKEY
        if self.kind == "string":
            return (1, _collate(v))
        if self.temporal:
            return (1, canonical_temporal(v))
        return (1, v)

    def literal_key(self, v: Any) -> tuple[Any, ...] | None:
        """Sort key of a literal compared with this column, when the
        comparison orders like the index (else None: not sargable)."""
        if v is None or isinstance(v, bool):
            return None
        if self.kind in ("int", "decimal", "float", "double"):
            return (1, v) if isinstance(v, int | Decimal | float) else None
        if not isinstance(v, str):
            return None
        if self.kind == "string":
            return (1, _collate(v))
        if self.temporal:
            c = canonical_temporal(v)
            return None if c is None else (1, c)
        return None


def _sql_type(spec: S.TypeSpec) -> str:
    b = spec.base
    if b in _INT_RANGES:
        t = b
    elif b == "DECIMAL":
        t = f"DECIMAL({spec.length},{spec.scale})"
    elif b in ("CHAR", "VARCHAR", "BINARY", "VARBINARY"):
        t = f"{b}({spec.length})"
    elif b in ("DATETIME", "TIMESTAMP"):
        t = f"{b}({spec.length})" if spec.length else b
    else:
        t = b
    return t + (" UNSIGNED" if spec.unsigned else "")


def _kind(spec: S.TypeSpec) -> str:
    b = spec.base
    if b in _INT_RANGES:
        return "int"
    return {"DECIMAL": "decimal", "FLOAT": "float", "DOUBLE": "double", "CHAR": "string",
            "VARCHAR": "string", "TEXT": "string", "BINARY": "binary", "VARBINARY": "binary",
            "BLOB": "binary", "DATE": "date", "DATETIME": "datetime",
            "TIMESTAMP": "timestamp"}[b]


def _num_of_text(text: str, strict: bool) -> int | Decimal | float | None:
    """A number from text: None when ``strict`` and the text is not one number."""
    s = text.strip()
    m = re.match(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s)
    if not m or (strict and m.end() != len(s)):
        if strict:
            return None
        return 0.0 if not m else float(m.group())
    body = m.group()
    if m.group(2):
        return float(body)
    if "." in body:
        return Decimal(body)
    return int(body)


def to_double(v: Any) -> float:
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if isinstance(v, str):
        n = _num_of_text(v, False)
        return float(n) if n is not None else 0.0
    return float(v)


def value_str(v: Any) -> str:
    """A value as text, the way the server converts it in string context."""
    if isinstance(v, str):
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Decimal):
        return decimal_text(v)
    if isinstance(v, float):
        return double_text(v)
    raise SqlError(f"cannot convert {v!r} to text")


class _Coercer:
    """Strict-mode conversion of a value to a column's type."""

    def __init__(self, round_fraction: bool) -> None:
        self.round_fraction = round_fraction

    def __call__(self, col: _Col, v: Any, row: int = 1) -> Any:
        name = col.name
        if v is None:
            if not col.info.nullable:
                raise SqlError(f"Column '{name}' cannot be null", 1048)
            return None
        k = col.kind
        spec = col.spec
        if k == "int":
            return self._int(col, v, row)
        if k == "decimal":
            return self._decimal(col, v, row)
        if k in ("double", "float"):
            if isinstance(v, str | bytes):
                text = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                n = _num_of_text(text, True)
                if n is None:
                    raise SqlError(f"Incorrect double value: '{text}' for column '{name}' "
                                   f"at row {row}", 1366)
                v = n
            f = float(v)
            if k == "float":
                try:
                    f = struct.unpack("<f", struct.pack("<f", f))[0]
                except OverflowError:
                    raise SqlError(f"Out of range value for column '{name}' at row {row}",
                                   1264) from None
            if math.isinf(f) or math.isnan(f) or (spec.unsigned and f < 0):
                raise SqlError(f"Out of range value for column '{name}' at row {row}", 1264)
            return f
        if k == "string":
            s = value_str(v)
            if isinstance(v, bytes):
                try:
                    s = v.decode("utf-8")
                except UnicodeDecodeError:
                    raise SqlError(f"Incorrect string value for column '{name}' at row {row}",
                                   1366) from None
            if spec.base == "TEXT":
                if len(s.encode("utf-8")) > 65535:
                    raise SqlError(f"Data too long for column '{name}' at row {row}", 1406)
                return s
            n = spec.length or 0
            if len(s) > n:
                if s[n:].strip(" "):
                    raise SqlError(f"Data too long for column '{name}' at row {row}", 1406)
                s = s[:n]
            return s.rstrip(" ") if spec.base == "CHAR" else s
        if k == "binary":
            b = v if isinstance(v, bytes) else value_str(v).encode("utf-8")
            limit = 65535 if spec.base == "BLOB" else (spec.length or 0)
            if len(b) > limit:
                raise SqlError(f"Data too long for column '{name}' at row {row}", 1406)
            return b.ljust(limit, b"\0") if spec.base == "BINARY" else b
        # temporal
        fsp = 0 if k == "date" else (spec.length or 0)
        d = _to_datetime(v, fsp, self.round_fraction)
        shown = value_str(v) if not isinstance(v, bytes) else v.decode("utf-8", "replace")
        what = "date" if k == "date" else "datetime"
        if d is None:
            raise SqlError(f"Incorrect {what} value: '{shown}' for column '{name}' at row "
                           f"{row}", 1292)
        if k == "date":
            return _dt_text(d, 0, date_only=True)
        text = _dt_text(d, fsp)
        if k == "timestamp" and not (_TS_MIN <= _dt_text(d, 6) <= _TS_MAX):
            raise SqlError(f"Incorrect datetime value: '{shown}' for column '{name}' at row "
                           f"{row}", 1292)
        if d.year > 9999:
            raise SqlError(f"Incorrect datetime value: '{shown}' for column '{name}' at row "
                           f"{row}", 1292)
        return text

    def _int(self, col: _Col, v: Any, row: int) -> int:
        name = col.name
        spec = col.spec
        if isinstance(v, str | bytes):
            text = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
            n = _num_of_text(text, True)
            if n is None:
                if text.strip() and _num_of_text(text, False) not in (None, 0.0):
                    raise SqlError(f"Data truncated for column '{name}' at row {row}", 1265)
                raise SqlError(f"Incorrect integer value: '{text}' for column '{name}' at row "
                               f"{row}", 1366)
            v = Decimal(repr(n)) if isinstance(n, float) else Decimal(n)
        if isinstance(v, float):
            if math.isnan(v) or math.isinf(v):
                raise SqlError(f"Out of range value for column '{name}' at row {row}", 1264)
            i = round(v)  # half to even, as the server's rint()
        elif isinstance(v, Decimal):
            i = int(v.quantize(Decimal(1), rounding=decimal.ROUND_HALF_UP))
        else:
            i = int(v)
        bits = _INT_RANGES[spec.base]
        lo, hi = (0, 2 ** bits - 1) if spec.unsigned else (-2 ** (bits - 1),
                                                            2 ** (bits - 1) - 1)
        if not lo <= i <= hi:
            raise SqlError(f"Out of range value for column '{name}' at row {row}", 1264)
        return i

    def _decimal(self, col: _Col, v: Any, row: int) -> Decimal:
        name = col.name
        spec = col.spec
        if isinstance(v, str | bytes):
            text = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
            n = _num_of_text(text, True)
            if n is None:
                raise SqlError(f"Incorrect decimal value: '{text}' for column '{name}' at row "
                               f"{row}", 1366)
            v = n
        d = Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
        scale = spec.scale or 0
        q = d.quantize(Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_UP, context=_DEC)
        limit = Decimal(10) ** ((spec.length or 10) - scale)
        if abs(q) >= limit or (spec.unsigned and q < 0):
            raise SqlError(f"Out of range value for column '{name}' at row {row}", 1264)
        return q


# --- tables ------------------------------------------------------------------------


@dataclass
class _Index:
    name: str
    columns: tuple[str, ...]
    unique: bool
    entries: SortedList = field(default_factory=SortedList)


class _Table:
    def __init__(self, schema: str, name: str, cols: list[_Col], pk: tuple[str, ...],
                 indexes: list[_Index], create_sql: str) -> None:
        self.schema = schema
        self.name = name
        self.cols = cols
        self.colmap = {c.name.lower(): c for c in cols}
        self.pk = pk
        self.indexes = {i.name: i for i in indexes}
        self.rows: SortedDict = SortedDict()
        self.auto_inc = 1
        self.next_rowid = 1
        self.info = TableInfo(
            schema=schema, name=name, columns=tuple(c.info for c in cols), primary_key=pk,
            indexes={i.name: i.columns for i in indexes},
            unique=frozenset(i.name for i in indexes if i.unique), create_sql=create_sql)
        self.auto_col = next((c for c in cols if c.info.auto_increment), None)

    def col(self, name: str) -> _Col:
        c = self.colmap.get(name.lower())
        if c is None:
            raise SqlError(f"Unknown column '{name}' in '{self.name}'", 1054)
        return c

    def pk_key(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(self.colmap[c.lower()].key(row.get(c)) for c in self.pk)

    def index_key(self, idx: _Index, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(self.colmap[c.lower()].key(row.get(c)) for c in idx.columns)

    def new_key(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        if self.pk:
            return self.pk_key(row)
        key = ((1, self.next_rowid),)
        self.next_rowid += 1
        return key

    def put(self, key: tuple[Any, ...], row: dict[str, Any]) -> None:
        self.rows[key] = row
        for idx in self.indexes.values():
            idx.entries.add((self.index_key(idx, row), key))

    def remove(self, key: tuple[Any, ...]) -> dict[str, Any]:
        row: dict[str, Any] = self.rows.pop(key)
        for idx in self.indexes.values():
            idx.entries.remove((self.index_key(idx, row), key))
        return row

    def conflicts(self, row: Mapping[str, Any],
                  ignore: tuple[Any, ...] | None = None) -> list[tuple[str, tuple[Any, ...]]]:
        """(key name, existing row's key) for each unique key ``row`` would
        duplicate, PRIMARY first, then unique indexes in declaration order."""
        out: list[tuple[str, tuple[Any, ...]]] = []
        if self.pk:
            k = self.pk_key(row)
            if k != ignore and k in self.rows:
                out.append(("PRIMARY", k))
        for idx in self.indexes.values():
            if not idx.unique:
                continue
            ik = self.index_key(idx, row)
            if _NULLKEY in ik:
                continue
            for _, k in idx.entries.irange((ik,), ((*ik, _HIGH),), inclusive=(True, False)):
                if k != ignore:
                    out.append((idx.name, k))
                    break
        return out

    def dup_text(self, keyname: str, row: Mapping[str, Any]) -> str:
        cols = self.pk if keyname == "PRIMARY" else self.indexes[keyname].columns
        shown = "-".join("NULL" if row.get(c) is None else value_str(row[c]) for c in cols)
        return f"Duplicate entry '{shown}' for key '{keyname}'"


# --- statement state ---------------------------------------------------------------


@dataclass
class _Stmt:
    """What one statement used and did."""

    timestamp: int
    usec: int
    changing: bool = False
    rand_before: tuple[int, int] | None = None
    rand_used: bool = False
    seeded: dict[int, tuple[int, int]] = field(default_factory=dict)
    lii_read: int | None = None
    lii_was_read: bool = False
    lii_set: int | None = None
    user_vars: dict[str, Any] = field(default_factory=dict)
    first_generated: int | None = None
    first_inserted: int | None = None
    bulk: bool = False
    batch_size: int = 0
    rows_total: int = 1
    next_id: int | None = None
    end_id: int = 0
    changes: list[RowChange] = field(default_factory=list)
    values_row: dict[str, Any] | None = None
    table: _Table | None = None
    matched: int = 0


@dataclass
class _Undo:
    table: _Table
    old_key: tuple[Any, ...] | None
    old_row: dict[str, Any] | None
    new_key: tuple[Any, ...] | None


# --- the engine --------------------------------------------------------------------


class Engine:
    """Databases and tables in memory. ``access`` picks the index UPDATE/DELETE/
    SELECT walk (see the module doc); ``seed`` seeds RAND() session seeds and
    UUID(); ``clock`` (seconds since the epoch) gives NOW() when no
    timestamp is set and SYSDATE(); ``flavor`` ``"mariadb"`` truncates extra
    fractional-second digits, ``"mysql"`` rounds them."""

    def __init__(self, name: str = "engine", *, access: str | Mapping[str, str] = "primary",
                 seed: int = 0, clock: Callable[[], float] | None = None,
                 server_id: int = 1, flavor: str = "mysql") -> None:
        if isinstance(access, str) and access not in ("primary", "first", "last"):
            raise ValueError("access must be 'primary', 'first', 'last' or a mapping")
        if flavor not in ("mysql", "mariadb"):
            raise ValueError("flavor must be 'mysql' or 'mariadb'")
        self.name = name
        self.access = access
        self.server_id = server_id
        self.flavor = flavor
        self.clock: Callable[[], float] = clock or time.time
        self.rng = random.Random(seed)
        self._dbs: dict[str, dict[str, _Table]] = {}
        self._coerce = _Coercer(round_fraction=flavor == "mysql")
        self._uuid_node = self.rng.getrandbits(48) | (1 << 40)  # multicast bit: not a MAC
        self._uuid_seq = self.rng.getrandbits(14)
        self._uuid_last = 0
        self._threads = 0

    # public
    def session(self, db: str | None = None) -> Session:
        """A new connection; ``db`` as after USE."""
        self._threads += 1
        s = Session(self, self._threads)
        if db is not None:
            s.execute(f"USE `{db}`")
        return s

    def tables(self) -> list[TableInfo]:
        return [t.info for db in sorted(self._dbs) for _, t in sorted(self._dbs[db].items())]

    def table(self, schema: str, name: str) -> TableInfo:
        return self._table(schema, name).info

    def rows(self, schema: str, name: str) -> list[dict[str, Any]]:
        """Every row (a copy), in primary-key order."""
        return [dict(r) for r in self._table(schema, name).rows.values()]

    def checksum(self, tables: Sequence[str] | None = None, chunk_size: int = 1000,
                 boundaries: Mapping[str, Sequence[tuple[Any, ...]]] | None = None
                 ) -> dict[str, TableChecksum]:
        """pt-table-checksum style checksums by ``schema.table``
        (see :mod:`binlogkit.replay.checksum`)."""
        from binlogkit.replay.checksum import engine_checksum
        return engine_checksum(self, tables, chunk_size, boundaries)

    # internals
    def _table(self, schema: str | None, name: str) -> _Table:
        if schema is None:
            raise SqlError("No database selected", 1046)
        t = self._dbs.get(schema, {}).get(name)
        if t is None:
            raise SqlError(f"Table '{schema}.{name}' doesn't exist", 1146)
        return t

    def _uuid(self) -> str:
        ticks = int(self.clock() * 10_000_000) + 0x01B21DD213814000
        if ticks <= self._uuid_last:
            ticks = self._uuid_last + 1
        self._uuid_last = ticks
        low = ticks & 0xFFFFFFFF
        mid = (ticks >> 32) & 0xFFFF
        hi = ((ticks >> 48) & 0x0FFF) | 0x1000
        seq = self._uuid_seq | 0x8000
        return f"{low:08x}-{mid:04x}-{hi:04x}-{seq:04x}-{self._uuid_node:012x}"

    def _index_for(self, t: _Table, where: S.Expr | None) -> str | None:
        """The secondary index the walk uses (None: the primary key)."""
        access = self.access
        if not isinstance(access, str):
            chosen = access.get(f"{t.schema}.{t.name}", access.get(t.name))
            if chosen is None or chosen.upper() == "PRIMARY":
                return None
            if chosen not in t.indexes:
                raise SqlError(f"Key '{chosen}' doesn't exist in table '{t.name}'", 1176)
            return chosen
        if access == "primary" or where is None:
            return None
        cols = {c.lower() for c, _, _ in _sargable(t, where)}
        names = [n for n, i in t.indexes.items() if i.columns[0].lower() in cols]
        if not names:
            return None
        return names[0] if access == "first" else names[-1]


def _conjuncts(e: S.Expr) -> list[S.Expr]:
    if isinstance(e, S.Binary) and e.op == "AND":
        return _conjuncts(e.left) + _conjuncts(e.right)
    return [e]


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}


def _sargable(t: _Table, where: S.Expr) -> list[tuple[str, str, tuple[Any, ...]]]:
    """(column, op, literal key) for each top-level AND term usable as a range."""
    out: list[tuple[str, str, tuple[Any, ...]]] = []
    for term in _conjuncts(where):
        pairs: list[tuple[S.Expr, str, S.Expr]] = []
        if isinstance(term, S.Binary) and term.op in _FLIP:
            pairs.append((term.left, term.op, term.right))
            pairs.append((term.right, _FLIP[term.op], term.left))
        elif isinstance(term, S.Between) and not term.negated:
            pairs.append((term.operand, ">=", term.low))
            pairs.append((term.operand, "<=", term.high))
        for col, op, lit in pairs:
            if isinstance(col, S.Column) and isinstance(lit, S.Literal) \
                    and col.name.lower() in t.colmap:
                key = t.colmap[col.name.lower()].literal_key(lit.value)
                if key is not None:
                    out.append((col.name, op, key))
    return out


def _bounds(t: _Table, where: S.Expr | None, first_col: str
            ) -> tuple[tuple[Any, ...] | None, tuple[Any, ...] | None]:
    """Lower (inclusive) and upper (exclusive) key prefixes for a walk on an
    index whose first column is ``first_col``."""
    lo: tuple[Any, ...] | None = None
    hi: tuple[Any, ...] | None = None
    if where is None:
        return None, None
    for col, op, key in _sargable(t, where):
        if col.lower() != first_col.lower():
            continue
        if op in (">", ">=", "="):
            cand = (key, _HIGH) if op == ">" else (key,)
            lo = cand if lo is None or cand > lo else lo
        if op in ("<", "<=", "="):
            cand = (key,) if op == "<" else (key, _HIGH)
            hi = cand if hi is None or cand < hi else hi
    return lo, hi


# --- the session ---------------------------------------------------------------------


class Session:
    """One connection: its state (``context``: db, timestamp, user variables,
    insert ids, RAND seeds) and its open transaction."""

    def __init__(self, engine: Engine, thread_id: int) -> None:
        self.engine = engine
        rng = engine.rng
        self.context = Context(thread_id=thread_id,
                               rand_seed=(rng.randrange(RAND_MAX), rng.randrange(RAND_MAX)))
        self.in_transaction = False
        self.variables: dict[str, Any] = {}
        self.last_rows: list[tuple[Any, ...]] = []
        self.last_columns: list[str] = []
        self._fixed_ts: tuple[int, int] | None = None
        self._undo: list[_Undo] = []

    # --- public ---
    def execute(self, sql: str, context: Context | None = None) -> Executed:
        """Run one statement. Without ``context`` it runs as on a primary;
        with it, as a replica applying a QUERY event (db, time, insert ids,
        RAND seeds and user variables come from ``context``). SELECT rows
        land in ``last_rows``."""
        stmt = S.parse(sql)
        ctx = self.context
        if context is not None:
            if context.db is not None:
                ctx.db = context.db
            ts, usec = context.timestamp, context.usec
            if context.insert_id is not None:
                ctx.insert_id = context.insert_id
            if context.last_insert_id is not None:
                ctx.last_insert_id = context.last_insert_id
            if context.rand_seed is not None:
                ctx.rand_seed = context.rand_seed
            ctx.user_vars.update(context.user_vars)
            ctx.sql_mode = context.sql_mode
            ctx.charset = context.charset
        elif self._fixed_ts is not None:
            ts, usec = self._fixed_ts
        else:
            now = self.engine.clock()
            ts = int(now)
            usec = min(int(round((now - ts) * 1_000_000)), 999_999)
        ctx.timestamp, ctx.usec = ts, usec
        st = _Stmt(ts, usec, rand_before=ctx.rand_seed)
        ddl = isinstance(stmt, S.DDL_TYPES)
        if ddl and self.in_transaction:
            self._commit()
        mark = len(self._undo)
        db = ctx.db
        try:
            self._run(stmt, st)
        except (SqlError, ArithmeticError, ValueError, OverflowError) as exc:
            self._undo_to(mark)
            if not self.in_transaction:
                self._undo.clear()
            if isinstance(exc, SqlError):
                raise
            raise SqlError(f"{type(exc).__name__}: {exc}") from None
        if not self.in_transaction:
            self._undo.clear()
        if st.first_inserted is not None:
            ctx.last_insert_id = st.first_inserted
        if st.lii_set is not None:
            ctx.last_insert_id = st.lii_set
        used = Context(db=db if not isinstance(stmt, S.Use) else ctx.db, timestamp=ts,
                       usec=usec, insert_id=st.first_generated,
                       last_insert_id=st.lii_read if st.lii_was_read else None,
                       rand_seed=st.rand_before if st.rand_used else None,
                       user_vars=dict(st.user_vars), sql_mode=ctx.sql_mode,
                       charset=ctx.charset, thread_id=ctx.thread_id)
        return Executed(sql=sql, context=used, changes=st.changes, ddl=ddl,
                        rows_matched=st.matched)

    def query(self, sql: str, context: Context | None = None) -> list[tuple[Any, ...]]:
        """Run a statement and return the rows it selected."""
        self.last_rows = []
        self.execute(sql, context)
        return self.last_rows

    def apply(self, change: RowChange) -> None:
        """Apply one row change exactly, as a row-based replica does."""
        e = self.engine
        try:
            t = e._table(change.table.schema, change.table.name)
        except SqlError as exc:
            raise ApplyError(str(exc), "HA_ERR_NO_SUCH_TABLE", 1146) from None
        mark = len(self._undo)
        try:
            self._apply(t, change)
        except Exception:
            self._undo_to(mark)
            raise
        finally:
            if not self.in_transaction:
                self._undo.clear()

    # --- transactions ---
    def _commit(self) -> None:
        self._undo.clear()
        self.in_transaction = False

    def _undo_to(self, mark: int) -> None:
        while len(self._undo) > mark:
            u = self._undo.pop()
            if u.new_key is not None:
                u.table.remove(u.new_key)
            if u.old_row is not None and u.old_key is not None:
                u.table.put(u.old_key, u.old_row)

    # --- row operations (with undo) ---
    def _insert_row(self, t: _Table, row: dict[str, Any]) -> None:
        key = t.new_key(row)
        t.put(key, row)
        self._undo.append(_Undo(t, None, None, key))

    def _delete_row(self, t: _Table, key: tuple[Any, ...]) -> dict[str, Any]:
        row = t.remove(key)
        self._undo.append(_Undo(t, key, row, None))
        return row

    def _update_row(self, t: _Table, key: tuple[Any, ...], new: dict[str, Any]) -> None:
        old = t.remove(key)
        new_key = t.pk_key(new) if t.pk else key
        t.put(new_key, new)
        self._undo.append(_Undo(t, key, old, new_key))

    def _apply(self, t: _Table, change: RowChange) -> None:
        e = self.engine
        where = f"Can't find record in '{t.name}'"

        def norm(image: Mapping[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for c in t.cols:
                v = image.get(c.name)
                try:
                    out[c.name] = None if v is None else e._coerce(c, v)
                except SqlError as exc:
                    raise ApplyError(f"{t.name}.{c.name}: {exc}", "HA_ERR_WRONG_VALUE",
                                     1366) from None
            return out

        def find(before: Mapping[str, Any]) -> tuple[Any, ...]:
            img = norm(before)
            if t.pk:
                key = t.pk_key(img)
                if key not in t.rows:
                    raise ApplyError(where, "HA_ERR_KEY_NOT_FOUND", 1032)
                return key
            for key, row in t.rows.items():
                if all(row[c] == img[c] for c in img if c in before):
                    return key
            raise ApplyError(where, "HA_ERR_KEY_NOT_FOUND", 1032)

        def dup(row: dict[str, Any], ignore: tuple[Any, ...] | None) -> None:
            found = t.conflicts(row, ignore)
            if found:
                raise ApplyError(t.dup_text(found[0][0], row), "HA_ERR_FOUND_DUPP_KEY", 1062)

        if change.kind == "insert":
            if change.after is None:
                raise ApplyError("insert without an after image", "HA_ERR_WRONG_VALUE", 1032)
            row = norm(change.after)
            dup(row, None)
            self._insert_row(t, row)
            self._bump_auto_inc(t, row)
        elif change.kind == "delete":
            if change.before is None:
                raise ApplyError("delete without a before image", "HA_ERR_WRONG_VALUE", 1032)
            self._delete_row(t, find(change.before))
        else:
            if change.before is None or change.after is None:
                raise ApplyError("update without both images", "HA_ERR_WRONG_VALUE", 1032)
            key = find(change.before)
            stored = t.rows[key]
            img = norm(change.before)
            if any(stored[c] != img[c] for c in img if c in change.before):
                raise ApplyError(where, "HA_ERR_KEY_NOT_FOUND", 1032)
            new = norm({**stored, **change.after})
            dup(new, key)
            self._update_row(t, key, new)
            self._bump_auto_inc(t, new)

    @staticmethod
    def _bump_auto_inc(t: _Table, row: Mapping[str, Any]) -> None:
        if t.auto_col is not None:
            v = row.get(t.auto_col.name)
            if isinstance(v, int) and v > 0:
                t.auto_inc = max(t.auto_inc, v + 1)

    # --- statements ---
    def _run(self, stmt: S.Statement, st: _Stmt) -> None:
        ctx = self.context
        if isinstance(stmt, S.Begin):
            if self.in_transaction:
                self._commit()
            self.in_transaction = True
        elif isinstance(stmt, S.Commit):
            self._commit()
        elif isinstance(stmt, S.Rollback):
            self._undo_to(0)
            self._commit()
        elif isinstance(stmt, S.Use):
            if stmt.name not in self.engine._dbs:
                raise SqlError(f"Unknown database '{stmt.name}'", 1049)
            ctx.db = stmt.name
        elif isinstance(stmt, S.CreateDatabase):
            if stmt.name in self.engine._dbs:
                if stmt.if_not_exists:
                    return
                raise SqlError(f"Can't create database '{stmt.name}'; database exists", 1007)
            self.engine._dbs[stmt.name] = {}
        elif isinstance(stmt, S.DropDatabase):
            if stmt.name not in self.engine._dbs:
                if stmt.if_exists:
                    return
                raise SqlError(f"Can't drop database '{stmt.name}'; database doesn't exist",
                               1008)
            del self.engine._dbs[stmt.name]
            if ctx.db == stmt.name:
                ctx.db = None
        elif isinstance(stmt, S.CreateTable):
            self._create_table(stmt, st)
        elif isinstance(stmt, S.DropTable):
            for tn in stmt.tables:
                schema = tn.schema or ctx.db
                if schema is None:
                    raise SqlError("No database selected", 1046)
                tables = self.engine._dbs.get(schema, {})
                if tn.name not in tables:
                    if stmt.if_exists:
                        continue
                    raise SqlError(f"Unknown table '{schema}.{tn.name}'", 1051)
                del tables[tn.name]
        elif isinstance(stmt, S.Truncate):
            t = self._tbl(stmt.table)
            t.rows.clear()
            for idx in t.indexes.values():
                idx.entries.clear()
            t.auto_inc = 1
        elif isinstance(stmt, S.SetVars):
            self._set(stmt, st)
        elif isinstance(stmt, S.Select):
            rows = self._select(stmt, st)
            self.last_rows = rows
            st.matched = len(rows)
        elif isinstance(stmt, S.Insert):
            st.changing = True
            self._insert(stmt, st)
        elif isinstance(stmt, S.Update):
            st.changing = True
            self._update(stmt, st)
        elif isinstance(stmt, S.Delete):
            st.changing = True
            self._delete(stmt, st)
        else:  # pragma: no cover - the parser makes nothing else
            raise SqlError(f"unsupported statement {type(stmt).__name__}")

    def _tbl(self, tn: S.TableName) -> _Table:
        return self.engine._table(tn.schema or self.context.db, tn.name)

    def _create_table(self, stmt: S.CreateTable, st: _Stmt) -> None:
        schema = stmt.table.schema or self.context.db
        if schema is None:
            raise SqlError("No database selected", 1046)
        if schema not in self.engine._dbs:
            raise SqlError(f"Unknown database '{schema}'", 1049)
        tables = self.engine._dbs[schema]
        name = stmt.table.name
        if name in tables:
            if stmt.if_not_exists:
                return
            raise SqlError(f"Table '{name}' already exists", 1050)
        seen: set[str] = set()
        cols: list[_Col] = []
        pk_names = {c.lower() for c in stmt.primary_key}
        for cd in stmt.columns:
            if cd.name.lower() in seen:
                raise SqlError(f"Duplicate column name '{cd.name}'", 1060)
            seen.add(cd.name.lower())
            nullable = cd.nullable and cd.name.lower() not in pk_names
            if cd.auto_increment and _kind(cd.type) not in ("int",):
                raise SqlError(f"Incorrect column specifier for column '{cd.name}'", 1063)
            info = ColumnInfo(cd.name, _sql_type(cd.type), nullable, cd.auto_increment, None)
            col = _Col(info, cd.type, _kind(cd.type))
            if isinstance(cd.default, S.Func):
                if col.kind not in ("datetime", "timestamp"):
                    raise SqlError(f"Invalid default value for '{cd.name}'", 1067)
                fsp = int(cd.default.args[0].value) if cd.default.args and isinstance(
                    cd.default.args[0], S.Literal) else 0
                if fsp != (cd.type.length or 0):
                    raise SqlError(f"Invalid default value for '{cd.name}'", 1067)
                col.default_now, col.default_fsp = True, fsp
            elif isinstance(cd.default, S.Literal):
                if cd.default.value is None and not nullable:
                    raise SqlError(f"Invalid default value for '{cd.name}'", 1067)
                if cd.type.base in ("TEXT", "BLOB") and cd.default.value is not None:
                    raise SqlError(f"BLOB/TEXT column '{cd.name}' can't have a default value",
                                   1101)
                try:
                    value = self.engine._coerce(col, cd.default.value)
                except SqlError:
                    raise SqlError(f"Invalid default value for '{cd.name}'", 1067) from None
                col.info = replace(info, default=value)
            cols.append(col)
        by_name = {c.name.lower(): c for c in cols}

        def check(names: tuple[str, ...]) -> tuple[str, ...]:
            out = []
            for n in names:
                c = by_name.get(n.lower())
                if c is None:
                    raise SqlError(f"Key column '{n}' doesn't exist in table", 1072)
                if c.spec.base in ("TEXT", "BLOB"):
                    raise SqlError(f"BLOB/TEXT column '{c.name}' used in key specification "
                                   "without a key length", 1170)
                out.append(c.name)
            return tuple(out)

        pk = check(stmt.primary_key)
        indexes: list[_Index] = []
        for idx in stmt.indexes:
            iname = idx.name
            n = 2
            while iname in {i.name for i in indexes} or iname.upper() == "PRIMARY":
                if idx.name != idx.columns[0]:
                    raise SqlError(f"Duplicate key name '{idx.name}'", 1061)
                iname = f"{idx.name}_{n}"
                n += 1
            indexes.append(_Index(iname, check(idx.columns), idx.unique))
        autos = [c for c in cols if c.info.auto_increment]
        if len(autos) > 1 or (autos and not (
                (pk and pk[0] == autos[0].name)
                or any(i.columns[0] == autos[0].name for i in indexes))):
            raise SqlError("Incorrect table definition; there can be only one auto column "
                           "and it must be defined as a key", 1075)
        create = _create_sql(schema, name, cols, pk, indexes)
        tables[name] = _Table(schema, name, cols, pk, indexes, create)

    def _set(self, stmt: S.SetVars, st: _Stmt) -> None:
        ctx = self.context
        for kind, name, expr in stmt.items:
            if kind == "user":
                v = self._eval(expr, None, st)
                ctx.user_vars[name] = v
                continue
            v = None if isinstance(expr, S.Default) else self._eval(expr, None, st)
            if name == "timestamp":
                if v is None or v == 0:
                    self._fixed_ts = None
                else:
                    d = Decimal(repr(v)) if isinstance(v, float) else Decimal(value_str(v))
                    secs = int(d)
                    self._fixed_ts = (secs, int((d - secs) * 1_000_000))
            elif name == "insert_id":
                ctx.insert_id = None if v is None else int(v)
            elif name == "last_insert_id":
                ctx.last_insert_id = None if v is None else int(v)
            elif name in ("rand_seed1", "rand_seed2"):
                s1, s2 = ctx.rand_seed or (0, 0)
                n = int(v or 0) & 0xFFFFFFFFFFFFFFFF
                ctx.rand_seed = (n, s2) if name == "rand_seed1" else (s1, n)
            elif name == "pseudo_thread_id":
                ctx.thread_id = int(v or 0)
            elif name == "sql_mode" and isinstance(v, int):
                ctx.sql_mode = v
                self.variables[name] = v
            elif name == "autocommit":
                if str(v).upper() not in ("1", "ON", "TRUE"):
                    raise SqlError("SET autocommit = 0 is not supported; use BEGIN")
            else:
                self.variables[name] = v

    # --- scanning ---
    def _scan(self, t: _Table, where: S.Expr | None, st: _Stmt
              ) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
        """(pk, row) of matching rows in the chosen index's order."""
        iname = self.engine._index_for(t, where)
        if iname is None:
            keys: Iterator[tuple[Any, ...]]
            if t.pk:
                lo, hi = _bounds(t, where, t.pk[0])
                keys = t.rows.irange(lo, hi, inclusive=(True, False))
            else:
                keys = iter(list(t.rows.keys()))
            keys = iter(list(keys))
        else:
            idx = t.indexes[iname]
            lo, hi = _bounds(t, where, idx.columns[0])
            entries = idx.entries.irange(None if lo is None else (lo,),
                                         None if hi is None else (hi,),
                                         inclusive=(True, False))
            keys = iter([k for _, k in entries])
        for key in keys:
            row = t.rows[key]
            if where is None or _truth(self._eval(where, row, st, t)):
                yield key, row

    def _pick(self, t: _Table, where: S.Expr | None, order: tuple[S.OrderItem, ...],
              limit: int | None, offset: int, st: _Stmt
              ) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        if order:
            found = sorted(self._scan(t, where, st), key=lambda kr: kr[0])
            for item in reversed(order):
                temporal = _is_temporal(item.expr, t)
                keys = {id(row): _order_key(self._eval(item.expr, row, st, t), temporal)
                        for _, row in found}
                found.sort(key=lambda kr: keys[id(kr[1])], reverse=item.desc)
            end = None if limit is None else offset + limit
            return found[offset:end]
        out: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        if limit == 0:
            return out
        skipped = 0
        for kr in self._scan(t, where, st):
            if skipped < offset:
                skipped += 1
                continue
            out.append(kr)
            if limit is not None and len(out) >= limit:
                break
        return out

    # --- SELECT ---
    def _select(self, stmt: S.Select, st: _Stmt) -> list[tuple[Any, ...]]:
        if stmt.table is None:
            if stmt.where is not None and not _truth(self._eval(stmt.where, None, st)):
                return []
            items = [i.expr for i in stmt.items]
            if any(e is None for e in items):
                raise SqlError("No tables used", 1096)
            self.last_columns = [i.alias or _expr_name(i.expr) for i in stmt.items]
            row = tuple(self._eval(e, None, st) for e in items if e is not None)
            return [row][stmt.offset:None if stmt.limit is None else stmt.offset + stmt.limit]
        t = self._tbl(stmt.table)
        picked = self._pick(t, stmt.where, stmt.order_by, stmt.limit, stmt.offset, st)
        exprs: list[S.Expr] = []
        names: list[str] = []
        for item in stmt.items:
            if item.expr is None:
                exprs += [S.Column(c.name) for c in t.cols]
                names += [c.name for c in t.cols]
            else:
                exprs.append(item.expr)
                names.append(item.alias or _expr_name(item.expr))
        self.last_columns = names
        return [tuple(self._eval(e, row, st, t) for e in exprs) for _, row in picked]

    # --- INSERT ---
    def _default(self, t: _Table, col: _Col, st: _Stmt, row_no: int) -> Any:
        if col.default_now:
            return self._now_text(st, col.default_fsp)
        if col.info.default is not None or col.info.nullable or col.info.auto_increment:
            return col.info.default
        raise SqlError(f"Field '{col.name}' doesn't have a default value", 1364)

    def _generate(self, t: _Table, st: _Stmt) -> int:
        """The next auto-increment id. Like InnoDB (lock modes 1 and 2) a
        statement reserves an interval: as many ids as it has rows (INSERT
        ... VALUES), or 1, 2, 4 ... at a time (INSERT ... SELECT); ids it
        leaves unused are lost. A forced INSERT_ID starts the first interval."""
        ctx = self.context
        if st.next_id is None or st.next_id >= st.end_id:
            if st.bulk:
                size = st.batch_size = max(1, st.batch_size * 2)
            else:
                size = st.rows_total if st.next_id is None else 1
            if st.first_generated is None and ctx.insert_id is not None:
                start = ctx.insert_id
                ctx.insert_id = None
            else:
                start = t.auto_inc
            st.next_id, st.end_id = start, start + max(size, 1)
            t.auto_inc = max(t.auto_inc, st.end_id)
        v = st.next_id
        st.next_id += 1
        if st.first_generated is None:
            st.first_generated = v
        return v

    def _insert(self, stmt: S.Insert, st: _Stmt) -> None:
        t = self._tbl(stmt.table)
        st.table = t
        cols = [t.col(c) for c in stmt.columns] if stmt.columns is not None else list(t.cols)
        if len({c.name for c in cols}) != len(cols):
            raise SqlError("Column specified twice", 1110)
        if stmt.select is not None:
            st.bulk = True
            value_rows: list[tuple[Any, ...]] = [
                tuple(S.Literal(v) for v in r) for r in self._select(stmt.select, st)]
        else:
            value_rows = list(stmt.rows)
        coerce = self.engine._coerce
        st.rows_total = len(value_rows)
        for n, exprs in enumerate(value_rows, 1):
            if len(exprs) != len(cols):
                raise SqlError(f"Column count doesn't match value count at row {n}", 1136)
            row: dict[str, Any] = {}
            given = {c.name for c in cols}
            for c in t.cols:
                if c.name not in given:
                    row[c.name] = self._default(t, c, st, n)
            for c, e in zip(cols, exprs, strict=True):
                v = self._default(t, c, st, n) if isinstance(e, S.Default) else \
                    self._eval(e, row, st, t)
                if c.info.auto_increment and v is None:
                    row[c.name] = None
                    continue
                row[c.name] = coerce(c, v, n)
            ac = t.auto_col
            generated = False
            if ac is not None:
                if row.get(ac.name) in (None, 0):
                    row[ac.name] = coerce(ac, self._generate(t, st), n)
                    generated = True
                else:
                    self._bump_auto_inc(t, row)
            for c in t.cols:
                if row.get(c.name) is None and not c.info.nullable:
                    raise SqlError(f"Column '{c.name}' cannot be null", 1048)
            self._insert_one(t, {c.name: row[c.name] for c in t.cols}, stmt, st, n, generated)

    def _insert_one(self, t: _Table, row: dict[str, Any], stmt: S.Insert, st: _Stmt,
                    n: int, generated: bool = False) -> None:
        found = t.conflicts(row)
        ac = t.auto_col
        if ac is not None and st.first_inserted is None and st.first_generated is not None \
                and row[ac.name] >= st.first_generated and not (found and stmt.on_duplicate):
            # LAST_INSERT_ID(): the first generated id of a row inserted, replaced or
            # ignored; not of a row that ON DUPLICATE KEY UPDATE updated instead
            st.first_inserted = row[ac.name]
        if not found:
            self._insert_row(t, row)
            st.changes.append(RowChange(t.info, "insert", None, dict(row)))
            st.matched += 1
            return
        if stmt.ignore and not stmt.on_duplicate:
            if generated and ac is not None and st.next_id == row[ac.name] + 1:
                st.next_id = row[ac.name]  # an ignored row gives its id back
            return
        if stmt.on_duplicate:
            key = found[0][1]
            old = t.rows[key]
            new = dict(old)
            st.values_row = row
            try:
                for name, e in stmt.on_duplicate:
                    c = t.col(name)
                    v = self._default(t, c, st, n) if isinstance(e, S.Default) else \
                        self._eval(e, new, st, t)
                    new[c.name] = self.engine._coerce(c, v, n)
            finally:
                st.values_row = None
            st.matched += 1
            if new == old:
                return
            again = t.conflicts(new, key)
            if again:
                raise SqlError(t.dup_text(again[0][0], new), 1062)
            self._update_row(t, key, new)
            self._bump_auto_inc(t, new)
            st.changes.append(RowChange(t.info, "update", dict(old), dict(new)))
            return
        if stmt.replace:
            keys = list(dict.fromkeys(k for _, k in found))
            if len(keys) == 1:
                old = t.rows[keys[0]]
                self._update_row(t, keys[0], row)
                st.changes.append(RowChange(t.info, "update", dict(old), dict(row)))
                return
            for k in keys:
                old = self._delete_row(t, k)
                st.changes.append(RowChange(t.info, "delete", dict(old), None))
            self._insert_row(t, row)
            st.changes.append(RowChange(t.info, "insert", None, dict(row)))
            return
        raise SqlError(t.dup_text(found[0][0], row), 1062)

    # --- UPDATE / DELETE ---
    def _update(self, stmt: S.Update, st: _Stmt) -> None:
        t = self._tbl(stmt.table)
        st.table = t
        targets = [k for k, _ in self._pick(t, stmt.where, stmt.order_by, stmt.limit, 0, st)]
        assigns = [(t.col(name), e) for name, e in stmt.assignments]
        for n, key in enumerate(targets, 1):
            old = t.rows[key]
            new = dict(old)
            for c, e in assigns:
                v = self._default(t, c, st, n) if isinstance(e, S.Default) else \
                    self._eval(e, new, st, t)
                new[c.name] = self.engine._coerce(c, v, n)
            st.matched += 1
            if new == old:
                continue
            found = t.conflicts(new, key)
            if found:
                raise SqlError(t.dup_text(found[0][0], new), 1062)
            self._update_row(t, key, new)
            self._bump_auto_inc(t, new)
            st.changes.append(RowChange(t.info, "update", dict(old), dict(new)))

    def _delete(self, stmt: S.Delete, st: _Stmt) -> None:
        t = self._tbl(stmt.table)
        st.table = t
        targets = [k for k, _ in self._pick(t, stmt.where, stmt.order_by, stmt.limit, 0, st)]
        for key in targets:
            old = self._delete_row(t, key)
            st.matched += 1
            st.changes.append(RowChange(t.info, "delete", dict(old), None))

    # --- expressions ---
    def _now_text(self, st: _Stmt, fsp: int = 0) -> str:
        d = _EPOCH + _dt.timedelta(seconds=st.timestamp, microseconds=st.usec)
        return _dt_text(d, fsp)

    def _eval(self, e: S.Expr, row: Mapping[str, Any] | None, st: _Stmt,
              t: _Table | None = None) -> Any:
        if isinstance(e, S.Literal):
            return e.value
        if isinstance(e, S.Column):
            if row is None or t is None:
                raise SqlError(f"Unknown column '{e.name}' in 'field list'", 1054)
            if e.table is not None and e.table != t.name:
                raise SqlError(f"Unknown column '{e.table}.{e.name}' in 'field list'", 1054)
            return row.get(t.col(e.name).name)
        if isinstance(e, S.Binary):
            return self._binary(e, row, st, t)
        if isinstance(e, S.Unary):
            v = self._eval(e.operand, row, st, t)
            if e.op == "NOT":
                tv = _truth(v)
                return None if tv is None else int(not tv)
            return _neg(v)
        if isinstance(e, S.IsNull):
            v = self._eval(e.operand, row, st, t)
            return int((v is None) != e.negated)
        if isinstance(e, S.Between):
            tp = _is_temporal(e.operand, t) or _is_temporal(e.low, t) or _is_temporal(e.high, t)
            v = self._eval(e.operand, row, st, t)
            a = _compare(v, self._eval(e.low, row, st, t), tp)
            b = _compare(v, self._eval(e.high, row, st, t), tp)
            r = _and(None if a is None else int(a >= 0), None if b is None else int(b <= 0))
            return None if r is None else int(bool(r) != e.negated)
        if isinstance(e, S.InList):
            v = self._eval(e.operand, row, st, t)
            tp = _is_temporal(e.operand, t)
            saw_null = False
            for item in e.items:
                c = _compare(v, self._eval(item, row, st, t), tp or _is_temporal(item, t))
                if c is None:
                    saw_null = True
                elif c == 0:
                    return int(not e.negated)
            return None if saw_null else int(e.negated)
        if isinstance(e, S.Like):
            v = self._eval(e.operand, row, st, t)
            p = self._eval(e.pattern, row, st, t)
            if v is None or p is None:
                return None
            return int(_like(value_str(v), value_str(p)) != e.negated)
        if isinstance(e, S.UserVar):
            v = self.context.user_vars.get(e.name)
            st.user_vars[e.name] = v
            return v
        if isinstance(e, S.SysVar):
            return self._sysvar(e.name, st)
        if isinstance(e, S.Func):
            return self._func(e, row, st, t)
        if isinstance(e, S.Default):
            raise SqlError("DEFAULT is only allowed as a column value", 1064)
        if isinstance(e, S.Interval):
            raise SqlError("INTERVAL is only allowed with a date", 1064)
        raise SqlError(f"cannot evaluate {e!r}")  # pragma: no cover

    def _sysvar(self, name: str, st: _Stmt) -> Any:
        ctx = self.context
        if name == "timestamp":
            return Decimal(st.timestamp) + Decimal(st.usec).scaleb(-6) if st.usec else \
                st.timestamp
        if name == "last_insert_id":
            return ctx.last_insert_id or 0
        if name == "insert_id":
            return ctx.insert_id or 0
        if name in ("rand_seed1", "rand_seed2"):
            return 0
        if name == "server_id":
            return self.engine.server_id
        if name in ("pseudo_thread_id",):
            return ctx.thread_id
        if name in self.variables:
            return self.variables[name]
        raise SqlError(f"Unknown system variable '{name}'", 1193)

    def _rand(self, e: S.Func, row: Mapping[str, Any] | None, st: _Stmt,
              t: _Table | None) -> float:
        if e.args:
            if isinstance(e.args[0], S.Literal):
                seeds = st.seeded.get(id(e))
                if seeds is None:
                    seeds = rand_seeds_for(int(to_double(e.args[0].value)))
            else:
                arg = self._eval(e.args[0], row, st, t)
                seeds = rand_seeds_for(0 if arg is None else int(round(to_double(arg))))
            value, st.seeded[id(e)] = mysql_rand(seeds)
            return value
        ctx = self.context
        if not st.rand_used:
            st.rand_used = True
            st.rand_before = ctx.rand_seed
        value, ctx.rand_seed = mysql_rand(ctx.rand_seed or (0, 0))
        return value

    def _func(self, e: S.Func, row: Mapping[str, Any] | None, st: _Stmt,
              t: _Table | None) -> Any:
        name = e.name
        if name == "NOW":
            return self._now_text(st, self._fsp(e, row, st, t))
        if name == "SYSDATE":
            now = self.engine.clock()
            d = _EPOCH + _dt.timedelta(seconds=int(now), microseconds=int(
                (now - int(now)) * 1_000_000))
            return _dt_text(d, self._fsp(e, row, st, t))
        if name == "RAND":
            return self._rand(e, row, st, t)
        if name == "UUID":
            return self.engine._uuid()
        if name == "LAST_INSERT_ID":
            if e.args:
                v = self._eval(e.args[0], row, st, t)
                st.lii_set = None if v is None else int(to_double(v))
                return v
            v = self.context.last_insert_id or 0
            st.lii_was_read = True
            st.lii_read = v
            return v
        if name == "VALUES":
            arg = e.args[0]
            assert isinstance(arg, S.Column)
            if st.values_row is None or t is None:
                return None
            return st.values_row.get(t.col(arg.name).name)
        if name in ("DATE_ADD", "DATE_SUB"):
            return self._date_add(e, row, st, t)
        args = [self._eval(a, row, st, t) for a in e.args]
        if name == "COALESCE" or name == "IFNULL":
            return next((a for a in args if a is not None), None)
        if name == "ISNULL":
            return int(args[0] is None)
        if name == "ISTRUE":
            tv = _truth(args[0])
            return None if tv is None else int(tv)
        if name == "CONCAT_WS":
            if args[0] is None:
                return None
            return _concat([a for a in args[1:] if a is not None], value_str(args[0]))
        if any(a is None for a in args):
            return None
        if name == "CONCAT":
            return _concat(args, "")
        if name == "LENGTH":
            a = args[0]
            return len(a) if isinstance(a, bytes) else len(value_str(a).encode("utf-8"))
        if name in ("UPPER", "LOWER"):
            a = args[0]
            if isinstance(a, bytes):
                return a
            s = value_str(a)
            return s.upper() if name == "UPPER" else s.lower()
        if name == "ABS":
            return abs(_number(args[0]))
        if name in ("FLOOR", "CEIL"):
            n = _number(args[0])
            if isinstance(n, float):
                return float(math.floor(n) if name == "FLOOR" else math.ceil(n))
            return int(math.floor(n) if name == "FLOOR" else math.ceil(n))
        if name == "ROUND":
            return _round(_number(args[0]), int(to_double(args[1])) if len(args) > 1 else 0)
        if name == "MOD":
            return _arith("%", args[0], args[1], st)
        raise SqlError(f"FUNCTION {name} does not exist", 1305)  # pragma: no cover

    def _fsp(self, e: S.Func, row: Mapping[str, Any] | None, st: _Stmt,
             t: _Table | None) -> int:
        if not e.args:
            return 0
        fsp = int(to_double(self._eval(e.args[0], row, st, t)))
        if not 0 <= fsp <= 6:
            raise SqlError(f"Too big precision {fsp} specified for '{e.name}'. Maximum is 6",
                           1426)
        return fsp

    def _date_add(self, e: S.Func, row: Mapping[str, Any] | None, st: _Stmt,
                  t: _Table | None) -> Any:
        base = self._eval(e.args[0], row, st, t)
        iv = e.args[1]
        assert isinstance(iv, S.Interval)
        amount = self._eval(iv.amount, row, st, t)
        if base is None or amount is None:
            return None
        text = value_str(base)
        parsed = parse_datetime(text)
        d = _to_datetime(text, 6, False)
        if d is None or parsed is None:
            return None
        n = int(_round(_number(amount), 0))
        if e.name == "DATE_SUB":
            n = -n
        delta = _dt.timedelta(**{iv.unit.lower() + "s": n})
        try:
            out = d + delta
        except OverflowError:
            return None
        has_time = ":" in text or len(text.strip()) > 10
        frac = len(parsed[1])
        if not has_time and iv.unit == "DAY":
            return _dt_text(out, 0, date_only=True)
        return _dt_text(out, min(frac, 6))

    def _binary(self, e: S.Binary, row: Mapping[str, Any] | None, st: _Stmt,
                t: _Table | None) -> Any:
        op = e.op
        if op in ("AND", "OR", "XOR"):
            a = _truth(self._eval(e.left, row, st, t))
            if op == "AND" and a is False:
                return 0
            if op == "OR" and a is True:
                return 1
            b = _truth(self._eval(e.right, row, st, t))
            if op == "AND":
                return _and(None if a is None else int(a), None if b is None else int(b))
            if op == "OR":
                if b is True:
                    return 1
                return None if a is None or b is None else 0
            return None if a is None or b is None else int(a != b)
        left = self._eval(e.left, row, st, t)
        right = self._eval(e.right, row, st, t)
        if op in ("=", "<>", "<", "<=", ">", ">=", "<=>"):
            tp = _is_temporal(e.left, t) or _is_temporal(e.right, t)
            if op == "<=>":
                if left is None or right is None:
                    return int(left is None and right is None)
            c = _compare(left, right, tp)
            if c is None:
                return None
            return int({"=": c == 0, "<=>": c == 0, "<>": c != 0, "<": c < 0, "<=": c <= 0,
                        ">": c > 0, ">=": c >= 0}[op])
        return _arith(op, left, right, st)


# --- expression helpers ---------------------------------------------------------------


def _expr_name(e: S.Expr | None) -> str:
    if isinstance(e, S.Column):
        return e.name
    if isinstance(e, S.Func):
        return f"{e.name}()"
    return type(e).__name__.lower()


def _is_temporal(e: S.Expr, t: _Table | None) -> bool:
    if isinstance(e, S.Column) and t is not None and e.name.lower() in t.colmap:
        return t.colmap[e.name.lower()].temporal
    return isinstance(e, S.Func) and e.name in ("NOW", "SYSDATE", "DATE_ADD", "DATE_SUB")


def _truth(v: Any) -> bool | None:
    if v is None:
        return None
    if isinstance(v, str | bytes):
        return to_double(v) != 0
    return bool(v)


def _and(a: int | None, b: int | None) -> int | None:
    if a == 0 or b == 0:
        return 0
    if a is None or b is None:
        return None
    return 1


def _number(v: Any) -> int | Decimal | float:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | Decimal | float):
        return v
    return to_double(v)


def _neg(v: Any) -> Any:
    if v is None:
        return None
    return -_number(v)


def _scale(v: int | Decimal) -> int:
    if isinstance(v, Decimal):
        exp = v.as_tuple().exponent
        return -exp if isinstance(exp, int) and exp < 0 else 0
    return 0


def _arith(op: str, a: Any, b: Any, st: _Stmt) -> Any:
    if a is None or b is None:
        return None
    x, y = _number(a), _number(b)
    if op in ("/", "DIV", "%") and y == 0:
        if st.changing:
            raise SqlError("Division by 0", 1365)
        return None
    if isinstance(x, float) or isinstance(y, float):
        fx, fy = float(x), float(y)
        if op == "+":
            r = fx + fy
        elif op == "-":
            r = fx - fy
        elif op == "*":
            r = fx * fy
        elif op == "/":
            r = fx / fy
        elif op == "DIV":
            return int(fx / fy)
        else:
            r = math.fmod(fx, fy)
        if math.isinf(r) or math.isnan(r):
            raise SqlError(f"DOUBLE value is out of range in '{op}'", 1690)
        return r
    if isinstance(x, int) and isinstance(y, int):
        if op == "+":
            r_int = x + y
        elif op == "-":
            r_int = x - y
        elif op == "*":
            r_int = x * y
        elif op == "DIV":
            r_int = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
        elif op == "%":
            r_int = abs(x) % abs(y) * (1 if x >= 0 else -1)
        else:
            return (Decimal(x) / Decimal(y)).quantize(Decimal("0.0001"), context=_DEC)
        if not -2 ** 63 <= r_int < 2 ** 64:
            raise SqlError(f"BIGINT value is out of range in '{op}'", 1690)
        return r_int
    dx, dy = Decimal(x), Decimal(y)
    if op == "+":
        return _DEC.add(dx, dy)
    if op == "-":
        return _DEC.subtract(dx, dy)
    if op == "*":
        return _DEC.multiply(dx, dy)
    if op == "/":
        q = _DEC.divide(dx, dy)
        return q.quantize(Decimal(1).scaleb(-(_scale(dx) + 4)), context=_DEC)
    if op == "DIV":
        return int(_DEC.divide_int(dx, dy))
    return _DEC.remainder(dx, dy)


def _round(x: int | Decimal | float, d: int) -> int | Decimal | float:
    if isinstance(x, float):
        return float(round(x, d))
    if isinstance(x, int):
        if d >= 0:
            return x
        return int(Decimal(x).quantize(Decimal(1).scaleb(-d), rounding=decimal.ROUND_HALF_UP,
                                       context=_DEC))
    q = x.quantize(Decimal(1).scaleb(-max(d, 0) if d >= 0 else -d),
                   rounding=decimal.ROUND_HALF_UP, context=_DEC)
    if d < 0:
        return Decimal(int(q))
    return q


def _compare(a: Any, b: Any, temporal: bool = False) -> int | None:
    """-1/0/1, or None when either side is NULL. Strings compare
    case-insensitively (trailing spaces ignored); strings against numbers as
    doubles; ``temporal``: both sides as datetimes when they parse."""
    if a is None or b is None:
        return None
    if temporal and not isinstance(a, int | float | Decimal) \
            and not isinstance(b, int | float | Decimal):
        ca, cb = canonical_temporal(a), canonical_temporal(b)
        if ca is not None and cb is not None:
            return (ca > cb) - (ca < cb)
    if isinstance(a, bytes) or isinstance(b, bytes):
        ba = a if isinstance(a, bytes) else value_str(a).encode("utf-8")
        bb = b if isinstance(b, bytes) else value_str(b).encode("utf-8")
        return (ba > bb) - (ba < bb)
    if isinstance(a, str) and isinstance(b, str):
        ka, kb = _collate(a), _collate(b)
        return (ka > kb) - (ka < kb)
    if isinstance(a, str) or isinstance(b, str):
        fa, fb = to_double(a), to_double(b)
        return (fa > fb) - (fa < fb)
    na, nb = _number(a), _number(b)
    return (na > nb) - (na < nb)


def _order_key(v: Any, temporal: bool) -> tuple[Any, ...]:
    if v is None:
        return (0,)
    if temporal:
        c = canonical_temporal(v)
        if c is not None:
            return (1, 1, c)
    if isinstance(v, int | float | Decimal):
        return (1, 0, v)
    if isinstance(v, str):
        return (1, 1, _collate(v))
    return (1, 2, v)


def _like(s: str, pattern: str) -> bool:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.fullmatch("".join(out), s, re.IGNORECASE | re.DOTALL) is not None


def _concat(args: list[Any], sep: str) -> str | bytes:
    if any(isinstance(a, bytes) for a in args):
        bsep = sep.encode("utf-8")
        return bsep.join(a if isinstance(a, bytes) else value_str(a).encode("utf-8")
                         for a in args)
    return sep.join(value_str(a) for a in args)


# --- CREATE TABLE text --------------------------------------------------------------


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _literal_sql(v: Any) -> str:
    if isinstance(v, bytes):
        return "X'" + v.hex() + "'"
    if isinstance(v, int | Decimal):
        return value_str(v)
    if isinstance(v, float):
        return repr(v)
    return "'" + str(v).replace("\\", "\\\\").replace("'", "''") + "'"


def _create_sql(schema: str, name: str, cols: list[_Col], pk: tuple[str, ...],
                indexes: list[_Index]) -> str:
    parts = []
    for c in cols:
        text = f"{_q(c.name)} {c.info.sql_type}"
        text += " NULL" if c.info.nullable else " NOT NULL"
        if c.info.auto_increment:
            text += " AUTO_INCREMENT"
        if c.default_now:
            text += " DEFAULT CURRENT_TIMESTAMP" + (f"({c.default_fsp})" if c.default_fsp
                                                    else "")
        elif c.info.default is not None:
            text += " DEFAULT " + _literal_sql(c.info.default)
        parts.append(text)
    if pk:
        parts.append("PRIMARY KEY (" + ", ".join(_q(c) for c in pk) + ")")
    for i in indexes:
        parts.append(("UNIQUE KEY " if i.unique else "KEY ") + _q(i.name) + " ("
                     + ", ".join(_q(c) for c in i.columns) + ")")
    return (f"CREATE TABLE {_q(schema)}.{_q(name)} (\n  " + ",\n  ".join(parts)
            + "\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
