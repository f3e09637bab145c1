"""Apply transactions to a real server over a connection, or print the SQL
(``--dry-run``).

A statement runs after the SET statements that give it its binlog context,
as ``mysqlbinlog`` would print them: ``SET TIMESTAMP``, ``INSERT_ID``,
``LAST_INSERT_ID``, ``@@RAND_SEED1/2``, user variables, ``USE db``; sql_mode
and the charset ids only when the binlog's flavor is the server's (the bit
sets and collation ids differ between MySQL and MariaDB). A row change
becomes ``INSERT``, or ``UPDATE``/``DELETE ... WHERE <primary key> LIMIT 1``
(every before-image column compared with ``<=>`` when the key is unknown);
an UPDATE or DELETE that finds no row is an error, as for a replica's SQL
thread (HA_ERR_KEY_NOT_FOUND), never skipped.

GTIDs: with ``gtids=True`` a MySQL GTID is applied with ``SET GTID_NEXT``
(the server then skips a transaction it already has) and a MariaDB GTID
with ``@@gtid_domain_id``, ``@@server_id`` and ``@@gtid_seq_no``.
"""

from __future__ import annotations

from typing import Any, TextIO

import pymysql
from pymysql.converters import escape_item

from binlogkit.codec.columns import Column
from binlogkit.replay.model import Context, Image, Kind


def quote_name(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def literal(value: Any) -> str:
    """A SQL literal for a row value (bytes as a hex literal, so any charset is safe)."""
    if isinstance(value, bytes | bytearray):
        return "X'" + bytes(value).hex() + "'" if value else "''"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value) + ("e0" if "e" not in repr(value) and "n" not in repr(value) else "")
    return str(escape_item(value, "utf8mb4"))


