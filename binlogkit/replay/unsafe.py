"""Why a statement is unsafe to log in STATEMENT format.

:func:`unsafe` returns the reasons a MariaDB 10.11 (or, with
``flavor="mysql"``, MySQL 9.7) server would give for a statement: exactly the
statements for which a server with ``binlog_format=MIXED`` writes row events
instead of a QUERY event, and for which ``binlog_format=STATEMENT`` warns
(``1592 Unsafe statement written to the binary log using statement format
since BINLOG_FORMAT = STATEMENT. <reason>``).

The rules were measured against the servers (see ``docs/replay-unsafe.md``);
they work on the statement text with a small tokenizer, so nothing here
resolves names the way a server does. Table knowledge (keys, AUTO_INCREMENT
columns) comes from ``tables``; without it the rules that need it stay quiet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from binlogkit.replay.model import TableInfo

Flavor = Literal["mariadb", "mysql"]
Tables = Mapping[str, TableInfo] | Callable[[str], TableInfo | None]

WARNING_PREFIX = (
    "Unsafe statement written to the binary log using statement format since "
    "BINLOG_FORMAT = STATEMENT. "
)


@dataclass(frozen=True)
class Reason:
    """One reason: ``code`` (``"LIMIT"``), the server's enum name
    (``BINLOG_STMT_UNSAFE_LIMIT``), its wording as the server prints it
    after the 1592 warning's prefix, and the number of the
    ``ER_BINLOG_UNSAFE_*`` message (0 when the flavor has none)."""

    code: str
    name: str
    message: str
    errcode: int = 0

    @property
    def error_name(self) -> str:
        """``ER_BINLOG_UNSAFE_LIMIT`` and so on."""
        return "ER_BINLOG_UNSAFE_" + self.code

    @property
    def warning(self) -> str:
        """The full text of the 1592 warning under binlog_format=STATEMENT."""
        return WARNING_PREFIX + self.message


# code -> (MariaDB errcode, MariaDB wording, MySQL wording). Dict order is
# the servers' enum order, which is also the order their warnings come in.
# Wordings are what SHOW WARNINGS printed (MariaDB 10.11.19, MySQL 9.7.4);
# the ones never triggered here come from the servers' errmsg-utf8.txt.
_SLAVE = "This order cannot be predicted and may differ on master and the slave"
_REPLICA = "This order cannot be predicted and may differ on source and the replica."
_TEXTS: dict[str, tuple[int, str, str]] = {
    "LIMIT": (
        1668,
        "The statement is unsafe because it uses a LIMIT clause. This is unsafe "
        "because the set of rows included cannot be predicted",
        "The statement is unsafe because it uses a LIMIT clause. This is unsafe "
        "because the set of rows included cannot be predicted.",
    ),
    "SYSTEM_TABLE": (
        1670,
        "The statement is unsafe because it uses the general log, slow query log, "
        "or performance_schema table(s). This is unsafe because system tables may "
        "differ on slaves",
        "The statement is unsafe because it uses the general log, slow query log, "
        "or performance_schema table(s). This is unsafe because system tables may "
        "differ on replicas.",
    ),
    "AUTOINC_COLUMNS": (
        1671,
        "Statement is unsafe because it invokes a trigger or a stored function that "
        "inserts into an AUTO_INCREMENT column. Inserted values cannot be logged correctly",
        "Statement is unsafe because it invokes a trigger or a stored function that "
        "inserts into an AUTO_INCREMENT column. Inserted values cannot be logged correctly.",
    ),
    "UDF": (
        1672,
        "Statement is unsafe because it uses a UDF which may not return the same "
        "value on the slave",
        "Statement is unsafe because it uses a UDF which may not return the same "
        "value on the replica.",
    ),
    "SYSTEM_VARIABLE": (
        1673,
        "Statement is unsafe because it uses a system variable that may have a "
        "different value on the slave",
        "Statement is unsafe because it uses a system variable that may have a "
        "different value on the replica.",
    ),
    "SYSTEM_FUNCTION": (
        1674,
        "Statement is unsafe because it uses a system function that may return a "
        "different value on the slave",
        "Statement is unsafe because it uses a system function that may return a "
        "different value on the replica.",
    ),
    "INSERT_IGNORE_SELECT": (
        1714,
        "INSERT IGNORE... SELECT is unsafe because the order in which rows are "
        "retrieved by the SELECT determines which (if any) rows are ignored. " + _SLAVE,
        "INSERT IGNORE... SELECT is unsafe because the order in which rows are "
        "retrieved by the SELECT determines which (if any) rows are ignored. " + _REPLICA,
    ),
    "INSERT_SELECT_UPDATE": (
        1715,
        "INSERT... SELECT... ON DUPLICATE KEY UPDATE is unsafe because the order in "
        "which rows are retrieved by the SELECT determines which (if any) rows are "
        "updated. " + _SLAVE,
        "INSERT... SELECT... ON DUPLICATE KEY UPDATE is unsafe because the order in "
        "which rows are retrieved by the SELECT determines which (if any) rows are "
        "updated. " + _REPLICA,
    ),
    "WRITE_AUTOINC_SELECT": (
        1722,
        "Statements writing to a table with an auto-increment column after selecting "
        "from another table are unsafe because the order in which rows are retrieved "
        "determines what (if any) rows will be written. " + _SLAVE,
        "Statements writing to a table with an auto-increment column after selecting "
        "from another table are unsafe because the order in which rows are retrieved "
        "determines what (if any) rows will be written. " + _REPLICA,
    ),
    "REPLACE_SELECT": (
        1716,
        "REPLACE... SELECT is unsafe because the order in which rows are retrieved "
        "by the SELECT determines which (if any) rows are replaced. " + _SLAVE,
        "REPLACE... SELECT is unsafe because the order in which rows are retrieved "
        "by the SELECT determines which (if any) rows are replaced. " + _REPLICA,
    ),
    "CREATE_IGNORE_SELECT": (
        1717,
        "CREATE... IGNORE SELECT is unsafe because the order in which rows are "
        "retrieved by the SELECT determines which (if any) rows are ignored. " + _SLAVE,
        "CREATE... IGNORE SELECT is unsafe because the order in which rows are "
        "retrieved by the SELECT determines which (if any) rows are ignored. " + _REPLICA,
    ),
    "CREATE_REPLACE_SELECT": (
        1718,
        "CREATE... REPLACE SELECT is unsafe because the order in which rows are "
        "retrieved by the SELECT determines which (if any) rows are replaced. " + _SLAVE,
        "CREATE... REPLACE SELECT is unsafe because the order in which rows are "
        "retrieved by the SELECT determines which (if any) rows are replaced. " + _REPLICA,
    ),
    "CREATE_SELECT_AUTOINC": (
        1723,
        "CREATE TABLE... SELECT...  on a table with an auto-increment column is "
        "unsafe because the order in which rows are retrieved by the SELECT "
        "determines which (if any) rows are inserted. " + _SLAVE,
        "CREATE TABLE... SELECT...  on a table with an auto-increment column is "
        "unsafe because the order in which rows are retrieved by the SELECT "
        "determines which (if any) rows are inserted. " + _REPLICA,
    ),
    "UPDATE_IGNORE": (
        1719,
        "UPDATE IGNORE is unsafe because the order in which rows are updated "
        "determines which (if any) rows are ignored. " + _SLAVE,
        "UPDATE IGNORE is unsafe because the order in which rows are updated "
        "determines which (if any) rows are ignored. " + _REPLICA,
    ),
    "INSERT_TWO_KEYS": (
        1724,
        "INSERT... ON DUPLICATE KEY UPDATE  on a table with more than one UNIQUE KEY is unsafe",
        "INSERT... ON DUPLICATE KEY UPDATE  on a table with more than one UNIQUE KEY is unsafe",
    ),
    "AUTOINC_NOT_FIRST": (
        1727,
        "INSERT into autoincrement field which is not the first part in the composed "
        "primary key is unsafe",
        "INSERT into autoincrement field which is not the first part in the composed "
        "primary key is unsafe.",
    ),
    "SKIP_LOCKED": (
        2219,
        "SKIP LOCKED makes this statement unsafe",
        "Statement is unsafe because it uses SKIP LOCKED. The set of inserted values "
        "is non-deterministic.",
    ),
    "NOWAIT": (
        0,
        "",
        "Statement is unsafe because it uses NOWAIT. Whether the command will succeed "
        "or fail is not deterministic.",
    ),
    "ACL_TABLE_READ_IN_DML_DDL": (
        0,
        "",
        "The statement is unsafe because it updates a table depending on ACL table "
        "read operation. As storage engine row locks are skipped for ACL table, it "
        "may not have same effect on source and replica.",
    ),
}
_ORDER = {code: i for i, code in enumerate(_TEXTS)}

CODES: tuple[str, ...] = tuple(_TEXTS)


def reason(code: str, flavor: Flavor = "mariadb") -> Reason:
    """The :class:`Reason` for ``code`` as ``flavor`` words it."""
    errcode, maria, mysql = _TEXTS[code]
    if flavor == "mysql":
        return Reason(code, "BINLOG_STMT_UNSAFE_" + code, mysql, 0)
    if not maria:
        raise KeyError(f"MariaDB has no unsafe reason {code}")
    return Reason(code, "BINLOG_STMT_UNSAFE_" + code, maria, errcode)


# -- what the servers treat as unsafe (measured) ---------------------------

# Built-in functions that mark a statement unsafe (SYSTEM_FUNCTION).
_FUNCS_COMMON = frozenset({
    "uuid", "uuid_short", "sysdate", "user", "current_user", "session_user",
    "system_user", "found_rows", "row_count", "load_file", "sleep", "get_lock",
    "release_lock", "release_all_locks", "is_free_lock", "is_used_lock",
    "master_pos_wait", "version", "random_bytes",
})
SYSTEM_FUNCTIONS: dict[str, frozenset[str]] = {
    "mariadb": _FUNCS_COMMON | {
        "sys_guid", "current_role", "master_gtid_wait", "binlog_gtid_pos", "lastval",
    },
    "mysql": _FUNCS_COMMON | {
        "source_pos_wait", "icu_version", "aes_encrypt", "aes_decrypt",
        "wait_for_executed_gtid_set", "rotate_system_key",
    },
}
# Keyword functions that need no parentheses.
_BARE_FUNCS = {"mariadb": frozenset({"current_user", "current_role"}),
               "mysql": frozenset({"current_user"})}

# Session variables a QUERY event carries (reading them with session scope is
# safe); every other system variable, and any @@global.x, is unsafe. Measured
# by reading each session variable in an INSERT under binlog_format=STATEMENT.
SAFE_SESSION_VARIABLES: dict[str, frozenset[str]] = {
    "mariadb": frozenset({
        "auto_increment_increment", "auto_increment_offset", "character_set_client",
        "character_set_connection", "character_set_database", "character_set_server",
        "check_constraint_checks", "collation_connection", "collation_database",
        "collation_server", "explicit_defaults_for_timestamp", "foreign_key_checks",
        "identity", "last_insert_id", "lc_time_names", "pseudo_thread_id",
        "rand_seed1", "rand_seed2", "sql_auto_is_null", "sql_if_exists",
        "system_versioning_insert_history", "timestamp", "time_zone", "unique_checks",
    }),
    "mysql": frozenset({
        "auto_increment_increment", "auto_increment_offset", "character_set_client",
        "character_set_connection", "character_set_database", "character_set_server",
        "collation_connection", "collation_database", "collation_server",
        "default_collation_for_utf8mb4", "default_table_encryption",
        "enable_cascade_triggers", "foreign_key_checks",
        "generated_random_password_length", "identity", "immediate_server_version",
        "last_insert_id", "lc_time_names", "original_commit_timestamp",
        "original_server_version", "pseudo_thread_id", "rand_seed1", "rand_seed2",
        "sql_auto_is_null", "sql_require_primary_key", "time_zone", "timestamp",
        "unique_checks", "xa_detach_on_prepare",
    }),
}

_LOG_TABLES = frozenset({"general_log", "slow_log"})
_ACL_TABLES = frozenset({
    "user", "db", "tables_priv", "columns_priv", "procs_priv", "proxies_priv",
    "role_edges", "default_roles", "global_grants", "password_history",
})

# -- tokenizer -------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # word qword str num sysvar uservar op
    text: str
    value: str  # word/qword: lower-case name; sysvar: "scope.name"; else text
    pos: int


_WORD = re.compile(r"[A-Za-z0-9_$\u0080-\uffff]+")
_NUM = re.compile(r"(?:0x[0-9A-Fa-f]+|0b[01]+|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)")
_OPS = ("<=>", "<<", ">>", "<=", ">=", "<>", "!=", ":=", "||", "&&", "->>", "->")


def _quoted(sql: str, i: int, q: str) -> int:
    """Index just past the quoted string/identifier opening at ``i``."""
    n = len(sql)
    j = i + 1
    while j < n:
        c = sql[j]
        if c == "\\" and q != "`":
            j += 2
            continue
        if c == q:
            if j + 1 < n and sql[j + 1] == q:
                j += 2
                continue
            return j + 1
        j += 1
    return n


def tokenize(sql: str) -> Iterator[Token]:
    """Tokens of ``sql``: comments dropped (the body of ``/*! ... */`` and
    ``/*M! ... */`` kept, as the server runs it), strings as one token."""
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif c == "#" or (sql.startswith("--", i) and (i + 2 == n or sql[i + 2].isspace())):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith("/*", i):
            m = re.compile(r"/\*M?!\d*").match(sql, i)
            if m:  # executable comment: its body is SQL; the */ is dropped below
                i = m.end()
                continue
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif sql.startswith("*/", i):
            i += 2
        elif c in "'\"":
            j = _quoted(sql, i, c)
            yield Token("str", sql[i:j], sql[i:j], i)
            i = j
        elif c == "`":
            j = _quoted(sql, i, c)
            yield Token("qword", sql[i:j], sql[i + 1:j - 1].replace("``", "`").lower(), i)
            i = j
        elif c == "@":
            if sql.startswith("@@", i):
                j = i + 2
                parts: list[str] = []
                while True:
                    if j < n and sql[j] == "`":
                        k = _quoted(sql, j, "`")
                        parts.append(sql[j + 1:k - 1].lower())
                    else:
                        m2 = _WORD.match(sql, j)
                        k = m2.end() if m2 else j
                        parts.append(sql[j:k].lower())
                    j = k
                    if j < n and sql[j] == "." and len(parts) == 1:
                        j += 1
                        continue
                    break
                value = parts[0] if len(parts) == 1 else f"{parts[0]}.{parts[1]}"
                yield Token("sysvar", sql[i:j], value, i)
            else:
                j = i + 1
                if j < n and sql[j] in "'\"`":
                    j = _quoted(sql, j, sql[j])
                else:
                    m2 = re.compile(r"[A-Za-z0-9_$.\u0080-\uffff]*").match(sql, j)
                    j = m2.end() if m2 else j
                yield Token("uservar", sql[i:j], sql[i:j], i)
            i = j
        else:
            m = _NUM.match(sql, i) if (c.isdigit() or c == ".") else None
            if m and not (m.end() < n and (sql[m.end()].isalpha() or sql[m.end()] == "_")):
                yield Token("num", m.group(), m.group(), i)
                i = m.end()
                continue
            m = _WORD.match(sql, i)
            if m:
                yield Token("word", m.group(), m.group().lower(), i)
                i = m.end()
                continue
            for op in _OPS:
                if sql.startswith(op, i):
                    yield Token("op", op, op, i)
                    i += len(op)
                    break
            else:
                yield Token("op", c, c, i)
                i += 1


# -- statement analysis ----------------------------------------------------

_CLAUSE_END = frozenset({
    "where", "group", "order", "limit", "having", "window", "union", "except",
    "intersect", "on", "using", "set", "values", "value", "select", "for", "lock",
    "into", "returning", "fetch", "offset", "procedure", "natural", "join", "inner",
    "cross", "left", "right", "straight_join", "full", "outer", "partition",
    "use", "ignore", "force", "duplicate", "with",
})
_JOINS = frozenset({"join", "straight_join"})
_LIST_END = frozenset({
    "where", "group", "order", "limit", "having", "window", "union", "except",
    "intersect", "set", "returning", "for", "lock", "into", "fetch", "offset",
    "select", "values", "value", "procedure",
})


@dataclass
class _Ref:
    """A table reference: name (db or None, table), alias, token index."""

    db: str | None
    name: str
    alias: str
    at: int


class _Stmt:
    def __init__(self, toks: list[Token]) -> None:
        self.toks = toks
        depth = 0
        self.depth: list[int] = []
        for t in toks:
            if t.kind == "op" and t.text == ")":
                depth -= 1
            self.depth.append(depth)
            if t.kind == "op" and t.text == "(":
                depth += 1

    def word(self, i: int) -> str:
        """The keyword at ``i`` (unquoted words only), else ''."""
        if 0 <= i < len(self.toks) and self.toks[i].kind == "word":
            return self.toks[i].value
        return ""

    def is_op(self, i: int, text: str) -> bool:
        return 0 <= i < len(self.toks) and self.toks[i].kind == "op" and self.toks[i].text == text

    def close(self, i: int) -> int:
        """Index of the ')' matching the '(' at ``i``."""
        d = self.depth[i]
        for j in range(i + 1, len(self.toks)):
            if self.is_op(j, ")") and self.depth[j] == d:
                return j
        return len(self.toks)

    def find(self, words: Iterable[str], start: int = 0, depth: int | None = None) -> int:
        ws = set(words)
        for j in range(start, len(self.toks)):
            if self.word(j) in ws and (depth is None or self.depth[j] == depth):
                return j
        return -1

    def name_at(self, i: int) -> tuple[str | None, str, int] | None:
        """A possibly qualified name at ``i``: (db, name, index after it)."""
        t = self.toks[i] if i < len(self.toks) else None
        if t is None or t.kind not in ("word", "qword"):
            return None
        nxt = self.toks[i + 2] if i + 2 < len(self.toks) else None
        if self.is_op(i + 1, ".") and nxt is not None and nxt.kind in ("word", "qword"):
            return t.value, nxt.value, i + 3
        return None, t.value, i + 1

    def table_list(self, i: int, stop: int) -> Iterator[_Ref]:
        """Table references of a FROM-like list starting at ``i``."""
        if i >= min(stop, len(self.toks)):
            return
        d = self.depth[i]
        while i < stop:
            if self.is_op(i, "("):
                j = self.close(i)
                inner = self.find(("select", "with", "values", "table"), i + 1)
                if inner < 0 or inner > j:  # parenthesised join: (t1 JOIN t2)
                    yield from self.table_list(i + 1, j)
                i = j + 1
            else:
                got = self.name_at(i)
                if got is None or (got[0] is None and got[1] == "dual"):
                    return
                db, name, i = got
                alias = name
                if self.word(i) == "as":
                    i += 1
                if i < stop and self.toks[i].kind in ("word", "qword", "str") and \
                        self.word(i) not in _CLAUSE_END:
                    alias = self.toks[i].value
                    i += 1
                yield _Ref(db, name, alias, i)
            # skip index hints, PARTITION (...), ON conditions up to the next item
            while i < stop:
                if self.depth[i] < d:
                    return
                if self.depth[i] == d:
                    if self.is_op(i, ","):
                        i += 1
                        break
                    w = self.word(i)
                    if w in _JOINS:
                        i += 1
                        break
                    if w in _LIST_END:
                        return
                i += 1
            else:
                return

    def from_refs(self, start: int = 0, stop: int | None = None) -> list[_Ref]:
        """Every table reference after a FROM/JOIN/USING-list in [start, stop)."""
        stop = len(self.toks) if stop is None else stop
        refs: list[_Ref] = []
        j = start
        while j < stop:
            if self.word(j) == "from":
                refs.extend(self.table_list(j + 1, stop))
            j += 1
        return refs


def _lookup(tables: Tables | None, db: str | None, name: str,
            default_db: str | None) -> TableInfo | None:
    if tables is None:
        return None
    keys: list[str] = []
    if db:
        keys.append(f"{db}.{name}")
    elif default_db:
        keys.append(f"{default_db}.{name}")
    keys.append(name)
    for key in keys:
        for k in dict.fromkeys((key, key.lower())):
            info = tables(k) if callable(tables) else tables.get(k)
            if info is not None:
                return info
    if not db and not callable(tables):
        hits = [v for k, v in tables.items() if k.lower().rsplit(".", 1)[-1] == name.lower()]
        if len(hits) == 1:
            return hits[0]
    return None


def _unique_keys(info: TableInfo) -> int:
    return (1 if info.primary_key else 0) + len(set(info.unique) - {"PRIMARY"})


def _autoinc_not_first(info: TableInfo) -> bool:
    col = info.auto_increment
    if col is None:
        return False
    keys = ([info.primary_key] if info.primary_key else []) + list(info.indexes.values())
    keys = [tuple(c.lower() for c in k) for k in keys]
    if any(k and k[0] == col.lower() for k in keys):
        return False
    return any(col.lower() in k for k in keys)


def _limit_rows(st: _Stmt, i: int) -> str | None:
    """The row-count literal of the LIMIT at ``i`` ('' for ROWS EXAMINED only,
    None when it is not a literal)."""
    toks = st.toks
    if st.word(i + 1) == "rows" and st.word(i + 2) == "examined":
        return ""
    first = toks[i + 1] if i + 1 < len(toks) else None
    if first is None or first.kind != "num":
        return None
    if st.is_op(i + 2, ","):
        second = toks[i + 3] if i + 3 < len(toks) else None
        return second.text if second is not None and second.kind == "num" else None
    return first.text


def unsafe(
    sql: str,
    tables: Tables | None = None,
    *,
    db: str | None = None,
    udfs: Iterable[str] = (),
    flavor: Flavor = "mariadb",
) -> list[Reason]:
    """Why ``sql`` is unsafe to log as a statement (empty: safe), in the
    server's order.

    ``tables`` maps ``"t"`` or ``"db.t"`` to :class:`TableInfo` (or is a
    function doing so); unqualified names are looked up as ``db.t`` first
    when ``db`` (the current database) is given. ``udfs`` names the loadable
    functions (``CREATE FUNCTION ... SONAME``) the server has: calling one
    is unsafe, while a call to any other function that is not a built-in is
    taken to be a stored function and is not looked into. Only statements
    that write rows are analysed (INSERT, REPLACE, UPDATE, DELETE and CREATE
    TABLE ... SELECT); anything else returns []."""
    toks = [t for t in tokenize(sql) if not (t.kind == "op" and t.text == ";")]
    if not toks:
        return []
    st = _Stmt(toks)
    found: set[str] = set()
    udf_names = {u.lower() for u in udfs}

    # -- the command --------------------------------------------------------
    i = 0
    while st.is_op(i, "("):
        i += 1
    cte_names: set[str] = set()
    if st.word(i) == "with":  # WITH ... {UPDATE|DELETE|INSERT|REPLACE|SELECT}
        j = i + 1
        if st.word(j) == "recursive":
            j += 1
        while j < len(toks):
            got = st.name_at(j)
            if got is None:
                break
            cte_names.add(got[1])
            j = got[2]
            if st.is_op(j, "("):
                j = st.close(j) + 1
            if st.word(j) == "as":
                j += 1
            if st.is_op(j, "("):
                j = st.close(j) + 1
            if st.is_op(j, ","):
                j += 1
                continue
            break
        i = j
    cmd = st.word(i)
    if cmd not in ("insert", "replace", "update", "delete", "create"):
        return []

    writes: list[_Ref] = []  # tables written
    reads: list[_Ref] = []  # tables read
    ignore = False
    is_select = False
    on_dup = False
    create_autoinc = False
    j = i + 1
    if cmd in ("insert", "replace"):
        while st.word(j) in ("low_priority", "delayed", "high_priority", "ignore"):
            ignore = ignore or st.word(j) == "ignore"
            j += 1
        if st.word(j) == "into":
            j += 1
        got = st.name_at(j)
        if got is None:
            return []
        writes.append(_Ref(got[0], got[1], got[1], j))
        j = got[2]
        if st.word(j) == "partition" and st.is_op(j + 1, "("):
            j = st.close(j + 1) + 1
        if st.is_op(j, "(") and st.word(j + 1) not in ("select", "with", "values", "table"):
            j = st.close(j) + 1  # column list
        k = j
        while st.is_op(k, "("):
            k += 1
        is_select = st.word(k) in ("select", "with", "table")
        dup = st.find(("on",), j, depth=0)
        on_dup = dup >= 0 and st.word(dup + 1) == "duplicate"
        reads = st.from_refs(j) + [
            _Ref(r[0], r[1], r[1], n) for n, r in _table_stmts(st, j)]
    elif cmd == "update":
        while st.word(j) in ("low_priority", "ignore"):
            ignore = ignore or st.word(j) == "ignore"
            j += 1
        set_at = st.find(("set",), j, depth=st.depth[i])
        refs = list(st.table_list(j, set_at if set_at >= 0 else len(toks)))
        if len(refs) <= 1:
            writes = refs
        else:  # multi-table: the tables SET assigns to are written
            targets, columns = _set_targets(st, set_at)
            for r in refs:
                info = _lookup(tables, r.db, r.name, db) if columns else None
                mine = info is not None and any(
                    c.name.lower() in columns for c in info.columns)
                (writes if mine or r.alias in targets or r.name in targets
                 else reads).append(r)
        reads += st.from_refs(set_at if set_at >= 0 else j)
    elif cmd == "delete":
        while st.word(j) in ("low_priority", "quick", "ignore"):
            j += 1
        if st.word(j) == "from":
            j += 1
            using = st.find(("using",), j, depth=st.depth[i])
            if using >= 0:  # DELETE FROM t1 USING t1 JOIN t2
                targets = {r.name for r in st.table_list(j, using)}
                refs = list(st.table_list(using + 1, len(toks)))
                _split(refs, targets, writes, reads)
                reads += st.from_refs(using + 1)
            else:
                refs = list(st.table_list(j, len(toks)))
                if len(refs) <= 1:
                    writes = refs
                    reads = st.from_refs(j)
                else:
                    writes = refs
        else:  # DELETE t1[.*], t2 FROM t1 JOIN t2 ...
            frm = st.find(("from",), j, depth=st.depth[i])
            targets = {r.name for r in st.table_list(j, frm if frm >= 0 else len(toks))}
            if frm >= 0:
                refs = list(st.table_list(frm + 1, len(toks)))
                _split(refs, targets, writes, reads)
                reads += st.from_refs(frm + 1)
    else:  # CREATE [OR REPLACE] [TEMPORARY] TABLE ... SELECT
        k = j
        if st.word(k) == "or" and st.word(k + 1) == "replace":
            k += 2
        if st.word(k) == "temporary":
            k += 1
        if st.word(k) != "table":
            return []
        sel = next((x for x in range(k, len(toks))
                    if st.word(x) == "select" and st.depth[x] <= 1), -1)
        if sel < 0:
            return []
        is_select = True
        before = sel - 1
        while st.is_op(before, "("):
            before -= 1
        if st.word(before) == "as":
            before -= 1
        if st.word(before) == "ignore":
            found.add("CREATE_IGNORE_SELECT")
        elif st.word(before) == "replace":
            found.add("CREATE_REPLACE_SELECT")
        for x in range(k, sel):  # an AUTO_INCREMENT/SERIAL column definition
            if st.depth[x] != 1:
                continue
            if st.word(x) == "auto_increment" or (
                    st.word(x) == "serial" and not (st.is_op(x - 1, "(") or st.is_op(x - 1, ","))):
                create_autoinc = True
        reads = st.from_refs(sel)

    reads = [r for r in reads if r.name not in cte_names or r.db is not None]

    # -- expression-level rules --------------------------------------------
    funcs = SYSTEM_FUNCTIONS[flavor]
    bare = _BARE_FUNCS[flavor]
    safe_vars = SAFE_SESSION_VARIABLES[flavor]
    for n, t in enumerate(toks):
        if t.kind in ("word", "qword"):
            after_dot = st.is_op(n - 1, ".")
            call = st.is_op(n + 1, "(") and not after_dot
            name = t.value
            if t.kind == "word" and name == "limit":
                rows = _limit_rows(st, n)
                zero = rows is not None and rows.isdigit() and int(rows) == 0
                if flavor == "mysql":  # only UPDATE/DELETE ... LIMIT 0 (nothing runs)
                    zero = zero and cmd in ("update", "delete") and st.depth[n] == 0
                if not zero:
                    found.add("LIMIT")
            elif t.kind == "word" and name == "fetch" and st.word(n + 1) in ("first", "next"):
                found.add("LIMIT")
            elif t.kind == "word" and name == "skip" and st.word(n + 1) == "locked":
                found.add("SKIP_LOCKED")
            elif flavor == "mysql" and t.kind == "word" and name == "nowait":
                found.add("NOWAIT")
            elif call and name in udf_names:
                found.add("UDF")
            elif call and name == "rand":
                if flavor == "mysql" or cmd != "insert":
                    found.add("SYSTEM_FUNCTION")
            elif call and name in funcs:
                found.add("SYSTEM_FUNCTION")
            elif t.kind == "word" and name in bare and not after_dot:
                found.add("SYSTEM_FUNCTION")
            elif flavor == "mariadb" and t.kind == "word" and name == "previous" and \
                    st.word(n + 1) == "value" and st.word(n + 2) == "for":
                found.add("SYSTEM_FUNCTION")
        elif t.kind == "sysvar":
            scope, _, var = t.value.rpartition(".")
            if scope == "global" or var not in safe_vars:
                found.add("SYSTEM_VARIABLE")
    for r in writes + reads:
        if r.db == "performance_schema" or (r.db == "mysql" and r.name in _LOG_TABLES):
            found.add("SYSTEM_TABLE")
        if flavor == "mysql" and r.db == "mysql" and r.name in _ACL_TABLES and r in reads:
            found.add("ACL_TABLE_READ_IN_DML_DDL")

    # -- statement-level rules ----------------------------------------------
    if cmd == "insert" and is_select:
        if ignore:
            found.add("INSERT_IGNORE_SELECT")
        if on_dup:
            found.add("INSERT_SELECT_UPDATE")
    if cmd == "replace" and is_select:
        found.add("REPLACE_SELECT")
    if cmd == "update" and ignore:
        found.add("UPDATE_IGNORE")
    infos = [_lookup(tables, r.db, r.name, db) for r in writes]
    if cmd == "insert" and on_dup and not is_select and infos and infos[0] is not None \
            and _unique_keys(infos[0]) > 1:
        found.add("INSERT_TWO_KEYS")
    if reads and any(x is not None and x.auto_increment for x in infos):
        found.add("WRITE_AUTOINC_SELECT")
    if any(x is not None and _autoinc_not_first(x) for x in infos):
        found.add("AUTOINC_NOT_FIRST")
    if cmd == "create" and create_autoinc:
        found.add("CREATE_SELECT_AUTOINC")
        if reads:
            found.add("WRITE_AUTOINC_SELECT")

    return [reason(c, flavor) for c in sorted(found, key=_ORDER.__getitem__)]


def _split(refs: list[_Ref], targets: set[str], writes: list[_Ref], reads: list[_Ref]) -> None:
    for r in refs:
        (writes if r.alias in targets or r.name in targets else reads).append(r)


def _set_targets(st: _Stmt, set_at: int) -> tuple[set[str], set[str]]:
    """What a multi-table UPDATE's SET assigns to: the qualifiers of
    qualified columns, and the unqualified column names."""
    out: set[str] = set()
    cols: set[str] = set()
    if set_at < 0:
        return out, cols
    d = st.depth[set_at]
    j = set_at + 1
    expect = True
    while j < len(st.toks):
        if st.depth[j] == d:
            w = st.word(j)
            if w in ("where", "order", "limit", "returning"):
                break
            if st.is_op(j, ","):
                expect = True
                j += 1
                continue
            if expect:
                got = st.name_at(j)
                if got is not None:
                    (out.add(got[0]) if got[0] is not None else cols.add(got[1]))
                expect = False
        j += 1
    return out, cols


def _table_stmts(st: _Stmt, start: int) -> Iterator[tuple[int, tuple[str | None, str, int]]]:
    """``TABLE t`` statements (MySQL/MariaDB shorthand for SELECT * FROM t)."""
    for j in range(start, len(st.toks)):
        if st.word(j) == "table":
            got = st.name_at(j + 1)
            if got is not None:
                yield j, got
