"""The table definitions a CDC consumer needs to name the columns of row
events, advanced by the DDL of the binlog.

With ``binlog_row_metadata=MINIMAL`` (MySQL's default) a TABLE_MAP carries no
column names: row decoding takes them from a :class:`~binlogkit.codec.columns.Schemas`.
That schema must be the one the rows were written under, not today's, so a
:class:`SchemaHistory` starts from a :meth:`SchemaHistory.snapshot` of
information_schema taken at the stream's starting point and is advanced, in
stream order, by every QUERY event's statement (:meth:`SchemaHistory.apply_ddl`).
It serializes to JSON (:meth:`to_json` / :meth:`from_json`) and is stored in
the checkpoint (``model.Checkpoint.schema_history``), so a restart from a
checkpoint decodes with exactly the schema as of that position.

Statements are parsed with sqlglot (a MySQL dialect with the fixes listed in
:class:`_Dialect`). Understood: CREATE TABLE (column, PRIMARY KEY and UNIQUE
definitions; ``LIKE``), ALTER TABLE (ADD/DROP/MODIFY/CHANGE/RENAME COLUMN with
FIRST/AFTER, ADD [COLUMN] (a, b), ADD/DROP PRIMARY KEY, ADD/DROP UNIQUE, RENAME
TO, DEFAULT CHARSET, index/option changes that do not touch columns), CREATE
[UNIQUE] INDEX, DROP INDEX, DROP TABLE (several, IF EXISTS), RENAME TABLE,
TRUNCATE, CREATE/DROP/ALTER DATABASE|SCHEMA. Other statements (DML,
transaction control, views, routines, users...) leave the history alone.

What it cannot follow never corrupts it silently: the affected table is
marked *unknown* (:attr:`SchemaHistory.unknown` maps it to the reason),
:meth:`apply_ddl` returns False, and :meth:`schemas` leaves the table out, so
its rows decode with ``@N`` keys rather than wrong names until the consumer
re-reads it (:meth:`SchemaHistory.refresh`). That happens for CREATE TABLE ...
SELECT (the columns come from the query), ALTER TABLE ... CONVERT TO CHARACTER
SET, unknown column types, and anything sqlglot cannot parse.

Derived like the server does: MySQL's implicit primary key (with no PRIMARY
KEY, the first UNIQUE key over NOT NULL columns shows as ``PRI``), PRIMARY KEY
columns becoming NOT NULL, charsets inherited from the table, database and
server defaults, display widths (MariaDB ``int(11)``; MySQL only for
``tinyint(1)`` and ZEROFILL), MariaDB's JSON as ``longtext``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from binlogkit.codec.columns import ColumnDef, Schemas, TableDef, _enum_members, _s

__all__ = ["ColumnInfo", "SchemaHistory", "TableInfo", "read_tables"]

DT = exp.DataType.Type
TableKey = tuple[str, str]


@dataclass(frozen=True)
class ColumnInfo:
    """One column as information_schema.COLUMNS shows it (``fsp`` is
    DATETIME_PRECISION, None when 0 or not temporal, as ``Schemas.from_server``)."""

    name: str
    data_type: str
    column_type: str
    unsigned: bool = False
    charset: str | None = None
    nullable: bool = True
    primary_key: bool = False
    enum_values: tuple[str, ...] | None = None
    fsp: int | None = None

    def to_column_def(self) -> ColumnDef:
        return ColumnDef(self.name, self.data_type, self.unsigned, self.charset,
                         self.enum_values, self.primary_key, fsp=self.fsp)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "data_type": self.data_type, "column_type": self.column_type,
                "unsigned": self.unsigned, "charset": self.charset, "nullable": self.nullable,
                "primary_key": self.primary_key,
                "enum_values": None if self.enum_values is None else list(self.enum_values),
                "fsp": self.fsp}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ColumnInfo:
        ev = d.get("enum_values")
        return cls(str(d["name"]), str(d["data_type"]), str(d["column_type"]),
                   bool(d.get("unsigned")), d.get("charset"), bool(d.get("nullable", True)),
                   bool(d.get("primary_key")), None if ev is None else tuple(ev), d.get("fsp"))


@dataclass
class TableInfo:
    """A table: its columns in order, its default charset and its PRIMARY /
    UNIQUE keys (``(name, cols)``; "PRIMARY" is the primary key) in creation order."""

    schema: str
    table: str
    columns: list[ColumnInfo] = field(default_factory=list)
    charset: str | None = None
    keys: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def column_index(self, name: str) -> int:
        low = name.lower()
        for i, c in enumerate(self.columns):
            if c.name.lower() == low:
                return i
        raise _Unsupported(f"no column {name!r} in {self.schema}.{self.table}")

    def derive_keys(self) -> None:
        """Set each column's ``primary_key`` like COLUMN_KEY = 'PRI'."""
        nullable = {c.name.lower(): c.nullable for c in self.columns}
        pk: tuple[str, ...] = ()
        for name, cols in self.keys:
            if name == "PRIMARY":
                pk = cols
                break
        else:
            for _name, cols in self.keys:
                if cols and all(nullable.get(c.lower()) is False for c in cols):
                    pk = cols
                    break
        low = {c.lower() for c in pk}
        self.columns = [replace(c, primary_key=c.name.lower() in low) for c in self.columns]

    def to_json(self) -> dict[str, Any]:
        return {"schema": self.schema, "table": self.table, "charset": self.charset,
                "columns": [c.to_json() for c in self.columns],
                "keys": [[n, list(cols)] for n, cols in self.keys]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TableInfo:
        return cls(str(d["schema"]), str(d["table"]),
                   [ColumnInfo.from_json(c) for c in d.get("columns", [])], d.get("charset"),
                   [(str(n), tuple(cols)) for n, cols in d.get("keys", [])])


class _Unsupported(Exception):
    """A statement (or part of one) the history cannot follow."""


class _Dialect(MySQL):
    """sqlglot's MySQL with fixes for MySQL/MariaDB DDL it gets wrong:

    - unknown type names (MariaDB INET6/INET4, geometry subtypes POINT...)
      fail to parse: accepted as user-defined types;
    - INT2/INT3/INT4/INT8 all read as TINYINT, MIDDLEINT fails: mapped to
      SMALLINT/MEDIUMINT/INT/BIGINT/MEDIUMINT;
    - REAL reads as FLOAT (MySQL: DOUBLE), LONG as BIGINT (MySQL: MEDIUMTEXT).
    """

    SUPPORTS_USER_DEFINED_TYPES = True

    class Tokenizer(MySQL.Tokenizer):
        KEYWORDS = {**MySQL.Tokenizer.KEYWORDS,
                    "INT2": TokenType.SMALLINT, "INT3": TokenType.MEDIUMINT,
                    "INT4": TokenType.INT, "INT8": TokenType.BIGINT,
                    "MIDDLEINT": TokenType.MEDIUMINT, "REAL": TokenType.DOUBLE,
                    "LONG": TokenType.MEDIUMTEXT}


# Text rewrites for type spellings sqlglot cannot parse at all.
_REWRITES = [
    (re.compile(r"\bNATIONAL\s+(?:CHARACTER|CHAR)\s+VARYING\b", re.I), "NVARCHAR"),
    (re.compile(r"\bNATIONAL\s+VARCHAR\b", re.I), "NVARCHAR"),
    (re.compile(r"\bNATIONAL\s+(?:CHARACTER|CHAR)\b", re.I), "NCHAR"),
    (re.compile(r"\bLONG\s+VARBINARY\b", re.I), "MEDIUMBLOB"),
    (re.compile(r"\bLONG\s+(?:CHAR\s+)?VARCHAR\b", re.I), "MEDIUMTEXT"),
    (re.compile(r"\bSRID\s+\d+", re.I), ""),  # MySQL 8 spatial attribute: no column change
]
_VERSIONED_COMMENT = re.compile(r"/\*M?!\d*(.*?)\*/", re.S)
_STRING = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"|`(?:[^`]|``)*`", re.S)

