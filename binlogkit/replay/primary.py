"""A source server made of the embedded engine: runs SQL, and keeps what it
commits as GTID-numbered transactions, each statement marked with the
reasons it is unsafe to log as a statement (so a MIXED binlog logs it as
rows).

The logical clock is WRITESET's (MySQL 8.0+'s default): a transaction's
``last_committed`` is the latest earlier transaction that changed one of
the same rows, or any earlier one when it holds DDL or a statement whose
rows are unknown.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from binlogkit.replay.model import Executed, Transaction
from binlogkit.replay.unsafe import unsafe


class Primary:
    """Runs SQL through one engine session as a source would, numbering what
    it commits: ``uuid:n`` GTIDs (``flavor="mysql"``) or ``domain-server-n``
    (``"mariadb"``)."""

    def __init__(self, engine: Any, *, flavor: str = "mysql", server_id: int = 1,
                 server_uuid: str | None = None, domain_id: int = 0, db: str | None = None,
                 first_gno: int = 1) -> None:
        self.engine = engine
        self.session = engine.session(db)
        self.flavor = flavor
        self._flavor: Any = "mariadb" if flavor == "mariadb" else "mysql"
        self.server_id = server_id
        self.server_uuid = server_uuid or str(uuidlib.UUID(int=0x5EED_0000_0000_0000 + server_id))
        self.domain_id = domain_id
        self.transactions: list[Transaction] = []
        self._open: list[Executed] = []
        self._gno = first_gno - 1
        self._last_writer: dict[tuple[str, str, tuple[Any, ...]], int] = {}
        self._barrier = 0

    def run(self, sql: str) -> Executed:
        """Execute one statement; at COMMIT (or for an autocommit statement)
        the transaction is numbered and kept."""
        was_open = self.session.in_transaction
        done = self.session.execute(sql)
        word = sql.strip().rstrip(";").strip().upper()
        if word in ("BEGIN", "START TRANSACTION"):
            return done
        if word == "ROLLBACK":
            self._open = []
            return done
        if word != "COMMIT":
            reasons = unsafe(sql, tables=self._table, db=self.session.context.db,
                             flavor=self._flavor)
            done.unsafe = [r.message for r in reasons]
            self._open.append(done)
        if not self.session.in_transaction and (word == "COMMIT" or not was_open):
            self._close()
        return done

    def script(self, sql: str) -> list[Executed]:
        from binlogkit.replay.sql import split_statements  # noqa: PLC0415

        return [self.run(s) for s in split_statements(sql)]

    def _table(self, name: str) -> Any:
        schema, _, table = name.rpartition(".")
        try:
            return self.engine.table(schema or self.session.context.db or "", table)
        except KeyError:
            return None

    def _close(self) -> None:
        statements, self._open = self._open, []
        if not any(s.changes or s.ddl for s in statements):
            return  # nothing to log (a SELECT, a no-op)
        self._gno += 1
        seq = self._gno
        ddl = any(s.ddl for s in statements)
        gtid = (f"{self.server_uuid}:{seq}" if self.flavor == "mysql"
                else f"{self.domain_id}-{self.server_id}-{seq}")
        last = self._barrier
        keys = []
        for s in statements:
            for ch in s.changes:
                key_cols = ch.table.primary_key or tuple(c.name for c in ch.table.columns)
                for image in (ch.before, ch.after):
                    if image is not None:
                        keys.append((ch.table.schema, ch.table.name,
                                     tuple(image.get(c) for c in key_cols)))
        if ddl:
            last = seq - 1
        else:
            for k in keys:
                last = max(last, self._last_writer.get(k, 0))
        for k in keys:
            self._last_writer[k] = seq
        if ddl:
            self._barrier = seq
        self.transactions.append(Transaction(statements, gtid=gtid, last_committed=last,
                                             sequence_number=seq, ddl=ddl))
