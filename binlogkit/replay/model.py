"""What the replay layer passes around: tables, row changes, statement
context, executed statements and transactions.

Values use the representation row decoding gives (:mod:`binlogkit.codec.rowcodec`):
``int`` for integer types, ``Decimal`` (exactly ``scale`` digits) for DECIMAL,
``float`` for DOUBLE, ``str`` for text and for DATE/DATETIME/TIMESTAMP (the
server's text, ``'2024-01-02 03:04:05.123456'`` with the column's fraction
digits), ``bytes`` for binary strings, ``None`` for NULL. So an image read
from a binlog can be applied to the engine as it is, and checksums computed
on the engine and on a server agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Value = Any
Image = dict[str, Value]
Kind = Literal["insert", "update", "delete"]


@dataclass(frozen=True)
class ColumnInfo:
    """One column as CREATE TABLE declared it. ``sql_type`` is upper-case and
    canonical: ``INT``, ``BIGINT UNSIGNED``, ``VARCHAR(64)``, ``CHAR(8)``,
    ``TEXT``, ``DATETIME(6)``, ``TIMESTAMP``, ``DATE``, ``DECIMAL(12,2)``,
    ``DOUBLE``, ``VARBINARY(16)`` ..."""

    name: str
    sql_type: str
    nullable: bool = True
    auto_increment: bool = False
    default: Value = None


@dataclass(frozen=True)
class TableInfo:
    """A table: columns in order, its primary key (empty when it has none),
    secondary indexes by name in declaration order, which of them are UNIQUE,
    and a CREATE TABLE statement that recreates it on a server."""

    schema: str
    name: str
    columns: tuple[ColumnInfo, ...]
    primary_key: tuple[str, ...] = ()
    indexes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    unique: frozenset[str] = frozenset()
    create_sql: str = ""

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> ColumnInfo:
        for col in self.columns:
            if col.name.lower() == name.lower():
                return col
        raise KeyError(f"{self.qualified} has no column {name}")

    @property
    def auto_increment(self) -> str | None:
        return next((c.name for c in self.columns if c.auto_increment), None)


@dataclass(frozen=True)
class RowChange:
    """One row changed by a statement: ``before`` for update/delete, ``after``
    for insert/update; images hold every column (binlog_row_image=FULL)."""

    table: TableInfo
    kind: Kind
    before: Image | None
    after: Image | None


@dataclass
class Context:
    """What a statement needs to run the same way elsewhere: everything a
    QUERY event and the INTVAR/RAND/USER_VAR events before it carry.

    ``timestamp`` is the session's NOW() in seconds (``usec`` the fraction);
    ``rand_seed`` the two seeds RAND() starts from; ``user_vars`` the user
    variables the statement reads; ``sql_mode`` the server's bit set;
    ``charset`` the (client, connection, server) collation ids."""

    db: str | None = None
    timestamp: int = 0
    usec: int = 0
    insert_id: int | None = None
    last_insert_id: int | None = None
    rand_seed: tuple[int, int] | None = None
    user_vars: dict[str, Value] = field(default_factory=dict)
    sql_mode: int = 0
    charset: tuple[int, int, int] = (45, 45, 45)  # utf8mb4_general_ci
    thread_id: int = 1


@dataclass
class Executed:
    """One statement as the engine ran it: its text and context, the rows it
    changed, and why it is unsafe to log as a statement (empty: safe)."""

    sql: str
    context: Context
    changes: list[RowChange] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)
    ddl: bool = False
    rows_matched: int = 0


@dataclass
class Transaction:
    """Statements committed together, with the GTID and (MySQL) the logical
    clock they were logged with."""

    statements: list[Executed]
    gtid: str | None = None
    last_committed: int = 0
    sequence_number: int = 0
    ddl: bool = False