# (signed, unsigned) default display widths (MariaDB shows them; MySQL only with ZEROFILL)
_WIDTHS = {"tinyint": (4, 3), "smallint": (6, 5), "mediumint": (9, 8), "int": (11, 10),
           "bigint": (20, 20)}
_INTS = {DT.TINYINT: "tinyint", DT.UTINYINT: "tinyint", DT.SMALLINT: "smallint",
         DT.USMALLINT: "smallint", DT.MEDIUMINT: "mediumint", DT.UMEDIUMINT: "mediumint",
         DT.INT: "int", DT.UINT: "int", DT.BIGINT: "bigint", DT.UBIGINT: "bigint"}
_UNSIGNED = {DT.UTINYINT, DT.USMALLINT, DT.UMEDIUMINT, DT.UINT, DT.UBIGINT, DT.UDECIMAL,
             DT.UDOUBLE}
_PLAIN = {DT.DATE: "date", DT.GEOMETRY: "geometry", DT.UUID: "uuid",
          DT.TINYBLOB: "tinyblob", DT.BLOB: "blob", DT.MEDIUMBLOB: "mediumblob",
          DT.LONGBLOB: "longblob"}
_TEXTS = {DT.TINYTEXT: "tinytext", DT.TEXT: "text", DT.MEDIUMTEXT: "mediumtext",
          DT.LONGTEXT: "longtext"}
_TEMPORAL = {DT.DATETIME: "datetime", DT.DATETIME64: "datetime", DT.TIMESTAMP: "timestamp",
             DT.TIMESTAMPTZ: "timestamp", DT.TIMESTAMPLTZ: "timestamp", DT.TIME: "time"}
_USER_TYPES = {"inet6", "inet4", "uuid", "point", "linestring", "polygon", "multipoint",
               "multilinestring", "multipolygon", "geometrycollection", "geomcollection"}
_TO_BINARY = {"char": "binary", "varchar": "varbinary", "tinytext": "tinyblob",
              "text": "blob", "mediumtext": "mediumblob", "longtext": "longblob"}
_HARMLESS_ALTER = (exp.AlterColumn, exp.ForceProperty)


def _charset_of_collation(collation: str) -> str:
    c = collation.lower()
    return "binary" if c == "binary" else _norm_charset(c.split("_", 1)[0])


def _norm_charset(cs: str) -> str:
    cs = cs.lower()
    return "utf8mb3" if cs == "utf8" else cs