class ServerTarget:
    """A replica's SQL thread against ``conn`` (PyMySQL, autocommit), or, with
    ``conn=None``, the SQL written to ``out``.

    ``flavor`` is the binlog's ("mysql" or "mariadb"): session settings that
    only mean the same thing on a server of that flavor are sent only then.
    """

    def __init__(self, conn: pymysql.connections.Connection[Any] | None, *,
                 out: TextIO | None = None, flavor: str | None = None,
                 server_flavor: str | None = None, gtids: bool = True) -> None:
        if conn is None and out is None:
            raise ValueError("ServerTarget needs a connection or an output")
        self.conn = conn
        self.out = out
        self.gtids = gtids
        self.binlog_flavor = flavor
        self.server_flavor = server_flavor or (self._flavor() if conn is not None else flavor)
        self._keys: dict[tuple[str, str], tuple[str, ...]] = {}
        self._db: str | None = None
        self._gtid: str | None = None
        self._explicit = True

    # ------------------------------------------------------------------ helpers

    def _flavor(self) -> str:
        version = str(self._query("SELECT VERSION()")[0][0])
        return "mariadb" if "mariadb" in version.lower() else "mysql"

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        assert self.conn is not None
        with self.conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def run(self, sql: str) -> int:
        """Send one statement (or print it); the affected-row count (-1 printed)."""
        if self.out is not None:
            self.out.write(sql.rstrip().rstrip(";") + ";\n")
        if self.conn is None:
            return -1
        with self.conn.cursor() as cur:
            return int(cur.execute(sql))

    def _same_flavor(self) -> bool:
        return self.binlog_flavor is not None and self.binlog_flavor == self.server_flavor

    # ------------------------------------------------------------- transactions

    def begin(self, gtid: str | None, explicit: bool = True) -> bool:
        """False when the server already has ``gtid`` (MySQL): skip it, as a
        replica with auto-positioning does."""
        self._gtid = gtid
        self._explicit = explicit
        if self.gtids and gtid:
            if ":" in gtid and self.server_flavor == "mysql":
                if self.conn is not None and self._query(
                        f"SELECT GTID_SUBSET('{gtid}', @@GLOBAL.gtid_executed)")[0][0]:
                    self._gtid = None
                    return False
                self.run(f"SET GTID_NEXT = '{gtid}'")
            elif ":" not in gtid and self.server_flavor == "mariadb":
                domain, server, seq = gtid.split("-")
                self.run(f"SET @@session.gtid_domain_id = {int(domain)},"
                         f" @@session.server_id = {int(server)},"
                         f" @@session.gtid_seq_no = {int(seq)}")
        if explicit:
            self.run("BEGIN")
        return True

    def commit(self) -> None:
        if self._explicit:
            self.run("COMMIT")
        self._after()

    def rollback(self) -> None:
        if self._explicit:
            self.run("ROLLBACK")
        self._after()

    def _after(self) -> None:
        if self.gtids and self._gtid and ":" in self._gtid and self.server_flavor == "mysql":
            self.run("SET GTID_NEXT = 'AUTOMATIC'")
        self._gtid = None

    # --------------------------------------------------------------- statements

    def statement(self, sql: str, context: Context) -> None:
        for setting in self.context_sql(context):
            self.run(setting)
        self.run(sql)

    def context_sql(self, ctx: Context) -> list[str]:
        """The SET statements (and USE) that give a statement its binlog context."""
        out = [f"SET TIMESTAMP = {ctx.timestamp}" + (f".{ctx.usec:06d}" if ctx.usec else "")]
        if ctx.insert_id is not None:
            out.append(f"SET INSERT_ID = {ctx.insert_id}")
        if ctx.last_insert_id is not None:
            out.append(f"SET LAST_INSERT_ID = {ctx.last_insert_id}")
        if ctx.rand_seed is not None:
            out.append(f"SET @@RAND_SEED1 = {ctx.rand_seed[0]}, @@RAND_SEED2 = {ctx.rand_seed[1]}")
        for name, value in ctx.user_vars.items():
            out.append(f"SET @{quote_name(name)} := {literal(value)}")
        if self._same_flavor():
            out.append(f"SET @@session.sql_mode = {ctx.sql_mode}")
            client, connection, server = ctx.charset
            out.append(f"SET @@session.character_set_client = {client},"
                       f" @@session.collation_connection = {connection},"
                       f" @@session.collation_server = {server}")
        if ctx.db and ctx.db != self._db:
            out.append(f"USE {quote_name(ctx.db)}")
            self._db = ctx.db
        return out

    # --------------------------------------------------------------------- rows

    def row(self, schema: str, table: str, kind: Kind, before: Image | None,
            after: Image | None, columns: tuple[Column, ...] = ()) -> None:
        name = f"{quote_name(schema)}.{quote_name(table)}"
        if kind == "insert":
            assert after is not None
            cols = ", ".join(quote_name(c) for c in after)
            vals = ", ".join(literal(v) for v in after.values())
            self.run(f"INSERT INTO {name} ({cols}) VALUES ({vals})")
            return
        assert before is not None
        where = self._where(schema, table, before, columns)
        if kind == "delete":
            sql = f"DELETE FROM {name} WHERE {where} LIMIT 1"
        else:
            assert after is not None
            sets = ", ".join(f"{quote_name(c)} = {literal(v)}" for c, v in after.items())
            sql = f"UPDATE {name} SET {sets} WHERE {where} LIMIT 1"
        if self.run(sql) == 0 and not self._exists(name, where):
            raise LookupError(f"Can't find record in '{table}' (HA_ERR_KEY_NOT_FOUND):"
                              f" {kind} where {where}")

    def _exists(self, name: str, where: str) -> bool:
        """An UPDATE that changes nothing reports 0 rows: is the row there?"""
        return bool(self._query(f"SELECT 1 FROM {name} WHERE {where} LIMIT 1"))

    def _where(self, schema: str, table: str, before: Image,
               columns: tuple[Column, ...]) -> str:
        key = self._key(schema, table, columns)
        names = [k for k in key if k in before] if key else []
        if not names or len(names) != len(key):
            names = list(before)
        return " AND ".join(f"{quote_name(c)} <=> {literal(before[c])}" for c in names)

    def _key(self, schema: str, table: str, columns: tuple[Column, ...]) -> tuple[str, ...]:
        found = self._keys.get((schema, table))
        if found is not None:
            return found
        key = tuple(c.name for c in columns if c.primary_key and c.name)
        if not key and self.conn is not None:
            rows = self._query(
                "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE"
                f" WHERE TABLE_SCHEMA = {literal(schema)} AND TABLE_NAME = {literal(table)}"
                " AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION")
            key = tuple(str(r[0]) for r in rows)
        self._keys[(schema, table)] = key
        return key
