"""How a transaction becomes broker messages: the layout both broker sinks
(NATS JetStream, Redis Streams) write and ``binlogkit apply --from`` reads.

A transaction becomes ``n`` messages, numbered ``0..n-1`` (``seq``): first,
for each DDL statement, one copy for every stream (table, or table
partition) it names, so a reader of any one of those streams meets the DDL
in its place; then one message per row change, in order. Each message goes to
the stream of its table (``route``): ``(schema, table, partition)``, where
``partition`` is ``None`` unless the table is split in N partitions by a
stable hash (``zlib.crc32``) of the primary-key values. DDL that names no
table (CREATE DATABASE, ...) goes to the reserved route ``(schema, None, None)``.

Every message carries these fields (Redis: entry fields; NATS: headers):

==========  ===============================================================
field       value
==========  ===============================================================
``id``      message ID, unique and the same on every redelivery:
            ``<server>:<gtid or file:pos of the transaction>:<seq>``, with
            ``:<stream>`` added for a DDL copy. NATS: ``Nats-Msg-Id``.
``op``      ``c`` ``u`` ``d`` ``r`` (snapshot read) or ``ddl``
``schema``  the database
``table``   the table ("" for DDL naming no table)
``txn``     the transaction id (its GTID, else file:pos of its first event;
            a snapshot batch: ``<batch id>@<file>:<pos>`` of the snapshot)
``seq``     the message's index in the transaction, ``0..n-1``
``n``       how many messages the transaction has, over all streams
``row``     the change's index among the transaction's changes ("" for DDL)
``gtid``    the transaction's GTID ("" when none)
``file``    binlog file of the row event; ``pos`` its offset (DDL: the
            position after the transaction)
``ts_ms``   the transaction's commit time (ms since the epoch)
``flavor``  ``mysql`` or ``mariadb``, the source's ("" for DDL): how its
            JSON columns read (MariaDB's JSON is text)
==========  ===============================================================

The payload is JSON: for a change the record of
:func:`~binlogkit.cdc.formats.change_json` (or the Debezium envelope), for
DDL ``{"op": "ddl", "db": <default database>, "sql": <statement>}``.

A reader applies a transaction once it holds all ``n`` of its messages and
each is at the head of its stream: within every stream that is source commit
order (a DDL's copies are the barrier that orders it with every table it
names).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from binlogkit.cdc.formats import change_json, debezium_envelope, plain_value
from binlogkit.cdc.model import Change, Txn
from binlogkit.cdc.schema_history import tables_named

Format = Literal["jsonl", "debezium"]
Route = tuple[str, str | None, int | None]  # schema, table (None: DDL naming no table), partition


@dataclass(frozen=True)
class Message:
    """One broker message: its stream (``route``), fields and JSON payload."""

    route: Route
    fields: dict[str, str]
    payload: bytes

    @property
    def id(self) -> str:
        return self.fields["id"]


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode()


class Layout:
    """Turns transactions into :class:`Message` lists (see the module doc).

    ``server`` names the source in IDs and stream names; ``partitions`` splits
    each table's stream by primary key; ``key_columns`` gives the key of
    tables whose columns are unknown (``{"db.table": ["id"]}``)."""

    def __init__(self, *, server: str = "src", fmt: Format = "jsonl", partitions: int = 1,
                 key_columns: Mapping[str, Sequence[str]] | None = None) -> None:
        if fmt not in ("jsonl", "debezium"):
            raise ValueError(f"format must be 'jsonl' or 'debezium', not {fmt!r}")
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        self.server = server
        self.fmt = fmt
        self.partitions = partitions
        self.key_columns = {k: tuple(v) for k, v in (key_columns or {}).items()}

    def partition(self, change: Change) -> int | None:
        """The partition of ``change`` (None when not partitioned): crc32 of
        its key values in the after image, else the before image."""
        if self.partitions == 1:
            return None
        image = change.after if change.after is not None else change.before
        image = image or {}
        src = change.source
        keys = self.key_columns.get(f"{src.schema}.{src.table}")
        if keys is None and change.columns is not None:
            keys = tuple(c.key for c in change.columns if c.primary_key) or None
        if keys is not None and all(k in image for k in keys):
            values: Any = [plain_value(image[k]) for k in keys]
        else:  # no known key: the whole image
            values = {k: plain_value(v) for k, v in image.items()}
        text = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
        return zlib.crc32(text.encode()) % self.partitions

    def messages(self, txn: Txn) -> list[Message]:
        """The messages of ``txn``, in order: its DDL copies, then its row
        changes (both for CREATE TABLE ... SELECT); empty for neither."""
        copies = self._ddl_routes(txn) if txn.ddl else []
        n = len(copies) + len(txn.changes)
        if not n:
            return []
        tid = txn.id
        if txn.snapshot:  # a batch id repeats in every snapshot: add the snapshot's position
            tid = f"{txn.id}@{txn.end.file}:{txn.end.pos}"
        base = {"txn": tid, "n": str(n), "gtid": txn.gtid or "", "ts_ms": str(txn.ts_ms)}
        origin = f"{self.server}:{txn.gtid or tid}"
        out = self._ddl(txn, copies, base, origin)
        out += self._changes(txn, len(out), base, origin)
        return out

    def _changes(self, txn: Txn, first: int, base: dict[str, str],
                 origin: str) -> list[Message]:
        out = []
        for i, change in enumerate(txn.changes):
            src = change.source
            if self.fmt == "debezium":
                payload = debezium_envelope(change, txn, i, name=self.server)
            else:
                payload = change_json(change)
            seq = first + i
            fields = {"id": f"{origin}:{seq}", "op": change.op, "schema": src.schema,
                      "table": src.table, "seq": str(seq), "row": str(i), "file": src.file,
                      "pos": str(src.pos), "flavor": src.flavor, **base}
            out.append(Message((src.schema, src.table, self.partition(change)), fields,
                               _json(payload)))
        return out

    def _ddl_routes(self, txn: Txn) -> list[tuple[Route, str, str]]:
        """(route, db, sql) of every copy of ``txn``'s DDL statements."""
        copies: list[tuple[Route, str, str]] = []
        parts: Sequence[int | None] = [None] if self.partitions == 1 else range(self.partitions)
        for db, sql in txn.ddl:
            named = tables_named(db, sql)
            if not named:
                copies.append(((db, None, None), db, sql))
                continue
            for schema, table in dict.fromkeys(named):
                copies += [((schema, table, p), db, sql) for p in parts]
        return copies

    def _ddl(self, txn: Txn, copies: list[tuple[Route, str, str]], base: dict[str, str],
             origin: str) -> list[Message]:
        out = []
        for seq, (route, db, sql) in enumerate(copies):
            fields = {"id": f"{origin}:{seq}:{route_name(route)}", "op": "ddl",
                      "schema": route[0], "table": route[1] or "", "seq": str(seq), "row": "",
                      "file": txn.end.file, "pos": str(txn.end.pos), "flavor": "", **base}
            out.append(Message(route, fields, _json({"op": "ddl", "db": db, "sql": sql})))
        return out