def _quote_member(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def _literal_text(e: Any) -> str:
    if isinstance(e, exp.DataTypeParam):
        e = e.this
    return str(e.this) if isinstance(e, exp.Literal | exp.Identifier | exp.Var) else e.sql("mysql")


def _params(kind: exp.DataType) -> list[str]:
    return [_literal_text(p) for p in kind.expressions or []]


def _name(e: Any) -> str:
    if isinstance(e, exp.Identifier | exp.Column | exp.Var):
        return str(e.name)
    if isinstance(e, exp.ColumnPrefix | exp.Ordered):
        return _name(e.this)
    if isinstance(e, exp.Anonymous):  # b(3) in an index: a prefix
        return str(e.this)
    if isinstance(e, str):
        return e
    raise _Unsupported(f"cannot read a name from {e.sql('mysql') if e else e!r}")


class SchemaHistory:
    """Tables as of the stream position the history has been advanced to.

    ``flavor`` ("mysql"/"mariadb") decides how column types are spelled;
    ``server_charset`` and ``databases`` (name -> default charset) are what a
    new table's columns inherit; ``unknown`` maps tables the history could
    not follow to why (see the module doc); ``scope`` the databases followed
    (a snapshot's ``schemas``; None: all): DDL elsewhere is ignored.
    """

    def __init__(self, flavor: str = "mysql", server_charset: str = "utf8mb4") -> None:
        self.flavor = flavor
        self.server_charset = server_charset
        self.databases: dict[str, str] = {}
        self.tables: dict[TableKey, TableInfo] = {}
        self.unknown: dict[TableKey, str] = {}
        self.scope: set[str] | None = None  # databases followed (None: all)

    # ----------------------------------------------------------- snapshot
    @classmethod
    def snapshot(cls, conn: Any, schemas: list[str] | None = None) -> SchemaHistory:
        """Read information_schema over a DB-API connection (PyMySQL). Take it
        at the stream's starting point (e.g. under FLUSH TABLES WITH READ LOCK
        with the binlog position noted). ``schemas`` limits the databases."""
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION(), @@character_set_server")
            version, server_cs = cur.fetchone()
        out = cls("mariadb" if "mariadb" in _s(version).lower() else "mysql",
                  _norm_charset(_s(server_cs)))
        out.scope = set(schemas) if schemas else None
        out._read(conn, schemas)
        return out

    def in_scope(self, db: str) -> bool:
        return self.scope is None or db in self.scope

    def refresh(self, conn: Any, tables: Iterable[TableKey] | None = None) -> None:
        """Re-read ``tables`` (default: every unknown one) from information_schema
        (a consumer does this right after the DDL, before later DDL changes them)."""
        wanted = set(self.unknown if tables is None else tables)
        for key in wanted:
            self.tables.pop(key, None)
            self.unknown.pop(key, None)
        fresh = SchemaHistory(self.flavor, self.server_charset)
        fresh._read(conn, sorted({db for db, _ in wanted}))
        for key in wanted:
            if key in fresh.tables:
                self.tables[key] = fresh.tables[key]
        self.databases.update(fresh.databases)

    def _read(self, conn: Any, schemas: Sequence[str] | None) -> None:
        self.databases.update(_read_databases(conn, schemas))
        self.tables.update(read_tables(conn, schemas))

    # -------------------------------------------------------------- output
    def schemas(self) -> Schemas:
        """What row decoding needs (unknown tables are left out)."""
        return Schemas([TableDef(t.schema, t.table, tuple(c.to_column_def() for c in t.columns))
                        for k, t in self.tables.items() if k not in self.unknown])

    def table(self, schema: str, table: str) -> TableInfo | None:
        return self.tables.get((schema, table))

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "flavor": self.flavor, "server_charset": self.server_charset,
                "databases": dict(sorted(self.databases.items())),
                "tables": [self.tables[k].to_json() for k in sorted(self.tables)],
                "unknown": [[db, t, why] for (db, t), why in sorted(self.unknown.items())],
                "scope": None if self.scope is None else sorted(self.scope)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SchemaHistory:
        if data.get("version") != 1:
            raise ValueError(f"unsupported schema history version {data.get('version')!r}")
        out = cls(str(data["flavor"]), str(data["server_charset"]))
        out.databases = {str(k): str(v) for k, v in data.get("databases", {}).items()}
        for t in data.get("tables", []):
            info = TableInfo.from_json(t)
            out.tables[(info.schema, info.table)] = info
        out.unknown = {(str(db), str(t)): str(why) for db, t, why in data.get("unknown", [])}
        scope = data.get("scope")
        out.scope = None if scope is None else {str(x) for x in scope}
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SchemaHistory) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]

    # ----------------------------------------------------------------- DDL
    def apply_ddl(self, db: str | None, sql: str) -> bool:
        """Advance by one statement (a QUERY event's default database and
        text). Returns whether the schema changed; False also when the
        statement could not be followed: then :attr:`unknown` names the
        table(s) to re-read."""
        text = _VERSIONED_COMMENT.sub(r" \1 ", sql).strip().rstrip(";").strip()
        head = re.match(r"\s*(\w+)(?:\s+(\w+))?(?:\s+(\w+))?(?:\s+(\w+))?", text)
        if head is None:
            return False
        words = [w.upper() for w in head.groups() if w]
        verb = words[0]
        if verb not in ("CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE"):
            return False
        if "TEMPORARY" in words[:2]:
            return False  # temporary tables have no row events
        obj = next((w for w in words[1:] if w not in ("OR", "REPLACE", "ONLINE", "OFFLINE",
                                                       "IGNORE", "UNIQUE", "FULLTEXT",
                                                       "SPATIAL")), "")
        if verb == "TRUNCATE":
            return False
        if obj not in ("TABLE", "TABLES", "DATABASE", "SCHEMA", "INDEX"):
            if verb == "CREATE" and obj == "SEQUENCE":  # MariaDB: a sequence is a table
                self._mark_from_text(db, text, "CREATE SEQUENCE")
            return False
        before = self._visible()
        snapshot_tables = {k: TableInfo.from_json(v.to_json()) for k, v in self.tables.items()}
        snapshot_dbs = dict(self.databases)
        try:
            self._apply(db or "", text, verb, obj)
        except _Unsupported as exc:
            # never half-applied: restore, then mark what the statement touches
            self.tables, self.databases = snapshot_tables, snapshot_dbs
            self._mark_from_text(db, text, str(exc))
            return False
        return self._visible() != before

    def _visible(self) -> tuple[dict[str, str], dict[TableKey, list[ColumnInfo]]]:
        """What "the schema changed" compares: databases and every table's columns
        (not key names or default charsets, which decoding does not see)."""
        return dict(self.databases), {k: list(t.columns) for k, t in self.tables.items()}

    def _mark_from_text(self, db: str | None, text: str, why: str) -> None:
        keys = tables_named(db or "", text)
        if not keys:
            keys = [k for k in self.tables if k[0] == (db or "")]
        for key in keys:
            if self.in_scope(key[0]):
                self.unknown[key] = why

    def _apply(self, db: str, text: str, verb: str, obj: str) -> None:
        if verb == "RENAME":
            self._rename_tables(db, text)
            return
        if verb == "ALTER" and obj in ("DATABASE", "SCHEMA"):
            self._alter_database(db, text)
            return
        try:
            tree = self._parse(text)
        except _Unsupported:
            if verb != "ALTER":
                raise
            tree = exp.Command(this="ALTER")
        if verb == "ALTER" and isinstance(tree, exp.Command):
            self._alter_command(db, text)  # forms sqlglot does not parse
            return
        if isinstance(tree, exp.Command):
            raise _Unsupported(f"sqlglot cannot parse: {text[:80]}")
        if isinstance(tree, exp.Create):
            self._create(db, tree)
        elif isinstance(tree, exp.Alter):
            self._alter(db, tree)
        elif isinstance(tree, exp.Drop):
            self._drop(db, tree)
        elif isinstance(tree, exp.TruncateTable):
            return
        else:
            raise _Unsupported(f"unexpected statement {type(tree).__name__}")

    def _parse(self, text: str) -> Any:
        fixed = _rewrite_outside_strings(text)
        if re.match(r"\s*CREATE\s", fixed, re.I):
            fixed = _strip_partitioning(fixed)  # sqlglot: a Command (and a warning)
        try:
            return sqlglot.parse_one(fixed, read=_Dialect)
        except SqlglotError as exc:
            raise _Unsupported(f"sqlglot: {str(exc).splitlines()[0]}") from None

    # ------------------------------------------------------------ statements
    def _key(self, db: str, t: exp.Table) -> TableKey:
        schema = t.args.get("db")
        name = t.name
        if not name:
            raise _Unsupported("no table name")
        return (_name(schema) if schema else db, name)

    def _get(self, key: TableKey) -> TableInfo:
        info = self.tables.get(key)
        if info is None:
            raise _Unsupported(f"table {key[0]}.{key[1]} not in the history")
        if key in self.unknown:
            raise _Unsupported(f"table {key[0]}.{key[1]} is unknown: {self.unknown[key]}")
        return info

    def _create(self, db: str, tree: exp.Create) -> None:
        kind = str(tree.args.get("kind") or "").upper()
        props = tree.args.get("properties")
        prop_list = list(props.expressions) if props else []
        if kind in ("DATABASE", "SCHEMA"):
            target = tree.this
            name = _name(target.this or target.args.get("db"))
            if (name in self.databases and tree.args.get("exists")) or not self.in_scope(name):
                return
            self.databases[name] = self._charset_props(prop_list) or self.server_charset
            return
        if kind == "INDEX":
            index = tree.this
            key = self._key(db, index.args["table"])
            if tree.args.get("unique"):
                info = self._get(key)
                cols = tuple(_name(c) for c in index.args["params"].args.get("columns") or [])
                self._add_unique(info, _name(index.this), cols)
                info.derive_keys()
            return
        if kind != "TABLE":
            return
        schema = tree.this
        table = schema.this if isinstance(schema, exp.Schema) else schema
        key = self._key(db, table)
        if not self.in_scope(key[0]):
            return
        if key in self.tables and key not in self.unknown:
            if tree.args.get("exists"):
                return
            raise _Unsupported(f"table {key[0]}.{key[1]} already exists")
        like = next((p for p in prop_list if isinstance(p, exp.LikeProperty)), None)
        if like is None and isinstance(schema, exp.Schema):
            like = next((p for p in schema.expressions if isinstance(p, exp.LikeProperty)), None)
        if like is not None:
            src = self._get(self._key(db, like.this))
            self.tables[key] = TableInfo(key[0], key[1], list(src.columns), src.charset,
                                         list(src.keys))
            self.unknown.pop(key, None)
            return
        if tree.args.get("expression") is not None:
            self.unknown[key] = "CREATE TABLE ... SELECT: columns come from the query"
            self.tables[key] = TableInfo(key[0], key[1])
            raise _Unsupported(self.unknown[key])
        if key[0] not in self.databases:
            raise _Unsupported(f"database {key[0]!r} not in the history")
        charset = self._charset_props(prop_list) or self.databases[key[0]]
        info = TableInfo(key[0], key[1], charset=charset)
        for item in schema.expressions if isinstance(schema, exp.Schema) else []:
            if isinstance(item, exp.ColumnDef):
                self._add_column(info, item, None)
            else:
                self._table_constraint(info, item)
        info.derive_keys()
        self.tables[key] = info
        self.unknown.pop(key, None)

    def _charset_props(self, props: Sequence[exp.Expression]) -> str | None:
        cs = None
        for p in props:
            if isinstance(p, exp.CharacterSetProperty):
                cs = _norm_charset(_name(p.this))
            elif isinstance(p, exp.CollateProperty):
                cs = _charset_of_collation(_name(p.this))
        return cs

    def _drop(self, db: str, tree: exp.Drop) -> None:
        kind = str(tree.args.get("kind") or "").upper()
        if kind in ("DATABASE", "SCHEMA"):
            target = tree.args["tables"][0] if tree.args.get("tables") else tree.this
            name = _name(target.this or target.args.get("db"))
            self.databases.pop(name, None)
            for key in [k for k in self.tables if k[0] == name]:
                del self.tables[key]
            for key in [k for k in self.unknown if k[0] == name]:
                del self.unknown[key]
            return
        if kind == "INDEX":
            on = tree.args.get("cluster")
            if not isinstance(on, exp.OnProperty):
                raise _Unsupported("DROP INDEX without ON")
            info = self._get(self._key(db, on.this))
            for t in tree.args.get("tables") or []:
                self._drop_key(info, _name(t.this))
            info.derive_keys()
            return
        if kind != "TABLE":
            return
        if tree.args.get("temporary"):
            return
        for t in tree.args.get("tables") or []:
            key = self._key(db, t)
            self.tables.pop(key, None)
            self.unknown.pop(key, None)

    def _rename_tables(self, db: str, text: str) -> None:
        """RENAME TABLE a TO b[, c TO d] (sqlglot: a Command): pairs apply in order."""
        m = re.match(r"\s*RENAME\s+TABLES?\s+(.*)$", text, re.I | re.S)
        if m is None:
            raise _Unsupported("RENAME of something other than tables")
        for pair in _split_top(m.group(1)):
            parts = re.split(r"\s+TO\s+", pair.strip(), flags=re.I)
            if len(parts) != 2:
                raise _Unsupported(f"cannot read RENAME pair {pair!r}")
            old = self._key(db, exp.to_table(parts[0], dialect="mysql"))
            new = self._key(db, exp.to_table(parts[1], dialect="mysql"))
            self._move(old, new)

    def _move(self, old: TableKey, new: TableKey) -> None:
        if not self.in_scope(old[0]):
            if self.in_scope(new[0]):
                raise _Unsupported(f"renamed in from {old[0]}.{old[1]}, outside the history")
            return
        if not self.in_scope(new[0]):
            self.tables.pop(old, None)
            self.unknown.pop(old, None)
            return
        if old in self.unknown:
            self.unknown[new] = self.unknown.pop(old)
        info = self.tables.pop(old, None)
        if info is None:
            raise _Unsupported(f"table {old[0]}.{old[1]} not in the history")
        info.schema, info.table = new
        self.tables[new] = info

    def _alter_database(self, db: str, text: str) -> None:
        m = re.match(r"\s*ALTER\s+(?:DATABASE|SCHEMA)\s+(`(?:[^`]|``)*`|\w+)?(.*)$",
                     text, re.I | re.S)
        if m is None:
            raise _Unsupported("cannot read ALTER DATABASE")
        name = m.group(1)
        rest = m.group(2)
        if name and name.upper() in ("DEFAULT", "CHARACTER", "CHARSET", "COLLATE"):
            rest, name = name + rest, None
        target = (name.strip("`").replace("``", "`") if name else db)
        cs = re.search(r"(?:CHARACTER\s+SET|CHARSET)\s*=?\s*['`]?(\w+)", rest, re.I)
        coll = re.search(r"COLLATE\s*=?\s*['`]?(\w+)", rest, re.I)
        if target in self.databases and (cs or coll):
            self.databases[target] = (_charset_of_collation(coll.group(1)) if coll
                                      else _norm_charset(cs.group(1) if cs else ""))

    def _alter_command(self, db: str, text: str) -> None:
        """ALTER TABLE forms sqlglot does not parse (its Command fallback)."""
        m = re.match(r"\s*ALTER\s+(?:ONLINE\s+|IGNORE\s+)*TABLE\s+"
                     r"((?:`(?:[^`]|``)*`|\w+)(?:\s*\.\s*(?:`(?:[^`]|``)*`|\w+))?)\s+(.*)$",
                     text, re.I | re.S)
        if m is None:
            raise _Unsupported("cannot read ALTER TABLE")
        rest = m.group(2).strip()
        # ADD [COLUMN] (a INT, b INT): the same as ADD a INT, ADD b INT
        add = re.match(r"ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?\((.*)\)\s*$",
                       rest, re.I | re.S)
        if add is not None:
            defs = _split_top(add.group(1))
            if any(re.match(r"\s*(PRIMARY|UNIQUE|KEY|INDEX|CONSTRAINT|FOREIGN|CHECK|FULLTEXT"
                            r"|SPATIAL)\b", d, re.I) for d in defs):
                raise _Unsupported("ALTER TABLE ADD (...) with keys")
            tree = self._parse(f"ALTER TABLE {m.group(1)} "
                               + ", ".join(f"ADD COLUMN {d.strip()}" for d in defs))
            if not isinstance(tree, exp.Alter):
                raise _Unsupported("ALTER TABLE ADD (...) still not parsed")
            self._alter(db, tree)
            return
        if re.match(r"(ADD|DROP|TRUNCATE|COALESCE|REORGANIZE|EXCHANGE|ANALYZE|CHECK|OPTIMIZE"
                    r"|REBUILD|REPAIR|DISCARD|IMPORT)\s+PARTITION\b|REMOVE\s+PARTITIONING\b"
                    r"|PARTITION\s+BY\b", rest, re.I):
            self._get(self._key(db, exp.to_table(m.group(1), dialect="mysql")))
            return  # partitioning does not change columns
        raise _Unsupported(f"ALTER TABLE form not followed: {rest[:60]}")

    def _alter(self, db: str, tree: exp.Alter) -> None:
        if str(tree.args.get("kind") or "").upper() != "TABLE":
            raise _Unsupported(f"ALTER {tree.args.get('kind')}")
        key = self._key(db, tree.this)
        if not self.in_scope(key[0]):
            return
        info = self._get(key)
        for opt in tree.args.get("options") or []:
            if isinstance(opt, exp.CharacterSetProperty | exp.CollateProperty):
                info.charset = self._charset_props([opt])
        rename_to: TableKey | None = None
        for action in tree.args.get("actions") or []:
            if isinstance(action, exp.ColumnDef):
                if action.args.get("exists") and self._has_column(info, action.name):
                    continue
                self._add_column(info, action, action.args.get("position"))
            elif isinstance(action, exp.ModifyColumn):
                cdef = action.this
                old = _name(action.args.get("rename_from") or cdef.this)
                i = info.column_index(old)
                pos = cdef.args.get("position")
                info.columns.pop(i)
                self._add_column(info, cdef, pos, at=i)
                if old.lower() != cdef.name.lower():
                    self._rename_in_keys(info, old, cdef.name)
            elif isinstance(action, exp.RenameColumn):
                old, new = _name(action.this), _name(action.args["to"])
                if action.args.get("exists") and not self._has_column(info, old):
                    continue
                i = info.column_index(old)
                info.columns[i] = replace(info.columns[i], name=new)
                self._rename_in_keys(info, old, new)
            elif isinstance(action, exp.Drop):
                self._alter_drop(info, action)
            elif isinstance(action, exp.DropPrimaryKey):
                self._drop_key(info, "PRIMARY", required=True)
            elif isinstance(action, exp.AddConstraint):
                for item in action.expressions:
                    self._table_constraint(info, item)
            elif isinstance(action, exp.AlterRename):
                rename_to = self._key(db, action.this)
            elif isinstance(action, _HARMLESS_ALTER):
                continue
            else:
                raise _Unsupported(f"ALTER TABLE action {type(action).__name__}")
        info.derive_keys()
        if rename_to is not None and rename_to != key:
            self._move(key, rename_to)

    @staticmethod
    def _has_column(info: TableInfo, name: str) -> bool:
        return any(c.name.lower() == name.lower() for c in info.columns)

    def _alter_drop(self, info: TableInfo, action: exp.Drop) -> None:
        kind = str(action.args.get("kind") or "").upper()
        for target in action.args.get("tables") or []:
            name = _name(target.this if isinstance(target, exp.Table) else target)
            if kind == "COLUMN":
                if action.args.get("exists") and not self._has_column(info, name):
                    continue
                del info.columns[info.column_index(name)]
                low = name.lower()
                info.keys = [(n, tuple(c for c in cols if c.lower() != low))
                             for n, cols in info.keys]
                info.keys = [(n, cols) for n, cols in info.keys if cols]
            elif kind in ("INDEX", "KEY"):
                self._drop_key(info, name)
            elif kind in ("FOREIGN KEY", "CHECK", "CONSTRAINT"):
                if kind == "CONSTRAINT":
                    self._drop_key(info, name)
            else:
                raise _Unsupported(f"ALTER TABLE DROP {kind}")

    def _drop_key(self, info: TableInfo, name: str, required: bool = False) -> None:
        low = name.lower()
        keys = [(n, c) for n, c in info.keys if n.lower() != low]
        if required and len(keys) == len(info.keys):
            raise _Unsupported(f"no key {name} on {info.schema}.{info.table}")
        info.keys = keys

    def _rename_in_keys(self, info: TableInfo, old: str, new: str) -> None:
        low = old.lower()
        info.keys = [(n, tuple(new if c.lower() == low else c for c in cols))
                     for n, cols in info.keys]

    def _add_unique(self, info: TableInfo, name: str | None, cols: tuple[str, ...]) -> None:
        if not cols:
            raise _Unsupported("UNIQUE without columns")
        taken = {n.lower() for n, _ in info.keys}
        if not name:
            name, k = cols[0], 2
            while name.lower() in taken:
                name, k = f"{cols[0]}_{k}", k + 1
        info.keys.append((name, cols))

    def _set_primary(self, info: TableInfo, cols: tuple[str, ...]) -> None:
        if any(n == "PRIMARY" for n, _ in info.keys):
            raise _Unsupported("a second PRIMARY KEY")
        info.keys.insert(0, ("PRIMARY", cols))
        low = {c.lower() for c in cols}
        for i, c in enumerate(info.columns):
            if c.name.lower() in low:
                info.columns[i] = replace(c, nullable=False)
        for name in cols:
            info.column_index(name)

    def _table_constraint(self, info: TableInfo, item: exp.Expression) -> None:
        name: str | None = None
        if isinstance(item, exp.Constraint):
            name = _name(item.this)
            for sub in item.expressions:
                self._one_constraint(info, sub, name)
            return
        self._one_constraint(info, item, name)

    def _one_constraint(self, info: TableInfo, item: exp.Expression, name: str | None) -> None:
        if isinstance(item, exp.PrimaryKey):
            self._set_primary(info, tuple(_name(c) for c in item.expressions))
        elif isinstance(item, exp.UniqueColumnConstraint):
            target = item.this
            if not isinstance(target, exp.Schema):
                raise _Unsupported("UNIQUE without a column list")
            own = _name(target.this) if target.this is not None else None
            self._add_unique(info, own or name, tuple(_name(c) for c in target.expressions))
        elif isinstance(item, exp.IndexColumnConstraint | exp.ForeignKey | exp.CheckColumnConstraint
                        | exp.Check):
            return
        elif isinstance(item, exp.LikeProperty):
            raise _Unsupported("LIKE among column definitions")
        else:
            raise _Unsupported(f"table element {type(item).__name__}")

    # --------------------------------------------------------------- columns
    def _add_column(self, info: TableInfo, cdef: exp.ColumnDef, position: Any,
                    at: int | None = None) -> None:
        col, pk, unique = self._column(info, cdef)
        if self._has_column(info, col.name):
            raise _Unsupported(f"duplicate column {col.name}")
        if any(n == "PRIMARY" and col.name.lower() in {c.lower() for c in cols}
               for n, cols in info.keys):
            col = replace(col, nullable=False)  # a primary key column stays NOT NULL
        if position is None:
            index = len(info.columns) if at is None else at
        elif str(position.args.get("position") or "").upper() == "FIRST":
            index = 0
        else:
            index = info.column_index(_name(position.this)) + 1
        info.columns.insert(index, col)
        if pk:
            self._set_primary(info, (col.name,))
        if unique:
            self._add_unique(info, None, (col.name,))

    def _column(self, info: TableInfo, cdef: exp.ColumnDef) -> tuple[ColumnInfo, bool, bool]:
        kind = cdef.args.get("kind")
        if not isinstance(kind, exp.DataType):
            raise _Unsupported(f"column {cdef.name} without a type")
        nullable, pk, unique, zerofill, binary_attr = True, False, False, False, False
        charset = collation = None
        for con in cdef.constraints:
            k = con.args.get("kind")
            if isinstance(k, exp.NotNullColumnConstraint):
                nullable = bool(k.args.get("allow_null"))
            elif isinstance(k, exp.PrimaryKeyColumnConstraint):
                pk = True
            elif isinstance(k, exp.UniqueColumnConstraint):
                unique = True
            elif isinstance(k, exp.ZeroFillColumnConstraint):
                zerofill = True
            elif isinstance(k, exp.CharacterSetColumnConstraint):
                charset = _norm_charset(_name(k.this))
            elif isinstance(k, exp.CollateColumnConstraint):
                collation = _name(k.this)
            elif isinstance(k, exp.BinaryColumnConstraint):
                binary_attr = True
        del binary_attr  # CHAR(n) BINARY: a _bin collation, same charset
        t = kind.this
        p = _params(kind)
        mariadb = self.flavor == "mariadb"
        unsigned = t in _UNSIGNED or zerofill
        data_type: str
        column_type: str
        string = False
        enum_values = None
        fsp = None
        if t == DT.SERIAL:
            data_type, unsigned, nullable, unique = "bigint", True, False, True
            column_type = "bigint(20) unsigned" if mariadb else "bigint unsigned"
        elif t == DT.BOOLEAN:
            data_type, column_type = "tinyint", "tinyint(1)"
        elif t in _INTS:
            data_type = _INTS[t]
            width = p[0] if p else None
            if mariadb or zerofill:
                width = width or str(_WIDTHS[data_type][1 if unsigned else 0])
            elif not (data_type == "tinyint" and width == "1" and not unsigned):
                width = None
            column_type = data_type + (f"({width})" if width else "")
        elif t in (DT.DECIMAL, DT.UDECIMAL):
            data_type = "decimal"
            column_type = f"decimal({p[0] if p else 10},{p[1] if len(p) > 1 else 0})"
        elif t in (DT.FLOAT, DT.DOUBLE, DT.UDOUBLE) or t.name == "UFLOAT":
            data_type = "double" if t != DT.FLOAT or (len(p) == 1 and int(p[0]) > 24) else "float"
            column_type = data_type + (f"({p[0]},{p[1]})" if len(p) == 2 else "")
        elif t == DT.BIT:
            data_type, column_type = "bit", f"bit({p[0] if p else 1})"
        elif t in (DT.CHAR, DT.NCHAR, DT.VARCHAR, DT.NVARCHAR):
            data_type = "varchar" if t in (DT.VARCHAR, DT.NVARCHAR) else "char"
            if t in (DT.NCHAR, DT.NVARCHAR):
                charset = charset or "utf8mb3"
            if data_type == "varchar" and not p:
                raise _Unsupported(f"VARCHAR without length ({cdef.name})")
            column_type = f"{data_type}({p[0] if p else 1})"
            string = True
        elif t in (DT.BINARY, DT.VARBINARY):
            data_type = "varbinary" if t == DT.VARBINARY else "binary"
            column_type = f"{data_type}({p[0] if p else 1})"
        elif t in _TEXTS:
            if p:
                raise _Unsupported(f"TEXT(n) ({cdef.name}): the server picks the type")
            data_type = column_type = _TEXTS[t]
            string = True
        elif t in (DT.ENUM, DT.SET):
            data_type = "enum" if t == DT.ENUM else "set"
            enum_values = tuple(str(e.this).rstrip(" ") for e in kind.expressions)
            column_type = f"{data_type}({','.join(_quote_member(v) for v in enum_values)})"
            string = True
        elif t in _TEMPORAL:
            data_type = _TEMPORAL[t]
            n = int(p[0]) if p else 0
            fsp = n or None
            column_type = data_type + (f"({n})" if n else "")
        elif t == DT.YEAR:
            data_type = "year"
            column_type = "year(4)" if mariadb else "year"
        elif t == DT.JSON:
            if mariadb:
                data_type = column_type = "longtext"
                charset = "utf8mb4"
            else:
                data_type = column_type = "json"
        elif t == DT.VECTOR and not mariadb:
            data_type, column_type = "vector", f"vector({p[0] if p else 2048})"
        elif t in _PLAIN:
            data_type = column_type = _PLAIN[t]
        elif t == DT.USERDEFINED and str(kind.args.get("kind") or "").lower() in _USER_TYPES:
            data_type = column_type = str(kind.args["kind"]).lower()
        else:
            raise _Unsupported(f"column type {kind.sql('mysql')} ({cdef.name})")
        if unsigned and data_type in ("tinyint", "smallint", "mediumint", "int", "bigint",
                                      "decimal", "float", "double") and t != DT.SERIAL:
            column_type += " unsigned"
        if zerofill:
            column_type += " zerofill"
        cs: str | None = None
        if string:
            if collation:
                cs = _charset_of_collation(collation)
            cs = charset or cs or info.charset or self.databases.get(info.schema) \
                or self.server_charset
            if cs == "binary" and data_type in _TO_BINARY:
                data_type = _TO_BINARY[data_type]
                column_type = data_type + column_type[column_type.find("("):] \
                    if "(" in column_type else data_type
                cs = None
            elif cs == "binary":
                cs = None
        elif t == DT.JSON and mariadb:
            cs = "utf8mb4"
        if pk:
            nullable = False
        return (ColumnInfo(cdef.name, data_type, column_type, unsigned and data_type in (
            "tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double"),
            cs, nullable, False, enum_values, fsp), pk, unique)


