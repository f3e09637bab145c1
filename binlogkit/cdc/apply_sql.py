"""Row changes as statements on the target (``binlogkit apply --from``).

``c`` is an INSERT, ``r`` (snapshot read) a REPLACE, ``u`` an UPDATE and
``d`` a DELETE of the row whose primary key (the target's) has the before
image's values; a table without a primary key matches every before column
with ``<=>`` and LIMIT 1. Consecutive INSERTs (or REPLACEs) of one table and
column list are one statement. Values go back from their JSON forms
(docs/json.md) by the target's column types (information_schema, read again
after DDL): base64 to bytes for binary strings, BLOB, GEOMETRY and BIT given
as text; a JSON column gets the document's JSON text; DECIMAL text as an
exact literal; a FLOAT is compared as a FLOAT; everything else as given.
Generated columns are left to the target. Names are quoted with backticks
(doubled inside).

The target drifted (:class:`~binlogkit.cdc.apply_errors.ApplyError`): an
UPDATE or DELETE matching no row, an INSERT hitting a duplicate key, a
missing table or column.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from binlogkit.cdc.apply_errors import ApplyError, error_code, server_text, short, transient
from binlogkit.cdc.apply_order import Held, Pending

_BINARY = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
                     "geometry", "point", "linestring", "polygon", "multipoint",
                     "multilinestring", "multipolygon", "geometrycollection", "geomcollection"})


@dataclass(frozen=True)
class Col:
    name: str
    data_type: str
    ordinal: int
    generated: bool
    json: bool


@dataclass
class Table:
    schema: str
    name: str
    columns: list[Col]
    key: tuple[str, ...]

    def __post_init__(self) -> None:
        self.by_lower = {c.name.lower(): c for c in self.columns}

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, key: str) -> Col:
        col = self.by_lower.get(key.lower())
        if col is None and re.fullmatch(r"@\d+", key):
            i = int(key[1:]) - 1
            if 0 <= i < len(self.columns):
                col = self.columns[i]
        if col is None:
            raise ApplyError(f"column {key!r} of {self.display} is not on the target "
                             "(the target drifted from the source)")
        return col


def ident(name: str) -> str:
    """A quoted identifier (backticks doubled)."""
    return "`" + name.replace("`", "``") + "`"


def _q(name: str) -> str:
    """An identifier for a statement run with parameters (``%`` doubled)."""
    return ident(name).replace("%", "%%")


def _param(col: Col) -> str:
    """The placeholder of a value ``col`` is compared with."""
    if col.json and col.data_type == "json":
        return "CAST(%s AS JSON)"
    if col.data_type == "float":  # the JSON form is a float32's shortest decimal
        return "CAST(%s AS FLOAT)"
    return "%s"


Group = list[tuple[Held, dict[str, Any]]]


class RowWriter:
    """Writes row changes with cursors of the target connection: ``target``
    and ``display`` (the broker) name them in errors; ``cursor()`` is a new
    cursor for reading table metadata; ``flavor`` is the target's."""

    def __init__(self, target: str, display: str, cursor: Callable[[], Any], *,
                 insert_batch: int = 200) -> None:
        self.target = target
        self.display = display
        self.cursor = cursor
        self.insert_batch = max(1, insert_batch)
        self.flavor = ""
        self.tables: dict[tuple[str, str], Table] = {}

    def write(self, cur: Any, t: Pending, msgs: list[Held]) -> None:
        """The row changes ``msgs`` of ``t``, in order."""
        for group in self._groups(msgs):
            self._apply_group(cur, t, group)

    def _groups(self, msgs: list[Held]) -> Iterable[Group]:
        """Consecutive INSERTs (or REPLACEs) of one table and column list
        together (one statement), every other change alone."""
        group: Group = []
        size = 0
        for h in msgs:
            try:
                p = json.loads(h.raw.payload)
            except ValueError:
                raise ApplyError(f"{self.display}: {h.raw.stream} at {h.raw.position}: "
                                 "payload is not JSON") from None
            if not isinstance(p, dict):
                raise ApplyError(f"{self.display}: {h.raw.stream} at {h.raw.position}: "
                                 "payload is not a JSON object")
            if group:
                g0, p0 = group[0]
                same = (h.op in ("c", "r") and h.op == g0.op
                        and _table_of(h) == _table_of(g0)
                        and list(p.get("after") or {}) == list(p0.get("after") or {}))
                if not same or len(group) >= self.insert_batch or size > 4_000_000:
                    yield group
                    group, size = [], 0
            group.append((h, p))
            size += len(h.raw.payload)
        if group:
            yield group

    def table(self, schema: str, name: str) -> Table:
        """The target's table (cached until :attr:`tables` is cleared)."""
        key = (schema, name)
        tbl = self.tables.get(key)
        if tbl is not None:
            return tbl
        with self.cursor() as cur:
            cur.execute("SELECT COLUMN_NAME, DATA_TYPE, EXTRA FROM information_schema.COLUMNS"
                        " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                        (schema, name))
            cols = [(_text(c), _text(d).lower(), _text(e).upper()) for c, d, e in cur.fetchall()]
            if not cols:
                raise ApplyError(f"{self.target}: no table {schema}.{name} on the target (apply "
                                 "creates only tables it sees a CREATE TABLE for: create it "
                                 "first)")
            cur.execute("SELECT COLUMN_NAME FROM information_schema.STATISTICS"
                        " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND INDEX_NAME = 'PRIMARY'"
                        " ORDER BY SEQ_IN_INDEX", (schema, name))
            key_cols = tuple(_text(r[0]) for r in cur.fetchall())
            checks: list[str] = []
            if self.flavor == "mariadb":  # MariaDB's JSON: LONGTEXT CHECK (json_valid(col))
                cur.execute("SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS"
                            " WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s", (schema, name))
                checks = [_text(r[0]).lower() for r in cur.fetchall()]
        out = []
        for i, (c, dtype, extra) in enumerate(cols):
            is_json = dtype == "json" or any(
                re.search(rf"json_valid\(\s*`?{re.escape(c.lower())}`?\s*\)", ch)
                for ch in checks)
            out.append(Col(c, dtype, i + 1, "VIRTUAL GENERATED" in extra
                           or "STORED GENERATED" in extra, is_json))
        tbl = self.tables[key] = Table(schema, name, out, key_cols)
        return tbl

    # -- one statement

    def _context(self, t: Pending, h: Held) -> str:
        f = h.raw.fields
        gtid = f" (gtid {f['gtid']})" if f.get("gtid") and f["gtid"] != t.id else ""
        return (f"{self.target}: transaction {t.id}{gtid}, change {h.seq} "
                f"({h.op} {f.get('schema', '')}.{f.get('table', '')})")

    def _execute(self, cur: Any, sql: str, args: Sequence[Any], t: Pending, h: Held) -> int:
        import pymysql  # noqa: PLC0415

        try:
            return int(cur.execute(sql, tuple(args)))
        except pymysql.MySQLError as exc:
            if transient(exc):
                raise
            if error_code(exc) == 1062:
                raise ApplyError(f"{self._context(t, h)}: duplicate key on the target: "
                                 f"{server_text(exc)}; the target drifted from the source"
                                 ) from None
            raise ApplyError(f"{self._context(t, h)}: {server_text(exc)}") from None

    def _apply_group(self, cur: Any, t: Pending, group: Group) -> None:
        h, p = group[0]
        if p.get("json_diffs"):
            raise ApplyError(f"{self._context(t, h)}: partial JSON updates (json_diffs of "
                             f"{', '.join(p['json_diffs'])}) are not supported")
        schema, name = _table_of(h)
        tbl = self.table(schema, name)
        flavor = _flavor(p) or _flavor({"source": {"flavor": h.raw.fields.get("flavor")}})
        if h.op in ("c", "r"):
            after = p.get("after") or {}
            cols = [(tbl.column(k), k) for k in after]
            cols = [(c, k) for c, k in cols if not c.generated]
            verb = "INSERT" if h.op == "c" else "REPLACE"
            row = "(" + ", ".join(["%s"] * len(cols)) + ")"
            sql = (f"{verb} INTO {_q(schema)}.{_q(name)} ("
                   f"{', '.join(_q(c.name) for c, _ in cols)}) VALUES "
                   + ", ".join([row] * len(group)))
            args: list[Any] = []
            for gh, gp in group:
                img = gp.get("after") or {}
                args += [self._value(c, img.get(k), flavor, t, gh) for c, k in cols]
            self._execute(cur, sql, args, t, h)
            return
        if h.op not in ("u", "d"):
            raise ApplyError(f"{self._context(t, h)}: unknown op {h.op!r}")
        before = p.get("before")
        if not isinstance(before, dict):
            raise ApplyError(f"{self._context(t, h)}: no before image")
        where, wargs = self._where(tbl, before, flavor, t, h)
        limit = "" if tbl.key else " LIMIT 1"
        target = f"{_q(schema)}.{_q(name)}"
        if h.op == "d":
            n = self._execute(cur, f"DELETE FROM {target} WHERE {where}{limit}", wargs, t, h)
        else:
            after = p.get("after") or {}
            sets = [(tbl.column(k), v) for k, v in after.items()]
            sets = [(c, v) for c, v in sets if not c.generated]
            if not sets:
                return
            sql = (f"UPDATE {target} SET {', '.join(f'{_q(c.name)} = %s' for c, _ in sets)}"
                   f" WHERE {where}{limit}")
            n = self._execute(cur, sql, [self._value(c, v, flavor, t, h) for c, v in sets]
                              + wargs, t, h)
            if n == 0:  # matched but unchanged? (affected rows count changed rows only)
                n = self._execute(cur, f"SELECT 1 FROM {target} WHERE {where} LIMIT 1", wargs,
                                  t, h)
        if n == 0:
            shown = ", ".join(f"{k}={short(before.get(k))}"
                              for k in (tbl.key or list(before)[:4]))
            raise ApplyError(f"{self._context(t, h)}: no row with {shown} on the target; "
                             "the target drifted from the source")

    def _where(self, tbl: Table, before: dict[str, Any], flavor: str | None, t: Pending,
               h: Held) -> tuple[str, list[Any]]:
        parts: list[str] = []
        args: list[Any] = []
        if tbl.key:
            for k in tbl.key:
                col = tbl.by_lower[k.lower()]
                src = next((b for b in before if tbl.column(b) is col), None)
                if src is None:
                    raise ApplyError(f"{self._context(t, h)}: the before image lacks primary "
                                     f"key column {k}")
                parts.append(f"{_q(col.name)} = {_param(col)}")
                args.append(self._value(col, before[src], flavor, t, h))
            return " AND ".join(parts), args
        for k, v in before.items():
            col = tbl.column(k)
            if col.generated:
                continue
            if v is None:
                parts.append(f"{_q(col.name)} IS NULL")
                continue
            parts.append(f"{_q(col.name)} <=> {_param(col)}")
            args.append(self._value(col, v, flavor, t, h))
        return " AND ".join(parts) or "1", args

    def _value(self, col: Col, v: Any, flavor: str | None, t: Pending, h: Held) -> Any:
        """A JSON value back in the form the target column takes."""
        if v is None:
            return None
        dt = col.data_type
        if col.json:
            if isinstance(v, str) and (flavor == "mariadb" or (flavor is None and _is_json(v))):
                return v  # MariaDB's JSON is text already
            return json.dumps(v, ensure_ascii=False)
        if dt in _BINARY or (dt == "bit" and isinstance(v, str)) \
                or (dt in ("uuid", "inet6", "inet4") and isinstance(v, str)
                    and not re.search(r"[-:.]", v)):
            if not isinstance(v, str):
                return v
            try:
                return base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError):
                raise ApplyError(f"{self._context(t, h)}: column {col.name}: not base64: "
                                 f"{short(v)}") from None
        if dt == "vector" and isinstance(v, list):
            return struct.pack(f"<{len(v)}f", *v)
        if dt == "decimal" and isinstance(v, str):
            try:  # an exact literal: compared as DECIMAL, not as a double
                return Decimal(v)
            except ArithmeticError:
                return v
        if isinstance(v, dict | list):
            return json.dumps(v, ensure_ascii=False)
        return v


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes | bytearray) else str(v)


def _table_of(h: Held) -> tuple[str, str]:
    return h.raw.fields.get("schema", ""), h.raw.fields.get("table", "")


def _flavor(payload: dict[str, Any]) -> str | None:
    src = payload.get("source")
    flavor = src.get("flavor") if isinstance(src, dict) else None
    return flavor if flavor in ("mysql", "mariadb") else None


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