def route_name(route: Route) -> str:
    """``schema.table[.partition]``, or ``schema`` for the DDL route (display, IDs)."""
    schema, table, part = route
    if table is None:
        return schema
    return f"{schema}.{table}" if part is None else f"{schema}.{table}.{part}"


_NATS_UNSAFE = frozenset(".*>%") | frozenset(chr(c) for c in range(0x21))


def nats_token(name: str) -> str:
    """``name`` as one NATS subject token: ``.``, ``*``, ``>``, ``%``,
    whitespace and control characters percent-encoded (UTF-8)."""
    if name and not any(ch in _NATS_UNSAFE or ch == "\x7f" for ch in name):
        return name
    if not name:
        return "%00"  # a token cannot be empty
    return "".join("".join(f"%{b:02X}" for b in ch.encode()) if ch in _NATS_UNSAFE
                   or ch == "\x7f" else ch for ch in name)


def nats_subject(prefix: str, server: str, route: Route) -> str:
    """``<prefix>.<server>.<schema>.<table>[.<partition>]``; the DDL route
    (no table) is ``<prefix>.<server>.<schema>``. ``prefix`` may hold dots."""
    schema, table, part = route
    out = f"{prefix}.{nats_token(server)}.{nats_token(schema)}"
    if table is not None:
        out += f".{nats_token(table)}"
        if part is not None:
            out += f".{part}"
    return out


def redis_stream(prefix: str, server: str, route: Route) -> str:
    """``<prefix>:<server>:<schema>.<table>[:<partition>]``; the DDL route
    (no table) is ``<prefix>:<server>:<schema>``."""
    schema, table, part = route
    if table is None:
        return f"{prefix}:{server}:{schema}"
    base = f"{prefix}:{server}:{schema}.{table}"
    return base if part is None else f"{base}:{part}"