# ------------------------------------------------------------------ helpers
def _rewrite_outside_strings(text: str) -> str:
    out, last = [], 0
    for m in _STRING.finditer(text):
        out.append(_rewrite(text[last:m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(_rewrite(text[last:]))
    return "".join(out)


def _rewrite(chunk: str) -> str:
    for pattern, repl in _REWRITES:
        chunk = pattern.sub(repl, chunk)
    return chunk


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes."""
    parts, depth, cur, i = [], 0, [], 0
    while i < len(text):
        m = _STRING.match(text, i)
        if m:
            cur.append(m.group(0))
            i = m.end()
            continue
        ch = text[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def _strip_partitioning(text: str) -> str:
    """The statement without a trailing top-level PARTITION BY clause."""
    depth, i = 0, 0
    while i < len(text):
        m = _STRING.match(text, i)
        if m:
            i = m.end()
            continue
        ch = text[i]
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and re.match(r"\bPARTITION\s+BY\b", text[i:i + 40], re.I) \
                and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            return text[:i].rstrip()
        i += 1
    return text


_IDENT = r"(?:`(?:[^`]|``)*`|[\w$]+)"
_QUALIFIED = re.compile(rf"({_IDENT})(?:\s*\.\s*({_IDENT}))?")


def tables_named(db: str, text: str) -> list[TableKey]:
    """Best-effort: the tables a DDL statement names, as (schema, table);
    ``db`` is the default database. Leading comments are skipped."""
    text = re.sub(r"^(?:\s*(?:/\*(?!!).*?\*/|#[^\n]*\n|--\s[^\n]*\n))*", "", text, flags=re.S)
    trunc = re.match(r"\s*TRUNCATE\s+(?!TABLE\b)(.*)$", text, re.I | re.S)
    if trunc is not None:
        text = f"TRUNCATE TABLE {trunc.group(1)}"
    ren = re.match(r"\s*RENAME\s+TABLES?\s+(.*)$", text, re.I | re.S)
    if ren is not None:
        named = []
        for pair in _split_top(ren.group(1)):
            for side in re.split(r"\s+TO\s+", pair.strip(), flags=re.I):
                named += tables_named(db, f"DROP TABLE {side}")
        return named
    m = re.match(r"\s*(?:CREATE|ALTER|DROP|TRUNCATE)\s+(?:OR\s+REPLACE\s+)?(?:ONLINE\s+|IGNORE\s+)*"
                 r"(?:TABLE|SEQUENCE)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(.*)$", text, re.I | re.S)
    if m is None:
        m2 = re.match(r"\s*(?:CREATE\s+(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?INDEX\s+\S+\s+ON|"
                      r"DROP\s+INDEX\s+\S+\s+ON)\s+(.*)$", text, re.I | re.S)
        if m2 is None:
            return []
        m = m2
    out = []
    rest = m.group(1)
    is_drop = re.match(r"\s*DROP\s+TABLE", text, re.I) is not None
    for piece in (_split_top(rest) if is_drop else [rest]):
        q = _QUALIFIED.match(piece.strip())
        if q is None:
            continue
        a, b = (x.strip("`").replace("``", "`") if x else x for x in q.groups())
        out.append((a, b) if b else (db, a))
    return out


def _read_databases(conn: Any, schemas: Sequence[str] | None) -> dict[str, str]:
    sql = "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA"
    args: tuple[Any, ...] = ()
    if schemas:
        sql += " WHERE SCHEMA_NAME IN (" + ",".join(["%s"] * len(schemas)) + ")"
        args = tuple(schemas)
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return {_s(n): _norm_charset(_s(cs)) for n, cs in cur.fetchall()}


def read_tables(conn: Any, schemas: Sequence[str] | None = None) -> dict[TableKey, TableInfo]:
    """Tables as information_schema shows them now (what :meth:`SchemaHistory.snapshot`
    records; the same columns, ``ColumnInfo.to_column_def``, as ``Schemas.from_server``)."""
    where, args = "", tuple[Any, ...]()
    if schemas:
        where = " WHERE TABLE_SCHEMA IN (" + ",".join(["%s"] * len(schemas)) + ")"
        args = tuple(schemas)
    out: dict[TableKey, TableInfo] = {}
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_COLLATION"
                    " FROM information_schema.TABLES" + where
                    + (" AND" if where else " WHERE") + " TABLE_TYPE IN"
                    " ('BASE TABLE', 'SEQUENCE', 'SYSTEM VERSIONED')", args)
        for db, tbl, coll in cur.fetchall():
            out[(_s(db), _s(tbl))] = TableInfo(
                _s(db), _s(tbl), charset=_charset_of_collation(_s(coll)) if coll else None)
        cur.execute("SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE,"
                    " CHARACTER_SET_NAME, COLUMN_KEY, IS_NULLABLE, DATETIME_PRECISION"
                    " FROM information_schema.COLUMNS" + where
                    + " ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION", args)
        for db, tbl, name, dtype, ctype, cs, key, nullable, fsp in cur.fetchall():
            info = out.get((_s(db), _s(tbl)))
            if info is None:
                continue  # a view
            dtype, ctype = _s(dtype).lower(), _s(ctype)
            info.columns.append(ColumnInfo(
                _s(name), dtype, ctype, "unsigned" in ctype.lower(), _s(cs) or None,
                _s(nullable) == "YES", _s(key) == "PRI",
                _enum_members(ctype) if dtype in ("enum", "set") else None,
                int(fsp) if fsp else None))
        cur.execute("SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, COLUMN_NAME"
                    " FROM information_schema.STATISTICS" + where
                    + (" AND" if where else " WHERE") + " NON_UNIQUE = 0"
                    " ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME = 'PRIMARY' DESC,"
                    " INDEX_NAME, SEQ_IN_INDEX", args)
        keys: dict[TableKey, dict[str, list[str]]] = {}
        for db, tbl, index, col in cur.fetchall():
            if col is None:
                continue  # a functional key part
            keys.setdefault((_s(db), _s(tbl)), {}).setdefault(_s(index), []).append(_s(col))
    for key, found in keys.items():
        info = out.get(key)
        if info is None:
            continue
        info.keys = [(n, tuple(c)) for n, c in found.items()]
        if "PRIMARY" not in found:  # the promoted UNIQUE key first (see derive_keys)
            pri = {c.name.lower() for c in info.columns if c.primary_key}
            info.keys.sort(key=lambda k: {c.lower() for c in k[1]} != pri)
    return out
